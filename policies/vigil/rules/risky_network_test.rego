package vigil.rules.risky_network_test

import data.vigil.rules.risky_network
import data.vigil.test.fixtures as fx

only(inp) := f if {
	fs := risky_network.findings with input as inp
	count(fs) == 1
	some f in fs
}

test_high_risk_country if {
	f := only(fx.input_with({"client": {"geographicalContext": {"country": "North Korea"}}}, {}))
	f.rule == "risky_network"
	f.severity == "high"
	f.evidence.reasons == ["high_risk_country"]
	fx.action_types(f) == ["slack.notify", "okta.add_to_group"]
}

test_proxy if {
	f := only(fx.input_with({"securityContext": {"isProxy": true}}, {}))
	f.evidence.reasons == ["proxy"]
}

test_proxy_on_corporate_vpn_does_not_fire if {
	inp := fx.input_with({"securityContext": {"isProxy": true, "asNumber": 13335}}, {})
	count(risky_network.findings) == 0 with input as inp
}

test_threat_suspected if {
	f := only(fx.input_with({"debugContext": {"debugData": {"threatSuspected": "true"}}}, {}))
	f.evidence.reasons == ["threat_suspected"]
}

test_okta_risk_high if {
	inp := fx.input_with({"debugContext": {"debugData": {"risk": "{reasons=Anomalous Location, level=HIGH}"}}}, {})
	f := only(inp)
	f.evidence.reasons == ["okta_risk_high"]
}

test_okta_risk_medium_does_not_fire if {
	inp := fx.input_with({"debugContext": {"debugData": {"risk": "{reasons=Anomalous Location, level=MEDIUM}"}}}, {})
	count(risky_network.findings) == 0 with input as inp
}

test_threatinsight_attempt_is_low_and_audit_only if {
	inp := fx.other_event({"eventType": "security.threat.detected", "outcome": {"result": "DENY", "reason": "Password Spray"}}, {})
	f := only(inp)
	f.severity == "low"
	f.risk_weight == 10
	fx.action_types(f) == ["audit.record"]
}

test_failed_signin_from_high_risk_country_does_not_fire if {
	inp := fx.input_with({"outcome": {"result": "FAILURE"}, "client": {"geographicalContext": {"country": "Iran"}}}, {})
	count(risky_network.findings) == 0 with input as inp
}

test_not_repeated_within_renotify if {
	inp := fx.input_with(
		{"securityContext": {"isProxy": true}},
		{"risk": {"score": 30, "signals": [fx.signal("risky_network", 30, "2026-03-02T09:00:00.000Z")]}},
	)
	count(risky_network.findings) == 0 with input as inp
}

test_earlier_attempt_does_not_hide_a_risky_signin if {
	inp := fx.input_with(
		{"securityContext": {"isProxy": true}},
		{"risk": {"score": 10, "signals": [fx.signal("risky_network", 10, "2026-03-02T09:00:00.000Z")]}},
	)
	f := only(inp)
	f.severity == "high"
}

test_benign_does_not_fire if {
	count(risky_network.findings) == 0 with input as fx.benign
}
