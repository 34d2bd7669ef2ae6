//! Words for the intent's canonical values (English colour, style and category names) in the
//! shopper's language: one place for the template reply and the recommendation explanations.

use super::language::ReplyLanguage;
use super::lexicon::{CATEGORY_TERMS, KEYWORD_TERMS};

/// "outdoor/jackets" → "자켓" / "outdoor jackets".
pub fn category_label(path: &str, language: ReplyLanguage) -> String {
    match language {
        ReplyLanguage::Korean => CATEGORY_TERMS
            .iter()
            .find(|(term, term_path, _)| *term_path == path && !term.is_ascii())
            .map(|(term, _, _)| term.to_string())
            .unwrap_or_else(|| path.to_string()),
        ReplyLanguage::English => path.replace('/', " "),
    }
}

pub fn color_label_ko(color: &str) -> &str {
    match color {
        "red" => "빨간색",
        "blue" => "파란색",
        "black" => "검은색",
        "white" => "흰색",
        "grey" => "회색",
        "navy" => "네이비",
        "beige" => "베이지",
        "brown" => "갈색",
        "green" => "초록색",
        "khaki" => "카키",
        "ivory" => "아이보리",
        "orange" => "주황색",
        "pink" => "분홍색",
        "purple" => "보라색",
        "yellow" => "노란색",
        "silver" => "은색",
        other => other,
    }
}

pub fn style_label_ko(style: &str) -> &str {
    match style {
        "casual" => "캐주얼",
        "classic" => "클래식",
        "minimal" => "미니멀",
        "formal" => "포멀",
        "sporty" => "스포티",
        "street" => "스트릿",
        "vintage" => "빈티지",
        "cute" => "귀여운 스타일",
        "outdoor" => "아웃도어",
        other => other,
    }
}

/// A canonical keyword ("waterproof") as a Korean shopper says it ("방수"), when the lexicon
/// has a Korean term for it; the keyword itself otherwise.
pub fn keyword_label(keyword: &str, language: ReplyLanguage) -> String {
    let korean = match language {
        ReplyLanguage::Korean => KEYWORD_TERMS
            .iter()
            .copied()
            .chain(
                CATEGORY_TERMS
                    .iter()
                    .map(|(term, _, keyword)| (*term, *keyword)),
            )
            .find(|(term, canonical)| *canonical == keyword && !term.is_ascii())
            .map(|(term, _)| term.to_string()),
        ReplyLanguage::English => None,
    };
    korean.unwrap_or_else(|| keyword.to_string())
}
