package vigil.rules.security_weakened_test

import data.vigil.rules.security_weakened
import data.vigil.test.fixtures as fx

policy_target := {"target": [{"id": "00p1", "type": "PolicyEntity", "displayName": "Default sign-on policy"}]}

test_policy_deactivation_fires_high if {
	fs := security_weakened.findings with input as fx.admin_input("policy.lifecycle.deactivate", policy_target)
	count(fs) == 1
	some f in fs
	f.rule == "security_weakened"
	f.severity == "high"
	f.summary == "bob.admin@example.com weakened security: policy.lifecycle.deactivate (Default sign-on policy)"
}

test_every_major_type_fires if {
	every t in security_weakened.major {
		count(security_weakened.findings) == 1 with input as fx.admin_input(t, {})
	}
}

test_rule_update_is_minor if {
	fs := security_weakened.findings with input as fx.admin_input("policy.rule.update", {})
	some f in fs
	f.severity == "medium"
	f.risk_weight == 15
}

test_log_stream_deleted_fires if {
	count(security_weakened.findings) == 1 with input as fx.admin_input("system.log_stream.lifecycle.delete", {})
}

test_policy_activation_does_not_fire if {
	count(security_weakened.findings) == 0 with input as fx.admin_input("policy.lifecycle.activate", policy_target)
}

test_trusted_is_skipped if {
	count(security_weakened.findings) == 0 with input as fx.admin_input("policy.lifecycle.delete", {})
		with data.vigil.config.trusted_admin_logins as ["bob.admin@example.com"]
}

test_benign_does_not_fire if {
	count(security_weakened.findings) == 0 with input as fx.benign
}
