use crate::helpers::{content_embedder, spawn_app};
use convrec::catalog::embedding::{embed_products, Scope};
use convrec::import::{self, ImportSource};
use convrec::ml::blocking::BlockingEmbedder;
use convrec::ml::TextKind;
use sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use std::io::Write;

/// The nearest products to `query` by cosine distance over the HNSW index.
async fn nearest(
    app: &crate::helpers::TestApp,
    embedder: &BlockingEmbedder,
    query: &str,
) -> Vec<String> {
    let vector = embedder
        .embed_as(TextKind::Query, vec![query.to_string()])
        .await
        .unwrap()
        .remove(0);
    let rows = app
        .db
        .query_all_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT sku FROM products ORDER BY embedding <=> $1 LIMIT 2",
            [DbValue::from(pgvector::Vector::from(vector))],
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

#[actix_web::test]
async fn imported_products_are_embedded_and_found_by_meaning() {
    let app = spawn_app().await;
    let path = std::env::temp_dir().join(format!("convrec-embed-{}.jsonl", uuid::Uuid::new_v4()));
    let mut file = std::fs::File::create(&path).unwrap();
    for line in [
        r#"{"sku":"E-1","title":"Waterproof Hiking Jacket","category":"outdoor/jackets","price":129000,"colors":["navy"]}"#,
        r#"{"sku":"E-2","title":"Chocolate Chip Cookies","category":"food/snacks","price":4500}"#,
        r#"{"sku":"E-3","title":"Noise Cancelling Headphones","category":"electronics/audio","price":259000}"#,
        r#"{"sku":"E-4","title":"Moisturizing Cream for Dry Skin","category":"beauty/skincare","price":32000}"#,
    ] {
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    import::run(&app.db, ImportSource::Generic(path.clone()), 10, false)
        .await
        .unwrap();
    std::fs::remove_file(&path).ok();

    let embedder = content_embedder(&app.settings);
    assert_eq!(app.embed_catalog().await, 4);
    // Nothing is left to do, so a second pass writes nothing; `All` redoes everything.
    assert_eq!(app.embed_catalog().await, 0);
    // Vectors of another model count as missing: a change of model re-embeds every product
    // once, and switching back does too.
    let current = embedder.model_id().to_string();
    for (model, expected) in [
        ("another-model@0000", 4),
        ("another-model@0000", 0),
        (current.as_str(), 4),
    ] {
        let written = embed_products(
            &app.db,
            Scope::Missing,
            model,
            |t| embedder.embed_as(TextKind::Passage, t),
            false,
        )
        .await
        .unwrap();
        assert_eq!(written, expected, "products re-embedded for {model}");
    }

    assert_eq!(
        nearest(&app, &embedder, "rain jacket for trekking").await[0],
        "E-1"
    );
    assert_eq!(
        nearest(&app, &embedder, "something sweet to snack on").await[0],
        "E-2"
    );
    assert_eq!(
        nearest(&app, &embedder, "wireless earphones with ANC").await[0],
        "E-3"
    );

    let all = embed_products(
        &app.db,
        Scope::All,
        embedder.model_id(),
        |t| embedder.embed_as(TextKind::Passage, t),
        false,
    )
    .await
    .unwrap();
    assert_eq!(all, 4);
}
