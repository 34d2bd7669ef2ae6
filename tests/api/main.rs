//! Integration tests: each starts the real service on port 0 against its own database on
//! the local stack (scripts/test.sh brings it up and exports its addresses).

mod embeddings;
mod event_support;
mod events;
mod hardening;
mod health;
mod helpers;
mod import;
mod model_parity;
mod product_embeddings;
mod products;
mod search;
