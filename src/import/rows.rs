//! What every import reader yields: a row, or the reason a row was skipped.

use chrono::NaiveDateTime;

/// A source row that was not imported, with its 1-based line (or record) number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    pub line: u64,
    pub reason: String,
}

impl SkippedRow {
    pub fn new(line: u64, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

pub type RowResult<T> = Result<T, SkippedRow>;

/// One purchased line of an order (from Online Retail invoices).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    /// The shop's order (invoice) number.
    pub order_id: String,
    /// The shop's member id ("17850", never "17850.0").
    pub member_id: String,
    /// Matches `ProductDraft::sku` of the same import.
    pub sku: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub occurred_at: NaiveDateTime,
}
