# A successful sign-in from a network (autonomous system, securityContext.asNumber) this user has
# not signed in from (baseline `asn`, past learning). Corporate VPN ASNs are skipped.
package vigil.rules.new_asn

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.start"}

findings contains f if {
	input.state.baselines.asn.new == true # cheap and selective first (see README)
	data.vigil.lib.is_signin_success
	data.vigil.lib.is_new_baseline_value("asn")
	b := data.vigil.lib.new_baseline_value("asn")
	not data.vigil.lib.on_vpn
	f := {
		"rule": "new_asn",
		"severity": "low",
		"risk_weight": data.vigil.lib.weight("new_asn"),
		"summary": sprintf("%s signed in from a new network: AS%v %v", [data.vigil.lib.login, b.value, data.vigil.lib.client.as_org]),
		"evidence": {
			"asn": b.value,
			"known_asns": b.known_values,
			"baseline_since": b.tracked_since,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.audit],
	}
}
