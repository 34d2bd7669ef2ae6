//! `SessionRegistry`: knows every open chat socket of this instance (by session id, with its
//! member) and keeps the `ws_sessions_active` gauge equal to their number.

use crate::actors::chat_session::ChatSession;
use actix::prelude::*;
use prometheus::IntGauge;
use std::collections::HashMap;
use uuid::Uuid;

pub struct SessionRegistry {
    sessions: HashMap<Uuid, (String, Addr<ChatSession>)>,
    gauge: IntGauge,
}

impl SessionRegistry {
    pub fn new(gauge: IntGauge) -> Self {
        gauge.set(0);
        Self {
            sessions: HashMap::new(),
            gauge,
        }
    }

    fn update_gauge(&self) {
        self.gauge.set(self.sessions.len() as i64);
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;
}

/// A session opened.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterSession {
    pub session_id: Uuid,
    pub member_id: String,
    pub addr: Addr<ChatSession>,
}

/// A session closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterSession {
    pub session_id: Uuid,
}

/// Open sessions: all of them, or one member's.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountSessions {
    pub member_id: Option<String>,
}

impl Handler<RegisterSession> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: RegisterSession, _: &mut Self::Context) {
        self.sessions
            .insert(msg.session_id, (msg.member_id, msg.addr));
        self.update_gauge();
    }
}

impl Handler<UnregisterSession> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: UnregisterSession, _: &mut Self::Context) {
        self.sessions.remove(&msg.session_id);
        self.update_gauge();
    }
}

impl Handler<CountSessions> for SessionRegistry {
    type Result = usize;

    fn handle(&mut self, msg: CountSessions, _: &mut Self::Context) -> usize {
        match msg.member_id {
            None => self.sessions.len(),
            Some(member) => self
                .sessions
                .values()
                .filter(|(owner, _)| *owner == member)
                .count(),
        }
    }
}
