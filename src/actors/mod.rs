//! Long-lived workers, one actor per file with its messages beside it.

pub mod analytics;
pub mod chat_recovery;
pub mod chat_session;
pub mod dependency_monitor;
pub mod embedding;
pub mod embedding_batcher;
pub mod event_backbone;
pub mod kafka_egress;
pub mod kafka_ingress;
pub mod model_trainer;
pub mod outbox_dispatcher;
pub mod preference;
pub mod recommendation_cache;
pub mod recommender;
pub mod search_indexer;
pub mod supervision;
