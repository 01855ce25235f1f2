package vigil.rules.support_impersonation_test

import data.vigil.rules.support_impersonation
import data.vigil.test.fixtures as fx

test_grant_fires if {
	fs := support_impersonation.findings with input as fx.admin_input("user.session.impersonation.grant", {})
	count(fs) == 1
	some f in fs
	f.rule == "support_impersonation"
	f.severity == "high"
	contains(f.summary, "bob.admin@example.com")
}

test_initiate_fires if {
	count(support_impersonation.findings) == 1 with input as fx.admin_input("user.session.impersonation.initiate", {})
}

test_revoke_does_not_fire if {
	count(support_impersonation.findings) == 0 with input as fx.admin_input("user.session.impersonation.revoke", {})
}

test_trusted_is_skipped if {
	count(support_impersonation.findings) == 0 with input as fx.admin_input("user.session.impersonation.grant", {})
		with data.vigil.config.trusted_admin_logins as ["bob.admin@example.com"]
}

test_benign_does_not_fire if {
	count(support_impersonation.findings) == 0 with input as fx.benign
}
