package vigil.main_test

import data.vigil.main
import data.vigil.test.fixtures as fx

test_benign_signin_has_no_decisions if {
	count(main.decisions) == 0 with input as fx.benign
}

test_benign_sso_has_no_decisions if {
	inp := fx.other_event({"eventType": "user.authentication.sso", "target": [{"id": "0oa1", "type": "AppInstance", "displayName": "Slack"}]}, {})
	count(main.decisions) == 0 with input as inp
}

test_single_typo_has_no_decisions if {
	inp := fx.other_event({"outcome": {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}}, {"counters": {"failed_signins_10m": 1}})
	count(main.decisions) == 0 with input as inp
}

test_single_push_has_no_decisions if {
	inp := fx.other_event({"eventType": "system.push.send_factor_verify_push"}, {"counters": {"push_sends_10m": 1}})
	count(main.decisions) == 0 with input as inp
}

test_vpn_user_has_no_decisions if {
	inp := fx.input_with(
		{
			"client": {"geographicalContext": {"country": "United States", "city": "Ashburn", "geolocation": {"lat": 39.0, "lon": -77.5}}},
			"securityContext": {"asNumber": 13335, "asOrg": "Cloudflare", "isProxy": true},
		},
		{
			"baselines": {
				"country": object.union(fx.known("United States"), {"new": true, "seen_count": 1}),
				"asn": object.union(fx.known("13335"), {"new": true, "seen_count": 1}),
			},
			"last_signin": {"distance_km": 6200, "elapsed_secs": 1800, "speed_kmh": 12400},
		},
	)
	count(main.decisions) == 0 with input as inp
}

test_collects_rules_and_response if {
	inp := fx.other_event(
		{"eventType": "user.account.report_suspicious_activity_by_enduser"},
		{"risk": {"score": 0}},
	)
	ds := main.decisions with input as inp
	fx.rules_of(ds) == {"user_reported", "response"}
}

test_takeover_signin_collects_every_rule if {
	inp := fx.input_with(
		{
			"published": "2026-03-02T03:15:02.120Z",
			"client": {"ipAddress": "198.51.100.7", "geographicalContext": {"country": "Russia", "city": "Moscow"}},
			"securityContext": {"asNumber": 8359, "isProxy": true},
		},
		{
			"baselines": {"country": object.union(fx.known("Russia"), {"new": true, "seen_count": 1})},
			"hours": {"hour": 3, "hour_count": 1, "total": 61, "learning": false, "profile": [0, 0, 0, 1, 0, 0, 0, 2, 10, 15, 12, 8, 5, 4, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0]},
			"last_signin": {"distance_km": 2486.6, "elapsed_secs": 1800, "speed_kmh": 4973.2},
		},
	)
	ds := main.decisions with input as inp
	fx.rules_of(ds) == {"new_country", "risky_network", "unusual_hours", "impossible_travel", "response"}
}

test_protected_accounts_never_get_lockout_actions if {
	inp := fx.other_event(
		{"eventType": "user.account.report_suspicious_activity_by_enduser"},
		{"risk": {"score": 85}},
	)
	ds := main.decisions with input as inp with data.vigil.config.protected_accounts as ["alice@example.com"]
	count(ds) == 2
	every d in ds {
		every a in d.actions {
			not a.type in {"okta.suspend_user", "okta.reset_password"}
		}
	}
}

test_every_decision_is_well_formed if {
	inp := fx.other_event(
		{"eventType": "user.account.report_suspicious_activity_by_enduser"},
		{"risk": {"score": 85}},
	)
	ds := main.decisions with input as inp
	every d in ds {
		d.severity in {"info", "low", "medium", "high", "critical"}
		d.risk_weight >= 0
		d.risk_weight <= 100
		contains(d.summary, "alice@example.com")
		is_object(d.evidence)
	}
}
