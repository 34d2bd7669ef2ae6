//! `convrec import`: reads a catalog (and for Online Retail its orders), validates every
//! row, writes in batches and reports what it skipped and why.

pub mod esci;
pub mod generic;
pub mod instacart;
pub mod online_retail;
pub mod report;
pub mod rows;
pub mod skips;

pub use report::ImportReport;

use crate::catalog::store::upsert_batch;
use crate::catalog::ProductDraft;
use crate::db::entities::{interaction, member, product};
use chrono::TimeZone;
use indicatif::{ProgressBar, ProgressStyle};
use rows::{OrderLine, RowResult, SkippedRow};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QuerySelect, TransactionTrait,
};
use std::collections::HashMap;
use std::path::PathBuf;
use uuid::Uuid;

/// Rows per INSERT: large enough to amortise round trips, far below PostgreSQL's
/// 65,535-parameter limit (11 columns a row).
const BATCH_SIZE: usize = 500;

/// The demo catalog ships inside the binary, so `import demo` works from any directory.
pub const DEMO_CATALOG: &str = include_str!("../../data/demo_catalog.jsonl");

#[derive(Debug, Clone)]
pub enum ImportSource {
    Demo,
    Generic(PathBuf),
    Esci(PathBuf),
    OnlineRetail {
        path: PathBuf,
        with_orders: bool,
        /// Only the sales before this instant: the products sold by then and their orders.
        before: Option<chrono::NaiveDateTime>,
    },
    Instacart(PathBuf),
}

fn progress_bar(show: bool, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}: {pos} rows ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_string());
    bar
}

/// Imports `source` and reports. Re-running the same source updates products in place
/// (by SKU) and does not duplicate orders.
pub async fn run(
    db: &DatabaseConnection,
    source: ImportSource,
    default_stock: i32,
    show_progress: bool,
) -> anyhow::Result<ImportReport> {
    match source {
        ImportSource::Demo => {
            let path = std::env::temp_dir().join(format!("convrec-demo-{}.jsonl", Uuid::new_v4()));
            std::fs::write(&path, DEMO_CATALOG)?;
            let rows = generic::read_products(&path, default_stock);
            let result = match rows {
                Ok(rows) => import_products(db, "demo catalog", rows, show_progress).await,
                Err(e) => Err(e),
            };
            std::fs::remove_file(&path).ok();
            result
        }
        ImportSource::Generic(path) => {
            let rows = generic::read_products(&path, default_stock)?;
            import_products(db, &path.display().to_string(), rows, show_progress).await
        }
        ImportSource::Esci(path) => {
            let rows = esci::read_products(&path, default_stock)?;
            import_products(db, &path.display().to_string(), rows, show_progress).await
        }
        ImportSource::Instacart(dir) => {
            let rows = instacart::read_products(&dir, default_stock)?;
            import_products(db, &dir.display().to_string(), rows, show_progress).await
        }
        ImportSource::OnlineRetail {
            path,
            with_orders,
            before,
        } => {
            let (products, skips) =
                online_retail::read_products_before(&path, default_stock, before)?;
            let mut report = import_products(
                db,
                &path.display().to_string(),
                products.into_iter().map(Ok),
                show_progress,
            )
            .await?;
            report.skips.merge(skips);
            if with_orders {
                let lines = online_retail::read_orders(&path)?.filter(move |line| match line {
                    Ok(line) => before.is_none_or(|before| line.occurred_at < before),
                    Err(_) => true,
                });
                import_orders(db, &mut report, lines, show_progress).await?;
            }
            Ok(report)
        }
    }
}

/// Validates and upserts products in batches. A row that fails validation is skipped with
/// its reasons; a database error aborts the import (earlier batches stay written).
pub async fn import_products(
    db: &DatabaseConnection,
    source: &str,
    rows: impl IntoIterator<Item = RowResult<ProductDraft>>,
    show_progress: bool,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::new(source);
    let bar = progress_bar(show_progress, "products");
    // Keyed by SKU: a file that repeats a SKU inside one batch would make the upsert touch
    // the same row twice, which PostgreSQL refuses.
    let mut batch: HashMap<String, (u64, crate::catalog::ValidProduct)> = HashMap::new();
    for (index, row) in rows.into_iter().enumerate() {
        report.rows_read += 1;
        bar.inc(1);
        let draft = match row {
            Ok(draft) => draft,
            Err(skipped) => {
                report.skip(skipped);
                continue;
            }
        };
        let position = index as u64 + 1;
        match draft.validate() {
            Ok(valid) => {
                let sku = valid.as_draft().sku.clone();
                if let Some((first, _)) = batch.insert(sku.clone(), (position, valid)) {
                    report.skip(SkippedRow::new(
                        first,
                        format!("duplicate sku: {sku} appears again at row {position}; the later row wins"),
                    ));
                }
            }
            Err(errors) => {
                let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
                report.skip(SkippedRow::new(position, reasons.join("; ")));
            }
        }
        if batch.len() >= BATCH_SIZE {
            report.products_written += flush(db, &mut batch).await?;
        }
    }
    report.products_written += flush(db, &mut batch).await?;
    bar.finish_and_clear();
    tracing::info!(
        source,
        written = report.products_written,
        skipped = report.skipped_total(),
        "product import finished"
    );
    Ok(report)
}

async fn flush(
    db: &DatabaseConnection,
    batch: &mut HashMap<String, (u64, crate::catalog::ValidProduct)>,
) -> anyhow::Result<u64> {
    let products = batch.drain().map(|(_, (_, p))| p).collect();
    Ok(upsert_batch(db, products).await?)
}

/// Imports order lines as members + `order` interactions. Lines are summed per
/// (order, product), and `source_ref` = order id makes a re-import a no-op.
pub async fn import_orders(
    db: &DatabaseConnection,
    report: &mut ImportReport,
    lines: impl IntoIterator<Item = RowResult<OrderLine>>,
    show_progress: bool,
) -> anyhow::Result<()> {
    let product_ids: HashMap<String, Uuid> = product::Entity::find()
        .select_only()
        .column(product::Column::Sku)
        .column(product::Column::Id)
        .into_tuple::<(String, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .collect();

    let bar = progress_bar(show_progress, "order lines");
    let mut orders: HashMap<(String, Uuid), (String, i32, chrono::NaiveDateTime)> = HashMap::new();
    for line in lines {
        bar.inc(1);
        let line = match line {
            Ok(line) => line,
            Err(skipped) => {
                report.skip(skipped);
                continue;
            }
        };
        let Some(&product_id) = product_ids.get(&line.sku) else {
            report.skip(SkippedRow::new(0, format!("unknown product: {}", line.sku)));
            continue;
        };
        let entry = orders
            .entry((line.order_id.clone(), product_id))
            .or_insert((line.member_id.clone(), 0, line.occurred_at));
        entry.1 = entry.1.saturating_add(line.quantity);
    }
    bar.finish_and_clear();

    let mut members: Vec<String> = orders.values().map(|(m, _, _)| m.clone()).collect();
    members.sort_unstable();
    members.dedup();
    let txn = db.begin().await?;
    for chunk in members.chunks(BATCH_SIZE * 4) {
        let now = chrono::Utc::now().fixed_offset();
        let result = member::Entity::insert_many(chunk.iter().map(|id| member::ActiveModel {
            id: Set(id.clone()),
            display_name: Set(None),
            created_at: Set(now),
        }))
        .on_conflict(
            OnConflict::column(member::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        report.members_written += result;
    }
    let rows: Vec<_> = orders.into_iter().collect();
    for chunk in rows.chunks(BATCH_SIZE * 2) {
        let now = chrono::Utc::now().fixed_offset();
        let models = chunk
            .iter()
            .map(
                |((order_id, product_id), (member_id, qty, at))| interaction::ActiveModel {
                    member_id: Set(member_id.clone()),
                    product_id: Set(*product_id),
                    kind: Set("order".to_string()),
                    quantity: Set((*qty).max(1)),
                    source_ref: Set(Some(order_id.clone())),
                    occurred_at: Set(chrono::Utc.from_utc_datetime(at).fixed_offset()),
                    created_at: Set(now),
                    ..Default::default()
                },
            );
        let result = interaction::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([
                    interaction::Column::SourceRef,
                    interaction::Column::ProductId,
                    interaction::Column::Kind,
                ])
                .target_and_where(interaction::Column::SourceRef.is_not_null())
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        report.orders_written += result;
    }
    txn.commit().await?;
    Ok(())
}
