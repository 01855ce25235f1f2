# Repeated failed sign-ins (brute force / password guessing against one user).
#
# Fires on the event that makes a counter *reach* the threshold (count == threshold), so a burst
# gives one finding; and not again while an earlier finding of this rule is younger than the
# window (the two counters below could otherwise each cross once for the same burst).
#   failed_signins_10m : user.session.start FAILURE             (Classic and OIE)
#   failed_verify_10m  : user.authentication.verify FAILURE     (OIE authenticator verification)
# The counters are kept apart because OIE can log one bad password as both events.
package vigil.rules.failed_signins

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.start", "user.authentication.verify"}

cfg := data.vigil.config.failed_signins

sessions := data.vigil.lib.counter("failed_signins_10m")

verifies := data.vigil.lib.counter("failed_verify_10m")

crossed if {
	input.state.counters.failed_signins_10m == data.vigil.config.failed_signins.threshold # cheap and selective first
	data.vigil.lib.is_signin_failure
}

crossed if {
	input.state.counters.failed_verify_10m == data.vigil.config.failed_signins.threshold # cheap and selective first
	data.vigil.lib.is_verify_failure
}

findings contains f if {
	crossed
	not data.vigil.lib.fired_within("failed_signins", cfg.window_secs)
	n := max([sessions, verifies])
	f := {
		"rule": "failed_signins",
		"severity": "medium",
		"risk_weight": data.vigil.lib.weight("failed_signins"),
		"summary": sprintf("%d failed sign-ins in %d minutes for %s", [n, cfg.window_secs / 60, data.vigil.lib.login]),
		"evidence": {
			"failed_signins_10m": sessions,
			"failed_verify_10m": verifies,
			"threshold": cfg.threshold,
			"ips_1h": data.vigil.lib.distinct_count("ips_1h"),
			"last_reason": data.vigil.lib.outcome_reason,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.slack, data.vigil.lib.step_up],
	}
}
