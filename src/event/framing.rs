//! The framings Okta delivers events in, read as a stream of per-record results:
//! newline-delimited LogEvents, System Log API pages (a JSON array), and Event Hook envelopes
//! (`{"data":{"events":[…]}}`, one per line or a whole pretty-printed document).
//!
//! A bad record is an error for that record only; reading goes on with the next one.

use std::collections::VecDeque;
use std::fmt;
use std::io::BufRead;

use serde_json::value::RawValue;
use serde_json::Value;

use super::{DecodeError, OktaEvent};

/// Where a record came from in the input, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line number of the record (or of the array/envelope that held it).
    pub line: u64,
    /// 1-based index inside an array or envelope, when the record was one of many.
    pub index: Option<usize>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "line {}, event {}", self.line, i),
            None => write!(f, "line {}", self.line),
        }
    }
}

/// A decoded event and where it was read.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where the event was in the input.
    pub position: Position,
    /// The event.
    pub event: OktaEvent,
}

/// A record that could not be read, and where.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{position}: {error}")]
pub struct RecordError {
    /// Where the record was in the input.
    pub position: Position,
    /// Why it was rejected.
    pub error: RecordFault,
}

/// What went wrong with one record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordFault {
    /// The event itself is bad.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The input could not be read at all (I/O error); reading stops.
    #[error("cannot read input: {0}")]
    Io(String),
}

impl RecordFault {
    /// A short, bounded label for counting.
    pub fn reason(&self) -> &'static str {
        match self {
            RecordFault::Decode(e) => e.reason(),
            RecordFault::Io(_) => "io",
        }
    }
}

/// Read every event in `input`, whatever the framing; see the module docs.
pub fn read_events<R: BufRead>(input: R, max_event_bytes: usize) -> EventReader<R> {
    EventReader {
        input,
        max_event_bytes,
        line: 0,
        pending: VecDeque::new(),
        done: false,
        seen_record: false,
    }
}

/// Iterator returned by [`read_events`].
pub struct EventReader<R> {
    input: R,
    max_event_bytes: usize,
    line: u64,
    pending: VecDeque<Result<Record, RecordError>>,
    done: bool,
    seen_record: bool,
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            self.read_more();
        }
    }
}

impl<R: BufRead> EventReader<R> {
    /// Read the next line (or, for a document that is not line-delimited, the rest of the input)
    /// and queue the records it holds.
    fn read_more(&mut self) {
        let mut buf = Vec::new();
        match self.input.read_until(b'\n', &mut buf) {
            Ok(0) => {
                self.done = true;
                return;
            }
            Ok(_) => self.line += 1,
            Err(e) => {
                self.done = true;
                self.fail(RecordFault::Io(e.to_string()), None);
                return;
            }
        }
        let trimmed = buf.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        // Input that opens with a document on a line of its own, or with an array (a System Log
        // page, or a pretty-printed envelope or event) is read whole: it is not
        // newline-delimited. Only at the start: a truncated `{` line in the middle of NDJSON is
        // one bad record, not a reason to swallow the rest of the file.
        let first_record = !self.seen_record;
        self.seen_record = true;
        if first_record && (trimmed == b"[" || trimmed == b"{" || trimmed[0] == b'[') {
            let start_line = self.line;
            if let Err(e) = self.input.read_to_end(&mut buf) {
                self.fail(RecordFault::Io(e.to_string()), None);
            }
            self.done = true;
            self.line = start_line;
            self.queue_document(&buf);
            return;
        }
        self.queue_document(&buf);
    }

    /// Queue the events of one JSON document: an event, an envelope, or an array of events.
    fn queue_document(&mut self, bytes: &[u8]) {
        let trimmed = bytes.trim_ascii();
        if trimmed.first() == Some(&b'[') {
            return self.queue_array(trimmed);
        }
        // The size limit applies to the event, so check it before parsing anything big.
        if trimmed.len() > self.max_event_bytes && !looks_like_envelope(trimmed) {
            let fault = DecodeError::TooLarge {
                size: trimmed.len(),
                limit: self.max_event_bytes,
            };
            return self.fail(fault.into(), None);
        }
        let value: Value = match serde_json::from_slice(trimmed) {
            Ok(v) => v,
            Err(e) => return self.fail(DecodeError::Json(e.to_string()).into(), None),
        };
        match envelope_events(value) {
            Ok(events) => {
                for (i, event) in events.into_iter().enumerate() {
                    self.queue_value(event, Some(i + 1));
                }
            }
            Err(event) => self.queue_value(event, None),
        }
    }

    fn queue_array(&mut self, bytes: &[u8]) {
        let items: Vec<&RawValue> = match serde_json::from_slice(bytes) {
            Ok(items) => items,
            Err(e) => {
                let msg = format!("a System Log page must be a JSON array of events: {e}");
                return self.fail(DecodeError::Json(msg).into(), None);
            }
        };
        for (i, item) in items.into_iter().enumerate() {
            let position = Some(i + 1);
            match OktaEvent::decode(item.get().as_bytes(), self.max_event_bytes) {
                Ok(event) => self.push(event, position),
                Err(e) => self.fail(e.into(), position),
            }
        }
    }

    fn queue_value(&mut self, value: Value, index: Option<usize>) {
        match OktaEvent::from_value(value) {
            Ok(event) => self.push(event, index),
            Err(e) => self.fail(e.into(), index),
        }
    }

    fn push(&mut self, event: OktaEvent, index: Option<usize>) {
        let position = Position {
            line: self.line,
            index,
        };
        self.pending.push_back(Ok(Record { position, event }));
    }

    fn fail(&mut self, error: RecordFault, index: Option<usize>) {
        let position = Position {
            line: self.line,
            index,
        };
        self.pending.push_back(Err(RecordError { position, error }));
    }
}

/// An Event Hook envelope's events, or the value back when it is not an envelope.
fn envelope_events(value: Value) -> Result<Vec<Value>, Value> {
    let is_envelope = value
        .get("data")
        .and_then(|d| d.get("events"))
        .is_some_and(Value::is_array);
    if !is_envelope {
        return Err(value);
    }
    match value {
        Value::Object(mut map) => match map.remove("data") {
            Some(Value::Object(mut data)) => match data.remove("events") {
                Some(Value::Array(events)) => Ok(events),
                _ => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        },
        other => Err(other),
    }
}

/// An envelope may be large as a whole while each of its events is small; sniff before rejecting.
fn looks_like_envelope(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    head.windows(b"\"eventTypeVersion\"".len())
        .any(|w| w == b"\"eventTypeVersion\"" || w == b"\"com.okta.event_hook\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DEFAULT_MAX_EVENT_BYTES;

    fn event(uuid: &str) -> String {
        format!(
            r#"{{"uuid":"{uuid}","published":"2026-03-02T09:00:00Z","eventType":"user.session.start"}}"#
        )
    }

    fn read(input: &str) -> Vec<Result<String, String>> {
        read_events(input.as_bytes(), DEFAULT_MAX_EVENT_BYTES)
            .map(|r| {
                r.map(|r| format!("{}@{}", r.event.uuid, r.position))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    #[test]
    fn ndjson_with_a_bad_line_keeps_going() {
        let input = format!("{}\n\nnot json\n{}\n", event("a"), event("b"));
        let got = read(&input);
        assert_eq!(got[0], Ok("a@line 1".to_string()));
        assert!(
            got[1]
                .as_ref()
                .unwrap_err()
                .starts_with("line 3: not valid JSON"),
            "{got:?}"
        );
        assert_eq!(got[2], Ok("b@line 4".to_string()));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_system_log_page_is_an_array() {
        let input = format!(
            "[\n {},\n {{\"uuid\":\"x\"}},\n {}\n]\n",
            event("a"),
            event("c")
        );
        let got = read(&input);
        assert_eq!(got[0], Ok("a@line 1, event 1".to_string()));
        assert!(got[1]
            .as_ref()
            .unwrap_err()
            .contains("event 2: missing required field"));
        assert_eq!(got[2], Ok("c@line 1, event 3".to_string()));
    }

    #[test]
    fn event_hook_envelopes_one_per_line_or_pretty_printed() {
        let line = format!(
            r#"{{"eventType":"com.okta.event_hook","data":{{"events":[{},{}]}}}}"#,
            event("a"),
            event("b")
        );
        let got = read(&format!("{line}\n{}\n", event("c")));
        assert_eq!(
            got,
            vec![
                Ok("a@line 1, event 1".into()),
                Ok("b@line 1, event 2".into()),
                Ok("c@line 2".into())
            ]
        );
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&line).unwrap()).unwrap();
        let got = read(&pretty);
        assert_eq!(
            got,
            vec![
                Ok("a@line 1, event 1".into()),
                Ok("b@line 1, event 2".into())
            ]
        );
    }

    #[test]
    fn an_oversized_line_is_rejected_and_the_next_one_read() {
        let big = format!(
            r#"{{"uuid":"big","published":"2026-03-02T09:00:00Z","eventType":"x","pad":"{}"}}"#,
            "x".repeat(10 << 20)
        );
        let input = format!("{big}\n{}\n", event("after"));
        let got = read(&input);
        assert!(
            got[0]
                .as_ref()
                .unwrap_err()
                .contains("over the 1048576-byte limit"),
            "{:?}",
            got[0]
        );
        assert_eq!(got[1], Ok("after@line 2".to_string()));
    }

    #[test]
    fn a_lone_brace_in_the_middle_of_ndjson_is_one_bad_line() {
        let input = format!("{}\n{{\n[\n{}\n", event("a"), event("b"));
        let got = read(&input);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], Ok("a@line 1".to_string()));
        assert!(
            got[1]
                .as_ref()
                .unwrap_err()
                .starts_with("line 2: not valid JSON"),
            "{got:?}"
        );
        assert!(
            got[2].as_ref().unwrap_err().starts_with("line 3:"),
            "{got:?}"
        );
        assert_eq!(got[3], Ok("b@line 4".to_string()));
    }

    #[test]
    fn a_broken_page_is_one_clear_error() {
        let got = read("[{\"uuid\":");
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .as_ref()
                .unwrap_err()
                .contains("must be a JSON array"),
            "{got:?}"
        );
    }
}
