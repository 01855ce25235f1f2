package vigil.rules.api_token_created_test

import data.vigil.rules.api_token_created
import data.vigil.test.fixtures as fx

token := fx.admin_input("system.api_token.create", {"target": [{"id": "00T1", "type": "Token", "displayName": "ci-token"}]})

test_fires if {
	fs := api_token_created.findings with input as token
	count(fs) == 1
	some f in fs
	f.rule == "api_token_created"
	f.evidence.targets[0].displayName == "ci-token"
	f.summary == "bob.admin@example.com created an API token (ci-token)"
}

test_trusted_automation_is_skipped if {
	count(api_token_created.findings) == 0 with input as token
		with data.vigil.config.trusted_admin_logins as ["BOB.ADMIN@example.com"]
}

test_revoke_does_not_fire if {
	count(api_token_created.findings) == 0 with input as fx.admin_input("system.api_token.revoke", {})
}

test_benign_does_not_fire if {
	count(api_token_created.findings) == 0 with input as fx.benign
}
