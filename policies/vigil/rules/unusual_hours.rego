# A successful sign-in at an hour of day (UTC) at which the user has (almost) never signed in,
# once the hour profile has learnt (state.hours.learning false). "Almost never": the earlier
# sign-ins in this hour and the `neighbour_hours` either side are at most `max_prior_percent` %
# of all earlier sign-ins. Not repeated within `renotify_secs`.
package vigil.rules.unusual_hours

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.start"}

cfg := data.vigil.config.unusual_hours

hours := input.state.hours

nearby := {h |
	some d in numbers.range(0 - cfg.neighbour_hours, cfg.neighbour_hours)
	h := ((hours.hour + d) + 24) % 24
}

# Earlier sign-ins (the current one excluded) near this hour, and in all hours.
prior_nearby := sum([hours.profile[h] | some h in nearby]) - 1

prior_total := hours.total - 1

findings contains f if {
	input.state.hours.learning == false # cheap and selective first (see README)
	# A necessary condition of the test below (this hour alone is part of the nearby hours),
	# on input only: a sign-in at one of the user's usual hours stops here.
	(input.state.hours.hour_count - 1) * 100 <= (input.state.hours.total - 1) * data.vigil.config.unusual_hours.max_prior_percent
	data.vigil.lib.is_signin_success
	prior_nearby * 100 <= prior_total * cfg.max_prior_percent
	not data.vigil.lib.fired_within("unusual_hours", cfg.renotify_secs)
	f := {
		"rule": "unusual_hours",
		"severity": "low",
		"risk_weight": data.vigil.lib.weight("unusual_hours"),
		"summary": sprintf("%s signed in at %02d:00 UTC, an hour they (almost) never sign in at", [data.vigil.lib.login, hours.hour]),
		"evidence": {
			"hour_utc": hours.hour,
			"prior_signins_nearby": prior_nearby,
			"prior_signins_total": prior_total,
			"profile": hours.profile,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.audit],
	}
}
