package vigil.rules.new_device_test

import data.vigil.rules.new_device
import data.vigil.test.fixtures as fx

new_value(value, learning) := object.union(fx.known(value), {"new": true, "learning": learning, "seen_count": 1})

with_new(name, value, learning) := fx.input_with(
	{"client": {"userAgent": {"os": "Windows 10", "browser": "EDGE"}}},
	{"baselines": {name: new_value(value, learning)}},
)

test_fires_on_a_new_os if {
	fs := new_device.findings with input as with_new("os", "Windows 10", false)
	count(fs) == 1
	some f in fs
	f.rule == "new_device"
	f.evidence.new == ["os"]
	f.summary == "alice@example.com signed in from a new device: Windows 10 / EDGE"
}

test_fires_once_when_os_and_browser_are_new if {
	inp := object.union(with_new("os", "Windows 10", false), {"state": {"baselines": {"browser": new_value("EDGE", false)}}})
	fs := new_device.findings with input as inp
	count(fs) == 1
	some f in fs
	f.evidence.new == ["browser", "os"]
}

test_learning_does_not_fire if {
	count(new_device.findings) == 0 with input as with_new("browser", "EDGE", true)
}

test_benign_known_device_does_not_fire if {
	count(new_device.findings) == 0 with input as fx.benign
}
