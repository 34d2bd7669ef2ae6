//! Long-lived workers, one actor per file with its messages beside it.

pub mod analytics;
pub mod dependency_monitor;
pub mod embedding;
pub mod embedding_batcher;
pub mod event_sink;
pub mod kafka_egress;
pub mod kafka_ingress;
pub mod outbox_dispatcher;
pub mod recommendation_cache;
pub mod search_indexer;
