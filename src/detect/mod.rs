//! The detect stage. `pipeline` is the pure, synchronous heart (event → state → policy →
//! decisions) shared by `vigil replay`, the benches and the live Kafka loop.

pub mod command;
pub mod live;
pub mod pipeline;
mod rego_input;
pub mod reload;

pub use live::{DetectCounters, LiveDetect};
pub use pipeline::{Detector, Outcome};
