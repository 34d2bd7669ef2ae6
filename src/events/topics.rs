//! Topic and consumer-group names (with the `kafka.topic_prefix`), which group reads which
//! topics, and creating the topics at start-up.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::time::Duration;

/// How long topic creation may take before start-up goes on without it.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    ConvMsgCreated,
    ProductViewed,
    OrderCompleted,
    UserBehavior,
    RecommendationEvents,
    AnalyticsEvents,
    PurchasePatternAnalyzed,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::ConvMsgCreated,
        Topic::ProductViewed,
        Topic::OrderCompleted,
        Topic::UserBehavior,
        Topic::RecommendationEvents,
        Topic::AnalyticsEvents,
        Topic::PurchasePatternAnalyzed,
    ];

    /// The name without prefix, as in DESIGN.md.
    pub fn base_name(self) -> &'static str {
        match self {
            Topic::ConvMsgCreated => "conv-msg-created",
            Topic::ProductViewed => "product-viewed",
            Topic::OrderCompleted => "order-completed",
            Topic::UserBehavior => "user-behavior",
            Topic::RecommendationEvents => "recommendation-events",
            Topic::AnalyticsEvents => "analytics-events",
            Topic::PurchasePatternAnalyzed => "purchase-pattern-analyzed",
        }
    }

    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}{}", self.base_name())
    }

    pub fn from_base_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.base_name() == name)
    }
}

/// The four consumer groups and what each reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumerGroup {
    /// Indexes conversation messages in the search server.
    EsSync,
    /// Turns messages and behaviour into preference profiles.
    PreferenceAnalysis,
    /// Invalidates (and later precomputes) cached recommendations.
    Recommendation,
    /// Trending and popularity counters.
    Analytics,
}

impl ConsumerGroup {
    pub const ALL: [ConsumerGroup; 4] = [
        ConsumerGroup::EsSync,
        ConsumerGroup::PreferenceAnalysis,
        ConsumerGroup::Recommendation,
        ConsumerGroup::Analytics,
    ];

    pub fn base_name(self) -> &'static str {
        match self {
            ConsumerGroup::EsSync => "es-sync",
            ConsumerGroup::PreferenceAnalysis => "preference-analysis",
            ConsumerGroup::Recommendation => "recommendation",
            ConsumerGroup::Analytics => "analytics",
        }
    }

    /// The Kafka `group.id`.
    pub fn group_id(self, prefix: &str) -> String {
        format!("{prefix}{}", self.base_name())
    }

    pub fn topics(self) -> &'static [Topic] {
        match self {
            ConsumerGroup::EsSync => &[Topic::ConvMsgCreated],
            ConsumerGroup::PreferenceAnalysis => &[
                Topic::ConvMsgCreated,
                Topic::ProductViewed,
                Topic::UserBehavior,
                Topic::OrderCompleted,
            ],
            ConsumerGroup::Recommendation => &[
                Topic::ProductViewed,
                Topic::UserBehavior,
                Topic::OrderCompleted,
                Topic::PurchasePatternAnalyzed,
            ],
            ConsumerGroup::Analytics => &[
                Topic::ProductViewed,
                Topic::UserBehavior,
                Topic::OrderCompleted,
                Topic::AnalyticsEvents,
            ],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Kafka admin client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("creating topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

/// Creates every topic that does not exist yet (an existing one is left as it is).
#[tracing::instrument(skip_all, fields(prefix))]
pub async fn ensure_topics(
    brokers: &str,
    client_id: &str,
    prefix: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", format!("{client_id}-admin"))
        .set("socket.timeout.ms", "5000")
        .create()?;
    let names: Vec<String> = Topic::ALL.iter().map(|t| t.name(prefix)).collect();
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, partitions.max(1), TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(CREATE_TIMEOUT));
    let results = admin.create_topics(&new_topics, &options).await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        assert_eq!(Topic::ProductViewed.name("t-"), "t-product-viewed");
        assert_eq!(ConsumerGroup::EsSync.group_id("t-"), "t-es-sync");
        assert_eq!(
            Topic::from_base_name("user-behavior"),
            Some(Topic::UserBehavior)
        );
    }

    #[test]
    fn every_topic_a_group_reads_exists() {
        for group in ConsumerGroup::ALL {
            for topic in group.topics() {
                assert!(Topic::ALL.contains(topic));
            }
        }
    }
}
