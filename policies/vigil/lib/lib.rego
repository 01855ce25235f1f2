# Helpers shared by every rule: event predicates, the user, config lookups, state accessors,
# dedup against earlier findings, evidence builders and the action vocabulary.
package vigil.lib

config := data.vigil.config

# ---------------------------------------------------------------------------------------------
# The event
# ---------------------------------------------------------------------------------------------

event_type := input.event.eventType

outcome := object.get(input.event, ["outcome", "result"], "")

outcome_reason := object.get(input.event, ["outcome", "reason"], null)

is_signin if input.event.eventType == "user.session.start"

is_signin_success if {
	is_signin
	outcome == "SUCCESS"
}

is_signin_failure if {
	is_signin
	outcome == "FAILURE"
}

# A failed authenticator verification (OIE: wrong password / factor at the verify step).
is_verify_failure if {
	input.event.eventType == "user.authentication.verify"
	outcome == "FAILURE"
}

# debugContext.debugData as an object ({} when absent or null).
debug_data := d if {
	d := input.event.debugContext.debugData
	is_object(d)
} else := {}

# A debugData value as text ("" when absent); Okta writes most of them as strings.
# (`is_string(t)` checks what is assigned last in an else branch: see is_new_baseline_value.)
debug_text(key) := t if {
	v := debug_data[key]
	v != null
	t := sprintf("%v", [v])
	is_string(t)
} else := ""

client_ip := object.get(input.event, ["client", "ipAddress"], null)

country := object.get(input.event, ["client", "geographicalContext", "country"], null)

city := object.get(input.event, ["client", "geographicalContext", "city"], null)

current_asn := object.get(input.event, ["securityContext", "asNumber"], null)

# Where the event came from, for evidence.
client := {
	"ip": client_ip,
	"country": country,
	"city": city,
	"asn": current_asn,
	"as_org": object.get(input.event, ["securityContext", "asOrg"], null),
	"user_agent": object.get(input.event, ["client", "userAgent", "rawUserAgent"], null),
}

# The event's targets (an array, [] when absent or null).
targets := t if {
	t := input.event.target
	is_array(t)
} else := []

# The targets, trimmed for evidence.
target_summary := [s |
	some t in targets
	s := {
		"type": object.get(t, "type", null),
		"id": object.get(t, "id", null),
		"alternateId": object.get(t, "alternateId", null),
		"displayName": object.get(t, "displayName", null),
	}
]

# The first target of a type, trimmed ({} when none).
target_of_type(type) := s if {
	some s in target_summary
	s.type == type
} else := {}

# ---------------------------------------------------------------------------------------------
# The user (for admin events: the actor, i.e. the admin)
# ---------------------------------------------------------------------------------------------

login := l if {
	l := input.user.login
	is_string(l)
	l != ""
} else := i if {
	i := input.user.id
	is_string(i)
	i != ""
} else := "unknown user"

user_id := object.get(user_object, "id", null)

user_object := u if {
	u := input.user
	is_object(u)
} else := {}

# `value` is in `list`: exactly, or text case-insensitively, or a number given as text (ASNs).
# Kept to cheap builtins: this runs on every sign-in.
in_list(value, list) if value in list

in_list(value, list) if {
	is_string(value)
	text := lower(value)
	some item in list
	is_string(item)
	lower(item) == text
}

in_list(value, list) if {
	is_number(value)
	some item in list
	is_string(item)
	to_number(item) == value
}

# Accounts that are never suspended nor password-reset (break-glass accounts).
is_protected if in_list(login, object.get(config, "protected_accounts", []))

# Automation accounts whose admin changes are expected (Terraform, SCIM, ...).
is_trusted_admin if in_list(login, object.get(config, "trusted_admin_logins", []))

# A known corporate VPN / egress ASN (numbers or strings compare by text).
is_vpn_asn(asn) if {
	asn != null
	in_list(asn, object.get(config, "vpn_asns", []))
}

on_vpn if is_vpn_asn(current_asn)

# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

counter(name) := object.get(input.state, ["counters", name], 0)

distinct_count(name) := object.get(input.state, ["distinct", name], 0)

# This event's value of baseline `name` is new and the baseline is past learning. Test this
# before `b := new_baseline_value(name)` in a body: regorus' compiled screen (RVM, 0.14) does not
# stop a body at an assignment from an undefined expression (see src/policy/screen.rs and
# policies/README.md), so what is assigned should be checked by a later statement.
is_new_baseline_value(name) if {
	b := input.state.baselines[name]
	b.new == true
	b.learning == false
}

# The baseline view of this event's value when it is new and the baseline is past learning.
new_baseline_value(name) := input.state.baselines[name] if is_new_baseline_value(name)

risk_score := s if {
	s := input.state.risk.score
	is_number(s)
} else := 0

risk_signals := s if {
	s := input.state.risk.signals
	is_array(s)
} else := []

# `rule` already produced a finding for this user less than `secs` ago (earlier event).
fired_within(rule, secs) if {
	some s in risk_signals
	s.rule == rule
	input.now_ns - time.parse_rfc3339_ns(s.published) < secs * 1000000000
}

# The configured risk weight of a rule (0 when not configured).
weight(rule) := object.get(config, ["risk_weights", rule], 0)

# ---------------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------------

slack := {"type": "slack.notify", "params": {"channel": config.slack_channel}} if {
	is_string(config.slack_channel)
	config.slack_channel != ""
} else := {"type": "slack.notify"}

audit := {"type": "audit.record"}

page := {"type": "pagerduty.trigger"}

step_up := {"type": "okta.add_to_group", "params": {"group_id": config.step_up_group_id}}

clear_sessions(oauth_tokens) := {"type": "okta.clear_sessions", "params": {"oauth_tokens": oauth_tokens}}

reset_password := {"type": "okta.reset_password", "params": {"send_email": true, "revoke_sessions": true}}

delayed_suspend := {
	"type": "okta.suspend_user",
	"after_secs": object.get(config, "suspend_delay_secs", 900),
	"conditions": ["unless_acknowledged", "unless_overridden", "only_if_activity_continues"],
}

# Actions that lock an account out; never taken against a protected account.
lockout_types := {"okta.suspend_user", "okta.reset_password"}

# `actions` without the lockout actions when the user is protected (order kept).
allowed_actions(actions) := [a |
	some a in actions
	not blocked(a)
]

blocked(a) if {
	is_protected
	a.type in lockout_types
}

# While an analyst's override is in force for the user, no lockout either (the respond stage
# enforces overrides too; this keeps the decision itself honest).
blocked(a) if {
	override != null
	a.type in lockout_types
}

# The analyst's override of this user in force at the event's time (input.override, set by the
# detect stage from the overrides topic), or null.
override := o if {
	o := input.override
	is_object(o)
} else := null

# client.userAgent as an object ({} when absent or null).
event_user_agent := u if {
	u := input.event.client.userAgent
	is_object(u)
} else := {}

# `rule` produced a finding of at least `min_weight` for this user less than `secs` ago.
fired_within_weight(rule, secs, min_weight) if {
	some s in risk_signals
	s.rule == rule
	s.weight >= min_weight
	input.now_ns - time.parse_rfc3339_ns(s.published) < secs * 1000000000
}

# The event's actor, trimmed for evidence ({} fields null when absent).
actor := {
	"id": object.get(input.event, ["actor", "id"], null),
	"type": object.get(input.event, ["actor", "type"], null),
	"alternateId": object.get(input.event, ["actor", "alternateId"], null),
	"displayName": object.get(input.event, ["actor", "displayName"], null),
}

# Who did it, for summaries: the actor's login, else its display name, else the user.
actor_name := n if {
	n := actor.alternateId
	is_string(n)
	n != ""
	n != "unknown"
} else := n if {
	n := actor.displayName
	is_string(n)
	n != ""
} else := login

# The actor is a trusted automation / admin account (by login or id): admin rules skip it.
actor_trusted if in_list(actor.alternateId, object.get(config, "trusted_admin_logins", []))

actor_trusted if in_list(actor.id, object.get(config, "trusted_admin_logins", []))

# The targets' names, for summaries.
target_names := concat(", ", [n |
	some t in target_summary
	n := first_text([t.alternateId, t.displayName, t.id])
])

first_text(values) := t if {
	texts := [v | some v in values; is_string(v); v != ""]
	t := texts[0]
	is_string(t)
} else := "?"

# is_protected as a boolean, for evidence.
protected_account := true if {
	is_protected
} else := false
