# An admin weakened the org's defences: sign-on / MFA / password policies or their rules
# deactivated, deleted or changed, ThreatInsight reconfigured, an authenticator disabled, an IP
# removed from a blocklist zone, or a log stream (the SOC's copy of the System Log) stopped.
# Changes that are routine admin work (rule updates, ThreatInsight settings, zone unblock) are
# "minor" (medium severity, lower weight). The finding concerns the actor; the policy, rule,
# zone or stream changed is in the evidence. Trusted automation accounts are skipped.
package vigil.rules.security_weakened

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := major | minor

major := {
	"policy.lifecycle.deactivate",
	"policy.lifecycle.delete",
	"policy.rule.deactivate",
	"policy.rule.delete",
	"security.authenticator.lifecycle.deactivate",
	"system.log_stream.lifecycle.deactivate",
	"system.log_stream.lifecycle.delete",
}

minor := {
	"policy.rule.update",
	"security.threat.configuration.update",
	"zone.remove_blacklist",
}

findings contains f if {
	input.event.eventType in major
	not data.vigil.lib.actor_trusted
	f := finding("high", data.vigil.lib.weight("security_weakened"))
}

findings contains f if {
	input.event.eventType in minor
	not data.vigil.lib.actor_trusted
	f := finding("medium", data.vigil.lib.weight("security_weakened_minor"))
}

finding(severity, weight) := {
	"rule": "security_weakened",
	"severity": severity,
	"risk_weight": weight,
	"summary": sprintf("%s weakened security: %s (%s)", [data.vigil.lib.actor_name, input.event.eventType, data.vigil.lib.target_names]),
	"evidence": {
		"event_type": input.event.eventType,
		"actor": data.vigil.lib.actor,
		"targets": data.vigil.lib.target_summary,
		"client": data.vigil.lib.client,
	},
	"actions": [data.vigil.lib.slack, data.vigil.lib.audit],
}
