//! Amazon Shopping Queries (ESCI) product metadata, one JSON object per line.
//!
//! Each row also carries `query_id`, the queries it was judged for. Copying it into a
//! product would leak the relevance answers into the index, so the reader never reads it:
//! fields are picked by name and everything else is dropped.

use super::generic::jsonl::{kind, optional_str, required_str, JsonLines};
use super::rows::{RowResult, SkippedRow};
use super::skips::money_reason;
use crate::catalog::draft::{MAX_CATEGORY_LEN, MAX_DESCRIPTION_LEN};
use crate::catalog::{Currency, ProductDraft};
use serde_json::{Map, Value};
use std::path::Path;

/// Category of products whose `category` array is empty (about 4% of the subset).
const UNCATEGORIZED: &str = "uncategorized";

/// Streams the products of an ESCI `.jsonl` file. Fails only when the file cannot be
/// opened; a row that cannot be mapped is yielded as a [`SkippedRow`].
pub fn read_products(
    path: &Path,
    default_stock: i32,
) -> anyhow::Result<impl Iterator<Item = RowResult<ProductDraft>> + Send> {
    Ok(JsonLines::open(path)?.map(move |row| {
        let row = row?;
        draft_from_row(&row.object, default_stock)
            .map_err(|reason| SkippedRow::new(row.line, reason))
    }))
}

fn draft_from_row(row: &Map<String, Value>, default_stock: i32) -> Result<ProductDraft, String> {
    let sku = required_str(row, "asin").map_err(|_| "missing asin".to_string())?;
    let title = required_str(row, "title").map_err(|_| "missing title".to_string())?;

    let mut attributes = Map::new();
    if let Some(color) = optional_str(row, "color")?.map(str::trim) {
        if !color.is_empty() {
            attributes.insert("colors".into(), Value::from(vec![color]));
        }
    }
    for (key, fits, expected) in [
        ("rating", Value::is_number as fn(&Value) -> bool, "a number"),
        ("rating_count", Value::is_u64, "a whole number"),
        ("is_book", Value::is_boolean, "a boolean"),
    ] {
        match row.get(key) {
            None | Some(Value::Null) => {}
            Some(value) if fits(value) => {
                attributes.insert(key.into(), value.clone());
            }
            Some(other) => return Err(format!("{key}: expected {expected}, got {}", kind(other))),
        }
    }

    Ok(ProductDraft {
        sku: sku.trim().to_string(),
        title: title.to_string(),
        description: description(row)?,
        category: category(row)?,
        brand: optional_str(row, "brand")?
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_string),
        price_minor: price(row)?,
        currency: Currency::Usd,
        stock: default_stock,
        attributes,
        image_url: optional_str(row, "image")?
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string),
    })
}

/// The description followed by the bullet points (a newline-separated string in ESCI, an
/// array in some repackagings), one part per line, cut to the longest a draft may hold.
fn description(row: &Map<String, Value>) -> Result<String, String> {
    let mut parts: Vec<&str> = optional_str(row, "description")?.into_iter().collect();
    match row.get("bullet_points") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => parts.extend(text.lines()),
        Some(Value::Array(items)) => {
            for item in items {
                let text = item.as_str().ok_or_else(|| {
                    format!("bullet_points: expected strings, found {}", kind(item))
                })?;
                parts.extend(text.lines());
            }
        }
        Some(other) => {
            return Err(format!(
                "bullet_points: expected a string or an array of strings, got {}",
                kind(other)
            ))
        }
    }
    let joined = parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(truncate_chars(joined, MAX_DESCRIPTION_LEN))
}

/// `["Home & Kitchen", "Furniture"]` → `home & kitchen/furniture`. A path longer than a
/// category may hold loses its most specific segments (10% of ESCI products have one over
/// 100 characters), so the product stays importable under its general branch.
fn category(row: &Map<String, Value>) -> Result<String, String> {
    let mut segments: Vec<String> = match row.get("category") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(|s| s.trim().to_lowercase().replace('/', "-"))
                    .ok_or_else(|| format!("category: expected strings, found {}", kind(item)))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "category: expected an array of strings, got {}",
                kind(other)
            ))
        }
    };
    segments.retain(|s| !s.is_empty());
    if segments.is_empty() {
        return Ok(UNCATEGORIZED.to_string());
    }
    let mut path = segments[0].clone();
    for segment in &segments[1..] {
        if path.chars().count() + 1 + segment.chars().count() > MAX_CATEGORY_LEN {
            break;
        }
        path.push('/');
        path.push_str(segment);
    }
    Ok(truncate_chars(path, MAX_CATEGORY_LEN))
}

/// ESCI prices are JSON numbers in dollars (`29.97`) or null; strings like `"$19.99"` are
/// accepted too. The number's shortest decimal form is converted, so no float rounding.
fn price(row: &Map<String, Value>) -> Result<Option<i64>, String> {
    let text = match row.get("price") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "price: expected a number or a string, got {}",
                kind(other)
            ))
        }
    };
    Currency::Usd
        .parse_major(&text)
        .map(Some)
        .map_err(|e| money_reason("price", &e))
}

/// Keeps the first `max` characters, cutting on a char boundary.
fn truncate_chars(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::skips::partition;
    use crate::import::skips::test_support::{shared_data, temp_file};
    use serde_json::json;

    const KINDLE: &str = r#"{"title": "Kindle Paperwhite", "description": "", "bullet_points": "The thinnest Kindle\n\n  Now waterproof  ", "brand": "Amazon", "color": "Black", "image": "https://m.media-amazon.com/images/I/61T7vSMjrAL.jpg", "price": null, "category": [], "rating": 4.6, "rating_count": 124969, "is_book": false, "query_id": ["67", "58186"], "asin": "B07CXG6C9W", "_id": "B07CXG6C9W"}"#;
    const MATTRESS: &str = r#"{"title": "Chime 12\" Memory Foam Mattress", "description": "Sleep well.", "bullet_points": "", "brand": null, "color": " ", "image": "", "price": 190.0, "category": [" Home & Kitchen ", "Furniture", "Mattresses & Box Springs / Frames", ""], "rating": null, "rating_count": null, "is_book": false, "query_id": ["55824"], "asin": "B0777K9RGX", "_id": "B0777K9RGX"}"#;

    fn read(contents: &str) -> (Vec<ProductDraft>, Vec<SkippedRow>) {
        let file = temp_file("esci.jsonl", contents);
        let mut kept = Vec::new();
        let mut skipped = Vec::new();
        for row in read_products(file.path(), 5).unwrap() {
            match row {
                Ok(draft) => kept.push(draft),
                Err(skip) => skipped.push(skip),
            }
        }
        (kept, skipped)
    }

    #[test]
    fn a_row_maps_to_a_usd_draft() {
        let (kept, skipped) = read(&format!("{KINDLE}\n{MATTRESS}\n"));
        assert!(skipped.is_empty(), "{skipped:?}");
        let kindle = &kept[0];
        assert_eq!(kindle.sku, "B07CXG6C9W");
        assert_eq!(kindle.title, "Kindle Paperwhite");
        assert_eq!(kindle.description, "The thinnest Kindle\nNow waterproof");
        assert_eq!(kindle.category, "uncategorized");
        assert_eq!(kindle.brand.as_deref(), Some("Amazon"));
        assert_eq!(kindle.price_minor, None);
        assert_eq!(kindle.currency, Currency::Usd);
        assert_eq!(kindle.stock, 5);
        assert_eq!(
            serde_json::Value::Object(kindle.attributes.clone()),
            json!({"colors": ["Black"], "rating": 4.6, "rating_count": 124969, "is_book": false})
        );
        assert_eq!(
            kindle.image_url.as_deref(),
            Some("https://m.media-amazon.com/images/I/61T7vSMjrAL.jpg")
        );

        let mattress = &kept[1];
        assert_eq!(mattress.description, "Sleep well.");
        assert_eq!(
            mattress.category,
            "home & kitchen/furniture/mattresses & box springs - frames"
        );
        assert_eq!(mattress.brand, None);
        assert_eq!(mattress.price_minor, Some(19_000));
        assert_eq!(mattress.image_url, None);
        assert_eq!(
            serde_json::Value::Object(mattress.attributes.clone()),
            json!({"is_book": false})
        );
    }

    #[test]
    fn query_ids_never_reach_the_draft() {
        let (kept, _) = read(&format!("{KINDLE}\n{MATTRESS}\n"));
        for draft in kept {
            let text = format!("{draft:?}");
            assert!(!text.contains("query_id"), "{text}");
            for id in ["58186", "55824"] {
                assert!(!text.contains(id), "query id {id} leaked: {text}");
            }
        }
    }

    #[test]
    fn number_and_string_prices_convert_exactly() {
        let row = |price: &str| format!(r#"{{"asin":"A","title":"t","price":{price}}}"#);
        let lines = [
            "29.97",
            "0.1",
            "0.0",
            "\"$19.99\"",
            "\"1,299.00\"",
            "\"\"",
            "11.89",
        ]
        .map(row)
        .join("\n");
        let (kept, skipped) = read(&lines);
        assert!(skipped.is_empty(), "{skipped:?}");
        let prices: Vec<_> = kept.iter().map(|d| d.price_minor).collect();
        assert_eq!(
            prices,
            [
                Some(2997),
                Some(10),
                Some(0),
                Some(1999),
                Some(129_900),
                None,
                Some(1189)
            ]
        );
    }

    #[test]
    fn unmappable_rows_are_skipped_and_reading_goes_on() {
        let (kept, skipped) = read(concat!(
            "{\"asin\":\"A1\",\"title\":\"ok\"}\n",
            "{\"asin\":\"A2\",\"title\":\"t\"\n",
            "{\"title\":\"no asin\"}\n",
            "{\"asin\":\"A3\",\"title\":\"  \"}\n",
            "{\"asin\":\"A4\",\"title\":\"t\",\"price\":-1}\n",
            "{\"asin\":\"A5\",\"title\":\"t\",\"price\":12.345}\n",
            "{\"asin\":\"A6\",\"title\":\"t\",\"rating\":\"good\"}\n",
            "{\"asin\":\"A7\",\"title\":\"t\",\"category\":\"Books\"}\n",
            "\n",
            "{\"asin\":\"A8\",\"title\":\"last\"}\n",
        ));
        let skus: Vec<_> = kept.iter().map(|d| d.sku.as_str()).collect();
        assert_eq!(skus, ["A1", "A8"]);
        let reasons: Vec<_> = skipped
            .iter()
            .map(|s| format!("line {}: {}", s.line, s.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                "line 2: malformed JSON: EOF while parsing an object (column 24)",
                "line 3: missing asin",
                "line 4: missing title",
                "line 5: price: must not be negative",
                "line 6: price: USD prices have at most 2 decimal digits",
                "line 7: rating: expected a number, got a string",
                "line 8: category: expected an array of strings, got a string",
            ]
        );
    }

    #[test]
    fn long_texts_are_cut_to_the_draft_limits() {
        let long_bullets = "ü".repeat(MAX_DESCRIPTION_LEN + 50);
        let segment = "x".repeat(40);
        let line = json!({
            "asin": "A", "title": "t", "bullet_points": long_bullets,
            "category": ["Tools & Home Improvement", segment, segment, segment],
        });
        let (kept, _) = read(&line.to_string());
        assert_eq!(kept[0].description.chars().count(), MAX_DESCRIPTION_LEN);
        // The deepest segment that would pass the limit is dropped, not cut in half.
        assert_eq!(
            kept[0].category,
            format!("tools & home improvement/{segment}")
        );
        assert!(kept[0].category.chars().count() <= MAX_CATEGORY_LEN);
        assert_eq!(truncate_chars("한국어".into(), 2), "한국");
        assert_eq!(truncate_chars("abc".into(), 5), "abc");
    }

    #[test]
    fn bullet_points_may_be_an_array() {
        let line = r#"{"asin":"A","title":"t","description":"Intro","bullet_points":["one","","two\nthree"]}"#;
        let (kept, _) = read(line);
        assert_eq!(kept[0].description, "Intro\none\ntwo\nthree");
    }

    #[test]
    fn the_real_esci_subset_imports_completely() {
        let Some(path) = shared_data("esci/esci_products.jsonl") else {
            return;
        };
        let (kept, skipped) = partition(read_products(&path, 10).unwrap());
        assert!(skipped.is_empty(), "{skipped}");
        assert_eq!(kept.len(), 6_764);
        let priced = kept.iter().filter(|d| d.price_minor.is_some()).count();
        assert_eq!(priced, 1_990);
        assert_eq!(
            kept.iter().filter(|d| d.category == UNCATEGORIZED).count(),
            252
        );
        for draft in &kept {
            assert!(draft.category.chars().count() <= MAX_CATEGORY_LEN);
            let text = serde_json::to_string(&draft.attributes).unwrap();
            assert!(!text.contains("query"), "{text}");
        }
        // Every row passes validation once mapped.
        let invalid = kept.into_iter().filter_map(|d| d.validate().err()).count();
        assert_eq!(invalid, 0);
    }
}
