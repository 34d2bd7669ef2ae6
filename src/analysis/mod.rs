//! Local intent analysis and reply writing: the rule-based fallback for when no LLM answers.

pub mod fallback;
pub mod labels;
pub mod language;
pub mod lexicon;
pub mod price;
pub mod template;

pub use fallback::FallbackAnalyzer;
pub use language::ReplyLanguage;
pub use template::TemplateReplyWriter;
