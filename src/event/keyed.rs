//! One upstream payload (an event, a System Log page, an Event Hook envelope) as the records the
//! events topic wants: one per event, keyed by the user it is about. All or nothing: a payload
//! with any bad event is refused whole, so a fixed and re-sent payload duplicates nothing.

use super::read_events;

/// One event, ready for the events topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedEvent {
    /// The user id (the record key), when the event is about a user.
    pub key: Option<String>,
    /// The event's JSON.
    pub payload: Vec<u8>,
}

/// Why a payload was refused: a DLQ reason and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Machine-readable (`invalid_json`, `too_large`, `empty_record`, …).
    pub reason: &'static str,
    /// For humans.
    pub error: String,
}

/// The events of `payload`, each at most `max_event_bytes`.
pub fn keyed_events(payload: &[u8], max_event_bytes: usize) -> Result<Vec<KeyedEvent>, Refused> {
    let mut events = Vec::new();
    for item in read_events(payload, max_event_bytes) {
        let record = item.map_err(|e| Refused {
            reason: e.error.reason(),
            error: e.to_string(),
        })?;
        let event = record.event;
        let payload = serde_json::to_vec(&event.raw).map_err(|e| Refused {
            reason: "invalid_json",
            error: e.to_string(),
        })?;
        events.push(KeyedEvent {
            key: event.user().map(|u| u.id),
            payload,
        });
    }
    if events.is_empty() {
        return Err(Refused {
            reason: "empty_record",
            error: "the record holds no event".into(),
        });
    }
    Ok(events)
}
