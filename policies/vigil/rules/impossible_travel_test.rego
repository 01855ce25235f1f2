package vigil.rules.impossible_travel_test

import data.vigil.rules.impossible_travel
import data.vigil.test.fixtures as fx

# Paris 30 minutes ago, now Moscow.
travel(speed, distance, current_asn, previous_asn) := fx.input_with(
	{
		"client": {"ipAddress": "198.51.100.7", "geographicalContext": {"country": "Russia", "city": "Moscow"}},
		"securityContext": {"asNumber": current_asn},
	},
	{"last_signin": {
		"previous": {
			"published": "2026-03-02T08:45:02.120Z", "ip": "203.0.113.10", "country": "France",
			"city": "Paris", "lat": 48.85, "lon": 2.35, "asn": previous_asn,
		},
		"distance_km": distance, "elapsed_secs": 1800, "speed_kmh": speed,
	}},
)

test_fires_above_the_speed_limit if {
	fs := impossible_travel.findings with input as travel(4973.2, 2486.6, 8359, 3215)
	count(fs) == 1
	some f in fs
	f.rule == "impossible_travel"
	f.severity == "high"
	f.evidence.from.city == "Paris"
	f.evidence.to.city == "Moscow"
	f.evidence.distance_km == 2486.6
	f.evidence.speed_kmh == 4973.2
	contains(f.summary, "alice@example.com")
	fx.action_types(f) == ["okta.clear_sessions", "okta.add_to_group", "slack.notify"]
}

test_plausible_speed_does_not_fire if {
	count(impossible_travel.findings) == 0 with input as travel(850, 2486.6, 8359, 3215)
}

test_short_distance_does_not_fire if {
	count(impossible_travel.findings) == 0 with input as travel(9000, 150, 8359, 3215)
}

test_vpn_now_does_not_fire if {
	count(impossible_travel.findings) == 0 with input as travel(4973.2, 2486.6, 13335, 3215)
}

test_vpn_before_does_not_fire if {
	count(impossible_travel.findings) == 0 with input as travel(4973.2, 2486.6, 8359, 13335)
}

test_no_geolocation_does_not_fire if {
	count(impossible_travel.findings) == 0 with input as travel(null, null, 8359, 3215)
}

test_first_signin_does_not_fire if {
	count(impossible_travel.findings) == 0 with input as fx.input_with({}, {"last_signin": null})
}

test_benign_does_not_fire if {
	count(impossible_travel.findings) == 0 with input as fx.benign
}
