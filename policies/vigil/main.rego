# The entrypoint: data.vigil.main.decisions, the set of findings for the current event — every
# rule package under data.vigil.rules plus the graduated response (data.vigil.response).
#
# Defence in depth: lockout actions (okta.suspend_user, okta.reset_password) are removed here for
# protected accounts whatever the rule asked for (the rules that use them filter too, so the
# per-rule fallback path is safe as well).
package vigil.main


decisions contains guarded(f) if {
	some name
	some f in data.vigil.rules[name].findings
}

decisions contains guarded(f) if {
	some f in data.vigil.response.findings
}

guarded(f) := object.union(f, {"actions": data.vigil.lib.allowed_actions(f.actions)}) if {
	is_array(f.actions)
} else := f
