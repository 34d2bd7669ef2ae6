//! Supervision of the long-lived actors (the Kafka consumers, the outbox dispatcher, the
//! producer, the groups' owners, the search indexer, the dependency monitor, the embedding
//! batcher and the recommender pool). Each is started under actix's `Supervisor`: when it
//! stops — a fatal error in its task, a panic caught at its task's boundary, or a [`Fail`] —
//! it is restarted on the same mailbox, so every address to it stays valid, its `started`
//! runs again (its timers and tasks come back) and `actor_restarts_total{actor}` counts it.
//! The embedding workers run on a `SyncArbiter`, which makes a new worker when one stops.
//! The trainer's and the recovery sweeper's loops catch a failed tick and go on.

use actix::prelude::*;

/// Makes a supervised actor stop as a fatal failure would; its supervisor restarts it.
/// Sent by the supervision test; nothing outside the process can send it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Fail;

/// Counts one restart of `actor`.
pub fn record_restart(actor: &'static str) {
    tracing::warn!(actor, "actor restarted by its supervisor");
    crate::metrics::ACTOR_RESTARTS
        .with_label_values(&[actor])
        .inc();
}

/// Implements `Supervised` (counting restarts; `$reset` puts back what the stopped run left
/// half done) and [`Fail`] for an actor.
macro_rules! supervised {
    ($actor:ty, $name:literal) => {
        $crate::actors::supervision::supervised!($actor, $name, |_actor| {});
    };
    ($actor:ty, $name:literal, |$this:ident| $reset:block) => {
        impl ::actix::Supervised for $actor {
            fn restarting(&mut self, _: &mut <Self as ::actix::Actor>::Context) {
                let $this = self;
                $reset
                $crate::actors::supervision::record_restart($name);
            }
        }

        impl ::actix::Handler<$crate::actors::supervision::Fail> for $actor {
            type Result = ();

            fn handle(
                &mut self,
                _: $crate::actors::supervision::Fail,
                ctx: &mut Self::Context,
            ) {
                tracing::warn!(actor = $name, "told to fail; stopping");
                ::actix::ActorContext::stop(ctx);
            }
        }
    };
}
pub(crate) use supervised;

/// `start()` under a supervisor.
pub trait StartSupervised: Actor<Context = Context<Self>> + Supervised {
    /// Starts the actor on the current arbiter under a supervisor.
    fn start_supervised(self) -> Addr<Self> {
        Supervisor::start(move |_| self)
    }
}

impl<A: Actor<Context = Context<A>> + Supervised> StartSupervised for A {}

/// A supervised actor by name, to make it fail.
#[derive(Clone)]
pub struct SupervisedActor {
    pub name: &'static str,
    pub fail: Recipient<Fail>,
}

impl SupervisedActor {
    pub fn new<A>(name: &'static str, addr: &Addr<A>) -> Self
    where
        A: Actor<Context = Context<A>> + Handler<Fail>,
    {
        Self {
            name,
            fail: addr.clone().recipient(),
        }
    }
}
