//! Integration tests: each starts the real service on port 0 against its own database on
//! the local stack (scripts/test.sh brings it up and exports its addresses).

mod analytics_rebuild;
mod authz;
mod chat_e2e;
mod chat_feedback;
mod chat_language;
mod chat_learning;
mod chat_support;
mod chat_ws;
mod conversations;
mod drain;
mod durable_events;
mod e5_parity;
mod embeddings;
mod eval;
mod event_support;
mod events;
mod fake_llm;
mod fuzz_regressions;
mod hardening;
mod health;
mod helpers;
mod import;
mod lexical;
mod llm;
mod member_ids;
mod model_parity;
mod openapi;
mod openapi_fuzz;
mod product_embeddings;
mod products;
mod profile_ranking;
mod recommendations;
mod search;
mod shared_state;
mod ws_fuzz;
