package vigil.response_test

import data.vigil.response
import data.vigil.test.fixtures as fx

# A third failed sign-in (failed_signins, weight 20) with `score` already in the risk window.
third_failure(score) := fx.other_event(
	{"outcome": {"result": "FAILURE"}},
	{"counters": {"failed_signins_10m": 3}, "risk": {"score": score, "signals": [fx.signal("new_country", score, "2026-03-02T08:00:00.000Z")]}},
)

# A reported compromise (user_reported, weight 60) with `score` before.
reported(score) := fx.other_event(
	{"eventType": "user.account.report_suspicious_activity_by_enduser"},
	{"risk": {"score": score}},
)

only(inp) := f if {
	fs := response.findings with input as inp
	count(fs) == 1
	some f in fs
}

test_crossing_notify if {
	f := only(third_failure(10))
	f.rule == "response"
	f.key == "notify"
	f.risk_weight == 0
	f.evidence.risk_score_before == 10
	f.evidence.risk_score == 30
	f.evidence.levels_crossed == ["notify"]
	fx.action_types(f) == ["slack.notify"]
	f.summary == "risk score of alice@example.com rose from 10 to 30: notify"
}

test_below_the_first_level_does_not_fire if {
	count(response.findings) == 0 with input as third_failure(0)
}

test_crossing_step_up if {
	f := only(third_failure(35))
	f.key == "step_up"
	fx.action_types(f) == ["okta.add_to_group", "slack.notify"]
}

test_crossing_page if {
	f := only(third_failure(55))
	f.key == "page"
	fx.action_types(f) == ["pagerduty.trigger", "slack.notify"]
}

test_crossing_suspend_is_delayed_and_conditional if {
	f := only(third_failure(75))
	f.key == "suspend"
	f.severity == "critical"
	some a in f.actions
	a.type == "okta.suspend_user"
	a.after_secs == 900
	a.conditions == ["unless_acknowledged", "unless_overridden", "only_if_activity_continues"]
}

test_one_event_crossing_several_levels_gets_every_action_once if {
	f := only(reported(35))
	f.key == "suspend"
	f.evidence.levels_crossed == ["step_up", "page", "suspend"]
	f.evidence.risk_score == 95
	fx.action_types(f) == ["okta.add_to_group", "pagerduty.trigger", "okta.suspend_user", "slack.notify"]
}

test_score_is_capped_at_100 if {
	f := only(reported(80))
	f.evidence.risk_score == 100
	f.evidence.levels_crossed == ["suspend"]
}

test_already_above_a_level_does_not_fire_again if {
	count(response.findings) == 0 with input as third_failure(91)
}

test_protected_account_is_never_suspended if {
	f := only(third_failure(75)) with data.vigil.config.protected_accounts as ["alice@example.com"]
	not fx.has_action(f, "okta.suspend_user")
	fx.has_action(f, "slack.notify")
	f.evidence.protected_account == true
}

test_an_analyst_override_stops_lockouts_and_is_in_the_evidence if {
	o := {"user_id": "00u1", "scope": "all", "reason": "travelling", "by": "ana", "created_at": "2026-03-02T08:00:00Z", "until": "2026-03-02T20:00:00Z"}
	f := only(object.union(third_failure(75), {"override": o}))
	not fx.has_action(f, "okta.suspend_user")
	fx.has_action(f, "slack.notify")
	f.evidence.override.reason == "travelling"
}

test_without_override_the_evidence_says_none if {
	f := only(third_failure(75))
	fx.has_action(f, "okta.suspend_user")
	f.evidence.override == null
}

test_levels_come_from_data if {
	levels := [{"name": "notify", "score": 10, "severity": "low"}]
	f := only(third_failure(0)) with data.vigil.config.risk_levels as levels
	f.key == "notify"
}

test_no_findings_no_response if {
	count(response.findings) == 0 with input as fx.input_with({}, {"risk": {"score": 85}})
}

test_event_without_user_does_not_fire if {
	inp := object.union(reported(80), {"user": null})
	count(response.findings) == 0 with input as inp
}
