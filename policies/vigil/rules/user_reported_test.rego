package vigil.rules.user_reported_test

import data.vigil.rules.user_reported
import data.vigil.test.fixtures as fx

reported := fx.other_event(
	{
		"eventType": "user.account.report_suspicious_activity_by_enduser",
		"debugContext": {"debugData": {
			"suspiciousActivityEventType": "user.session.start",
			"suspiciousActivityEventId": "abc",
			"requestUri": "/x",
		}},
	},
	{},
)

test_fires_with_full_response if {
	fs := user_reported.findings with input as reported
	count(fs) == 1
	some f in fs
	f.rule == "user_reported"
	f.severity == "high"
	f.risk_weight > 0
	contains(f.summary, "alice@example.com")
	f.evidence.reported == {"suspiciousActivityEventType": "user.session.start", "suspiciousActivityEventId": "abc"}
	fx.action_types(f) == ["okta.clear_sessions", "okta.reset_password", "slack.notify", "audit.record"]
	some a in f.actions
	a.type == "okta.clear_sessions"
	a.params.oauth_tokens == true
}

test_protected_account_keeps_sessions_cleared_but_no_password_reset if {
	fs := user_reported.findings with input as reported
		with data.vigil.config.protected_accounts as ["Alice@Example.com"]
	some f in fs
	fx.action_types(f) == ["okta.clear_sessions", "slack.notify", "audit.record"]
	f.evidence.protected_account == true
}

test_benign_signin_does_not_fire if {
	count(user_reported.findings) == 0 with input as fx.benign
}
