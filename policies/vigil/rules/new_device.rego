# A successful sign-in from a device type this user has not used: the operating system
# (baseline `os`, client.userAgent.os) or the browser (baseline `browser`,
# client.userAgent.browser) is new, past learning. OS + browser rather than the raw user agent,
# so that browser updates do not read as new devices. One finding per event.
package vigil.rules.new_device

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.start"}

new_parts := {name: b |
	some name in ["os", "browser"]
	data.vigil.lib.is_new_baseline_value(name)
	b := data.vigil.lib.new_baseline_value(name)
}

# Cheap and selective first (see README): an OS or browser value seen for the first time.
maybe_new if input.state.baselines.os.new == true

maybe_new if input.state.baselines.browser.new == true

findings contains f if {
	maybe_new
	count(new_parts) > 0
	data.vigil.lib.is_signin_success
	os := object.get(data.vigil.lib.event_user_agent, "os", null)
	browser := object.get(data.vigil.lib.event_user_agent, "browser", null)
	f := {
		"rule": "new_device",
		"severity": "low",
		"risk_weight": data.vigil.lib.weight("new_device"),
		"summary": sprintf("%s signed in from a new device: %v / %v", [data.vigil.lib.login, os, browser]),
		"evidence": {
			"new": sort([n | some n, _ in new_parts]),
			"os": os,
			"browser": browser,
			"baselines": {n: {"value": b.value, "known_values": b.known_values, "baseline_since": b.tracked_since} |
				some n, b in new_parts
			},
			"client": data.vigil.lib.client,
		},
		"actions": [data.vigil.lib.audit],
	}
}
