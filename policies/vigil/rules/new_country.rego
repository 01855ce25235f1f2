# A successful sign-in from a country this user has not signed in from (baseline `country`, past
# its learning period). Sign-ins through a corporate VPN ASN are skipped: the exit country says
# nothing about the user.
package vigil.rules.new_country

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.start"}

findings contains f if {
	input.state.baselines.country.new == true # cheap and selective first (see README)
	data.vigil.lib.is_signin_success
	data.vigil.lib.is_new_baseline_value("country")
	b := data.vigil.lib.new_baseline_value("country")
	not data.vigil.lib.on_vpn
	f := {
		"rule": "new_country",
		"severity": "medium",
		"risk_weight": data.vigil.lib.weight("new_country"),
		"summary": sprintf("%s signed in from a new country: %s", [data.vigil.lib.login, b.value]),
		"evidence": {
			"country": b.value,
			"known_countries": b.known_values,
			"baseline_since": b.tracked_since,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.slack],
	}
}
