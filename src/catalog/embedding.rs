//! Product embeddings: which text of a product is embedded, and filling
//! `products.embedding` in batches.

use crate::catalog::attributes::ProductAttributes;
use crate::db::entities::product;
use crate::ml::EmbedError;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::Value;
use std::future::Future;
use uuid::Uuid;

/// Products embedded per encoder call.
pub const EMBED_BATCH: usize = 32;
/// Description characters that go into the embedded text: the opening of a description
/// says what the product is; the rest would be truncated by the model anyway.
const DESCRIPTION_CHARS: usize = 400;

/// The one definition of what is embedded for a product:
/// `title. brand. category words. colours. styles. description opening`.
///
/// Category paths read as words ("outdoor/jackets" → "outdoor jackets"), so a query like
/// "outdoor jacket" meets them in the same space as the title.
pub fn product_text(
    title: &str,
    brand: Option<&str>,
    category: &str,
    attributes: &Value,
    description: &str,
) -> String {
    let mut parts: Vec<String> = vec![title.trim().to_string()];
    if let Some(brand) = brand.map(str::trim).filter(|b| !b.is_empty()) {
        parts.push(brand.to_string());
    }
    let category = category.replace(['/', '-', '_'], " ");
    if !category.trim().is_empty() && category.trim() != "uncategorized" {
        parts.push(category.trim().to_string());
    }
    let attributes = ProductAttributes::of(attributes);
    for words in [attributes.colors, attributes.styles] {
        if !words.is_empty() {
            parts.push(words.join(", "));
        }
    }
    let description: String = description.trim().chars().take(DESCRIPTION_CHARS).collect();
    if !description.is_empty() {
        parts.push(description);
    }
    parts.join(". ")
}

pub fn model_text(model: &product::Model) -> String {
    product_text(
        &model.title,
        model.brand.as_deref(),
        &model.category,
        &model.attributes,
        &model.description,
    )
}

/// Which products to embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Products without an embedding of this model: none yet (after an import, or API
    /// writes), or one another model computed (after a change of model, e.g. to
    /// multilingual-e5-small), or one stored before vectors were labelled with their model.
    Missing,
    /// Every product.
    All,
}

/// Embeds products in `scope` with `embed` (texts in, vectors out) and stores the vectors;
/// returns how many were written. Walks the table by id, so it works on any catalog size
/// with bounded memory and can be stopped and re-run (scope `Missing` resumes).
pub async fn embed_products<F, Fut>(
    db: &DatabaseConnection,
    scope: Scope,
    model_id: &str,
    mut embed: F,
    show_progress: bool,
) -> anyhow::Result<u64>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<Vec<f32>>, EmbedError>>,
{
    let base = || {
        let query = product::Entity::find();
        match scope {
            Scope::Missing => query.filter(
                Condition::any()
                    .add(product::Column::Embedding.is_null())
                    .add(Expr::cust_with_values(
                        "embedding_model IS DISTINCT FROM $1",
                        [model_id.to_string()],
                    )),
            ),
            Scope::All => query,
        }
    };
    let total = base().count(db).await?;
    let bar = if show_progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "embedding products {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut after: Option<Uuid> = None;
    let mut written = 0u64;
    loop {
        let mut query = base().order_by_asc(product::Column::Id);
        if let Some(after) = after {
            query = query.filter(product::Column::Id.gt(after));
        }
        let batch = query.limit(EMBED_BATCH as u64).all(db).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        let texts = batch.iter().map(model_text).collect();
        let vectors = embed(texts).await?;
        anyhow::ensure!(
            vectors.len() == batch.len(),
            "encoder returned {} vectors for {} texts",
            vectors.len(),
            batch.len()
        );
        for (product, vector) in batch.iter().zip(vectors) {
            super::store::set_embedding(db, product.id, vector, model_id).await?;
        }
        written += batch.len() as u64;
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    tracing::info!(written, ?scope, model_id, "product embeddings stored");
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn product_text_reads_as_words_in_a_fixed_order() {
        let text = product_text(
            " Waterproof Hiking Jacket ",
            Some("Northway"),
            "outdoor/rain-jackets",
            &json!({ "colors": ["navy", "black"], "style": ["outdoor"], "material": "nylon" }),
            "Seam-sealed shell.",
        );
        assert_eq!(
            text,
            "Waterproof Hiking Jacket. Northway. outdoor rain jackets. navy, black. outdoor. Seam-sealed shell."
        );
    }

    #[test]
    fn long_descriptions_are_cut_and_empty_parts_left_out() {
        let description = "가".repeat(1000);
        let text = product_text("패딩", None, "uncategorized", &json!({}), &description);
        assert_eq!(
            text.chars().count(),
            "패딩. ".chars().count() + DESCRIPTION_CHARS
        );
    }
}
