# A successful sign-in from a network (autonomous system, securityContext.asNumber) this user has
# not signed in from (baseline `asn`, past learning). Corporate VPN ASNs are skipped.
package vigil.rules.new_asn

import data.vigil.lib

findings contains f if {
	lib.is_signin_success
	b := lib.new_baseline_value("asn")
	not lib.on_vpn
	f := {
		"rule": "new_asn",
		"severity": "low",
		"risk_weight": lib.weight("new_asn"),
		"summary": sprintf("%s signed in from a new network: AS%v %v", [lib.login, b.value, lib.client.as_org]),
		"evidence": {
			"asn": b.value,
			"known_asns": b.known_values,
			"baseline_since": b.tracked_since,
			"client": lib.client,
		},
		"actions": [lib.audit],
	}
}
