//! Long-lived workers, one actor per file with its messages beside it.

pub mod dependency_monitor;
