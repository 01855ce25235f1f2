//! The demo's traffic: a simulated stretch of Okta System Log that ends now with the attacks,
//! as keyed records for the events topic.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::event::keyed_events;
use crate::simulate::{generate, Attack, InjectedAttack, SimConfig};

/// Events at most this large are accepted (the simulator's are far smaller).
const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Simulated traffic ready to produce.
pub struct Scenario {
    /// (user id, event JSON) in time order: the events topic's records.
    pub records: Vec<(Option<String>, Vec<u8>)>,
    /// The injected attacks.
    pub injected: Vec<InjectedAttack>,
    /// The first simulated day (shifted), for the banner.
    pub first: DateTime<Utc>,
}

impl Scenario {
    /// `users` × `days` of traffic with every attack, cut after the last attacker event and
    /// shifted so that event happens at `now`: the latest attack's delayed actions fall due in
    /// minutes, as they would in production.
    pub fn generate(
        users: usize,
        days: u32,
        seed: u64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let config = SimConfig {
            users,
            days,
            start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).context("start date")?,
            seed,
            attacks: Attack::ALL.to_vec(),
        };
        let simulation = generate(&config);
        let cut = {
            let attack_events: HashSet<&str> = simulation
                .injected
                .iter()
                .flat_map(|a| a.event_uuids.iter().chain(&a.related_uuids))
                .map(String::as_str)
                .collect();
            let times: HashMap<&str, DateTime<Utc>> = simulation
                .events
                .iter()
                .filter_map(|e| Some((e["uuid"].as_str()?, published(e)?)))
                .collect();
            attack_events
                .iter()
                .filter_map(|uuid| times.get(uuid))
                .max()
                .or_else(|| times.values().max())
                .copied()
                .context("the simulation wrote no events")?
        };
        let shift = now - cut;
        let mut records = Vec::with_capacity(simulation.events.len());
        let mut first = None;
        for mut event in simulation.events {
            let Some(at) = published(&event).filter(|at| *at <= cut) else {
                continue;
            };
            let at = at + shift;
            first.get_or_insert(at);
            event["published"] = Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true));
            let bytes = serde_json::to_vec(&event)?;
            for keyed in keyed_events(&bytes, MAX_EVENT_BYTES)
                .map_err(|e| anyhow::anyhow!("the simulator wrote a bad event: {}", e.error))?
            {
                records.push((keyed.key, keyed.payload));
            }
        }
        Ok(Scenario {
            records,
            injected: simulation.injected,
            first: first.unwrap_or(now),
        })
    }
}

fn published(event: &Value) -> Option<DateTime<Utc>> {
    let text = event["published"].as_str()?;
    Some(DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SubsecRound;

    #[test]
    fn the_traffic_ends_now_with_the_last_attack_event() {
        let now = Utc::now();
        let scenario = Scenario::generate(20, 2, 7, now).unwrap();
        let times: Vec<DateTime<Utc>> = scenario
            .records
            .iter()
            .map(|(_, payload)| published(&serde_json::from_slice(payload).unwrap()).unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
        assert_eq!(*times.last().unwrap(), now.trunc_subsecs(3));
        assert!(
            now - times[0] > chrono::Duration::hours(24),
            "two days long"
        );
        assert_eq!(scenario.injected.len(), Attack::ALL.len());
    }
}
