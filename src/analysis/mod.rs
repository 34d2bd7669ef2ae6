//! Local intent analysis: the rule-based analyser for when no LLM answers, the rules that
//! read a message as feedback on the previous reply, and the labels and language detection
//! that replies and explanations share.

pub mod fallback;
pub mod feedback;
pub mod labels;
pub mod language;
pub mod lexicon;
pub mod price;

pub use fallback::FallbackAnalyzer;
pub use language::ReplyLanguage;
