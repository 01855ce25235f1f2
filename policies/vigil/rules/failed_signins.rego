# Repeated failed sign-ins (brute force / password guessing against one user).
#
# Fires on the event that makes a counter *reach* the threshold (count == threshold), so a burst
# gives one finding; and not again while an earlier finding of this rule is younger than the
# window (the two counters below could otherwise each cross once for the same burst).
#   failed_signins_10m : user.session.start FAILURE             (Classic and OIE)
#   failed_verify_10m  : user.authentication.verify FAILURE     (OIE authenticator verification)
# The counters are kept apart because OIE can log one bad password as both events.
package vigil.rules.failed_signins

import data.vigil.lib

cfg := lib.config.failed_signins

sessions := lib.counter("failed_signins_10m")

verifies := lib.counter("failed_verify_10m")

crossed if {
	lib.is_signin_failure
	sessions == cfg.threshold
}

crossed if {
	lib.is_verify_failure
	verifies == cfg.threshold
}

findings contains f if {
	crossed
	not lib.fired_within("failed_signins", cfg.window_secs)
	n := max([sessions, verifies])
	f := {
		"rule": "failed_signins",
		"severity": "medium",
		"risk_weight": lib.weight("failed_signins"),
		"summary": sprintf("%d failed sign-ins in %d minutes for %s", [n, cfg.window_secs / 60, lib.login]),
		"evidence": {
			"failed_signins_10m": sessions,
			"failed_verify_10m": verifies,
			"threshold": cfg.threshold,
			"ips_1h": lib.distinct_count("ips_1h"),
			"last_reason": lib.outcome_reason,
			"client": lib.client,
		},
		"actions": [lib.slack, lib.step_up],
	}
}
