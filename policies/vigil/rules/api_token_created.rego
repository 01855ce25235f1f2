# A new (unscoped, admin-powered) API token was created: a classic persistence step after an
# admin account takeover. The finding concerns the actor; the token is in the evidence.
package vigil.rules.api_token_created

import data.vigil.lib

findings contains f if {
	input.event.eventType == "system.api_token.create"
	not lib.actor_trusted
	f := {
		"rule": "api_token_created",
		"severity": "medium",
		"risk_weight": lib.weight("api_token_created"),
		"summary": sprintf("%s created an API token (%s)", [lib.actor_name, lib.target_names]),
		"evidence": {
			"actor": lib.actor,
			"targets": lib.target_summary,
			"client": lib.client,
		},
		"actions": [lib.slack, lib.audit],
	}
}
