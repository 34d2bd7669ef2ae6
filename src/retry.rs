//! Capped exponential backoff, the one rule every retry loop of the service waits by (the
//! outbox dispatcher, the Kafka consumers, the LLM client).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The wait before retry number `attempt` (1-based): `base · 2^(attempt-1)`, at most `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubling = attempt.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doubling).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_and_is_capped() {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(backoff.delay(0), Duration::from_millis(500));
        assert_eq!(backoff.delay(1), Duration::from_millis(500));
        assert_eq!(backoff.delay(2), Duration::from_millis(1000));
        assert_eq!(backoff.delay(4), Duration::from_millis(4000));
        assert_eq!(backoff.delay(7), Duration::from_secs(30));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(30));
    }
}
