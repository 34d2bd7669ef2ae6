//! The product attributes the service reads (`products.attributes` is free JSON from the
//! shop): colours under `colors`, styles under `style`, each an array of words or one word.
//! Parsed here only; recommendations, the learned profile and the embedded text use this.

use serde_json::Value;

pub const COLORS: &str = "colors";
pub const STYLE: &str = "style";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductAttributes {
    /// As the shop wrote them, trimmed, without empty ones.
    pub colors: Vec<String>,
    pub styles: Vec<String>,
}

impl ProductAttributes {
    pub fn of(attributes: &Value) -> Self {
        Self {
            colors: words(attributes, COLORS),
            styles: words(attributes, STYLE),
        }
    }
}

fn words(attributes: &Value, key: &str) -> Vec<String> {
    let values: Vec<&str> = match attributes.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    };
    values
        .into_iter()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_and_single_words_both_count_and_other_shapes_do_not() {
        let parsed = ProductAttributes::of(&json!({
            "colors": ["Black", " navy ", "", 3],
            "style": "sporty",
            "material": "nylon"
        }));
        assert_eq!(parsed.colors, vec!["Black", "navy"]);
        assert_eq!(parsed.styles, vec!["sporty"]);
        assert_eq!(
            ProductAttributes::of(&json!({"colors": {"a": 1}})),
            ProductAttributes::default()
        );
    }
}
