# An admin role was granted to a user (user.account.privilege.grant) or to a group
# (group.privilege.grant). user.privileged_account.privilege.grant is not read: Okta logs it *in
# addition to* user.account.privilege.grant, so it would double every finding.
# The finding concerns the actor (the admin who granted); the grantee is in the evidence.
# Super administrator grants are critical and page. Trusted automation accounts are skipped.
package vigil.rules.admin_privilege_granted

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.account.privilege.grant", "group.privilege.grant"}

grant_types := {"user.account.privilege.grant", "group.privilege.grant"}

privileges := data.vigil.lib.debug_text("privilegeGranted")

super_admin if contains(lower(privileges), "super")

findings contains f if {
	input.event.eventType in grant_types
	not data.vigil.lib.actor_trusted
	not super_admin
	f := finding("high", data.vigil.lib.weight("admin_privilege_granted"), [data.vigil.lib.slack, data.vigil.lib.audit])
}

findings contains f if {
	input.event.eventType in grant_types
	not data.vigil.lib.actor_trusted
	super_admin
	f := finding("critical", data.vigil.lib.weight("admin_privilege_granted_super"), [data.vigil.lib.page, data.vigil.lib.slack, data.vigil.lib.audit])
}

finding(severity, weight, actions) := {
	"rule": "admin_privilege_granted",
	"severity": severity,
	"risk_weight": weight,
	"summary": sprintf("%s granted admin privileges (%s) to %s", [data.vigil.lib.actor_name, privileges, data.vigil.lib.target_names]),
	"evidence": {
		"event_type": input.event.eventType,
		"privileges_granted": privileges,
		"actor": data.vigil.lib.actor,
		"targets": data.vigil.lib.target_summary,
		"client": data.vigil.lib.client,
	},
	"actions": actions,
}
