//! The assistant's reply: what a reply writer sees and answers, and the template writer (the
//! LLM writer, `llm::LlmReplyWriter`, falls back to it).

pub mod template;

pub use template::TemplateReplyWriter;

use crate::intent::{IntentSource, ShoppingIntent};
use crate::recommend::RecommendedProduct;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// What the reply writer sees: the shopper's message, what was understood, and the products
/// the recommender chose. A reply names only these products, with their real price and stock.
#[derive(Debug, Clone, Copy)]
pub struct ReplyContext<'a> {
    pub message: &'a str,
    pub intent: &'a ShoppingIntent,
    pub products: &'a [RecommendedProduct],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrittenReply {
    pub text: String,
    pub source: IntentSource,
}

/// Writes the short assistant reply in the shopper's language. Never fails: an implementation
/// that calls a remote model falls back to a template.
pub trait ReplyWriter: Send + Sync {
    fn write<'a>(&'a self, context: ReplyContext<'a>) -> BoxFuture<'a, WrittenReply>;
}
