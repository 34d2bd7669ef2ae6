//! The benchmark's two text sets, chosen deterministically from a product catalog so every
//! run (and the Python baseline, which reads the same JSON file) embeds the same strings:
//!
//! - `short`: product titles of 10–16 tokens (special tokens included), like a chat message
//!   or a title being indexed;
//! - `long`: title, description and bullet points cut at a word boundary to at most 128
//!   tokens (special tokens included), like a product being indexed.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::Path;
use tokenizers::Tokenizer;

/// Token budget of a long text, `[CLS]` and `[SEP]` included.
pub const LONG_TOKENS: usize = 128;
/// Token range of a short text, `[CLS]` and `[SEP]` included.
pub const SHORT_TOKENS: std::ops::RangeInclusive<usize> = 10..=16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextSets {
    /// Where the texts came from (a file path).
    pub source: String,
    pub short: Vec<String>,
    pub long: Vec<String>,
}

impl TextSets {
    pub fn get(&self, kind: TextKind) -> &[String] {
        match kind {
            TextKind::Short => &self.short,
            TextKind::Long => &self.long,
        }
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read texts {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a text set", path.display()))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextKind {
    Short,
    Long,
}

impl TextKind {
    pub fn name(self) -> &'static str {
        match self {
            TextKind::Short => "short",
            TextKind::Long => "long",
        }
    }
}

/// The fields of a catalog line the benchmark reads (ESCI and the demo catalog both have
/// `title` and `description`; ESCI adds `bullet_points`).
#[derive(Debug, Deserialize)]
struct CatalogLine {
    title: Option<String>,
    description: Option<String>,
    bullet_points: Option<String>,
}

/// Reads up to `per_kind` short and long texts from a JSON Lines catalog (ESCI products or
/// convrec's demo catalog), counting tokens with the model's own tokenizer.
pub fn from_catalog(
    catalog: &Path,
    tokenizer_file: &Path,
    per_kind: usize,
) -> anyhow::Result<TextSets> {
    let mut tokenizer = Tokenizer::from_file(tokenizer_file)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", tokenizer_file.display()))?;
    tokenizer
        .with_truncation(None)
        .map_err(anyhow::Error::msg)?;
    tokenizer.with_padding(None);
    let file = std::fs::File::open(catalog)
        .with_context(|| format!("cannot open catalog {}", catalog.display()))?;
    let (mut short, mut long) = (Vec::new(), Vec::new());
    for line in std::io::BufReader::new(file).lines() {
        if short.len() >= per_kind && long.len() >= per_kind {
            break;
        }
        let line = line?;
        let Ok(item) = serde_json::from_str::<CatalogLine>(&line) else {
            continue;
        };
        let title = item.title.unwrap_or_default().trim().to_string();
        if title.is_empty() {
            continue;
        }
        if short.len() < per_kind {
            let count = token_count(&tokenizer, &title)?;
            if SHORT_TOKENS.contains(&count) {
                short.push(title.clone());
            }
        }
        if long.len() < per_kind {
            let body = [
                title,
                item.description.unwrap_or_default(),
                item.bullet_points.unwrap_or_default(),
            ]
            .iter()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(". ");
            if let Some(cut) = cut_to_tokens(&tokenizer, &body, LONG_TOKENS)? {
                long.push(cut);
            }
        }
    }
    anyhow::ensure!(
        !short.is_empty() && !long.is_empty(),
        "{} has no titles of {SHORT_TOKENS:?} tokens or no texts of {LONG_TOKENS} tokens",
        catalog.display()
    );
    Ok(TextSets {
        source: catalog.display().to_string(),
        short,
        long,
    })
}

fn token_count(tokenizer: &Tokenizer, text: &str) -> anyhow::Result<usize> {
    Ok(tokenizer
        .encode(text, true)
        .map_err(anyhow::Error::msg)?
        .get_ids()
        .len())
}

/// `text` cut after a whole word so that it has at most `budget` tokens (special tokens
/// included) and at least `budget - 4`; `None` when the text is shorter than that.
fn cut_to_tokens(
    tokenizer: &Tokenizer,
    text: &str,
    budget: usize,
) -> anyhow::Result<Option<String>> {
    let encoding = tokenizer.encode(text, false).map_err(anyhow::Error::msg)?;
    let tokens = encoding.get_tokens();
    let offsets = encoding.get_offsets();
    let room = budget - 2; // [CLS] and [SEP]
    if tokens.len() < room {
        return Ok(None);
    }
    // The last token we may keep ends a word: the token after it does not continue it.
    let Some(last) = (room.saturating_sub(4)..room)
        .rev()
        .find(|&i| tokens.get(i + 1).is_none_or(|t| !t.starts_with("##")))
    else {
        return Ok(None);
    };
    let cut = text[..offsets[last].1].trim_end().to_string();
    let count = token_count(tokenizer, &cut)?;
    Ok((budget - 4..=budget).contains(&count).then_some(cut))
}
