//! The batcher in front of the `EmbeddingActor` pool: gathers the texts of concurrent
//! requests into batches, so throughput grows with load while a lone request waits at most
//! `max_wait` for company.
//!
//! Policy: texts queue in arrival order. A batch leaves when a worker is free and either
//! `max_batch_size` texts are waiting or the oldest has waited `max_wait`. At most one batch
//! per worker is in flight; while all are busy the queue keeps filling, so batches grow with
//! load. A request larger than a batch is split over several and reassembled in order.
//! Requests whose caller has gone away are skipped. More than `queue_capacity` waiting texts
//! and a request is refused at once as overloaded (an empty queue always takes one request,
//! so a request larger than the capacity is not refused forever).

use crate::actors::embedding::EmbedBatch;
use crate::config::EmbeddingSettings;
use crate::embeddings::{EmbeddingError, VectorSource};
use crate::metrics::Metrics;
use actix::dev::{MessageResponse, OneshotSender};
use actix::prelude::*;
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub type EmbedResult = Result<Vec<Vec<f32>>, EmbeddingError>;

/// The service's vector source: requests wait here to be batched for the model workers.
impl VectorSource for Addr<EmbeddingBatcher> {
    fn compute(&self, texts: Vec<String>) -> BoxFuture<'static, EmbedResult> {
        let sent = self.send(Embed { texts });
        Box::pin(async move { sent.await.map_err(|_| EmbeddingError::Unavailable)? })
    }
}

/// Embeds `texts`; the vectors come back in the same order.
#[derive(Message)]
#[rtype(result = "EmbedResult")]
pub struct Embed {
    pub texts: Vec<String>,
}

/// The batcher's counters, for `GET /stats`.
#[derive(Message)]
#[rtype(result = "BatcherStats")]
pub struct GetBatcherStats;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct BatcherStats {
    /// Texts waiting for a worker.
    pub waiting_texts: usize,
    /// Requests with texts still waiting.
    pub waiting_requests: usize,
    /// Batches at the workers now.
    pub in_flight: usize,
    /// Batches dispatched since start.
    pub batches: u64,
    /// Texts dispatched since start.
    pub texts: u64,
    pub largest_batch: usize,
}

/// The limits the batcher works to.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    pub max_batch_size: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
    /// Batches at the workers at once: one per worker, so the rest wait here and batch up.
    pub max_in_flight: usize,
}

impl From<&EmbeddingSettings> for BatchPolicy {
    fn from(settings: &EmbeddingSettings) -> Self {
        Self {
            max_batch_size: settings.max_batch_size.max(1),
            max_wait: Duration::from_millis(settings.max_wait_ms),
            queue_capacity: settings.queue_capacity,
            max_in_flight: settings.workers.max(1),
        }
    }
}

/// One caller's request.
struct Pending {
    texts: Vec<String>,
    /// The first text not yet dispatched.
    next: usize,
    vectors: Vec<Vec<f32>>,
    /// Texts dispatched whose vectors have not come back.
    outstanding: usize,
    reply: oneshot::Sender<EmbedResult>,
    queued_at: Instant,
}

impl Pending {
    fn undispatched(&self) -> usize {
        self.texts.len() - self.next
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// Texts `start..start + len` of request `id` travel in a batch.
#[derive(Debug, Clone, Copy)]
struct Segment {
    id: u64,
    start: usize,
    len: usize,
}

pub struct EmbeddingBatcher {
    pool: Recipient<EmbedBatch>,
    policy: BatchPolicy,
    metrics: Metrics,
    requests: HashMap<u64, Pending>,
    /// Requests with undispatched texts, oldest first.
    queue: VecDeque<u64>,
    next_id: u64,
    /// Undispatched texts of the requests in `queue`.
    waiting: usize,
    in_flight: usize,
    timer: Option<(Instant, SpawnHandle)>,
    stats: BatcherStats,
}

impl EmbeddingBatcher {
    pub fn new(pool: Recipient<EmbedBatch>, policy: BatchPolicy, metrics: Metrics) -> Self {
        Self {
            pool,
            policy,
            metrics,
            requests: HashMap::new(),
            queue: VecDeque::new(),
            next_id: 0,
            waiting: 0,
            in_flight: 0,
            timer: None,
            stats: BatcherStats::default(),
        }
    }

    fn admits(&self, texts: usize) -> bool {
        self.waiting == 0 || self.waiting + texts <= self.policy.queue_capacity
    }

    /// Forgets a request (its caller left, or its batch failed); returns its reply channel.
    fn remove(&mut self, id: u64) -> Option<oneshot::Sender<EmbedResult>> {
        let pending = self.requests.remove(&id)?;
        if pending.undispatched() > 0 {
            self.waiting -= pending.undispatched();
            self.queue.retain(|queued| *queued != id);
        }
        Some(pending.reply)
    }

    /// Drops every waiting request whose caller has gone, freeing its share of the queue.
    fn purge_abandoned(&mut self) {
        let abandoned: Vec<u64> = self
            .queue
            .iter()
            .copied()
            .filter(|id| self.requests[id].abandoned())
            .collect();
        for id in abandoned {
            self.remove(id);
        }
    }

    /// Sends batches while a worker is free and a batch is due; otherwise sets a timer for
    /// when the oldest text's wait runs out. Called after every change of state.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        loop {
            while let Some(&id) = self.queue.front() {
                if !self.requests[&id].abandoned() {
                    break;
                }
                self.remove(id);
            }
            let Some(&oldest) = self.queue.front() else {
                self.cancel_timer(ctx);
                break;
            };
            if self.in_flight >= self.policy.max_in_flight {
                // A returning batch calls this again.
                self.cancel_timer(ctx);
                break;
            }
            let due = self.requests[&oldest].queued_at + self.policy.max_wait;
            if self.waiting >= self.policy.max_batch_size || Instant::now() >= due {
                self.dispatch(ctx);
            } else {
                self.arm_timer(ctx, due);
                break;
            }
        }
        self.publish_depth();
    }

    fn publish_depth(&self) {
        self.metrics.embedding_queue_depth.set(self.waiting as i64);
    }

    fn arm_timer(&mut self, ctx: &mut Context<Self>, due: Instant) {
        if self.timer.as_ref().is_some_and(|(at, _)| *at == due) {
            return;
        }
        self.cancel_timer(ctx);
        let delay = due.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.schedule(ctx);
        });
        self.timer = Some((due, handle));
    }

    fn cancel_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
    }

    /// Takes up to `max_batch_size` waiting texts, oldest first, and sends them to the pool.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let capacity = self.policy.max_batch_size;
        let mut texts = Vec::with_capacity(capacity.min(self.waiting));
        let mut segments = Vec::new();
        while texts.len() < capacity {
            let Some(&id) = self.queue.front() else { break };
            let pending = self.requests.get_mut(&id).expect("queued requests exist");
            if pending.abandoned() {
                self.remove(id);
                continue;
            }
            let start = pending.next;
            let len = pending.undispatched().min(capacity - texts.len());
            texts.extend(
                pending.texts[start..start + len]
                    .iter_mut()
                    .map(std::mem::take),
            );
            pending.next += len;
            pending.outstanding += len;
            if pending.undispatched() == 0 {
                self.queue.pop_front();
            }
            self.waiting -= len;
            segments.push(Segment { id, start, len });
        }
        if texts.is_empty() {
            return;
        }
        self.in_flight += 1;
        self.stats.batches += 1;
        self.stats.texts += texts.len() as u64;
        self.stats.largest_batch = self.stats.largest_batch.max(texts.len());
        self.metrics
            .embedding_batch_size
            .observe(texts.len() as f64);
        tracing::debug!(
            texts = texts.len(),
            requests = segments.len(),
            "batch dispatched"
        );
        let sent = texts.len();
        ctx.spawn(self.pool.send(EmbedBatch { texts }).into_actor(self).map(
            move |result, act, ctx| {
                act.in_flight -= 1;
                let result = match result {
                    Ok(Ok(vectors)) if vectors.len() == sent => Ok(vectors),
                    Ok(Ok(vectors)) => Err(EmbeddingError::Failed(format!(
                        "encoder returned {} vectors for {sent} texts",
                        vectors.len()
                    ))),
                    Ok(Err(e)) => Err(EmbeddingError::Failed(e.to_string())),
                    Err(_) => Err(EmbeddingError::Unavailable),
                };
                act.complete(segments, result);
                act.schedule(ctx);
            },
        ));
    }

    /// Hands a batch's vectors back to the requests it carried, answering each request once
    /// all of its texts are back.
    fn complete(&mut self, segments: Vec<Segment>, result: Result<Vec<Vec<f32>>, EmbeddingError>) {
        let vectors = match result {
            Ok(vectors) => vectors,
            Err(error) => {
                tracing::warn!(%error, "embedding batch failed");
                for segment in segments {
                    if let Some(reply) = self.remove(segment.id) {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
                return;
            }
        };
        let mut vectors = vectors.into_iter();
        for segment in segments {
            let chunk = vectors.by_ref().take(segment.len);
            let Some(pending) = self.requests.get_mut(&segment.id) else {
                // The caller left; its vectors are dropped.
                chunk.for_each(drop);
                continue;
            };
            for (slot, vector) in pending.vectors[segment.start..].iter_mut().zip(chunk) {
                *slot = vector;
            }
            pending.outstanding -= segment.len;
            if pending.outstanding == 0 && pending.undispatched() == 0 {
                let done = self.requests.remove(&segment.id).expect("present");
                let _ = done.reply.send(Ok(done.vectors));
            }
        }
    }
}

impl Actor for EmbeddingBatcher {
    type Context = Context<Self>;

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.metrics.embedding_queue_depth.set(0);
        Running::Stop
    }
}

// The batches in flight when it stopped were dropped with it: every waiting request is
// dropped too (its caller gets `unavailable` at once rather than waiting forever).
crate::actors::supervision::supervised!(EmbeddingBatcher, "embedding_batcher", |batcher| {
    batcher.requests.clear();
    batcher.queue.clear();
    batcher.waiting = 0;
    batcher.in_flight = 0;
    batcher.timer = None;
    batcher.publish_depth();
});

impl Handler<Embed> for EmbeddingBatcher {
    type Result = PendingReply;

    fn handle(&mut self, msg: Embed, ctx: &mut Self::Context) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        let count = msg.texts.len();
        if count == 0 {
            let _ = reply.send(Ok(Vec::new()));
            return PendingReply(answer);
        }
        if !self.admits(count) {
            self.purge_abandoned();
            self.publish_depth();
        }
        if !self.admits(count) {
            let _ = reply.send(Err(EmbeddingError::Overloaded {
                waiting: self.waiting,
                capacity: self.policy.queue_capacity,
            }));
            return PendingReply(answer);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(
            id,
            Pending {
                texts: msg.texts,
                next: 0,
                vectors: vec![Vec::new(); count],
                outstanding: 0,
                reply,
                queued_at: Instant::now(),
            },
        );
        self.queue.push_back(id);
        self.waiting += count;
        self.schedule(ctx);
        PendingReply(answer)
    }
}

impl Handler<GetBatcherStats> for EmbeddingBatcher {
    type Result = MessageResult<GetBatcherStats>;

    fn handle(&mut self, _: GetBatcherStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(BatcherStats {
            waiting_texts: self.waiting,
            waiting_requests: self.queue.len(),
            in_flight: self.in_flight,
            ..self.stats
        })
    }
}

/// The answer to an [`Embed`]: forwards the batcher's reply to the caller and, when the
/// caller stops waiting (its `send` future was dropped), closes the batcher's side so the
/// request's texts are skipped.
pub struct PendingReply(oneshot::Receiver<EmbedResult>);

impl MessageResponse<EmbeddingBatcher, Embed> for PendingReply {
    fn handle(self, _: &mut Context<EmbeddingBatcher>, tx: Option<OneshotSender<EmbedResult>>) {
        // `do_send`: nobody waits, and dropping the receiver marks the request abandoned.
        let Some(mut tx) = tx else { return };
        let answer = self.0;
        actix::spawn(async move {
            tokio::select! {
                result = answer => {
                    let _ = tx.send(result.unwrap_or(Err(EmbeddingError::Unavailable)));
                }
                () = tx.closed() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::embedding::{start_pool, EmbeddingActor};
    use crate::ml::{EmbedError, Embedder};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A stand-in for the model: the vector of a text is `[its length, its first byte]`, so
    /// every result can be traced back to its text. It records each batch's size and can be
    /// slowed down to hold the workers busy.
    #[derive(Clone)]
    struct TestEmbedder {
        delay: Duration,
        batches: Arc<std::sync::Mutex<Vec<usize>>>,
        calls: Arc<AtomicUsize>,
    }

    impl TestEmbedder {
        fn new(delay_ms: u64) -> Self {
            Self {
                delay: Duration::from_millis(delay_ms),
                batches: Arc::default(),
                calls: Arc::default(),
            }
        }

        fn vector(text: &str) -> Vec<f32> {
            vec![
                text.len() as f32,
                f32::from(text.bytes().next().unwrap_or(0)),
            ]
        }
    }

    impl Embedder for TestEmbedder {
        fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.batches.lock().unwrap().push(texts.len());
            std::thread::sleep(self.delay);
            if texts.iter().any(|t| t == "fail") {
                return Err(EmbedError::Inference("asked to fail".into()));
            }
            Ok(texts.iter().map(|t| Self::vector(t)).collect())
        }

        fn dimension(&self) -> usize {
            2
        }

        fn model_id(&self) -> &str {
            "test"
        }

        fn max_tokens(&self) -> usize {
            16
        }

        fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>, EmbedError> {
            Ok(texts.iter().map(|t| t.len().min(16)).collect())
        }

        fn clone_boxed(&self) -> Box<dyn Embedder> {
            Box::new(self.clone())
        }
    }

    fn policy(max_batch_size: usize, max_wait_ms: u64, capacity: usize) -> BatchPolicy {
        BatchPolicy {
            max_batch_size,
            max_wait: Duration::from_millis(max_wait_ms),
            queue_capacity: capacity,
            max_in_flight: 2,
        }
    }

    fn start(embedder: &TestEmbedder, policy: BatchPolicy) -> Addr<EmbeddingBatcher> {
        let pool: Addr<EmbeddingActor> = start_pool(embedder, policy.max_in_flight, 1 << 20);
        EmbeddingBatcher::new(pool.recipient(), policy, Metrics::new()).start()
    }

    fn texts(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{prefix}{}", "x".repeat(i)))
            .collect()
    }

    async fn embed(batcher: &Addr<EmbeddingBatcher>, texts: Vec<String>) -> EmbedResult {
        batcher.send(Embed { texts }).await.expect("batcher runs")
    }

    #[actix_web::test]
    async fn concurrent_requests_share_batches_and_each_gets_its_own_vectors_in_order() {
        let embedder = TestEmbedder::new(20);
        let batcher = start(&embedder, policy(32, 50, 1024));
        let requests: Vec<Vec<String>> = (0..8).map(|i| texts(&format!("r{i}"), 3)).collect();
        let answers =
            futures::future::join_all(requests.iter().map(|t| embed(&batcher, t.clone()))).await;
        for (request, answer) in requests.iter().zip(answers) {
            let expected: Vec<Vec<f32>> = request.iter().map(|t| TestEmbedder::vector(t)).collect();
            assert_eq!(answer.unwrap(), expected);
        }
        let batches = embedder.batches.lock().unwrap().clone();
        assert!(batches.len() < 8, "8 requests were batched: {batches:?}");
        assert_eq!(batches.iter().sum::<usize>(), 24);
    }

    #[actix_web::test]
    async fn a_request_larger_than_a_batch_is_split_and_reassembled_in_order() {
        let embedder = TestEmbedder::new(0);
        let batcher = start(&embedder, policy(4, 1, 1024));
        let input = texts("t", 11);
        let answer = embed(&batcher, input.clone()).await.unwrap();
        let expected: Vec<Vec<f32>> = input.iter().map(|t| TestEmbedder::vector(t)).collect();
        assert_eq!(answer, expected);
        let batches = embedder.batches.lock().unwrap().clone();
        assert!(batches.iter().all(|&n| n <= 4), "{batches:?}");
        let stats = batcher.send(GetBatcherStats).await.unwrap();
        assert_eq!(stats.texts, 11);
        assert_eq!(stats.largest_batch, 4);
    }

    #[actix_web::test]
    async fn a_lone_request_waits_no_longer_than_max_wait_for_company() {
        let embedder = TestEmbedder::new(0);
        let batcher = start(&embedder, policy(32, 30, 1024));
        let started = Instant::now();
        embed(&batcher, vec!["alone".into()]).await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_millis(500), "{waited:?}");
    }

    #[actix_web::test]
    async fn a_full_batch_leaves_without_waiting() {
        let embedder = TestEmbedder::new(0);
        // A wait far longer than the test: only a full batch can leave.
        let batcher = start(&embedder, policy(4, 60_000, 1024));
        let answer =
            tokio::time::timeout(Duration::from_secs(5), embed(&batcher, texts("full", 4)))
                .await
                .expect("a full batch is sent at once");
        assert_eq!(answer.unwrap().len(), 4);
    }

    #[actix_web::test]
    async fn more_waiting_texts_than_the_capacity_are_refused_as_overloaded() {
        let embedder = TestEmbedder::new(200);
        let mut policy = policy(2, 0, 4);
        policy.max_in_flight = 1;
        let batcher = start(&embedder, policy);
        // The first batch occupies the only worker; then the queue fills up.
        let busy = batcher.send(Embed {
            texts: texts("a", 2),
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let queued = batcher.send(Embed {
            texts: texts("b", 4),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let refused = embed(&batcher, texts("c", 1)).await;
        assert_eq!(
            refused,
            Err(EmbeddingError::Overloaded {
                waiting: 4,
                capacity: 4
            })
        );
        assert_eq!(busy.await.unwrap().unwrap().len(), 2);
        assert_eq!(queued.await.unwrap().unwrap().len(), 4);
    }

    #[actix_web::test]
    async fn requests_whose_caller_went_away_are_skipped() {
        let embedder = TestEmbedder::new(150);
        let mut policy = policy(8, 0, 1024);
        policy.max_in_flight = 1;
        let batcher = start(&embedder, policy);
        let busy = batcher.send(Embed {
            texts: texts("busy", 1),
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Queued behind the busy worker, then abandoned by its caller.
        let gone = batcher.send(Embed {
            texts: vec!["never embedded".into()],
        });
        let _ = tokio::time::timeout(Duration::from_millis(20), gone).await;
        let kept = embed(&batcher, vec!["kept".into()]).await.unwrap();
        assert_eq!(kept, vec![TestEmbedder::vector("kept")]);
        busy.await.unwrap().unwrap();
        let batches = embedder.batches.lock().unwrap().clone();
        assert_eq!(batches, vec![1, 1], "the abandoned text was never embedded");
    }

    #[actix_web::test]
    async fn a_failed_batch_fails_only_the_requests_in_it() {
        let embedder = TestEmbedder::new(0);
        let batcher = start(&embedder, policy(1, 0, 1024));
        let (failed, fine) = futures::join!(
            embed(&batcher, vec!["fail".into()]),
            embed(&batcher, vec!["fine".into()])
        );
        assert!(matches!(failed, Err(EmbeddingError::Failed(m)) if m.contains("asked to fail")));
        assert_eq!(fine.unwrap(), vec![TestEmbedder::vector("fine")]);
        let stats = batcher.send(GetBatcherStats).await.unwrap();
        assert_eq!((stats.waiting_texts, stats.in_flight), (0, 0));
    }

    #[actix_web::test]
    async fn an_empty_request_is_answered_without_a_batch() {
        let embedder = TestEmbedder::new(0);
        let batcher = start(&embedder, policy(4, 1, 1024));
        assert_eq!(
            embed(&batcher, Vec::new()).await.unwrap(),
            Vec::<Vec<f32>>::new()
        );
        assert_eq!(embedder.calls.load(Ordering::SeqCst), 0);
    }
}
