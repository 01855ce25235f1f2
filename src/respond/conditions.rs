//! The checks a delayed action passes at its due time: an analyst override, the user's activity
//! since the decision, the acknowledgement of the user's PagerDuty incident.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::decision::{Action, Condition, Decision};
use crate::kafka::reader::PartitionReader;
use crate::overrides::OverrideTable;

/// Events this much older than the decision's event are read too: producer timestamps are
/// only roughly ordered.
const ACTIVITY_MARGIN_MS: i64 = 60_000;

/// Why a pending action is cancelled, if an override covers it: any override of the user in
/// force at some point between the decision and now (an analyst's "leave them alone" wins over
/// every policy).
pub fn overridden(
    overrides: &OverrideTable,
    decision: &Decision,
    scheduled_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<String> {
    let user = decision.user.as_ref()?;
    let o = overrides.get(&user.id)?;
    o.overlaps(scheduled_at, now).then(|| {
        format!(
            "override by {}: {} (until {})",
            o.by.as_deref().unwrap_or("an analyst"),
            o.reason,
            o.until.to_rfc3339()
        )
    })
}

/// Whether the decision's user produced any event after the decision's event, read from the
/// events topic (keyed by user): `partitions` are the events partitions that can hold the user.
pub fn activity_continues(
    reader: &PartitionReader,
    events_topic: &str,
    partitions: &[i32],
    decision: &Decision,
) -> anyhow::Result<bool> {
    let Some(user) = &decision.user else {
        return Ok(false);
    };
    let since = DateTime::parse_from_rfc3339(&decision.event.published)?.with_timezone(&Utc);
    let mut found = false;
    for &partition in partitions {
        let from = reader.offset_at(
            events_topic,
            partition,
            since.timestamp_millis() - ACTIVITY_MARGIN_MS,
        )?;
        reader.read_range(events_topic, partition, from, i64::MAX, |record| {
            if record.key != Some(user.id.as_bytes()) {
                return true;
            }
            found = record
                .payload
                .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                .is_some_and(|event| is_later_event(&event, decision, since));
            !found
        })?;
        if found {
            break;
        }
    }
    Ok(found)
}

fn is_later_event(event: &Value, decision: &Decision, since: DateTime<Utc>) -> bool {
    let uuid = event.get("uuid").and_then(Value::as_str);
    let published = event
        .get("published")
        .and_then(Value::as_str)
        .and_then(|p| DateTime::parse_from_rfc3339(p).ok());
    uuid != Some(decision.event.uuid.as_str()) && published.is_some_and(|p| p > since)
}

/// The conditions of `action` in the order they are checked: the cheap ones first.
pub fn ordered(action: &Action) -> Vec<Condition> {
    let mut conditions = action.conditions.clone();
    conditions.sort_by_key(|c| match c {
        Condition::UnlessOverridden => 0,
        Condition::OnlyIfActivityContinues => 1,
        Condition::UnlessAcknowledged => 2,
    });
    conditions.dedup();
    conditions
}
