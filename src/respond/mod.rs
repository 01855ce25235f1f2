//! The respond stage: decisions in, vendor actions out, each effectively once (see
//! [`stage`] for how), with delayed and conditional actions, analyst overrides and a
//! blast-radius guard.

pub mod api;
pub mod command;
pub mod conditions;
pub mod guard;
pub mod stage;

pub use stage::{LiveRespond, RespondCounters, RespondParts};
