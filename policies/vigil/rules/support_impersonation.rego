# Okta Support access: an admin granted Okta Support the right to impersonate users / admins
# (user.session.impersonation.grant), or Okta Support started such a session
# (user.session.impersonation.initiate). Rare and powerful, so always worth a look.
package vigil.rules.support_impersonation

import data.vigil.lib

impersonation_types := {"user.session.impersonation.grant", "user.session.impersonation.initiate"}

findings contains f if {
	input.event.eventType in impersonation_types
	not lib.actor_trusted
	f := {
		"rule": "support_impersonation",
		"severity": "high",
		"risk_weight": lib.weight("support_impersonation"),
		"summary": sprintf("Okta Support impersonation: %s by %s (%s)", [input.event.eventType, lib.actor_name, lib.target_names]),
		"evidence": {
			"event_type": input.event.eventType,
			"actor": lib.actor,
			"targets": lib.target_summary,
			"client": lib.client,
		},
		"actions": [lib.slack, lib.audit],
	}
}
