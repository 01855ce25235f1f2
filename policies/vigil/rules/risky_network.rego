# Risky network signals, one finding per event listing every reason:
#   high_risk_country : successful sign-in from a country in data `high_risk_countries`
#   proxy             : successful sign-in with securityContext.isProxy == true
#   threat_suspected  : Okta flagged the request (debugContext.debugData.threatSuspected == "true")
#   threatinsight     : security.threat.detected (ThreatInsight: IP known for credential attacks)
#   okta_risk_high    : Okta risk level HIGH (debugData.risk "level=HIGH" or securityContext.risk.level)
# Corporate VPN ASNs (data `vpn_asns`) skip the country and proxy reasons, not Okta's threat signals.
# A successful sign-in or a HIGH risk is a "sign-in" finding (high severity, step-up); anything else
# (attempts against the user) is an "attempt" finding (low severity, audit only — a password spray
# must not page for every targeted user). Not repeated within `renotify_secs` unless stronger.
package vigil.rules.risky_network

# The event types this rule reads: Vigil evaluates it for these only (policies/README.md).
event_types := {"user.session.start", "user.authentication.verify", "user.authentication.auth_via_mfa", "security.threat.detected"}

cfg := data.vigil.config.risky_network

# Each body starts with its cheapest, most selective test (see README): most sign-ins match none.
reasons contains "high_risk_country" if {
	input.event.eventType == "user.session.start"
	input.event.outcome.result == "SUCCESS"
	# Exact names, as Okta writes them (data.json lists them so): a plain `in` costs a third of
	# data.vigil.lib.in_list, and this runs on every successful sign-in.
	input.event.client.geographicalContext.country in data.vigil.config.high_risk_countries
	data.vigil.lib.is_signin_success
	not data.vigil.lib.on_vpn
}

reasons contains "proxy" if {
	input.event.securityContext.isProxy == true
	data.vigil.lib.is_signin_success
	not data.vigil.lib.on_vpn
}

# Direct paths rather than data.vigil.lib.debug_text: these run on every sign-in and MFA event,
# and each helper call costs more than the whole test (same result: absent → no reason).
reasons contains "threat_suspected" if sprintf("%v", [input.event.debugContext.debugData.threatSuspected]) == "true"

reasons contains "threatinsight" if input.event.eventType == "security.threat.detected"

reasons contains "okta_risk_high" if high_risk

high_risk if contains(upper(sprintf("%v", [input.event.debugContext.debugData.risk])), "LEVEL=HIGH")

high_risk if upper(input.event.securityContext.risk.level) == "HIGH"

signin_level if data.vigil.lib.is_signin_success

signin_level if high_risk

finding_weight := w if {
	signin_level
	w := data.vigil.lib.weight("risky_network")
	is_number(w) # checked, so an undefined weight falls through as in OPA (policies/README.md)
} else := data.vigil.lib.weight("risky_network_attempt")

findings contains f if {
	count(reasons) > 0
	signin_level
	not data.vigil.lib.fired_within_weight("risky_network", cfg.renotify_secs, finding_weight)
	f := finding("high", [data.vigil.lib.slack, data.vigil.lib.step_up])
}

findings contains f if {
	count(reasons) > 0
	not signin_level
	not data.vigil.lib.fired_within_weight("risky_network", cfg.renotify_secs, finding_weight)
	f := finding("low", [data.vigil.lib.audit])
}

finding(severity, actions) := {
	"rule": "risky_network",
	"severity": severity,
	"risk_weight": finding_weight,
	"summary": sprintf("risky network for %s (%s) on %s from %v, %v", [
		data.vigil.lib.login, concat(", ", sort(reasons)), input.event.eventType, data.vigil.lib.client_ip, data.vigil.lib.country,
	]),
	"evidence": {
		"reasons": sort(reasons),
		"outcome": data.vigil.lib.outcome,
		"is_proxy": object.get(input.event, ["securityContext", "isProxy"], null),
		"threat_suspected": data.vigil.lib.debug_text("threatSuspected"),
		"okta_risk": data.vigil.lib.debug_text("risk"),
		"threat_reason": data.vigil.lib.outcome_reason,
		"client": data.vigil.lib.client,
	},
	"actions": actions,
}
