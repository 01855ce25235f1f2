# The graduated response, driven by the user's risk score over the risk window (features.toml
# [risk], 24 h): score = input.state.risk.score (earlier events' findings) + the risk_weight of
# this event's findings from every rule, capped at 100 like Vigil's own score.
#
# Levels (data `risk_levels`, by score): notify → step_up → page → suspend. A level fires once,
# on the event whose findings make the score cross it (before < level <= after). When one event
# crosses several levels, one finding (key = the highest level) carries the actions of all of
# them: okta.add_to_group step-up group, pagerduty.trigger, a delayed okta.suspend_user (after
# `suspend_delay_secs`, unless acknowledged / overridden, only if the activity continues), and
# slack.notify always, last. Protected accounts (data `protected_accounts`) are never suspended.
#
# Okta refuses to suspend a user that is not ACTIVE (e.g. in RECOVERY after reset_password): the
# policy states the intent, the respond stage reads the user's status before acting.
#
# Response findings have risk_weight 0: they must not feed the score they are derived from.
package vigil.response


before := data.vigil.lib.risk_score

# The findings of every rule for this event.
rule_findings contains f if {
	some name
	some f in data.vigil.rules[name].findings
}

event_weight := sum([w |
	some f in rule_findings
	w := object.get(f, "risk_weight", 0)
])

score := min([100, before + event_weight])

# Levels ordered by score.
levels := [l |
	some s in sort({x.score | some x in data.vigil.config.risk_levels})
	some l in data.vigil.config.risk_levels
	l.score == s
]

crossed := [l |
	some l in levels
	before < l.score
	score >= l.score
]

crossed_names := [l.name | some l in crossed]

level_actions("notify") := []

level_actions("step_up") := [data.vigil.lib.step_up]

level_actions("page") := [data.vigil.lib.page]

level_actions("suspend") := [data.vigil.lib.delayed_suspend]

# The page first, so the Slack message can link to its incident.
wanted_actions := array.concat([a |
	some l in crossed
	some a in level_actions(l.name)
], [data.vigil.lib.slack])

findings contains f if {
	data.vigil.lib.user_id != null
	count(crossed) > 0
	top := crossed[count(crossed) - 1]
	f := {
		"rule": "response",
		"severity": top.severity,
		"risk_weight": 0,
		"key": top.name,
		"summary": sprintf("risk score of %s rose from %d to %d: %s", [
			data.vigil.lib.login, before, score, concat(" + ", crossed_names),
		]),
		"evidence": {
			"risk_score_before": before,
			"risk_score": score,
			"levels_crossed": crossed_names,
			"findings": sort([{"rule": r.rule, "risk_weight": object.get(r, "risk_weight", 0)} | some r in rule_findings]),
			"earlier_signals": data.vigil.lib.risk_signals,
			"protected_account": data.vigil.lib.protected_account,
			"override": data.vigil.lib.override,
		},
		"actions": data.vigil.lib.allowed_actions(wanted_actions),
	}
}
