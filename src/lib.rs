//! Vigil: a real-time identity-threat responder.
//!
//! Okta System Log events flow one way through these modules:
//!
//! * [`event`] — decode Okta LogEvents (NDJSON, System Log pages, Event Hook envelopes).
//! * [`state`] — per-user state in event time (windows, baselines, travel, risk), declared by the
//!   policy directory's `features.toml`.
//! * [`policy`] — the Rego policies (regorus): load, evaluate the entrypoint, run tests.
//! * [`decision`] — the decision and action schema with deterministic ids.
//! * [`detect`] — event → state → policy → decisions; the one code path replay and live share.
//! * [`replay`], [`policy_test`], [`simulate`], [`demo`] — the offline commands; [`cli`] wires them.

pub mod actions_cli;
pub mod api_client;
pub mod bench;
pub mod bench_respond;
pub mod cli;
pub mod config;
pub mod connector;
pub mod decision;
pub mod demo;
pub mod detect;
pub mod event;
pub mod health;
pub mod http_server;
pub mod ingest;
pub mod kafka;
pub mod ledger;
pub mod metrics;
pub mod override_cli;
pub mod overrides;
pub mod policy;
pub mod policy_test;
pub mod rekey;
pub mod replay;
pub mod respond;
pub mod run;
pub mod shared_secret;
pub mod shutdown;
pub mod simulate;
pub mod state;
pub mod topics;
