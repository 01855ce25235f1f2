# MFA removed:
#   user.mfa.factor.reset_all     all of a user's factors reset (high)
#   system.mfa.factor.deactivate  a factor type disabled for the whole org (high)
#   user.mfa.factor.deactivate    one factor removed: by an admin for someone else (medium); by
#                                 the user themselves only when their risk score is already at
#                                 least `self_service_min_risk` (an attacker dropping the victim's
#                                 factor), since users replacing a phone do this routinely.
# The finding concerns the actor; the user whose factors changed is in the evidence.
package vigil.rules.mfa_factor_reset

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.mfa.factor.reset_all", "user.mfa.factor.deactivate", "system.mfa.factor.deactivate"}

cfg := data.vigil.config.mfa_factor_reset

major_types := {"user.mfa.factor.reset_all", "system.mfa.factor.deactivate"}

target_user := data.vigil.lib.target_of_type("User")

self_service if {
	target_user.id != null
	target_user.id == data.vigil.lib.actor.id
}

findings contains f if {
	input.event.eventType in major_types
	not data.vigil.lib.actor_trusted
	f := finding("high", data.vigil.lib.weight("mfa_factor_reset"))
}

findings contains f if {
	input.event.eventType == "user.mfa.factor.deactivate"
	not data.vigil.lib.actor_trusted
	not self_service
	f := finding("medium", data.vigil.lib.weight("mfa_factor_reset_minor"))
}

findings contains f if {
	input.event.eventType == "user.mfa.factor.deactivate"
	self_service
	data.vigil.lib.risk_score >= cfg.self_service_min_risk
	f := finding("medium", data.vigil.lib.weight("mfa_factor_reset"))
}

finding(severity, weight) := {
	"rule": "mfa_factor_reset",
	"severity": severity,
	"risk_weight": weight,
	"summary": sprintf("%s: %s on %s", [data.vigil.lib.actor_name, input.event.eventType, data.vigil.lib.target_names]),
	"evidence": {
		"event_type": input.event.eventType,
		"self_service": self_service_flag,
		"risk_score_before": data.vigil.lib.risk_score,
		"factor": data.vigil.lib.debug_text("factor"),
		"actor": data.vigil.lib.actor,
		"targets": data.vigil.lib.target_summary,
		"client": data.vigil.lib.client,
	},
	"actions": [data.vigil.lib.slack, data.vigil.lib.audit],
}

self_service_flag := true if {
	self_service
} else := false
