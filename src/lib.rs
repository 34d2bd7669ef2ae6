//! convrec: a conversational, hybrid product-recommendation service built as an actor system.

pub mod actors;
pub mod analysis;
pub mod app;
pub mod bench;
pub mod cache;
pub mod catalog;
pub mod chat;
pub mod cli;
pub mod config;
pub mod db;
pub mod embeddings;
pub mod eval;
pub mod events;
pub mod http;
pub mod identity;
pub mod import;
pub mod intent;
pub mod llm;
pub mod metrics;
pub mod ml;
pub mod recommend;
pub mod redis;
pub mod reply;
pub mod retry;
pub mod search;
pub mod telemetry;
