//! Replay cost against the floor of merely parsing the events.
//!
//! On the same simulated working day (1,000 users, every attack injected), in one run:
//! * `parse`: bare `serde_json` parse of each event into a `Value` (the floor);
//! * `replay`: the full detect path per event (decode, state, Rego, decisions);
//!
//! then a figures block prints both per-event times, their ratio, events/s, and the bytes of state
//! per tracked user (measured with a counting allocator, not estimated).
//!
//! Run: `cargo bench --bench replay` (CI only compiles it: `cargo bench --no-run`).

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use vigil::detect::Detector;
use vigil::event::{OktaEvent, DEFAULT_MAX_EVENT_BYTES};
use vigil::policy::{LoadOptions, Policy, PolicySource};
use vigil::simulate::{generate, Attack, SimConfig};
use vigil::state::{StateLimits, StateStore};

/// Counts live heap bytes so the bench can report what state really costs per user; allocates
/// with mimalloc, as the `vigil` binary does.
struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// `users` simulated for `days` (attacks on the last day), as the bytes of each event.
fn simulated(users: usize, days: u32) -> Vec<Vec<u8>> {
    let config = SimConfig {
        users,
        days,
        start: first_day(),
        seed: 7,
        attacks: Attack::ALL.to_vec(),
    };
    generate(&config)
        .events
        .iter()
        .map(|e| serde_json::to_vec(e).expect("simulated events serialise"))
        .collect()
}

fn first_day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("valid date")
}

/// Split `events` into (the days before the last one, the last day).
fn split_last_day(events: Vec<Vec<u8>>, days: u32) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let last = first_day() + chrono::Days::new(u64::from(days) - 1);
    let marker = format!("\"published\":\"{}", last.format("%Y-%m-%d"));
    let marker = marker.as_bytes();
    events
        .into_iter()
        .partition(|e| !e.windows(marker.len()).any(|w| w == marker))
}

fn policy() -> Policy {
    Policy::load(&PolicySource::Embedded, LoadOptions::default()).expect("built-in policies load")
}

fn replay_all(detector: &mut Detector, events: &[Vec<u8>]) -> usize {
    let mut decisions = 0;
    for bytes in events {
        let event =
            OktaEvent::decode(bytes, DEFAULT_MAX_EVENT_BYTES).expect("simulated events decode");
        decisions += detector.process(&event, false).decisions.len();
    }
    decisions
}

fn parse_all(events: &[Vec<u8>]) -> usize {
    events
        .iter()
        .map(|b| {
            serde_json::from_slice::<serde_json::Value>(b)
                .map(|v| v.as_object().map_or(0, |o| o.len()))
                .unwrap_or(0)
        })
        .sum()
}

/// Median over `rounds` of (parse, replay) in µs per event of `day`, the two alternated so both
/// see the same machine load; `history` is replayed first, unmeasured, on each fresh detector.
fn figures(policy: &Policy, history: &[Vec<u8>], day: &[Vec<u8>], rounds: usize) -> (f64, f64) {
    let mut parse_times = Vec::new();
    let mut replay_times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        black_box(parse_all(day));
        parse_times.push(started.elapsed());
        let mut detector = Detector::new(policy.clone(), StateLimits::default());
        replay_all(&mut detector, history);
        let started = Instant::now();
        black_box(replay_all(&mut detector, day));
        replay_times.push(started.elapsed());
    }
    parse_times.sort();
    replay_times.sort();
    let per_event = |d: Duration| d.as_secs_f64() / day.len() as f64 * 1e6;
    (
        per_event(parse_times[rounds / 2]),
        per_event(replay_times[rounds / 2]),
    )
}

/// Heap bytes per tracked user: feed a bare store (no policy) and count what stays allocated.
fn bytes_per_user(policy: &Policy, events: &[Vec<u8>]) -> (f64, u64) {
    let decoded: Vec<OktaEvent> = events
        .iter()
        .map(|b| OktaEvent::decode(b, DEFAULT_MAX_EVENT_BYTES).expect("simulated events decode"))
        .collect();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let store = StateStore::new(policy.features().clone(), StateLimits::default());
    for event in &decoded {
        store.record(event.user().as_ref().map(|u| u.id.as_str()), event);
    }
    let users = store.user_count();
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    ((after - before) as f64 / users.max(1) as f64, users)
}

fn main() {
    let cold_day = simulated(1_000, 1);
    let days = 15;
    let (history, warm_day) = split_last_day(simulated(300, days), days);
    let policy = policy();

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("cold_working_day");
    group.throughput(Throughput::Elements(cold_day.len() as u64));
    group.bench_function("parse", |b| b.iter(|| black_box(parse_all(&cold_day))));
    group.bench_function("replay", |b| {
        b.iter_batched(
            || Detector::new(policy.clone(), StateLimits::default()),
            |mut detector| black_box(replay_all(&mut detector, &cold_day)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    c.final_summary();

    // A cold day starts from empty state: every baseline value is new, so rules rarely stop at
    // their first test. A warm day is day 15 on a detector that has seen days 1–14: production.
    let (cold_parse, cold_replay) = figures(&policy, &[], &cold_day, 5);
    let (warm_parse, warm_replay) = figures(&policy, &history, &warm_day, 3);
    let mut detector = Detector::new(policy.clone(), StateLimits::default());
    let decisions = replay_all(&mut detector, &cold_day);
    let (per_user, users) = bytes_per_user(&policy, &history);

    println!();
    println!("figures (medians of alternating rounds in this process):");
    let rows = [
        (
            "cold day: 1,000 users, empty state",
            cold_day.len(),
            cold_parse,
            cold_replay,
        ),
        (
            "warm day: 300 users, day 15 after 14 days",
            warm_day.len(),
            warm_parse,
            warm_replay,
        ),
    ];
    for (name, n, parse, replay) in rows {
        println!("  {name} ({n} events)");
        println!(
            "    bare serde_json parse : {parse:7.2} µs/event ({:.0} events/s)",
            1e6 / parse
        );
        println!(
            "    full replay           : {replay:7.2} µs/event ({:.0} events/s)",
            1e6 / replay
        );
        println!(
            "    replay / parse        : {:7.2}×  (target ≤ 3×)",
            replay / parse
        );
    }
    println!("  decisions on the cold day: {decisions}");
    println!("  state per tracked user: {per_user:.0} bytes (heap, counting allocator, {users} users after 14 days)");
}
