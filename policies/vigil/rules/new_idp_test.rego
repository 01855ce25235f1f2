package vigil.rules.new_idp_test

import data.vigil.rules.new_idp
import data.vigil.test.fixtures as fx

idp := fx.admin_input("system.idp.lifecycle.create", {"target": [{"id": "0oa9", "type": "IdentityProvider", "displayName": "Partner SAML"}]})

test_fires_and_pages if {
	fs := new_idp.findings with input as idp
	count(fs) == 1
	some f in fs
	f.rule == "new_idp"
	f.evidence.targets[0].displayName == "Partner SAML"
	fx.action_types(f) == ["pagerduty.trigger", "slack.notify", "audit.record"]
}

test_trusted_is_skipped if {
	count(new_idp.findings) == 0 with input as idp with data.vigil.config.trusted_admin_logins as ["bob.admin@example.com"]
}

test_idp_update_does_not_fire if {
	count(new_idp.findings) == 0 with input as fx.admin_input("system.idp.lifecycle.update", {})
}

test_benign_does_not_fire if {
	count(new_idp.findings) == 0 with input as fx.benign
}
