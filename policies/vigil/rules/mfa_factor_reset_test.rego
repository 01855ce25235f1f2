package vigil.rules.mfa_factor_reset_test

import data.vigil.rules.mfa_factor_reset
import data.vigil.test.fixtures as fx

# Alice removes her own factor.
self_deactivate(score) := fx.other_event(
	{
		"eventType": "user.mfa.factor.deactivate",
		"target": [{"id": "00u1alice", "type": "User", "alternateId": "alice@example.com"}],
	},
	{"risk": {"score": score}},
)

test_reset_all_by_an_admin_fires_high if {
	fs := mfa_factor_reset.findings with input as fx.admin_input("user.mfa.factor.reset_all", {})
	count(fs) == 1
	some f in fs
	f.rule == "mfa_factor_reset"
	f.severity == "high"
	f.evidence.targets[0].alternateId == "alice@example.com"
	f.evidence.self_service == false
}

test_org_wide_factor_deactivation_fires if {
	count(mfa_factor_reset.findings) == 1 with input as fx.admin_input("system.mfa.factor.deactivate", {"target": []})
}

test_admin_removing_another_users_factor_fires_medium if {
	fs := mfa_factor_reset.findings with input as fx.admin_input("user.mfa.factor.deactivate", {})
	some f in fs
	f.severity == "medium"
}

test_self_service_removal_without_risk_does_not_fire if {
	count(mfa_factor_reset.findings) == 0 with input as self_deactivate(0)
}

test_self_service_removal_below_min_risk_does_not_fire if {
	count(mfa_factor_reset.findings) == 0 with input as self_deactivate(19)
}

test_self_service_removal_by_a_risky_user_fires if {
	fs := mfa_factor_reset.findings with input as self_deactivate(20)
	some f in fs
	f.evidence.self_service == true
	f.evidence.risk_score_before == 20
}

test_trusted_is_skipped if {
	count(mfa_factor_reset.findings) == 0 with input as fx.admin_input("user.mfa.factor.reset_all", {})
		with data.vigil.config.trusted_admin_logins as ["bob.admin@example.com"]
}

test_benign_does_not_fire if {
	count(mfa_factor_reset.findings) == 0 with input as fx.benign
}
