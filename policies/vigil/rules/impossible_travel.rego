# Two successful sign-ins further apart than anyone can travel in the time between them
# (state.last_signin.speed_kmh > `max_speed_kmh`). Skipped when the distance is under
# `min_distance_km` (geolocation noise) or either sign-in came from a corporate VPN ASN.
package vigil.rules.impossible_travel

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.start"}

cfg := data.vigil.config.impossible_travel

travel := input.state.last_signin

findings contains f if {
	input.state.last_signin.speed_kmh > data.vigil.config.impossible_travel.max_speed_kmh # cheap and selective first (see README)
	is_number(travel.speed_kmh)
	travel.distance_km >= cfg.min_distance_km
	data.vigil.lib.is_signin_success
	not data.vigil.lib.on_vpn
	not data.vigil.lib.is_vpn_asn(object.get(travel.previous, "asn", null))
	prev := travel.previous
	f := {
		"rule": "impossible_travel",
		"severity": "high",
		"risk_weight": data.vigil.lib.weight("impossible_travel"),
		"summary": sprintf("impossible travel for %s: %v, %v -> %v, %v, %v km in %v min (%v km/h)", [
			data.vigil.lib.login,
			object.get(prev, "city", null), object.get(prev, "country", null),
			data.vigil.lib.city, data.vigil.lib.country,
			travel.distance_km, round(travel.elapsed_secs / 60), travel.speed_kmh,
		]),
		"evidence": {
			"from": prev,
			"to": {
				"published": object.get(input, "now", null),
				"ip": data.vigil.lib.client_ip,
				"country": data.vigil.lib.country,
				"city": data.vigil.lib.city,
				"asn": data.vigil.lib.current_asn,
			},
			"distance_km": travel.distance_km,
			"elapsed_secs": travel.elapsed_secs,
			"speed_kmh": travel.speed_kmh,
			"max_speed_kmh": cfg.max_speed_kmh,
		},
		"actions": [data.vigil.lib.clear_sessions(false), data.vigil.lib.step_up, data.vigil.lib.slack],
	}
}
