package vigil.rules.new_country_test

import data.vigil.rules.new_country
import data.vigil.test.fixtures as fx

new_value(value, learning) := {
	"value": value, "new": true, "learning": learning, "first_seen": fx.now, "last_seen": fx.now,
	"seen_count": 1, "known_values": 2, "tracked_since": "2026-01-01T08:00:00.000Z",
}

from_spain(learning) := fx.input_with(
	{"client": {"geographicalContext": {"country": "Spain", "city": "Madrid"}}},
	{"baselines": {"country": new_value("Spain", learning)}},
)

test_fires_on_a_new_country_after_learning if {
	fs := new_country.findings with input as from_spain(false)
	count(fs) == 1
	some f in fs
	f.rule == "new_country"
	f.evidence.country == "Spain"
	f.summary == "alice@example.com signed in from a new country: Spain"
	fx.has_action(f, "slack.notify")
}

test_learning_baseline_does_not_fire if {
	count(new_country.findings) == 0 with input as from_spain(true)
}

test_corporate_vpn_does_not_fire if {
	inp := object.union(from_spain(false), {"event": {"securityContext": {"asNumber": 13335}}})
	count(new_country.findings) == 0 with input as inp
}

test_failed_signin_does_not_fire if {
	inp := object.union(from_spain(false), {"event": {"outcome": {"result": "FAILURE"}}})
	count(new_country.findings) == 0 with input as inp
}

test_benign_known_country_does_not_fire if {
	count(new_country.findings) == 0 with input as fx.benign
}
