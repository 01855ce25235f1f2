# Shared test fixtures (a *_test.rego file, so Vigil never loads it in production).
# fixtures.input_with(event_patch, state_patch) deep-merges patches into a benign input: Alice
# signing in successfully from home in Paris at 09:15 UTC, known country / device / ASN, learnt
# hour profile, no counters, no risk.
package vigil.test.fixtures

now := "2026-03-02T09:15:02.120Z"

now_ns := 1772442902120000000

user := {"id": "00u1alice", "login": "alice@example.com", "display_name": "Alice"}

event_base := {
	"uuid": "11111111-1111-1111-1111-111111111111",
	"published": now,
	"eventType": "user.session.start",
	"version": "0",
	"severity": "INFO",
	"displayMessage": "User login to Okta",
	"outcome": {"result": "SUCCESS"},
	"actor": {"id": "00u1alice", "type": "User", "alternateId": "alice@example.com", "displayName": "Alice"},
	"client": {
		"ipAddress": "203.0.113.10",
		"device": "Computer",
		"geographicalContext": {
			"country": "France", "city": "Paris", "state": "Ile-de-France", "postalCode": "75001",
			"geolocation": {"lat": 48.85, "lon": 2.35},
		},
		"userAgent": {"os": "Mac OS X", "browser": "CHROME", "rawUserAgent": "Mozilla/5.0 (Macintosh) Chrome/122.0"},
	},
	"securityContext": {"asNumber": 3215, "asOrg": "Orange", "isp": "Orange", "isProxy": false},
	"debugContext": {"debugData": {"requestUri": "/api/v1/authn"}},
	"target": [],
}

known(value) := {
	"value": value, "new": false, "learning": false,
	"first_seen": "2025-12-01T08:00:00.000Z", "last_seen": now, "seen_count": 40, "known_values": 1,
	"tracked_since": "2025-12-01T08:00:00.000Z",
}

state_base := {
	"counters": {
		"failed_signins_10m": 0, "failed_verify_10m": 0,
		"push_sends_10m": 0, "push_denies_10m": 0, "push_denies_oie_10m": 0,
	},
	"distinct": {"ips_1h": 1},
	"baselines": {"country": known("France"), "os": known("Mac OS X"), "browser": known("CHROME"), "asn": known("3215")},
	"hours": {
		"hour": 9, "hour_count": 15, "total": 60, "learning": false,
		"profile": [0, 0, 0, 0, 0, 0, 0, 2, 10, 15, 12, 8, 5, 4, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0],
	},
	"last_signin": {
		"previous": {
			"published": "2026-03-01T17:00:00.000Z", "ip": "203.0.113.10", "country": "France",
			"city": "Paris", "lat": 48.85, "lon": 2.35, "asn": 3215,
		},
		"distance_km": 0, "elapsed_secs": 58502, "speed_kmh": 0,
	},
	"risk": {"score": 0, "window_secs": 86400, "signals": []},
}

benign := input_with({}, {})

input_with(event_patch, state_patch) := {
	"event": object.union(event_base, event_patch),
	"user": user,
	"now": now,
	"now_ns": now_ns,
	"state": object.union(state_base, state_patch),
}

# An input for a non-sign-in event: no baselines, hours or travel.
other_event(event_patch, state_patch) := object.union(
	input_with(event_patch, {}),
	{"state": object.union(object.union(state_base, {"baselines": {}, "hours": null, "last_signin": null}), state_patch)},
)

# An admin event by bob (the actor) on alice (the target user).
admin_event(event_type, patch) := other_event(
	object.union(
		{
			"eventType": event_type,
			"actor": {"id": "00u2bob", "type": "User", "alternateId": "bob.admin@example.com", "displayName": "Bob Admin"},
			"target": [{"id": "00u1alice", "type": "User", "alternateId": "alice@example.com", "displayName": "Alice"}],
		},
		patch,
	),
	{},
)

admin_input(event_type, patch) := object.union(
	admin_event(event_type, patch),
	{"user": {"id": "00u2bob", "login": "bob.admin@example.com", "display_name": "Bob Admin"}},
)

# A risk signal as Vigil puts it in input.state.risk.signals.
signal(rule, weight, published) := {"rule": rule, "weight": weight, "published": published}

rules_of(findings) := {f.rule | some f in findings}

action_types(f) := [a.type | some a in f.actions]

# Every action of a finding, by type.
has_action(f, type) if {
	some a in f.actions
	a.type == type
}
