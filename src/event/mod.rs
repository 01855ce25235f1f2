//! Okta LogEvents: decoding one event from bytes, and reading the framings Okta uses to deliver many
//! (one JSON object per line, a System Log API page, an Event Hook envelope).
//!
//! This module knows the LogEvent shape and nothing about state, policies or Kafka.

mod framing;
mod keyed;

pub use framing::{read_events, Record, RecordError};
pub use keyed::{keyed_events, KeyedEvent, Refused};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The largest event Vigil accepts by default; bigger records are rejected, not truncated.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Why a record could not become an [`OktaEvent`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not JSON (or nest deeper than serde_json's recursion limit of 128).
    #[error("not valid JSON: {0}")]
    Json(String),
    /// Valid JSON, but not an object.
    #[error("an event must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A required field (`uuid`, `published`, `eventType`) is absent or null.
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    /// A field has a type the LogEvent schema does not allow.
    #[error("field `{field}` must be {expected}, got {got}")]
    WrongType {
        /// Dotted path of the field.
        field: &'static str,
        /// What the schema wants.
        expected: &'static str,
        /// The JSON type that arrived.
        got: &'static str,
    },
    /// `published` is not an RFC 3339 timestamp.
    #[error("field `published` is not an RFC 3339 timestamp: {0:?}")]
    BadTimestamp(String),
    /// The record is larger than the configured limit.
    #[error("event is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the record in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl DecodeError {
    /// A short, bounded label for metrics and DLQ headers.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Json(_) => "invalid_json",
            DecodeError::NotAnObject(_) => "not_an_object",
            DecodeError::Missing(_) => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::BadTimestamp(_) => "bad_timestamp",
            DecodeError::TooLarge { .. } => "too_large",
        }
    }
}

/// Who an event is about, for keying state and partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    /// The Okta user id (`00u…`).
    pub id: String,
    /// The login (`alternateId`), when known.
    pub login: Option<String>,
    /// The display name, when known.
    pub display_name: Option<String>,
}

/// One Okta System Log event: the three required fields decoded, everything else kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct OktaEvent {
    /// Unique id of the event.
    pub uuid: String,
    /// Event time; all of Vigil's state works in this time.
    pub published: DateTime<Utc>,
    /// The event type, e.g. `user.session.start`.
    pub event_type: String,
    /// The whole event, with `version` and `postalCode` normalised to strings.
    pub raw: Map<String, Value>,
}

impl OktaEvent {
    /// Decode one event from bytes, rejecting anything over `max_bytes`.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
        Self::from_value(value)
    }

    /// Build an event from an already-parsed JSON value.
    pub fn from_value(value: Value) -> Result<Self, DecodeError> {
        let Value::Object(mut raw) = value else {
            return Err(DecodeError::NotAnObject(json_type(&value)));
        };
        let uuid = required_string(&raw, "uuid")?;
        let event_type = required_string(&raw, "eventType")?;
        let published_text = required_string(&raw, "published")?;
        let published = DateTime::parse_from_rfc3339(&published_text)
            .map_err(|_| DecodeError::BadTimestamp(published_text.clone()))?
            .with_timezone(&Utc);
        normalise_documented_strings(&mut raw);
        Ok(OktaEvent {
            uuid,
            published,
            event_type,
            raw,
        })
    }

    /// Event time in milliseconds since the Unix epoch.
    pub fn published_ms(&self) -> i64 {
        self.published.timestamp_millis()
    }

    /// The value at a dotted path (`client.geographicalContext.country`); `None` if absent or null.
    pub fn field(&self, path: &str) -> Option<&Value> {
        self.field_at(path.split('.'))
    }

    /// The value at a path given as its parts (split once, looked up per event).
    pub fn field_at<'p>(&self, mut parts: impl Iterator<Item = &'p str>) -> Option<&Value> {
        let mut current = self.raw.get(parts.next()?)?;
        for part in parts {
            current = current.as_object()?.get(part)?;
        }
        (!current.is_null()).then_some(current)
    }

    /// The field as a string: strings as they are, numbers and booleans by their JSON text.
    pub fn field_text(&self, path: &str) -> Option<String> {
        scalar_text(self.field(path)?)
    }

    /// The user this event is about: the actor when the actor is a user, otherwise the first target
    /// of type `User` (an admin acting on someone), otherwise nobody.
    pub fn user(&self) -> Option<UserRef> {
        let actor = self.raw.get("actor").and_then(Value::as_object);
        if let Some(actor) = actor.filter(|a| is_user(a)) {
            return user_ref(actor);
        }
        self.raw
            .get("target")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(Value::as_object)
            .find(|t| is_user(t))
            .and_then(user_ref)
    }
}

/// Strings as they are; numbers and booleans by their JSON text; anything else is not a scalar.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_user(entity: &Map<String, Value>) -> bool {
    entity.get("type").and_then(Value::as_str) == Some("User")
}

fn user_ref(entity: &Map<String, Value>) -> Option<UserRef> {
    let text = |key: &str| {
        entity
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(UserRef {
        id: text("id")?,
        login: text("alternateId"),
        display_name: text("displayName"),
    })
}

fn required_string(raw: &Map<String, Value>, field: &'static str) -> Result<String, DecodeError> {
    match raw.get(field) {
        None | Some(Value::Null) => Err(DecodeError::Missing(field)),
        Some(Value::String(s)) if s.is_empty() => Err(DecodeError::Missing(field)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(DecodeError::WrongType {
            field,
            expected: "a string",
            got: json_type(other),
        }),
    }
}

/// The schema documents `version` and `client.geographicalContext.postalCode` as strings, but Okta
/// has been seen sending numbers; policies get the documented type.
fn normalise_documented_strings(raw: &mut Map<String, Value>) {
    stringify_number(raw.get_mut("version"));
    let postal = raw
        .get_mut("client")
        .and_then(Value::as_object_mut)
        .and_then(|c| c.get_mut("geographicalContext"))
        .and_then(Value::as_object_mut)
        .and_then(|g| g.get_mut("postalCode"));
    stringify_number(postal);
}

fn stringify_number(value: Option<&mut Value>) {
    if let Some(v) = value {
        if let Value::Number(n) = v {
            *v = Value::String(n.to_string());
        }
    }
}

/// The JSON type name of a value, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNIN: &str = r#"{"uuid":"u1","published":"2026-03-02T09:15:02.120Z","eventType":"user.session.start",
        "version":0,"actor":{"id":"00u1","type":"User","alternateId":"alice@example.com","displayName":"Alice"},
        "client":{"ipAddress":"1.2.3.4","geographicalContext":{"country":"France","postalCode":75001,"geolocation":null}},
        "outcome":null,"somethingNew":{"kept":true}}"#;

    #[test]
    fn decodes_a_sign_in_and_normalises_documented_strings() {
        let event = OktaEvent::decode(SIGNIN.as_bytes(), DEFAULT_MAX_EVENT_BYTES).unwrap();
        assert_eq!(event.uuid, "u1");
        assert_eq!(event.event_type, "user.session.start");
        assert_eq!(event.published_ms(), 1_772_442_902_120);
        assert_eq!(event.raw["version"], Value::String("0".into()));
        assert_eq!(
            event.field("client.geographicalContext.postalCode"),
            Some(&Value::String("75001".into()))
        );
        assert_eq!(event.field("client.geographicalContext.geolocation"), None);
        assert_eq!(event.field("outcome.result"), None);
        assert_eq!(event.raw["somethingNew"]["kept"], Value::Bool(true));
        let user = event.user().unwrap();
        assert_eq!(user.id, "00u1");
        assert_eq!(user.login.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn a_non_user_actor_falls_back_to_the_user_target() {
        let json = r#"{"uuid":"u2","published":"2026-03-02T09:15:02Z","eventType":"user.lifecycle.suspend",
            "actor":{"id":"0oa1","type":"PublicClientApp"},
            "target":[{"id":"0ap1","type":"AppInstance"},{"id":"00u9","type":"User","alternateId":"bob@example.com"}]}"#;
        let event = OktaEvent::decode(json.as_bytes(), DEFAULT_MAX_EVENT_BYTES).unwrap();
        assert_eq!(event.user().unwrap().id, "00u9");
    }

    #[test]
    fn bad_records_get_clear_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "invalid_json"),
            (b"[1,2]", "not_an_object"),
            (
                br#"{"published":"2026-03-02T09:15:02Z","eventType":"x"}"#,
                "missing_field",
            ),
            (
                br#"{"uuid":"a","published":"2026-03-02T09:15:02Z","eventType":null}"#,
                "missing_field",
            ),
            (
                br#"{"uuid":7,"published":"2026-03-02T09:15:02Z","eventType":"x"}"#,
                "wrong_type",
            ),
            (
                br#"{"uuid":"a","published":"yesterday","eventType":"x"}"#,
                "bad_timestamp",
            ),
        ];
        for (bytes, reason) in cases {
            let err = OktaEvent::decode(bytes, DEFAULT_MAX_EVENT_BYTES).unwrap_err();
            assert_eq!(err.reason(), *reason, "{}", String::from_utf8_lossy(bytes));
        }
        let err =
            OktaEvent::decode(br#"{"uuid":7,"published":"x","eventType":"x"}"#, 10).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                size: 42,
                limit: 10
            }
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = OktaEvent::decode(deep.as_bytes(), usize::MAX).unwrap_err();
        assert_eq!(err.reason(), "invalid_json");
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }
}
