//! `KafkaEgress`: the one Kafka producer of the service (idempotent, `acks=all`). It
//! publishes batches for the outbox dispatcher and answers with each record's delivery
//! report, so a row is marked sent only after the broker acknowledged it.

use actix::prelude::*;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::time::Duration;

/// How long a record may wait for room in librdkafka's local queue.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(20);
const QUEUE_FULL_TRIES: u32 = 250;

pub struct KafkaEgress {
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
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", client_id)
            .set("enable.idempotence", idempotent.to_string())
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            )
            .set("reconnect.backoff.max.ms", "2000")
            .create()?;
        Ok(Self {
            producer,
            topic_prefix: topic_prefix.to_string(),
        })
    }
}

impl Actor for KafkaEgress {
    type Context = Context<Self>;
}

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

/// Errors that mean "the broker is not there right now", not "this record is refused".
fn is_unavailable(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        error.rdkafka_error_code(),
        Some(
            C::MessageTimedOut
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
