//! Which language to answer in: Korean when the message is mostly Hangul, English otherwise.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyLanguage {
    Korean,
    /// Also when nothing says which (a REST list without `q`).
    #[default]
    English,
}

impl ReplyLanguage {
    /// Korean when Hangul letters are at least a third of the letters: one Hangul syllable
    /// carries about as much as three Latin letters, and brand names are often Latin.
    pub fn detect(text: &str) -> Self {
        let (hangul, latin) = text.chars().fold((0usize, 0usize), |(h, l), c| {
            if is_hangul(c) {
                (h + 1, l)
            } else if c.is_ascii_alphabetic() {
                (h, l + 1)
            } else {
                (h, l)
            }
        });
        if hangul > 0 && hangul * 3 >= latin {
            Self::Korean
        } else {
            Self::English
        }
    }
}

pub fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_korean_and_english() {
        assert_eq!(
            ReplyLanguage::detect("패딩 추천해줘"),
            ReplyLanguage::Korean
        );
        assert_eq!(
            ReplyLanguage::detect("Urban Fold 패딩 있어요?"),
            ReplyLanguage::Korean
        );
        assert_eq!(
            ReplyLanguage::detect("waterproof jacket under $100"),
            ReplyLanguage::English
        );
        assert_eq!(ReplyLanguage::detect("123"), ReplyLanguage::English);
    }
}
