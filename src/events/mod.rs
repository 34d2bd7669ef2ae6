//! The event backbone (docs/events.md): the envelope, topics, the transactional outbox, the
//! idempotency keys of reported interactions, and
//! how a group's owner applies an event. The actors that move events
//! (`OutboxDispatcher` → `KafkaEgress` → Kafka → `KafkaIngress` → the group's owner) are
//! started by `actors::event_backbone`.

pub mod apply;
pub mod envelope;
pub mod idempotency;
pub mod metrics;
pub mod outbox;
pub mod topics;
