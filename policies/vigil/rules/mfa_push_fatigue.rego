# MFA fatigue / push bombing: an attacker who has the password keeps sending Okta Verify pushes
# until the user accepts one. Fires when push sends or push denials in the window reach their
# threshold (once per burst: not again while an earlier finding is younger than the window).
#   push_sends_10m      : system.push.send_factor_verify_push
#   push_denies_10m     : user.mfa.okta_verify.deny_push (Classic)
#   push_denies_oie_10m : user.authentication.auth_via_mfa FAILURE with factor OKTA_VERIFY_PUSH (OIE)
package vigil.rules.mfa_push_fatigue

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"system.push.send_factor_verify_push", "user.mfa.okta_verify.deny_push", "user.authentication.auth_via_mfa"}

cfg := data.vigil.config.mfa_push_fatigue

sends := data.vigil.lib.counter("push_sends_10m")

denies := data.vigil.lib.counter("push_denies_10m") + data.vigil.lib.counter("push_denies_oie_10m")

is_push_deny if input.event.eventType == "user.mfa.okta_verify.deny_push"

is_push_deny if {
	input.event.eventType == "user.authentication.auth_via_mfa"
	data.vigil.lib.outcome == "FAILURE"
	data.vigil.lib.debug_text("factor") == "OKTA_VERIFY_PUSH"
}

crossed contains "push_sends" if {
	input.state.counters.push_sends_10m == data.vigil.config.mfa_push_fatigue.push_sends_threshold # cheap and selective first
	input.event.eventType == "system.push.send_factor_verify_push"
}

crossed contains "push_denies" if {
	input.state.counters.push_denies_10m + input.state.counters.push_denies_oie_10m == data.vigil.config.mfa_push_fatigue.push_denies_threshold # cheap first
	is_push_deny
}

findings contains f if {
	count(crossed) > 0
	not data.vigil.lib.fired_within("mfa_push_fatigue", cfg.window_secs)
	f := {
		"rule": "mfa_push_fatigue",
		"severity": "high",
		"risk_weight": data.vigil.lib.weight("mfa_push_fatigue"),
		"summary": sprintf(
			"possible MFA push fatigue against %s: %d pushes sent and %d denied in %d minutes",
			[data.vigil.lib.login, sends, denies, cfg.window_secs / 60],
		),
		"evidence": {
			"push_sends_10m": sends,
			"push_denies_10m": denies,
			"crossed": sort(crossed),
			"push_sends_threshold": cfg.push_sends_threshold,
			"push_denies_threshold": cfg.push_denies_threshold,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.clear_sessions(true), data.vigil.lib.page, data.vigil.lib.slack],
	}
}
