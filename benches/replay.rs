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

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use vigil::detect::Detector;
use vigil::event::{OktaEvent, DEFAULT_MAX_EVENT_BYTES};
use vigil::policy::{LoadOptions, Policy, PolicySource};
use vigil::simulate::{generate, Attack, SimConfig};
use vigil::state::{StateLimits, StateStore};

/// Counts live heap bytes so the bench can report what state really costs per user.
struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn working_day() -> Vec<Vec<u8>> {
    let config = SimConfig {
        users: 1_000,
        days: 1,
        start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("valid date"),
        seed: 7,
        attacks: Attack::ALL.to_vec(),
    };
    generate(&config)
        .events
        .iter()
        .map(|e| serde_json::to_vec(e).expect("simulated events serialise"))
        .collect()
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

fn main() {
    let events = working_day();
    let n = events.len() as u64;
    let policy = policy();

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("working_day");
    group.throughput(Throughput::Elements(n));
    group.bench_function("parse", |b| b.iter(|| black_box(parse_all(&events))));
    group.bench_function("replay", |b| {
        b.iter_batched(
            || Detector::new(policy.clone(), StateLimits::default()),
            |mut detector| black_box(replay_all(&mut detector, &events)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    c.final_summary();

    // The figures block: the same two loops, alternated over a few rounds so both see the same
    // machine load, with the median taken.
    let rounds = 5;
    let mut parse_times = Vec::new();
    let mut replay_times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        black_box(parse_all(&events));
        parse_times.push(started.elapsed());
        let mut detector = Detector::new(policy.clone(), StateLimits::default());
        let started = Instant::now();
        black_box(replay_all(&mut detector, &events));
        replay_times.push(started.elapsed());
    }
    parse_times.sort();
    replay_times.sort();
    let parse = parse_times[rounds / 2].as_secs_f64() / n as f64;
    let replay = replay_times[rounds / 2].as_secs_f64() / n as f64;

    let mut detector = Detector::new(policy.clone(), StateLimits::default());
    let decisions = replay_all(&mut detector, &events);
    // State alone: feed a bare store (no policy evaluation) and count what stays allocated.
    let decoded: Vec<OktaEvent> = events
        .iter()
        .map(|b| OktaEvent::decode(b, DEFAULT_MAX_EVENT_BYTES).expect("simulated events decode"))
        .collect();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let store = StateStore::new(policy.features().clone(), StateLimits::default());
    for event in &decoded {
        black_box(store.observe(event.user().as_ref().map(|u| u.id.as_str()), event));
    }
    let users = store.user_count();
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    let per_user = (after - before) as f64 / users.max(1) as f64;

    println!();
    println!(
        "figures ({n} events of a simulated working day, {users} users, {decisions} decisions):"
    );
    println!(
        "  bare serde_json parse : {:8.2} µs/event  ({:.0} events/s)",
        parse * 1e6,
        1.0 / parse
    );
    println!(
        "  full replay           : {:8.2} µs/event  ({:.0} events/s)",
        replay * 1e6,
        1.0 / replay
    );
    println!(
        "  replay / parse        : {:8.2}×  (target ≤ 3×)",
        replay / parse
    );
    println!(
        "  state per tracked user: {per_user:8.0} bytes (heap, measured; includes the cache entry)"
    );
}
