//! Ingest from Okta into the events topic: the Event Hook receiver (push) and the System Log
//! poller (pull; many high-value event types are not delivered by hooks).

pub mod command;
pub mod hook;
pub mod link;
pub mod poll;
