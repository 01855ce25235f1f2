# The user told Okta that activity on their account was not theirs ("Report suspicious activity"
# from an Okta email or the end-user dashboard). Treat as a confirmed compromise: kill every
# session and token, force a password reset, alert.
package vigil.rules.user_reported

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.account.report_suspicious_activity_by_enduser"}

findings contains f if {
	input.event.eventType == "user.account.report_suspicious_activity_by_enduser"
	f := {
		"rule": "user_reported",
		"severity": "high",
		"risk_weight": data.vigil.lib.weight("user_reported"),
		"summary": sprintf("%s reported suspicious activity on their account", [data.vigil.lib.login]),
		"evidence": {
			"reported": {k: v | some k, v in data.vigil.lib.debug_data; startswith(k, "suspiciousActivity")},
			"client": data.vigil.lib.client,
			"protected_account": data.vigil.lib.protected_account,
		},
		"actions": data.vigil.lib.allowed_actions([
			data.vigil.lib.clear_sessions(true),
			data.vigil.lib.reset_password,
			data.vigil.lib.slack,
			data.vigil.lib.audit,
		]),
	}
}
