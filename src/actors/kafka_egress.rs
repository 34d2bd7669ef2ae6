//! `KafkaEgress`: the one Kafka producer of the service (idempotent, `acks=all`). It
//! publishes batches for the outbox dispatcher and answers with each record's delivery
//! report, so a row is marked sent only after the broker acknowledged it.
//!
//! An idempotent producer can hit a *fatal* error (librdkafka gives up on its sequence
//! numbers, e.g. after the broker lost its producer state); from then on it refuses every
//! record. The egress then builds a new producer from the same configuration before the next
//! batch, and the records refused meanwhile count as "broker unavailable", so the outbox keeps
//! them pending instead of charging attempts until they go dead.

use actix::prelude::*;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::time::Duration;

/// How long a record may wait for room in librdkafka's local queue.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(20);
const QUEUE_FULL_TRIES: u32 = 250;

pub struct KafkaEgress {
    config: ClientConfig,
    producer: FutureProducer,
    topic_prefix: String,
}

impl KafkaEgress {
    pub fn new(
        brokers: &str,
        client_id: &str,
        topic_prefix: &str,
        delivery_timeout: Duration,
        idempotent: bool,
    ) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("client.id", client_id)
            .set("enable.idempotence", idempotent.to_string())
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            )
            .set("reconnect.backoff.max.ms", "2000");
        let producer = config.create()?;
        Ok(Self {
            config,
            producer,
            topic_prefix: topic_prefix.to_string(),
        })
    }

    /// Replaces a producer that hit a fatal error; a failed rebuild keeps the old one and is
    /// tried again before the next batch.
    fn recover_from_fatal_error(&mut self) {
        let Some((code, reason)) = self.producer.client().fatal_error() else {
            return;
        };
        match self.config.create::<FutureProducer>() {
            Ok(producer) => {
                tracing::warn!(?code, %reason, "Kafka producer hit a fatal error; replaced it");
                self.producer = producer;
            }
            Err(error) => {
                tracing::error!(?code, %reason, %error, "cannot replace the failed Kafka producer")
            }
        }
    }
}

impl Actor for KafkaEgress {
    type Context = Context<Self>;
}

crate::actors::supervision::supervised!(KafkaEgress, "kafka_egress");

/// One record to publish; `topic` is the name without the deployment's prefix.
#[derive(Debug, Clone)]
pub struct OutboundRecord {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub event_id: String,
}

/// The broker's answer for one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Acked,
    Failed {
        error: String,
        /// The broker could not be reached (outage), rather than refusing this record.
        unavailable: bool,
    },
}

/// Publishes every record and answers, in order, with each one's delivery report.
#[derive(Message)]
#[rtype(result = "Vec<Delivery>")]
pub struct PublishBatch(pub Vec<OutboundRecord>);

impl Handler<PublishBatch> for KafkaEgress {
    type Result = ResponseFuture<Vec<Delivery>>;

    fn handle(&mut self, batch: PublishBatch, _: &mut Self::Context) -> Self::Result {
        self.recover_from_fatal_error();
        let producer = self.producer.clone();
        let prefix = self.topic_prefix.clone();
        Box::pin(async move {
            let mut pending = Vec::with_capacity(batch.0.len());
            for record in &batch.0 {
                pending.push(enqueue(&producer, &prefix, record).await);
            }
            let mut reports = Vec::with_capacity(pending.len());
            for queued in pending {
                reports.push(match queued {
                    Err(error) => failed(&error),
                    Ok(future) => match future.await {
                        Ok(Ok(_)) => Delivery::Acked,
                        Ok(Err((error, _))) => failed(&error),
                        Err(_) => Delivery::Failed {
                            error: "producer shut down before the delivery report".into(),
                            unavailable: true,
                        },
                    },
                });
            }
            reports
        })
    }
}

/// Hands one record to librdkafka, waiting briefly while its local queue is full.
async fn enqueue(
    producer: &FutureProducer,
    prefix: &str,
    record: &OutboundRecord,
) -> Result<rdkafka::producer::DeliveryFuture, KafkaError> {
    let topic = format!("{prefix}{}", record.topic);
    for _ in 0..QUEUE_FULL_TRIES {
        let headers = OwnedHeaders::new().insert(Header {
            key: "event_id",
            value: Some(record.event_id.as_bytes()),
        });
        let future_record = FutureRecord::to(&topic)
            .key(record.key.as_bytes())
            .payload(&record.payload)
            .headers(headers);
        match producer.send_result(future_record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(QUEUE_FULL_WAIT).await;
            }
            Err((error, _)) => return Err(error),
        }
    }
    Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
}

fn failed(error: &KafkaError) -> Delivery {
    Delivery::Failed {
        error: error.to_string(),
        unavailable: is_unavailable(error),
    }
}

/// Errors that mean "the broker is not there right now", not "this record is refused". A
/// fatal producer error is one of them: the record is fine, the producer is replaced.
fn is_unavailable(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        error.rdkafka_error_code(),
        Some(
            C::Fatal
                | C::MessageTimedOut
                | C::AllBrokersDown
                | C::BrokerTransportFailure
                | C::NetworkException
                | C::RequestTimedOut
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::QueueFull
                | C::NotEnoughReplicas
                | C::NotEnoughReplicasAfterAppend
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_producer_error_keeps_the_record_pending_but_a_refusal_does_not() {
        let fatal = KafkaError::MessageProduction(RDKafkaErrorCode::Fatal);
        assert_eq!(
            failed(&fatal),
            Delivery::Failed {
                error: fatal.to_string(),
                unavailable: true
            }
        );
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(!is_unavailable(&too_large));
    }

    #[test]
    fn a_healthy_producer_is_kept() {
        let mut egress =
            KafkaEgress::new("127.0.0.1:1", "test", "", Duration::from_secs(1), true).unwrap();
        let before = egress.producer.client().native_ptr();
        egress.recover_from_fatal_error();
        assert_eq!(egress.producer.client().native_ptr(), before);
    }
}
