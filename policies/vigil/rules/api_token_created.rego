# A new (unscoped, admin-powered) API token was created: a classic persistence step after an
# admin account takeover. The finding concerns the actor; the token is in the evidence.
package vigil.rules.api_token_created

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"system.api_token.create"}

findings contains f if {
	input.event.eventType == "system.api_token.create"
	not data.vigil.lib.actor_trusted
	f := {
		"rule": "api_token_created",
		"severity": "medium",
		"risk_weight": data.vigil.lib.weight("api_token_created"),
		"summary": sprintf("%s created an API token (%s)", [data.vigil.lib.actor_name, data.vigil.lib.target_names]),
		"evidence": {
			"actor": data.vigil.lib.actor,
			"targets": data.vigil.lib.target_summary,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.slack, data.vigil.lib.audit],
	}
}
