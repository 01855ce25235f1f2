package vigil.rules.new_asn_test

import data.vigil.rules.new_asn
import data.vigil.test.fixtures as fx

new_asn_input(asn, learning) := fx.input_with(
	{"securityContext": {"asNumber": asn, "asOrg": "Some Hosting"}},
	{"baselines": {"asn": object.union(fx.known(sprintf("%v", [asn])), {"new": true, "learning": learning, "seen_count": 1})}},
)

test_fires_on_a_new_asn if {
	fs := new_asn.findings with input as new_asn_input(14061, false)
	count(fs) == 1
	some f in fs
	f.rule == "new_asn"
	f.evidence.asn == "14061"
	contains(f.summary, "alice@example.com")
}

test_learning_does_not_fire if {
	count(new_asn.findings) == 0 with input as new_asn_input(14061, true)
}

test_corporate_vpn_asn_does_not_fire if {
	count(new_asn.findings) == 0 with input as new_asn_input(13335, false)
}

test_vpn_list_comes_from_data if {
	count(new_asn.findings) == 0 with input as new_asn_input(14061, false) with data.vigil.config.vpn_asns as ["14061"]
}

test_benign_does_not_fire if {
	count(new_asn.findings) == 0 with input as fx.benign
}
