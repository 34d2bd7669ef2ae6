//! `EventSink`: stands in for the owner of a consumer group whose work later issues add
//! (`es-sync` indexes messages with the search work, `preference-analysis` feeds the
//! `PreferenceActor`). It accepts every event, so the group's offsets and idempotency
//! records advance and its lag stays meaningful; it applies nothing.

use crate::events::apply::{ApplyError, ApplyEvent};
use actix::prelude::*;

#[derive(Default)]
pub struct EventSink;

impl Actor for EventSink {
    type Context = Context<Self>;
}

impl Handler<ApplyEvent> for EventSink {
    type Result = Result<(), ApplyError>;

    fn handle(&mut self, msg: ApplyEvent, _: &mut Self::Context) -> Self::Result {
        tracing::trace!(group = msg.group.base_name(), event_id = %msg.event.event_id, "event accepted");
        Ok(())
    }
}
