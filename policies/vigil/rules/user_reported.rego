# The user told Okta that activity on their account was not theirs ("Report suspicious activity"
# from an Okta email or the end-user dashboard). Treat as a confirmed compromise: kill every
# session and token, force a password reset, alert.
package vigil.rules.user_reported

import data.vigil.lib

findings contains f if {
	input.event.eventType == "user.account.report_suspicious_activity_by_enduser"
	f := {
		"rule": "user_reported",
		"severity": "high",
		"risk_weight": lib.weight("user_reported"),
		"summary": sprintf("%s reported suspicious activity on their account", [lib.login]),
		"evidence": {
			"reported": {k: v | some k, v in lib.debug_data; startswith(k, "suspiciousActivity")},
			"client": lib.client,
			"protected_account": lib.protected_account,
		},
		"actions": lib.allowed_actions([
			lib.clear_sessions(true),
			lib.reset_password,
			lib.slack,
			lib.audit,
		]),
	}
}
