//! What a stage produces, and the dead-letter record format.

use rdkafka::message::{Headers, Message};
use sha2::{Digest, Sha256};

/// Header: why the record was dead-lettered (a short label such as `invalid_json`).
pub const DLQ_REASON: &str = "vigil.dlq.reason";
/// Header: the full error message.
pub const DLQ_ERROR: &str = "vigil.dlq.error";
/// Header: the stage that gave up (`detect`, `rekey`).
pub const DLQ_STAGE: &str = "vigil.dlq.stage";
/// Header: where the record came from.
pub const SOURCE_TOPIC: &str = "vigil.source.topic";
/// Header: the source partition.
pub const SOURCE_PARTITION: &str = "vigil.source.partition";
/// Header: the source offset.
pub const SOURCE_OFFSET: &str = "vigil.source.offset";
/// Header: the original record's size in bytes.
pub const ORIGINAL_BYTES: &str = "vigil.dlq.original_bytes";
/// Header: SHA-256 (hex) of the original record, to find or verify it when truncated.
pub const ORIGINAL_SHA256: &str = "vigil.dlq.original_sha256";
/// Header: present (`true`) when the payload is only the first bytes of the original.
pub const TRUNCATED: &str = "vigil.dlq.truncated";

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    /// Destination topic.
    pub topic: String,
    /// An explicit partition; otherwise the key decides.
    pub partition: Option<i32>,
    /// The key (a user id for events and decisions).
    pub key: Option<Vec<u8>>,
    /// The value.
    pub payload: Vec<u8>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl OutRecord {
    /// A record for `topic` keyed by `key`.
    pub fn keyed(topic: &str, key: Option<&str>, payload: Vec<u8>) -> Self {
        OutRecord {
            topic: topic.to_owned(),
            partition: None,
            key: key.map(|k| k.as_bytes().to_vec()),
            payload,
            headers: Vec::new(),
        }
    }

    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A dead-letter record for `source`: its key and (up to `max_payload` of) its bytes, with the
/// reason, the error and the source topic/partition/offset in headers. Brokers cap records near
/// 1 MB, so a larger original is truncated and its full size and SHA-256 recorded.
pub fn dlq_record<M: Message>(
    dlq_topic: &str,
    stage: &str,
    source: &M,
    reason: &str,
    error: &str,
    max_payload: usize,
) -> OutRecord {
    let original = source.payload().unwrap_or_default();
    let truncated = original.len() > max_payload;
    let mut headers = vec![
        (DLQ_REASON.to_owned(), reason.as_bytes().to_vec()),
        (DLQ_ERROR.to_owned(), error.as_bytes().to_vec()),
        (DLQ_STAGE.to_owned(), stage.as_bytes().to_vec()),
        (SOURCE_TOPIC.to_owned(), source.topic().as_bytes().to_vec()),
        (
            SOURCE_PARTITION.to_owned(),
            source.partition().to_string().into_bytes(),
        ),
        (
            SOURCE_OFFSET.to_owned(),
            source.offset().to_string().into_bytes(),
        ),
        (
            ORIGINAL_BYTES.to_owned(),
            original.len().to_string().into_bytes(),
        ),
        (
            ORIGINAL_SHA256.to_owned(),
            hex::encode(Sha256::digest(original)).into_bytes(),
        ),
    ];
    if truncated {
        headers.push((TRUNCATED.to_owned(), b"true".to_vec()));
    }
    // Upstream headers are kept too (trace ids and the like), after Vigil's own.
    if let Some(source_headers) = source.headers() {
        for header in source_headers.iter() {
            headers.push((
                header.key.to_owned(),
                header.value.unwrap_or_default().to_vec(),
            ));
        }
    }
    OutRecord {
        topic: dlq_topic.to_owned(),
        partition: None,
        key: source.key().map(<[u8]>::to_vec),
        payload: original[..original.len().min(max_payload)].to_vec(),
        headers,
    }
}
