# Two successful sign-ins further apart than anyone can travel in the time between them
# (state.last_signin.speed_kmh > `max_speed_kmh`). Skipped when the distance is under
# `min_distance_km` (geolocation noise) or either sign-in came from a corporate VPN ASN.
package vigil.rules.impossible_travel

import data.vigil.lib

cfg := lib.config.impossible_travel

travel := input.state.last_signin

findings contains f if {
	lib.is_signin_success
	is_number(travel.speed_kmh)
	travel.speed_kmh > cfg.max_speed_kmh
	travel.distance_km >= cfg.min_distance_km
	not lib.on_vpn
	not lib.is_vpn_asn(object.get(travel.previous, "asn", null))
	prev := travel.previous
	f := {
		"rule": "impossible_travel",
		"severity": "high",
		"risk_weight": lib.weight("impossible_travel"),
		"summary": sprintf("impossible travel for %s: %v, %v -> %v, %v, %v km in %v min (%v km/h)", [
			lib.login,
			object.get(prev, "city", null), object.get(prev, "country", null),
			lib.city, lib.country,
			travel.distance_km, round(travel.elapsed_secs / 60), travel.speed_kmh,
		]),
		"evidence": {
			"from": prev,
			"to": {
				"published": object.get(input, "now", null),
				"ip": lib.client_ip,
				"country": lib.country,
				"city": lib.city,
				"asn": lib.current_asn,
			},
			"distance_km": travel.distance_km,
			"elapsed_secs": travel.elapsed_secs,
			"speed_kmh": travel.speed_kmh,
			"max_speed_kmh": cfg.max_speed_kmh,
		},
		"actions": [lib.clear_sessions(false), lib.step_up, lib.slack],
	}
}
