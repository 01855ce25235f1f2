# Okta Support access: an admin granted Okta Support the right to impersonate users / admins
# (user.session.impersonation.grant), or Okta Support started such a session
# (user.session.impersonation.initiate). Rare and powerful, so always worth a look.
package vigil.rules.support_impersonation

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.impersonation.grant", "user.session.impersonation.initiate"}

impersonation_types := {"user.session.impersonation.grant", "user.session.impersonation.initiate"}

findings contains f if {
	input.event.eventType in impersonation_types
	not data.vigil.lib.actor_trusted
	f := {
		"rule": "support_impersonation",
		"severity": "high",
		"risk_weight": data.vigil.lib.weight("support_impersonation"),
		"summary": sprintf("Okta Support impersonation: %s by %s (%s)", [input.event.eventType, data.vigil.lib.actor_name, data.vigil.lib.target_names]),
		"evidence": {
			"event_type": input.event.eventType,
			"actor": data.vigil.lib.actor,
			"targets": data.vigil.lib.target_summary,
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.slack, data.vigil.lib.audit],
	}
}
