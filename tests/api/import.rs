use crate::helpers::{shared_data, spawn_app};
use convrec::import::{self, ImportSource};
use sea_orm::{ConnectionTrait, Statement};
use std::io::Write;

async fn count(app: &crate::helpers::TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(app.db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[actix_web::test]
async fn the_demo_catalog_imports_cleanly_and_a_second_import_changes_nothing() {
    let app = spawn_app().await;
    let report = import::run(&app.db, ImportSource::Demo, 100, false)
        .await
        .unwrap();
    assert_eq!(report.skipped_total(), 0, "{report}");
    assert!(report.products_written >= 300, "{report}");
    let products = count(&app, "SELECT count(*) FROM products").await;
    assert_eq!(products as u64, report.products_written);
    for category in convrec::catalog::KNOWN_CATEGORIES {
        let n = count(
            &app,
            &format!("SELECT count(*) FROM products WHERE category = '{category}' OR category LIKE '{category}/%'"),
        )
        .await;
        assert!(n >= 30, "category {category} has only {n} products");
    }
    let korean = count(
        &app,
        "SELECT count(*) FROM products WHERE title ~ '[가-힣]'",
    )
    .await;
    assert!(korean >= 100, "only {korean} Korean titles");

    import::run(&app.db, ImportSource::Demo, 100, false)
        .await
        .unwrap();
    assert_eq!(count(&app, "SELECT count(*) FROM products").await, products);
}

#[actix_web::test]
async fn a_generic_csv_imports_good_rows_and_reports_each_bad_row() {
    let app = spawn_app().await;
    let path = std::env::temp_dir().join(format!("convrec-generic-{}.csv", uuid::Uuid::new_v4()));
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(
        file,
        "sku,title,description,category,brand,price,currency,stock,colors"
    )
    .unwrap();
    writeln!(
        file,
        "G-1,Good jacket,warm,fashion,Northway,89000,KRW,3,black;navy"
    )
    .unwrap();
    writeln!(file, "G-2,Negative,,fashion,,-5,KRW,3,").unwrap();
    writeln!(file, "G-3,,no title,fashion,,100,KRW,3,").unwrap();
    writeln!(file, "G-4,Fractional won,,fashion,,10.5,KRW,3,").unwrap();
    writeln!(file, "G-5,Dollars,,electronics,,19.99,USD,7,").unwrap();
    drop(file);

    let report = import::run(&app.db, ImportSource::Generic(path.clone()), 100, false)
        .await
        .unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(report.products_written, 2, "{report}");
    assert_eq!(report.skipped_total(), 3, "{report}");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM products WHERE sku IN ('G-1', 'G-5')"
        )
        .await,
        2
    );
    assert_eq!(
        count(&app, "SELECT price_minor FROM products WHERE sku = 'G-5'").await,
        1999
    );
}

#[actix_web::test]
async fn the_esci_catalog_imports_every_product_without_the_query_ids() {
    let Some(data) = shared_data() else { return };
    let app = spawn_app().await;
    let report = import::run(
        &app.db,
        ImportSource::Esci(data.join("esci/esci_products.jsonl")),
        100,
        false,
    )
    .await
    .unwrap();
    assert_eq!(report.products_written, 6764, "{report}");
    assert_eq!(count(&app, "SELECT count(*) FROM products").await, 6764);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM products WHERE attributes::text LIKE '%query_id%'"
        )
        .await,
        0
    );
    assert!(
        count(
            &app,
            "SELECT count(*) FROM products WHERE price_minor IS NOT NULL"
        )
        .await
            > 1000
    );
}

#[actix_web::test]
async fn online_retail_imports_products_members_and_orders_once() {
    let Some(data) = shared_data() else { return };
    let app = spawn_app().await;
    let source = ImportSource::OnlineRetail {
        path: data.join("online_retail/online_retail.csv"),
        with_orders: true,
        before: None,
    };
    let report = import::run(&app.db, source.clone(), 100, false)
        .await
        .unwrap();
    assert!(
        (3_500..=4_100).contains(&report.products_written),
        "{report}"
    );
    let members = count(&app, "SELECT count(*) FROM members").await;
    assert!(
        (4_000..=4_400).contains(&members),
        "{members} members\n{report}"
    );
    let orders = count(
        &app,
        "SELECT count(*) FROM interactions WHERE kind = 'order'",
    )
    .await;
    assert!(orders > 300_000, "{orders} order lines\n{report}");
    assert!(
        report.skips.count("cancellation invoice") > 9_000,
        "{report}"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM members WHERE id LIKE '%.%'").await,
        0,
        "member ids are written without the float's .0"
    );

    let again = import::run(&app.db, source, 100, false).await.unwrap();
    assert_eq!(again.orders_written, 0, "{again}");
    assert_eq!(
        count(&app, "SELECT count(*) FROM interactions").await,
        orders,
        "a second import adds no orders"
    );
}

#[actix_web::test]
async fn the_instacart_catalog_imports_with_mapped_categories() {
    let Some(data) = shared_data() else { return };
    let app = spawn_app().await;
    let report = import::run(
        &app.db,
        ImportSource::Instacart(data.join("instacart")),
        100,
        false,
    )
    .await
    .unwrap();
    assert_eq!(report.products_written, 49_688, "{report}");
    assert!(
        count(
            &app,
            "SELECT count(*) FROM products WHERE category LIKE 'beauty/%'"
        )
        .await
            > 100
    );
    assert!(
        count(
            &app,
            "SELECT count(*) FROM products WHERE category LIKE 'food/%'"
        )
        .await
            > 30_000
    );
}
