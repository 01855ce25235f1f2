package vigil.rules.mfa_push_fatigue_test

import data.vigil.rules.mfa_push_fatigue
import data.vigil.test.fixtures as fx

push(n) := fx.other_event({"eventType": "system.push.send_factor_verify_push"}, {"counters": {"push_sends_10m": n}})

deny(n) := fx.other_event(
	{"eventType": "user.mfa.okta_verify.deny_push", "outcome": {"result": "FAILURE", "reason": "USER_REJECTED_OKTA_VERIFY_PUSH"}},
	{"counters": {"push_sends_10m": n, "push_denies_10m": n}},
)

oie_deny(n) := fx.other_event(
	{
		"eventType": "user.authentication.auth_via_mfa",
		"outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
		"debugContext": {"debugData": {"factor": "OKTA_VERIFY_PUSH"}},
	},
	{"counters": {"push_sends_10m": n, "push_denies_oie_10m": n}},
)

test_fires_when_push_sends_reach_the_threshold if {
	fs := mfa_push_fatigue.findings with input as push(5)
	count(fs) == 1
	some f in fs
	f.rule == "mfa_push_fatigue"
	f.severity == "high"
	f.evidence.crossed == ["push_sends"]
	fx.action_types(f) == ["okta.clear_sessions", "pagerduty.trigger", "slack.notify"]
	f.actions[0].params.oauth_tokens == true
}

test_one_push_below_the_threshold_does_not_fire if {
	count(mfa_push_fatigue.findings) == 0 with input as push(4)
}

test_a_single_push_does_not_fire if {
	count(mfa_push_fatigue.findings) == 0 with input as push(1)
}

test_fires_when_denies_reach_the_threshold if {
	fs := mfa_push_fatigue.findings with input as deny(3)
	some f in fs
	f.evidence.crossed == ["push_denies"]
}

test_two_denies_do_not_fire if {
	count(mfa_push_fatigue.findings) == 0 with input as deny(2)
}

test_oie_denies_count if {
	count(mfa_push_fatigue.findings) == 1 with input as oie_deny(3)
}

test_not_repeated_within_the_window if {
	inp := object.union(push(5), {"state": {"risk": {
		"score": 50,
		"signals": [fx.signal("mfa_push_fatigue", 50, "2026-03-02T09:10:00.000Z")],
	}}})
	count(mfa_push_fatigue.findings) == 0 with input as inp
}

test_counter_on_an_unrelated_event_does_not_fire if {
	count(mfa_push_fatigue.findings) == 0 with input as fx.input_with({}, {"counters": {"push_sends_10m": 5}})
}

test_benign_does_not_fire if {
	count(mfa_push_fatigue.findings) == 0 with input as fx.benign
}
