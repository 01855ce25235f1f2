# A successful sign-in from a country this user has not signed in from (baseline `country`, past
# its learning period). Sign-ins through a corporate VPN ASN are skipped: the exit country says
# nothing about the user.
package vigil.rules.new_country

import data.vigil.lib

findings contains f if {
	lib.is_signin_success
	b := lib.new_baseline_value("country")
	not lib.on_vpn
	f := {
		"rule": "new_country",
		"severity": "medium",
		"risk_weight": lib.weight("new_country"),
		"summary": sprintf("%s signed in from a new country: %s", [lib.login, b.value]),
		"evidence": {
			"country": b.value,
			"known_countries": b.known_values,
			"baseline_since": b.tracked_since,
			"client": lib.client,
		},
		"actions": [lib.slack],
	}
}
