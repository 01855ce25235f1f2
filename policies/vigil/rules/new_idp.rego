# A new identity provider was created: an attacker with admin access can add an IdP they control
# and sign in as any user through it (seen in real Okta intrusions). Pages.
package vigil.rules.new_idp

import data.vigil.lib

findings contains f if {
	input.event.eventType == "system.idp.lifecycle.create"
	not lib.actor_trusted
	f := {
		"rule": "new_idp",
		"severity": "high",
		"risk_weight": lib.weight("new_idp"),
		"summary": sprintf("%s created a new identity provider (%s)", [lib.actor_name, lib.target_names]),
		"evidence": {
			"actor": lib.actor,
			"targets": lib.target_summary,
			"client": lib.client,
		},
		"actions": [lib.page, lib.slack, lib.audit],
	}
}
