use super::*;

const BRANDS: &[&str] = &[
    "Urban Fold",
    "Northway",
    "Ridgeline",
    "Stride Lab",
    "Lumen Audio",
    "Dewy Lab",
    "한결",
    "걸음",
    "노스웨이",
    "Nike",
    "Adidas",
];

fn analyzer() -> FallbackAnalyzer {
    FallbackAnalyzer::new(BRANDS.iter().map(|b| b.to_string()), 1_400.0)
}

type Price = Option<(Option<i64>, Option<i64>)>;

/// One message and what the analyser must understand from it. Lists are exact, except
/// `keywords`, which must all be present.
struct Case {
    message: &'static str,
    categories: &'static [&'static str],
    price: Price,
    colors: &'static [&'static str],
    excluded_colors: &'static [&'static str],
    brands: &'static [&'static str],
    excluded_brands: &'static [&'static str],
    styles: &'static [&'static str],
    keywords: &'static [&'static str],
    sentiment: Sentiment,
}

const NONE: Case = Case {
    message: "",
    categories: &[],
    price: None,
    colors: &[],
    excluded_colors: &[],
    brands: &[],
    excluded_brands: &[],
    styles: &[],
    keywords: &[],
    sentiment: Sentiment::Neutral,
};

const fn max(won: i64) -> Price {
    Some((None, Some(won)))
}
const fn min(won: i64) -> Price {
    Some((Some(won), None))
}
const fn between(low: i64, high: i64) -> Price {
    Some((Some(low), Some(high)))
}

const CASES: &[Case] = &[
    Case {
        message: "10만원 이하 패딩 추천해줘",
        categories: &["fashion/outerwear"],
        price: max(100_000),
        keywords: &["padded down jacket"],
        ..NONE
    },
    Case {
        message: "5만원대 운동화 있어?",
        categories: &["shoes/sneakers"],
        price: between(50_000, 59_999),
        keywords: &["sneakers"],
        ..NONE
    },
    Case {
        message: "3만~5만 원 사이 선물용 향수",
        categories: &["beauty/fragrance"],
        price: between(30_000, 50_000),
        keywords: &["gift", "perfume"],
        ..NONE
    },
    Case {
        message: "3만원에서 5만원 사이 등산화 보여줘",
        categories: &["shoes/hiking"],
        price: between(30_000, 50_000),
        keywords: &["hiking shoes"],
        ..NONE
    },
    Case {
        message: "2만원 이상 스킨케어 제품",
        categories: &["beauty/skincare"],
        price: min(20_000),
        keywords: &["skincare"],
        ..NONE
    },
    Case {
        message: "100,000원 이하 방수 자켓",
        categories: &["outdoor/jackets"],
        price: max(100_000),
        keywords: &["waterproof", "jacket"],
        ..NONE
    },
    Case {
        message: "빨간색 말고 검은색 패딩",
        categories: &["fashion/outerwear"],
        colors: &["black"],
        excluded_colors: &["red"],
        ..NONE
    },
    Case {
        message: "빨간색은 빼고 보여줘",
        excluded_colors: &["red"],
        ..NONE
    },
    Case {
        message: "빨간색이나 분홍색은 싫어요",
        excluded_colors: &["red", "pink"],
        sentiment: Sentiment::Negative,
        ..NONE
    },
    Case {
        message: "네이비 경량 패딩 20만원 미만",
        categories: &["fashion/outerwear"],
        colors: &["navy"],
        price: max(199_999),
        keywords: &["lightweight", "padded down jacket"],
        ..NONE
    },
    Case {
        message: "Urban Fold 숏패딩 있나요",
        categories: &["fashion/outerwear"],
        brands: &["Urban Fold"],
        keywords: &["short padded jacket"],
        ..NONE
    },
    Case {
        message: "한결 제품 말고 다른 거",
        excluded_brands: &["한결"],
        ..NONE
    },
    Case {
        message: "노이즈캔슬링 무선 헤드폰 30만원 정도",
        categories: &["electronics/audio"],
        price: between(240_000, 360_000),
        keywords: &["noise cancelling", "wireless", "headphones"],
        ..NONE
    },
    Case {
        message: "여성용 경량 러닝화",
        categories: &["shoes/running"],
        keywords: &["women", "lightweight", "running shoes"],
        ..NONE
    },
    Case {
        message: "캐주얼한 니트 아이보리 색",
        categories: &["fashion/knitwear"],
        colors: &["ivory"],
        styles: &["casual"],
        ..NONE
    },
    Case {
        message: "미니멀한 블랙 크로스백",
        categories: &["fashion/bags"],
        colors: &["black"],
        styles: &["minimal"],
        ..NONE
    },
    Case {
        message: "민감성 피부용 수분크림 3만원대",
        categories: &["beauty/skincare"],
        price: between(30_000, 39_999),
        keywords: &["sensitive skin", "moisturizing cream"],
        ..NONE
    },
    Case {
        message: "선크림 SPF50 추천",
        categories: &["beauty/suncare"],
        keywords: &["sunscreen"],
        ..NONE
    },
    Case {
        message: "블랙박스 찾고 있어요",
        categories: &["electronics/car"],
        keywords: &["dashcam"],
        ..NONE
    },
    Case {
        message: "블루투스 스피커",
        categories: &["electronics/audio"],
        keywords: &["bluetooth", "speaker"],
        ..NONE
    },
    Case {
        message: "이거 너무 좋아요 감사합니다",
        sentiment: Sentiment::Positive,
        ..NONE
    },
    Case {
        message: "추천해준 거 다 별로네요 너무 비싸",
        sentiment: Sentiment::Negative,
        ..NONE
    },
    Case {
        message: "Northway 고어텍스 등산 자켓 30만원 이하",
        categories: &["outdoor/jackets"],
        brands: &["Northway"],
        price: max(300_000),
        keywords: &["gore-tex", "hiking jacket"],
        ..NONE
    },
    Case {
        message: "겨울 캠핑 의자",
        categories: &["outdoor/camping"],
        keywords: &["winter", "camping chair"],
        ..NONE
    },
    Case {
        message: "걸음 운동화 아동용",
        categories: &["shoes/sneakers"],
        brands: &["걸음"],
        keywords: &["kids"],
        ..NONE
    },
    Case {
        message: "발걸음이 가벼운 워킹화",
        categories: &["shoes/walking"],
        keywords: &["lightweight", "walking shoes"],
        ..NONE
    },
    Case {
        message: "I need a waterproof hiking jacket under $100",
        categories: &["outdoor/jackets"],
        price: max(140_000),
        keywords: &["waterproof"],
        ..NONE
    },
    Case {
        message: "running shoes below 50 dollars",
        categories: &["shoes/running"],
        price: max(70_000),
        ..NONE
    },
    Case {
        message: "headphones between 20 and 50 dollars",
        categories: &["electronics/audio"],
        price: between(28_000, 70_000),
        ..NONE
    },
    Case {
        message: "a jacket around ₩30,000",
        categories: &["outdoor/jackets"],
        price: between(24_000, 36_000),
        ..NONE
    },
    Case {
        message: "black sneakers, not red",
        categories: &["shoes/sneakers"],
        colors: &["black"],
        excluded_colors: &["red"],
        ..NONE
    },
    Case {
        message: "no red or pink please",
        excluded_colors: &["red", "pink"],
        ..NONE
    },
    Case {
        message: "anything except Nike",
        excluded_brands: &["Nike"],
        ..NONE
    },
    Case {
        message: "not red but blue",
        colors: &["blue"],
        excluded_colors: &["red"],
        ..NONE
    },
    Case {
        message: "Adidas sneakers in grey",
        categories: &["shoes/sneakers"],
        brands: &["Adidas"],
        colors: &["grey"],
        ..NONE
    },
    Case {
        message: "a casual navy cardigan",
        categories: &["fashion/knitwear"],
        colors: &["navy"],
        styles: &["casual"],
        ..NONE
    },
    Case {
        message: "I love these, thanks!",
        sentiment: Sentiment::Positive,
        ..NONE
    },
    Case {
        message: "These are terrible and too expensive",
        sentiment: Sentiment::Negative,
        ..NONE
    },
    Case {
        message: "a skincare set over $30",
        categories: &["beauty/skincare"],
        price: min(42_000),
        ..NONE
    },
    Case {
        message: "lightweight wireless earbuds from Lumen Audio",
        categories: &["electronics/audio"],
        brands: &["Lumen Audio"],
        keywords: &["lightweight", "wireless"],
        ..NONE
    },
    Case {
        message: "vintage leather boots $80-$120",
        categories: &["shoes/boots"],
        styles: &["vintage"],
        price: between(112_000, 168_000),
        keywords: &["leather"],
        ..NONE
    },
    Case {
        message: "20L backpack for hiking",
        categories: &["outdoor/backpacks"],
        keywords: &["hiking"],
        ..NONE
    },
    Case {
        message: "I don't want anything from Stride Lab",
        excluded_brands: &["Stride Lab"],
        sentiment: Sentiment::Neutral,
        ..NONE
    },
    Case {
        message: "shoes",
        categories: &["shoes"],
        ..NONE
    },
    Case {
        message: "신발 중에 러닝화",
        categories: &["shoes/running"],
        keywords: &["running shoes"],
        ..NONE
    },
];

#[test]
fn understands_korean_and_english_messages() {
    let analyzer = analyzer();
    assert!(CASES.len() >= 40);
    let mut wrong = Vec::new();
    for case in CASES {
        let intent = analyzer.analyze_message(case.message, None);
        let price = intent
            .price_range
            .map(|range| (range.min_minor, range.max_minor));
        let missing: Vec<_> = case
            .keywords
            .iter()
            .filter(|keyword| !intent.keywords.iter().any(|k| k == *keyword))
            .collect();
        if intent.categories != case.categories
            || price != case.price
            || intent.colors != case.colors
            || intent.excluded_colors != case.excluded_colors
            || intent.brands != case.brands
            || intent.excluded_brands != case.excluded_brands
            || intent.styles != case.styles
            || !missing.is_empty()
            || intent.sentiment != case.sentiment
            || !intent.in_stock_only
        {
            wrong.push(format!(
                "{:?}: got {intent:?} (missing keywords {missing:?})",
                case.message
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        CASES.len(),
        wrong.join("\n")
    );
}

#[test]
fn korean_keywords_are_english() {
    let intent = analyzer().analyze_message("방수 경량 패딩", None);
    assert!(
        intent.keywords.iter().all(|keyword| keyword.is_ascii()),
        "{:?}",
        intent.keywords
    );
}

#[test]
fn constraints_persist_across_turns_until_changed() {
    let analyzer = analyzer();
    let first = analyzer.analyze_message("10만원 이하 검은색 패딩", None);
    assert_eq!(first.categories, ["fashion/outerwear"]);
    assert_eq!(first.colors, ["black"]);

    // Only a colour exclusion: the price, category and wanted colour stay.
    let second = analyzer.analyze_message("빨간색은 빼고", Some(&first));
    assert_eq!(second.price_range, first.price_range);
    assert_eq!(second.categories, first.categories);
    assert_eq!(second.colors, ["black"]);
    assert_eq!(second.excluded_colors, ["red"]);

    // A new price replaces the old one.
    let third = analyzer.analyze_message("5만원대로 보여줘", Some(&second));
    assert_eq!(
        third.price_range,
        Some(PriceRange {
            min_minor: Some(50_000),
            max_minor: Some(59_999)
        })
    );
    assert_eq!(third.excluded_colors, ["red"]);

    // "Any price" lifts it.
    let fourth = analyzer.analyze_message("가격 상관없어", Some(&third));
    assert_eq!(fourth.price_range, None);
    assert_eq!(fourth.categories, ["fashion/outerwear"]);

    // A new category replaces the old one and its keywords.
    let fifth = analyzer.analyze_message("러닝화는?", Some(&fourth));
    assert_eq!(fifth.categories, ["shoes/running"]);
    assert!(!fifth.keywords.contains(&"padded down jacket".to_string()));
    assert_eq!(fifth.excluded_colors, ["red"]);

    // Wanting a colour lifts its exclusion.
    let sixth = analyzer.analyze_message("actually red is fine", Some(&fifth));
    assert_eq!(sixth.colors, ["red"]);
    assert!(sixth.excluded_colors.is_empty());

    // Starting over forgets everything.
    let seventh = analyzer.analyze_message("처음부터 다시, 헤드폰", Some(&sixth));
    assert_eq!(seventh.categories, ["electronics/audio"]);
    assert!(seventh.colors.is_empty() && seventh.price_range.is_none());
}

#[test]
fn a_budget_does_not_follow_the_shopper_to_another_kind_of_product() {
    let analyzer = analyzer();
    let padding = analyzer.analyze_message("10만원 이하 패딩 보여줘", None);
    assert!(padding.price_range.is_some());

    // Same kind of product: the budget stays.
    let black = analyzer.analyze_message("검은색 패딩은?", Some(&padding));
    assert_eq!(black.price_range, padding.price_range);

    // Another kind: the jacket budget is dropped, the colour taste stays.
    let boots = analyzer.analyze_message("Show me waterproof hiking boots", Some(&black));
    assert_eq!(boots.categories, ["shoes/hiking"]);
    assert_eq!(boots.price_range, None);
    assert_eq!(boots.colors, ["black"]);

    // Another kind with its own budget: that budget.
    let running = analyzer.analyze_message("러닝화 5만원 이하", Some(&boots));
    assert_eq!(running.price_range.and_then(|p| p.max_minor), Some(50_000));
}

#[test]
fn english_turns_persist_too() {
    let analyzer = analyzer();
    let first = analyzer.analyze_message("running shoes under $100", None);
    let second = analyzer.analyze_message("any price, but not Nike", Some(&first));
    assert_eq!(second.categories, ["shoes/running"]);
    assert_eq!(second.price_range, None);
    assert_eq!(second.excluded_brands, ["Nike"]);
    let third = analyzer.analyze_message("include out of stock ones", Some(&second));
    assert!(!third.in_stock_only);
    assert_eq!(third.excluded_brands, ["Nike"]);
}

#[tokio::test]
async fn the_trait_marks_the_fallback_source() {
    let analyzed = analyzer().analyze("패딩", None).await;
    assert_eq!(analyzed.source, IntentSource::Fallback);
    assert_eq!(analyzed.intent.categories, ["fashion/outerwear"]);
}

/// How often the analyser puts a demo catalog title in the product's own category (exactly,
/// or its top level when the title only says that much); wrong categories are counted apart
/// from titles it cannot place at all.
#[test]
fn demo_catalog_titles_land_in_their_categories() {
    let catalog = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/demo_catalog.jsonl"
    ))
    .expect("the demo catalog is in the repository");
    let analyzer = analyzer();
    let (mut right, mut wrong, mut unplaced) = (0, Vec::new(), 0);
    let started = std::time::Instant::now();
    for line in catalog.lines().filter(|line| !line.trim().is_empty()) {
        let product: serde_json::Value = serde_json::from_str(line).unwrap();
        let title = product["title"].as_str().unwrap();
        let category = product["category"].as_str().unwrap();
        let intent = analyzer.analyze_message(title, None);
        if intent.categories.is_empty() {
            unplaced += 1;
        } else if intent.category_matches(category) {
            right += 1;
        } else {
            wrong.push(format!("{title}: {:?} (is {category})", intent.categories));
        }
    }
    let total = right + wrong.len() + unplaced;
    println!(
        "demo catalog: {right}/{total} titles in their category, {} in another, {unplaced} unplaced, {:?} per title",
        wrong.len(),
        started.elapsed() / total as u32
    );
    println!("{}", wrong.join("\n"));
    // A wrong category is a hard filter that hides the product: keep those rare.
    assert!(
        wrong.len() * 10 <= total,
        "{} of {total} wrong",
        wrong.len()
    );
}

#[tokio::test]
async fn a_category_the_catalog_lacks_becomes_keywords_not_a_filter() {
    let mut analyzer = analyzer();
    analyzer.catalog_categories = vec!["electronics/audio".into(), "shoes".into()];
    let boots = analyzer.analyze("등산화 추천해줘", None).await.intent;
    assert!(boots.categories.is_empty(), "{boots:?}");
    assert!(
        boots.keywords.contains(&"hiking shoes".to_string()),
        "{boots:?}"
    );
    // A path the catalog has (or has below it) still filters.
    let headphones = analyzer.analyze("headphones please", None).await.intent;
    assert!(
        headphones
            .categories
            .iter()
            .all(|c| c.starts_with("electronics")),
        "{headphones:?}"
    );
}
