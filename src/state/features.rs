//! The feature set a policy directory declares in `features.toml`: which per-user windows, distinct
//! counts, baselines and profiles Vigil keeps.
//!
//! Parsing only; the arithmetic lives in `user.rs`.

use std::path::Path;

use serde::Deserialize;

use crate::event::{scalar_text, OktaEvent};

/// The file name Vigil reads next to the Rego modules.
pub const FEATURES_FILE: &str = "features.toml";

/// A `features.toml` that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FeaturesError {
    /// The file.
    pub path: String,
    /// What is wrong, with the line where TOML reports one.
    pub message: String,
}

/// Every per-user feature the policies may read, as declared in `features.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Sliding-window counters.
    #[serde(default, rename = "counter")]
    pub counters: Vec<CounterSpec>,
    /// Distinct-value counts in a window.
    #[serde(default)]
    pub distinct: Vec<DistinctSpec>,
    /// Baselines of values seen for a field.
    #[serde(default, rename = "baseline")]
    pub baselines: Vec<BaselineSpec>,
    /// Hour-of-day profile.
    #[serde(default)]
    pub hours: Option<HoursSpec>,
    /// Last successful sign-in and the travel it implies.
    #[serde(default)]
    pub last_signin: Option<LastSigninSpec>,
    /// The window of the per-user risk score.
    #[serde(default)]
    pub risk: RiskSpec,
}

/// Count the matching events in a sliding window of event time.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CounterSpec {
    /// Name under `input.state.counters`.
    pub name: String,
    /// Window length in seconds.
    pub window_secs: u64,
    /// Which events count.
    #[serde(rename = "match")]
    pub filter: Match,
}

/// Count the distinct values of a field among matching events in a window.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistinctSpec {
    /// Name under `input.state.distinct`.
    pub name: String,
    /// Window length in seconds.
    pub window_secs: u64,
    /// Dotted path of the field whose values are counted.
    pub field: String,
    /// Which events count.
    #[serde(rename = "match", default)]
    pub filter: Match,
}

/// Remember the values a user has shown for a field.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaselineSpec {
    /// Name under `input.state.baselines`.
    pub name: String,
    /// Dotted path of the field (`client.geographicalContext.country`).
    pub field: String,
    /// Which events feed the baseline.
    #[serde(rename = "match", default)]
    pub filter: Match,
    /// How long after the first observation the baseline is still learning.
    #[serde(default = "default_learning_secs")]
    pub learning_secs: u64,
    /// A value not seen for this long is forgotten.
    #[serde(default = "default_baseline_ttl_secs")]
    pub ttl_secs: u64,
    /// At most this many values are kept; the least recently seen goes first.
    #[serde(default = "default_max_values")]
    pub max_values: usize,
}

/// Count matching events per UTC hour of day.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    /// Which events feed the profile.
    #[serde(rename = "match", default)]
    pub filter: Match,
    /// The profile is learning until it holds this many earlier events.
    #[serde(default = "default_learning_events")]
    pub learning_events: u32,
}

/// Track the last successful sign-in.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LastSigninSpec {
    /// Which events are sign-ins.
    #[serde(rename = "match", default)]
    pub filter: Match,
}

/// The per-user risk score's window.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RiskSpec {
    /// Findings older than this no longer count.
    #[serde(default = "default_risk_window_secs")]
    pub window_secs: u64,
}

impl Default for RiskSpec {
    fn default() -> Self {
        RiskSpec {
            window_secs: default_risk_window_secs(),
        }
    }
}

fn default_learning_secs() -> u64 {
    14 * 86_400
}
fn default_baseline_ttl_secs() -> u64 {
    90 * 86_400
}
fn default_max_values() -> usize {
    64
}
fn default_learning_events() -> u32 {
    20
}
fn default_risk_window_secs() -> u64 {
    86_400
}

/// A string pattern: exact, or a prefix when it ends with `*`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(from = "String")]
pub struct Pattern {
    text: String,
    prefix: bool,
}

impl From<String> for Pattern {
    fn from(mut text: String) -> Self {
        let prefix = text.ends_with('*');
        if prefix {
            text.pop();
        }
        Pattern { text, prefix }
    }
}

impl Pattern {
    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        if self.prefix {
            value.starts_with(&self.text)
        } else {
            value == self.text
        }
    }
}

/// Dotted field path → accepted values; every path must hold one of its values.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(from = "std::collections::BTreeMap<String, Vec<Pattern>>")]
pub struct Match(Vec<(Vec<String>, Vec<Pattern>)>);

impl From<std::collections::BTreeMap<String, Vec<Pattern>>> for Match {
    fn from(map: std::collections::BTreeMap<String, Vec<Pattern>>) -> Self {
        // Split the paths once here rather than on every event.
        Match(
            map.into_iter()
                .map(|(path, patterns)| (path.split('.').map(str::to_owned).collect(), patterns))
                .collect(),
        )
    }
}

impl Match {
    /// Whether the event satisfies every condition.
    pub fn matches(&self, event: &OktaEvent) -> bool {
        // Runs a dozen times per event: compare strings in place, allocate only for numbers
        // and booleans (rare in match conditions).
        self.0.iter().all(|(path, patterns)| {
            let any = |text: &str| patterns.iter().any(|p| p.matches(text));
            if path.len() == 1 && path[0] == "eventType" {
                return any(&event.event_type);
            }
            match event.field_at(path.iter().map(String::as_str)) {
                Some(serde_json::Value::String(text)) => any(text),
                Some(other) => scalar_text(other).is_some_and(|t| any(&t)),
                None => false,
            }
        })
    }
}

impl Features {
    /// Parse `features.toml` text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, FeaturesError> {
        let error = |message: String| FeaturesError {
            path: path.display().to_string(),
            message,
        };
        let features: Features = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        features.validate().map_err(error)?;
        Ok(features)
    }

    /// The longest sliding window (counters, distinct counts, risk): how far back re-reading the
    /// events topic rebuilds everything but baselines and the hour profile.
    pub fn longest_window_secs(&self) -> u64 {
        let counters = self.counters.iter().map(|c| c.window_secs);
        let distinct = self.distinct.iter().map(|d| d.window_secs);
        counters
            .chain(distinct)
            .chain([self.risk.window_secs])
            .max()
            .unwrap_or(0)
    }

    /// A short digest of the declaration, stamped on state snapshots so that a snapshot is never
    /// restored into a different feature set (state is stored by feature position).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{self:?}").as_bytes());
        hex::encode(&digest[..8])
    }

    /// Names must be unique per kind and windows non-zero, or the state would be ambiguous.
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut check_names = |kind: &str, names: Vec<&str>| {
            let mut seen = std::collections::BTreeSet::new();
            for name in names {
                if name.is_empty() {
                    problems.push(format!("a {kind} has an empty name"));
                } else if !seen.insert(name) {
                    problems.push(format!("{kind} `{name}` is declared twice"));
                }
            }
        };
        check_names(
            "counter",
            self.counters.iter().map(|c| c.name.as_str()).collect(),
        );
        check_names(
            "distinct",
            self.distinct.iter().map(|c| c.name.as_str()).collect(),
        );
        check_names(
            "baseline",
            self.baselines.iter().map(|c| c.name.as_str()).collect(),
        );
        let windows = self
            .counters
            .iter()
            .map(|c| (&c.name, c.window_secs))
            .chain(self.distinct.iter().map(|d| (&d.name, d.window_secs)));
        for (name, window) in windows {
            if window == 0 {
                problems.push(format!("`{name}` has window_secs = 0"));
            }
        }
        for b in &self.baselines {
            if b.max_values == 0 || b.ttl_secs == 0 {
                problems.push(format!(
                    "baseline `{}` needs max_values and ttl_secs > 0",
                    b.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DEFAULT_MAX_EVENT_BYTES;

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
            [[counter]]
            name = "failed_signins_10m"
            window_secs = 600
            match = { eventType = ["user.session.start"], "outcome.result" = ["FAILURE"] }
            [[baseline]]
            name = "country"
            field = "client.geographicalContext.country"
            [hours]
            learning_events = 5
        "#;
        let f = Features::parse(text, Path::new("features.toml")).unwrap();
        assert_eq!(f.baselines[0].learning_secs, 14 * 86_400);
        assert_eq!(f.hours.unwrap().learning_events, 5);
        let event = OktaEvent::decode(
            br#"{"uuid":"a","published":"2026-03-02T09:00:00Z","eventType":"user.session.start","outcome":{"result":"FAILURE"}}"#,
            DEFAULT_MAX_EVENT_BYTES,
        )
        .unwrap();
        assert!(f.counters[0].filter.matches(&event));
    }

    #[test]
    fn reports_line_of_a_toml_error_and_every_semantic_problem() {
        let err =
            Features::parse("[[counter]]\nname = 3\n", Path::new("p/features.toml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("p/features.toml: TOML parse error at line 2"),
            "{err}"
        );
        let text = "[[counter]]\nname='a'\nwindow_secs=0\nmatch={}\n[[counter]]\nname='a'\nwindow_secs=1\nmatch={}\n";
        let err = Features::parse(text, Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("declared twice") && err.contains("window_secs = 0"),
            "{err}"
        );
    }
}
