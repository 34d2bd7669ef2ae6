//! UCI Online Retail: invoice lines of a UK gift shop
//! (`InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country`).
//!
//! The file is a sales ledger, not a catalog: products are derived by grouping lines per
//! stock code, and the same lines are the purchase history. Both readers apply the same
//! rules, so every order line's `sku` names an imported product.

use super::generic::csv_rows;
use super::rows::{OrderLine, RowResult, SkippedRow};
use super::skips::{money_reason, SkipSummary};
use crate::catalog::{Currency, MoneyError, ProductDraft};
use anyhow::Context;
use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The shop sells gifts and homewares; the ledger has no finer category.
pub const CATEGORY: &str = "gifts";

/// Stock codes that are fees, adjustments or services, not goods. Codes without any digit
/// (`POST`, `DOT`, `M`, `DCGSSBOY`, ...) and gift vouchers (`gift_0001_10`) are caught
/// by rule in [`non_product_reason`]; these are the ones that look like product codes.
const NON_PRODUCT_CODES: &[&str] = &[
    "C2",    // CARRIAGE
    "23444", // Next Day Carriage
    "23702", // High Resolution Image (a service fee)
];

/// Timestamp layouts: this copy's ISO form, and the `12/1/2010 8:26` of UCI's own export.
const DATE_FORMATS: &[&str] = &["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"];

/// Derives one product per stock code from the sales lines of `path` (see the module
/// docs for the rules). Holds only per-code tallies in memory, never the file.
pub fn read_products(
    path: &Path,
    default_stock: i32,
) -> anyhow::Result<(Vec<ProductDraft>, SkipSummary)> {
    read_products_before(path, default_stock, None)
}

/// [`read_products`] from the sales before `before` only: the catalog as it was then
/// (a code first sold later does not exist yet). Later lines are ignored, not skipped.
pub fn read_products_before(
    path: &Path,
    default_stock: i32,
    before: Option<NaiveDateTime>,
) -> anyhow::Result<(Vec<ProductDraft>, SkipSummary)> {
    let (columns, rows) = open(path)?;
    let mut tallies: BTreeMap<String, CodeTally> = BTreeMap::new();
    let mut skipped = SkipSummary::new();
    for row in rows {
        match row.and_then(|(line, record)| {
            Sale::parse(&record, &columns).map_err(|reason| SkippedRow::new(line, reason))
        }) {
            Ok(sale) if before.is_some_and(|before| sale.occurred_at >= before) => {}
            Ok(sale) => tallies.entry(sale.sku).or_default().add(
                sale.line,
                sale.description,
                sale.unit_price_minor,
            ),
            Err(skip) => skipped.record(skip),
        }
    }
    let products = tallies
        .into_iter()
        .map(|(sku, tally)| tally.into_draft(sku, default_stock))
        .collect();
    Ok((products, skipped))
}

/// Streams the purchase lines of `path` that have a customer, one [`OrderLine`] each.
pub fn read_orders(
    path: &Path,
) -> anyhow::Result<impl Iterator<Item = RowResult<OrderLine>> + Send> {
    let (columns, rows) = open(path)?;
    Ok(rows.map(move |row| {
        let (line, record) = row?;
        order_line(&record, &columns).map_err(|reason| SkippedRow::new(line, reason))
    }))
}

fn order_line(record: &csv::StringRecord, columns: &Columns) -> Result<OrderLine, String> {
    let sale = Sale::parse(record, columns)?;
    let customer = record.get(columns.customer_id).unwrap_or_default();
    Ok(OrderLine {
        order_id: sale.invoice,
        member_id: member_id(customer)?,
        sku: sale.sku,
        quantity: sale.quantity,
        unit_price_minor: sale.unit_price_minor,
        occurred_at: sale.occurred_at,
    })
}

fn open(
    path: &Path,
) -> anyhow::Result<(
    Columns,
    impl Iterator<Item = RowResult<(u64, csv::StringRecord)>>,
)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let columns = Columns::from_header(reader.headers()?)
        .with_context(|| format!("{}: not an Online Retail file", path.display()))?;
    Ok((columns, csv_rows(reader)))
}

/// Column positions, by header name, so a re-ordered export still reads.
struct Columns {
    invoice: usize,
    stock_code: usize,
    description: usize,
    quantity: usize,
    invoice_date: usize,
    unit_price: usize,
    customer_id: usize,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> anyhow::Result<Self> {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
                .with_context(|| format!("missing column {name:?}"))
        };
        Ok(Self {
            invoice: find("InvoiceNo")?,
            stock_code: find("StockCode")?,
            description: find("Description")?,
            quantity: find("Quantity")?,
            invoice_date: find("InvoiceDate")?,
            unit_price: find("UnitPrice")?,
            customer_id: find("CustomerID")?,
        })
    }
}

/// A ledger line that passed every product rule.
struct Sale {
    line: u64,
    invoice: String,
    sku: String,
    description: String,
    quantity: i32,
    unit_price_minor: i64,
    occurred_at: NaiveDateTime,
}

impl Sale {
    /// Applies the rules in ledger order: what kind of invoice, what kind of code, then
    /// the numbers; the first rule a line breaks is its skip reason.
    fn parse(record: &csv::StringRecord, columns: &Columns) -> Result<Self, String> {
        let field = |index: usize| record.get(index).unwrap_or_default();

        let invoice = field(columns.invoice);
        if invoice.is_empty() {
            return Err("missing invoice number".into());
        }
        if invoice.starts_with(['C', 'c']) {
            return Err(format!("cancellation invoice: {invoice}"));
        }
        if !invoice.bytes().all(|b| b.is_ascii_digit()) {
            // `A563185`..: "Adjust bad debt" bookings, not sales.
            return Err(format!("non-sales invoice: {invoice}"));
        }

        // Codes come in two cases (`85123a` and `85123A` are one product).
        let sku = field(columns.stock_code).to_uppercase();
        if sku.is_empty() {
            return Err("missing stock code".into());
        }
        let description = normalise_description(field(columns.description));
        if let Some(reason) = non_product_reason(&sku, &description) {
            return Err(reason);
        }

        let quantity_text = field(columns.quantity);
        let quantity: i32 = quantity_text
            .parse()
            .map_err(|_| format!("quantity: {quantity_text:?} is not a whole number"))?;
        if quantity <= 0 {
            return Err(format!("non-positive quantity: {quantity}"));
        }

        let price_text = field(columns.unit_price);
        let unit_price_minor = match Currency::Gbp.parse_major(price_text) {
            Ok(0) | Err(MoneyError::Negative) => {
                return Err(format!("non-positive unit price: {price_text}"))
            }
            Ok(minor) => minor,
            Err(error) => return Err(money_reason("unit price", &error)),
        };

        if description.is_empty() {
            return Err("empty description".into());
        }

        let date_text = field(columns.invoice_date);
        let occurred_at = DATE_FORMATS
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(date_text, format).ok())
            .ok_or_else(|| {
                format!(
                    "invoice date: {date_text:?} is not a date \
                     (expected 2010-12-01 08:26:00 or 12/1/2010 8:26)"
                )
            })?;

        Ok(Self {
            line: record.position().map_or(0, |p| p.line()),
            invoice: invoice.to_string(),
            sku,
            description,
            quantity,
            unit_price_minor,
            occurred_at,
        })
    }
}

/// Why a (normalised) stock code is not a product, if it is not.
fn non_product_reason(sku: &str, description: &str) -> Option<String> {
    let not_goods = NON_PRODUCT_CODES.contains(&sku)
        || !sku.bytes().any(|b| b.is_ascii_digit())
        || sku.starts_with("GIFT_")
        // One voucher hides under an ordinary code (22016).
        || description.to_lowercase().contains("gift voucher");
    not_goods.then(|| format!("non-product stock code: {sku}"))
}

/// Descriptions carry stray spaces (`"WOVEN ROSE GARDEN CUSHION COVER "`, doubled inner
/// spaces) that would otherwise split one title into several.
fn normalise_description(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `17850.0` (the ledger stores ids as floats) → `17850`.
fn member_id(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("missing customer id".into());
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b == b'0')
    {
        return Err(format!("customer id: {text:?} is not a whole number"));
    }
    Ok(whole.to_string())
}

/// What the sales of one stock code say about it.
#[derive(Default)]
struct CodeTally {
    /// Description → (times seen, first line).
    titles: HashMap<String, (u64, u64)>,
    /// Unit price in pence → (times seen, first line).
    prices: HashMap<i64, (u64, u64)>,
}

impl CodeTally {
    fn add(&mut self, line: u64, description: String, unit_price_minor: i64) {
        let title = self.titles.entry(description).or_insert((0, line));
        title.0 += 1;
        let price = self.prices.entry(unit_price_minor).or_insert((0, line));
        price.0 += 1;
    }

    fn into_draft(self, sku: String, default_stock: i32) -> ProductDraft {
        let mut attributes = Map::new();
        attributes.insert("source".into(), Value::from("online_retail"));
        ProductDraft {
            sku,
            title: most_frequent(self.titles).unwrap_or_default(),
            description: String::new(),
            category: CATEGORY.to_string(),
            brand: None,
            price_minor: most_frequent(self.prices),
            currency: Currency::Gbp,
            stock: default_stock,
            attributes,
            image_url: None,
        }
    }
}

/// The most frequent value; on a tie, the one seen first in the file, so the result does
/// not depend on hash order.
fn most_frequent<T>(counts: HashMap<T, (u64, u64)>) -> Option<T> {
    counts
        .into_iter()
        .max_by_key(|&(_, (count, first_line))| (count, std::cmp::Reverse(first_line)))
        .map(|(value, _)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::skips::test_support::{shared_data, temp_file};
    use chrono::NaiveDate;

    const HEADER: &str =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

    fn ledger(lines: &[&str]) -> crate::import::skips::test_support::TempPath {
        temp_file("retail.csv", &format!("{HEADER}{}\n", lines.join("\n")))
    }

    #[test]
    fn a_cutoff_keeps_only_the_products_sold_before_it() {
        let file = ledger(&[
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2011-10-01 08:26:00,2.55,17850.0,United Kingdom",
            "536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2011-11-02 08:28:00,2.95,17850.0,United Kingdom",
            "536368,71053,\"METAL SIGN,CUPCAKE\",6,2011-11-03 08:34:00,3.4,13047.0,United Kingdom",
        ]);
        let cutoff = NaiveDate::from_ymd_opt(2011, 11, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0);
        let (products, skipped) = read_products_before(file.path(), 3, cutoff).unwrap();
        assert!(skipped.is_empty(), "{skipped}");
        assert_eq!(products.len(), 1);
        assert_eq!(products[0].sku, "85123A");
        // Only the sale before the cutoff sets the price.
        assert_eq!(products[0].price_minor, Some(255));
    }

    #[test]
    fn products_take_the_most_frequent_title_and_price() {
        let file = ledger(&[
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
            "536366,85123a,CREAM HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:28:00,2.95,17850.0,United Kingdom",
            "536367,85123A,WHITE  HANGING HEART T-LIGHT HOLDER ,1,2010-12-01 08:34:00,2.95,,United Kingdom",
            "536368,71053,\"METAL SIGN,CUPCAKE\",6,2010-12-01 08:34:00,3.4,13047.0,United Kingdom",
        ]);
        let (products, skipped) = read_products(file.path(), 3).unwrap();
        assert!(skipped.is_empty(), "{skipped}");
        let skus: Vec<_> = products.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(skus, ["71053", "85123A"]);
        let heart = &products[1];
        assert_eq!(heart.title, "WHITE HANGING HEART T-LIGHT HOLDER");
        assert_eq!(heart.price_minor, Some(295));
        assert_eq!(heart.currency, Currency::Gbp);
        assert_eq!(heart.category, "gifts");
        assert_eq!(heart.stock, 3);
        assert_eq!(heart.attributes["source"], "online_retail");
        assert_eq!(products[0].title, "METAL SIGN,CUPCAKE");
        assert_eq!(products[0].price_minor, Some(340));
    }

    #[test]
    fn ties_go_to_the_value_seen_first() {
        let file = ledger(&[
            "1,10001,SECOND NAME,1,2011-01-01 10:00:00,1.25,1.0,UK",
            "2,10001,FIRST NAME,1,2011-01-01 10:00:00,0.99,1.0,UK",
            "3,10001,FIRST NAME,1,2011-01-01 10:00:00,0.99,1.0,UK",
            "4,10001,SECOND NAME,1,2011-01-01 10:00:00,1.25,1.0,UK",
        ]);
        let (products, _) = read_products(file.path(), 0).unwrap();
        assert_eq!(products[0].title, "SECOND NAME");
        assert_eq!(products[0].price_minor, Some(125));
    }

    #[test]
    fn every_rule_skips_with_its_own_reason() {
        let file = ledger(&[
            "536365,22752,SET 7 BABUSHKA NESTING BOXES,2,2010-12-01 08:26:00,7.65,17850.0,UK",
            "C536379,22752,SET 7 BABUSHKA NESTING BOXES,-1,2010-12-01 09:41:00,7.65,14527.0,UK",
            "A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,,UK",
            "536370,POST,POSTAGE,3,2010-12-01 08:45:00,18.0,12583.0,France",
            "536371,gift_0001_10,Dotcomgiftshop Gift Voucher £10.00,1,2010-12-01 08:45:00,8.5,,UK",
            "536372,C2,CARRIAGE,1,2010-12-01 08:45:00,50.0,14911.0,EIRE",
            "536373,22016,Dotcomgiftshop Gift Voucher £100.00,1,2010-12-01 08:45:00,83.33,,UK",
            "536374,22752,SET 7 BABUSHKA NESTING BOXES,0,2010-12-01 08:45:00,7.65,1.0,UK",
            "536375,22752,SET 7 BABUSHKA NESTING BOXES,-12,2010-12-01 08:45:00,7.65,1.0,UK",
            "536376,22752,SET 7 BABUSHKA NESTING BOXES,2,2010-12-01 08:45:00,0.0,1.0,UK",
            "536377,22752,SET 7 BABUSHKA NESTING BOXES,2,2010-12-01 08:45:00,-1.5,1.0,UK",
            "536378,22752,SET 7 BABUSHKA NESTING BOXES,2,2010-12-01 08:45:00,0.001,1.0,UK",
            "536379,22752,,2,2010-12-01 08:45:00,7.65,1.0,UK",
            "536380,22752,SET 7 BABUSHKA NESTING BOXES,two,2010-12-01 08:45:00,7.65,1.0,UK",
            "536381,22752,SET 7 BABUSHKA NESTING BOXES,2,yesterday,7.65,1.0,UK",
            "536382,22752,too,few,fields",
        ]);
        let (products, skipped) = read_products(file.path(), 0).unwrap();
        assert_eq!(products.len(), 1);
        let counts: Vec<_> = skipped
            .reasons()
            .iter()
            .map(|(label, stats)| (label.as_str(), stats.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("cancellation invoice", 1),
                ("empty description", 1),
                ("invoice date", 1),
                ("malformed CSV row", 1),
                ("non-positive quantity", 2),
                ("non-positive unit price", 2),
                ("non-product stock code", 4),
                ("non-sales invoice", 1),
                ("quantity", 1),
                ("unit price", 1),
            ]
        );
        let example = |label: &str| skipped.reasons()[label].examples[0].clone();
        assert_eq!(
            example("cancellation invoice"),
            SkippedRow::new(3, "cancellation invoice: C536379")
        );
        assert_eq!(
            example("unit price").reason,
            "unit price: GBP prices have at most 2 decimal digits"
        );
        let codes: Vec<_> = skipped.reasons()["non-product stock code"]
            .examples
            .iter()
            .map(|s| s.reason.as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "non-product stock code: POST",
                "non-product stock code: GIFT_0001_10",
                "non-product stock code: C2",
            ]
        );
    }

    #[test]
    fn orders_need_a_customer_and_drop_the_float_suffix() {
        let file = ledger(&[
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
            "536366,85123a,WHITE HANGING HEART T-LIGHT HOLDER,2,12/1/2010 8:28,2.55,12346,United Kingdom",
            "536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2010-12-01 08:34:00,2.55,,United Kingdom",
            "536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2010-12-01 08:34:00,2.55,17850.5,United Kingdom",
            "C536369,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-1,2010-12-01 08:34:00,2.55,17850.0,United Kingdom",
        ]);
        let rows: Vec<_> = read_orders(file.path()).unwrap().collect();
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            *first,
            OrderLine {
                order_id: "536365".into(),
                member_id: "17850".into(),
                sku: "85123A".into(),
                quantity: 6,
                unit_price_minor: 255,
                occurred_at: NaiveDate::from_ymd_opt(2010, 12, 1)
                    .unwrap()
                    .and_hms_opt(8, 26, 0)
                    .unwrap(),
            }
        );
        let second = rows[1].as_ref().unwrap();
        assert_eq!(second.member_id, "12346");
        assert_eq!(second.sku, "85123A");
        assert_eq!(second.occurred_at.to_string(), "2010-12-01 08:28:00");
        let skips: Vec<_> = rows[2..].iter().map(|r| r.clone().unwrap_err()).collect();
        assert_eq!(
            skips,
            [
                SkippedRow::new(4, "missing customer id"),
                SkippedRow::new(5, "customer id: \"17850.5\" is not a whole number"),
                SkippedRow::new(6, "cancellation invoice: C536369"),
            ]
        );
    }

    #[test]
    fn member_ids_accept_integers_with_a_zero_fraction_only() {
        assert_eq!(member_id("17850.0").unwrap(), "17850");
        assert_eq!(member_id("17850.00").unwrap(), "17850");
        assert_eq!(member_id("17850").unwrap(), "17850");
        assert!(member_id(".0").is_err());
        assert!(member_id("1e4").is_err());
        assert!(member_id("-5.0").is_err());
    }

    #[test]
    fn a_file_without_the_ledger_columns_is_refused() {
        let file = temp_file("other.csv", "sku,title\na,b\n");
        let error = format!("{:#}", read_products(file.path(), 0).err().unwrap());
        assert!(error.contains("missing column \"InvoiceNo\""), "{error}");
        assert!(read_orders(file.path()).is_err());
    }

    #[test]
    fn the_real_ledger_yields_products_and_orders() {
        let Some(path) = shared_data("online_retail/online_retail.csv") else {
            return;
        };
        let (products, skipped) = read_products(&path, 0).unwrap();
        assert!(
            (3_700..=4_100).contains(&products.len()),
            "{} products",
            products.len()
        );
        assert_eq!(skipped.count("cancellation invoice"), 9_288);
        assert_eq!(skipped.count("malformed CSV row"), 0);
        assert!(products
            .iter()
            .all(|p| !p.title.is_empty() && p.price_minor > Some(0)));
        let invalid = products
            .iter()
            .cloned()
            .filter_map(|p| p.validate().err())
            .count();
        assert_eq!(invalid, 0);

        let skus: std::collections::HashSet<_> = products.iter().map(|p| p.sku.as_str()).collect();
        let mut orders = 0_u64;
        let mut order_skips = SkipSummary::new();
        for row in read_orders(&path).unwrap() {
            match row {
                Ok(order) => {
                    orders += 1;
                    assert!(skus.contains(order.sku.as_str()), "{}", order.sku);
                    assert!(!order.member_id.contains('.'), "{}", order.member_id);
                }
                Err(skip) => order_skips.record(skip),
            }
        }
        assert!(
            (390_000..=400_000).contains(&orders),
            "{orders} order lines"
        );
        // The product pass skips the same lines, plus none for a missing customer.
        assert_eq!(
            order_skips.total() - order_skips.count("missing customer id"),
            skipped.total()
        );
    }
}
