//! The lexical signal (`recommend::lexical`) on a database of its own: Korean words match
//! inside longer forms and before particles, English keeps its stemming, and the demo
//! catalog's Korean products are found by the way shoppers type.

use crate::helpers::test_settings;
use convrec::import::{self, ImportSource};
use convrec::recommend::lexical::lexical_matches;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value as DbValue};

/// A migrated, empty database that only this test uses (no other service is needed).
async fn fresh_database() -> DatabaseConnection {
    let settings = test_settings();
    convrec::db::ensure_database(&settings.database)
        .await
        .expect("the test database is created; is the stack up (scripts/stack.sh up)?");
    let db = convrec::db::connect(&settings.database).await.unwrap();
    convrec::db::migrate(&db).await.unwrap();
    db
}

async fn insert_product(db: &DatabaseConnection, sku: &str, title: &str, description: &str) {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO products (id, sku, title, description, category) \
         VALUES (gen_random_uuid(), $1, $2, $3, 'misc')",
        [
            DbValue::from(sku.to_string()),
            DbValue::from(title.to_string()),
            DbValue::from(description.to_string()),
        ],
    ))
    .await
    .unwrap();
}

async fn matched_skus(db: &DatabaseConnection, words: &str) -> Vec<String> {
    lexical_matches(db, words, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.sku)
        .collect()
}

#[actix_web::test]
async fn korean_words_match_inside_longer_forms_and_before_particles_and_english_keeps_stemming() {
    let db = fresh_database().await;
    insert_product(&db, "LONG-PADDING", "롱 패딩", "따뜻한 겨울 구스다운").await;
    insert_product(&db, "RUNNER", "나이키 러닝화 270", "가벼운 쿠션").await;
    insert_product(
        &db,
        "JACKET",
        "Waterproof hiking jacket",
        "A light rain shell",
    )
    .await;
    insert_product(&db, "BOOK", "책", "").await;
    insert_product(&db, "DESK", "원목 책상", "").await;

    assert_eq!(matched_skus(&db, "패딩을").await, ["LONG-PADDING"]);
    assert_eq!(
        matched_skus(&db, "롱패딩 찾고 있어요").await,
        ["LONG-PADDING"]
    );
    assert_eq!(matched_skus(&db, "러닝화").await, ["RUNNER"]);
    assert_eq!(matched_skus(&db, "러닝화를 추천해줘").await, ["RUNNER"]);
    assert_eq!(matched_skus(&db, "jackets").await, ["JACKET"]);
    // A one-syllable noun with a particle, and not the longer word that starts with it.
    assert_eq!(matched_skus(&db, "책을").await, ["BOOK"]);
    // Korean words the catalog does not have match nothing, not everything.
    assert!(matched_skus(&db, "냉장고 정리함").await.is_empty());
    assert!(matched_skus(&db, "the").await.is_empty());
    assert!(matched_skus(&db, "").await.is_empty());
    // A mixed query finds both sides, the one matching more words first.
    let mixed = matched_skus(&db, "겨울 롱패딩 or a rain jacket").await;
    assert_eq!(mixed.len(), 2, "{mixed:?}");
}

#[actix_web::test]
async fn the_lexical_document_follows_product_edits() {
    let db = fresh_database().await;
    insert_product(&db, "P-1", "경량 조끼", "").await;
    assert!(matched_skus(&db, "패딩이").await.is_empty());
    db.execute_unprepared("UPDATE products SET title = '경량 패딩 조끼' WHERE sku = 'P-1'")
        .await
        .unwrap();
    assert_eq!(matched_skus(&db, "패딩이").await, ["P-1"]);
}

/// Korean queries as shoppers type them (particles, words run together, chat endings) and the
/// demo-catalog products each should find in the lexical signal's top 3.
const DEMO_KOREAN_QUERIES: &[(&str, &[&str])] = &[
    ("롱패딩을 찾고 있어요", &["FA-0011"]),
    ("숏패딩이 필요해요", &["FA-0002", "FA-0004", "FA-0012"]),
    ("경량 패딩 조끼는", &["FA-0005"]),
    (
        "러닝화를 추천해줘",
        &["SH-0008", "SH-0012", "SH-0013", "SH-0045"],
    ),
    ("트레일 러닝화로", &["SH-0013"]),
    ("고체 향수는 있나요", &["BE-0041"]),
    ("섬유향수도", &["BE-0040"]),
    ("조미김으로 주세요", &["FD-0029"]),
];

#[actix_web::test]
async fn korean_queries_with_particles_find_the_demo_catalogs_products() {
    let db = fresh_database().await;
    let report = import::run(&db, ImportSource::Demo, 100, false)
        .await
        .unwrap();
    assert_eq!(report.skipped_total(), 0, "{report}");
    let mut misses = Vec::new();
    for (query, expected) in DEMO_KOREAN_QUERIES {
        let top3: Vec<String> = lexical_matches(&db, query, 3)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.sku)
            .collect();
        let found = expected
            .iter()
            .filter(|sku| top3.contains(&sku.to_string()));
        println!("{query:<24} top 3 {top3:?}; expected {expected:?}");
        if found.count() == 0 {
            misses.push(*query);
        }
    }
    assert!(
        misses.is_empty(),
        "no expected product in the top 3 for {misses:?}"
    );
}
