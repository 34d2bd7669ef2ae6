//! The message a `KafkaIngress` actor sends to the actor that owns a consumer group's work.

use crate::events::envelope::Envelope;
use crate::events::topics::ConsumerGroup;
use actix::prelude::*;

/// Apply one event. The ingress commits the record's offset only after the owner answered
/// `Ok`, and records the event id so a redelivered record is skipped.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), ApplyError>")]
pub struct ApplyEvent {
    pub group: ConsumerGroup,
    pub event: Envelope,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The owner cannot apply it now (a dependency is down, it is overloaded): the ingress
    /// keeps the record, pauses its partitions and tries again later.
    #[error("retry later: {0}")]
    Retry(String),
    /// The event can never be applied (its payload does not fit its type): it is parked.
    #[error("invalid event: {0}")]
    Invalid(String),
}
