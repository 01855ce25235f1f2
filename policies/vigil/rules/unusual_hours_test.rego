package vigil.rules.unusual_hours_test

import data.vigil.rules.unusual_hours
import data.vigil.test.fixtures as fx

profile := [0, 0, 0, 0, 0, 0, 0, 2, 10, 15, 12, 8, 5, 4, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0]

at_hour(h, learning) := fx.input_with(
	{"published": sprintf("2026-03-02T%02d:15:02.120Z", [h])},
	{"hours": {
		"hour": h, "hour_count": profile[h] + 1, "total": 61, "learning": learning,
		"profile": [c | some i, n in profile; c := n + to_number(i == h)],
	}},
)

test_fires_at_a_never_seen_hour if {
	fs := unusual_hours.findings with input as at_hour(3, false)
	count(fs) == 1
	some f in fs
	f.rule == "unusual_hours"
	f.evidence.hour_utc == 3
	f.evidence.prior_signins_nearby == 0
	f.summary == "alice@example.com signed in at 03:00 UTC, an hour they (almost) never sign in at"
}

test_learning_does_not_fire if {
	count(unusual_hours.findings) == 0 with input as at_hour(3, true)
}

test_usual_hour_does_not_fire if {
	count(unusual_hours.findings) == 0 with input as at_hour(10, false)
}

test_hour_next_to_a_usual_one_does_not_fire if {
	count(unusual_hours.findings) == 0 with input as at_hour(6, false)
}

test_not_repeated_within_renotify if {
	inp := object.union(at_hour(3, false), {"state": {"risk": {
		"score": 10,
		"signals": [fx.signal("unusual_hours", 10, "2026-03-02T09:00:00.000Z")],
	}}})
	count(unusual_hours.findings) == 0 with input as inp
}

test_failed_signin_does_not_fire if {
	inp := object.union(at_hour(3, false), {"event": {"outcome": {"result": "FAILURE"}}})
	count(unusual_hours.findings) == 0 with input as inp
}

test_benign_does_not_fire if {
	count(unusual_hours.findings) == 0 with input as fx.benign
}
