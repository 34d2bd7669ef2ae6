//! convrec: a conversational, hybrid product-recommendation service built as an actor system.

pub mod actors;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod import;
pub mod metrics;
pub mod ml;
pub mod telemetry;
