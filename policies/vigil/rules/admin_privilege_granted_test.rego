package vigil.rules.admin_privilege_granted_test

import data.vigil.rules.admin_privilege_granted
import data.vigil.test.fixtures as fx

grant(privilege) := fx.admin_input("user.account.privilege.grant", {"debugContext": {"debugData": {"privilegeGranted": privilege}}})

test_fires_on_the_admin_with_the_grantee_in_evidence if {
	fs := admin_privilege_granted.findings with input as grant("Help Desk Administrator")
	count(fs) == 1
	some f in fs
	f.rule == "admin_privilege_granted"
	f.severity == "high"
	f.evidence.actor.alternateId == "bob.admin@example.com"
	f.evidence.targets[0].alternateId == "alice@example.com"
	f.summary == "bob.admin@example.com granted admin privileges (Help Desk Administrator) to alice@example.com"
	fx.action_types(f) == ["slack.notify", "audit.record"]
}

test_super_admin_is_critical_and_pages if {
	fs := admin_privilege_granted.findings with input as grant("Super administrator")
	some f in fs
	f.severity == "critical"
	fx.has_action(f, "pagerduty.trigger")
}

test_group_grant_fires if {
	inp := fx.admin_input("group.privilege.grant", {"target": [{"id": "00g1", "type": "UserGroup", "displayName": "Helpdesk"}]})
	count(admin_privilege_granted.findings) == 1 with input as inp
}

test_trusted_automation_is_skipped if {
	count(admin_privilege_granted.findings) == 0 with input as grant("Super administrator")
		with data.vigil.config.trusted_admin_logins as ["bob.admin@example.com"]
}

test_duplicate_privileged_account_event_is_ignored if {
	inp := fx.admin_input("user.privileged_account.privilege.grant", {})
	count(admin_privilege_granted.findings) == 0 with input as inp
}

test_revoke_does_not_fire if {
	count(admin_privilege_granted.findings) == 0 with input as fx.admin_input("user.account.privilege.revoke", {})
}

test_benign_does_not_fire if {
	count(admin_privilege_granted.findings) == 0 with input as fx.benign
}
