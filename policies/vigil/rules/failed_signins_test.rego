package vigil.rules.failed_signins_test

import data.vigil.rules.failed_signins
import data.vigil.test.fixtures as fx

failure(n) := fx.other_event(
	{"outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}},
	{"counters": {"failed_signins_10m": n}},
)

verify_failure(n) := fx.other_event(
	{"eventType": "user.authentication.verify", "outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}},
	{"counters": {"failed_verify_10m": n}},
)

test_fires_when_the_third_failure_crosses_the_threshold if {
	fs := failed_signins.findings with input as failure(3)
	count(fs) == 1
	some f in fs
	f.rule == "failed_signins"
	f.severity == "medium"
	f.evidence.failed_signins_10m == 3
	f.summary == "3 failed sign-ins in 10 minutes for alice@example.com"
	fx.has_action(f, "slack.notify")
	some a in f.actions
	a.type == "okta.add_to_group"
	a.params.group_id == "00gSTEPUPMFA0000000"
}

test_two_failures_do_not_fire if {
	count(failed_signins.findings) == 0 with input as failure(2)
}

test_single_typo_does_not_fire if {
	count(failed_signins.findings) == 0 with input as failure(1)
}

test_fourth_failure_does_not_fire_again if {
	count(failed_signins.findings) == 0 with input as failure(4)
}

test_oie_verify_failures_fire if {
	count(failed_signins.findings) == 1 with input as verify_failure(3)
}

test_not_repeated_while_an_earlier_finding_is_in_the_window if {
	inp := object.union(verify_failure(3), {"state": {
		"counters": {"failed_signins_10m": 3},
		"risk": {"score": 20, "signals": [fx.signal("failed_signins", 20, "2026-03-02T09:12:00.000Z")]},
	}})
	count(failed_signins.findings) == 0 with input as inp
}

test_fires_again_after_the_window if {
	inp := object.union(failure(3), {"state": {"risk": {
		"score": 20,
		"signals": [fx.signal("failed_signins", 20, "2026-03-02T08:00:00.000Z")],
	}}})
	count(failed_signins.findings) == 1 with input as inp
}

test_successful_signin_with_high_counter_does_not_fire if {
	count(failed_signins.findings) == 0 with input as fx.input_with({}, {"counters": {"failed_signins_10m": 3}})
}

test_threshold_comes_from_data if {
	count(failed_signins.findings) == 0 with input as failure(3) with data.vigil.config.failed_signins.threshold as 5
	count(failed_signins.findings) == 1 with input as failure(5) with data.vigil.config.failed_signins.threshold as 5
}

test_benign_does_not_fire if {
	count(failed_signins.findings) == 0 with input as fx.benign
}
