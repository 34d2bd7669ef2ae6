//! A product as it arrives (from the API or an import file), and the rules it must pass
//! before it is written.

use super::money::Currency;
use crate::errors::FieldError;
use serde_json::{Map, Value};

/// Top-level categories of the shop. Imports map their own taxonomies onto a free-form
/// `category` string; these are the ones the demo catalog and the intent analyser know.
pub const KNOWN_CATEGORIES: &[&str] = &[
    "fashion",
    "outdoor",
    "shoes",
    "electronics",
    "beauty",
    "home",
    "food",
];

pub const MAX_SKU_LEN: usize = 64;
pub const MAX_TITLE_LEN: usize = 300;
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
pub const MAX_CATEGORY_LEN: usize = 100;
pub const MAX_BRAND_LEN: usize = 100;
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// ₩100 billion or $1 billion: anything above is a data error, not a price.
pub const MAX_PRICE_MINOR: i64 = 100_000_000_000;
pub const MAX_STOCK: i32 = 10_000_000;

/// One product before validation. Importers and the REST API both build this.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductDraft {
    /// The shop's own identifier (ASIN, stock code, ...). Unique per catalog.
    pub sku: String,
    pub title: String,
    pub description: String,
    /// Lower-case category path, most general first, `/`-separated ("outdoor/jackets").
    pub category: String,
    pub brand: Option<String>,
    /// Price in minor units of `currency`; `None` when the source does not know it
    /// (most ESCI and all Instacart products). The REST API always requires one.
    pub price_minor: Option<i64>,
    pub currency: Currency,
    pub stock: i32,
    /// Free-form facts: `colors` (array of strings), `sizes`, `material`, `tags`, ...
    pub attributes: Map<String, Value>,
    pub image_url: Option<String>,
}

/// A validated product, safe to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidProduct(ProductDraft);

impl ValidProduct {
    pub fn into_inner(self) -> ProductDraft {
        self.0
    }

    pub fn as_draft(&self) -> &ProductDraft {
        &self.0
    }
}

fn check_text(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) {
    if required && value.trim().is_empty() {
        errors.push(FieldError {
            field,
            message: "must not be empty".into(),
        });
    }
    if value.chars().count() > max {
        errors.push(FieldError {
            field,
            message: format!("must be at most {max} characters"),
        });
    }
    if value.contains('\0') {
        errors.push(FieldError {
            field,
            message: "must not contain NUL characters".into(),
        });
    }
}

/// Largest magnitude of a number in `attributes`.
pub const MAX_ATTRIBUTE_NUMBER: f64 = 1e15;

/// Whether a JSON value holds a number beyond [`MAX_ATTRIBUTE_NUMBER`].
fn json_has_huge_number(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_none_or(|x| x.abs() > MAX_ATTRIBUTE_NUMBER),
        Value::Array(items) => items.iter().any(json_has_huge_number),
        Value::Object(map) => map.values().any(json_has_huge_number),
        _ => false,
    }
}

/// Whether a JSON value holds a NUL character in any string or key.
fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value)),
        _ => false,
    }
}

impl ProductDraft {
    /// Trims text, lower-cases the category and checks every rule; all problems are reported
    /// at once so a client can fix its request in one round.
    pub fn validate(mut self) -> Result<ValidProduct, Vec<FieldError>> {
        self.sku = self.sku.trim().to_string();
        self.title = self.title.trim().to_string();
        self.description = self.description.trim().to_string();
        self.category = self.category.trim().to_lowercase();
        self.brand = self
            .brand
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty());
        self.image_url = self
            .image_url
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());

        let mut errors = Vec::new();
        check_text(&mut errors, "sku", &self.sku, MAX_SKU_LEN, true);
        if self
            .sku
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push(FieldError {
                field: "sku",
                message: "must not contain whitespace or control characters".into(),
            });
        }
        check_text(&mut errors, "title", &self.title, MAX_TITLE_LEN, true);
        check_text(
            &mut errors,
            "description",
            &self.description,
            MAX_DESCRIPTION_LEN,
            false,
        );
        check_text(
            &mut errors,
            "category",
            &self.category,
            MAX_CATEGORY_LEN,
            true,
        );
        if let Some(brand) = &self.brand {
            check_text(&mut errors, "brand", brand, MAX_BRAND_LEN, false);
        }
        let price = self.price_minor.unwrap_or(0);
        if price < 0 {
            errors.push(FieldError {
                field: "price",
                message: "must not be negative".into(),
            });
        } else if price > MAX_PRICE_MINOR {
            errors.push(FieldError {
                field: "price",
                message: format!("must be at most {MAX_PRICE_MINOR} minor units"),
            });
        }
        if !(0..=MAX_STOCK).contains(&self.stock) {
            errors.push(FieldError {
                field: "stock",
                message: format!("must be between 0 and {MAX_STOCK}"),
            });
        }
        if serde_json::to_vec(&self.attributes).map_or(0, |v| v.len()) > MAX_ATTRIBUTES_BYTES {
            errors.push(FieldError {
                field: "attributes",
                message: format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
            });
        }
        if self
            .attributes
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value))
        {
            // PostgreSQL's jsonb refuses \u0000 (the write would fail in the database).
            errors.push(FieldError {
                field: "attributes",
                message: "must not contain NUL characters".into(),
            });
        }
        if self.attributes.values().any(json_has_huge_number) {
            // jsonb keeps a number's every digit; one near f64's limit reads back as out of
            // range, and the product could never be loaded again.
            errors.push(FieldError {
                field: "attributes",
                message: format!("numbers must be between -{MAX_ATTRIBUTE_NUMBER:e} and {MAX_ATTRIBUTE_NUMBER:e}"),
            });
        }
        if let Some(colors) = self.attributes.get(super::attributes::COLORS) {
            let ok = colors
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                errors.push(FieldError {
                    field: "attributes.colors",
                    message: "must be an array of strings".into(),
                });
            }
        }
        if let Some(url) = &self.image_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
                errors.push(FieldError {
                    field: "image_url",
                    message: "must be an http(s) URL of at most 2048 characters".into(),
                });
            }
        }
        if errors.is_empty() {
            Ok(ValidProduct(self))
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ProductDraft {
        ProductDraft {
            sku: " JK-001 ".into(),
            title: " 경량 패딩 자켓 ".into(),
            description: "가볍고 따뜻한".into(),
            category: "Fashion/Outerwear".into(),
            brand: Some("  ".into()),
            price_minor: Some(89_000),
            currency: Currency::Krw,
            stock: 10,
            attributes: Map::new(),
            image_url: None,
        }
    }

    #[test]
    fn a_valid_draft_is_normalised() {
        let product = draft().validate().unwrap().into_inner();
        assert_eq!(product.sku, "JK-001");
        assert_eq!(product.title, "경량 패딩 자켓");
        assert_eq!(product.category, "fashion/outerwear");
        assert_eq!(product.brand, None);
    }

    #[test]
    fn every_broken_field_is_reported_at_once() {
        let mut bad = draft();
        bad.sku = "has space".into();
        bad.title = "".into();
        bad.price_minor = Some(-1);
        bad.stock = -3;
        bad.attributes.insert("colors".into(), Value::from(3));
        bad.attributes
            .insert("tags".into(), serde_json::json!([{"a\0": "b"}]));
        let errors = bad.validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "sku",
                "title",
                "price",
                "stock",
                "attributes",
                "attributes.colors"
            ]
        );
    }
}
