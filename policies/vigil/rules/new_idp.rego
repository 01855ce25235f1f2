# A new identity provider was created: an attacker with admin access can add an IdP they control
# and sign in as any user through it (seen in real Okta intrusions). Pages.
package vigil.rules.new_idp

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"system.idp.lifecycle.create"}

findings contains f if {
	input.event.eventType == "system.idp.lifecycle.create"
	not data.vigil.lib.actor_trusted
	f := {
		"rule": "new_idp",
		"severity": "high",
		"risk_weight": data.vigil.lib.weight("new_idp"),
		"summary": sprintf("%s created a new identity provider (%s)", [data.vigil.lib.actor_name, data.vigil.lib.target_names]),
		"evidence": {
			"actor": data.vigil.lib.actor,
			"targets": data.vigil.lib.target_summary,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.page, data.vigil.lib.slack, data.vigil.lib.audit],
	}
}
