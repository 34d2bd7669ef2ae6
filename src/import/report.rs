//! What an import did: rows read and written, and the skipped rows by reason.

use super::rows::SkippedRow;
use super::skips::SkipSummary;
use std::fmt;

#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    pub source: String,
    pub rows_read: u64,
    pub products_written: u64,
    pub members_written: u64,
    pub orders_written: u64,
    pub skips: SkipSummary,
}

impl ImportReport {
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }

    pub fn skip(&mut self, row: SkippedRow) {
        self.skips.record(row);
    }

    pub fn skipped_total(&self) -> u64 {
        self.skips.total()
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "import of {}", self.source)?;
        writeln!(f, "  rows read:        {}", self.rows_read)?;
        writeln!(f, "  products written: {}", self.products_written)?;
        if self.orders_written > 0 || self.members_written > 0 {
            writeln!(f, "  members written:  {}", self.members_written)?;
            writeln!(f, "  order lines:      {}", self.orders_written)?;
        }
        writeln!(f, "  {}", self.skips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_counted_by_reason_label_with_bounded_examples() {
        let mut report = ImportReport::new("test");
        for line in 0..25 {
            report.skip(SkippedRow::new(line, "price: must not be negative"));
        }
        report.skip(SkippedRow::new(99, "cancellation invoice: C536379"));
        assert_eq!(report.skips.count("price"), 25);
        assert_eq!(report.skips.count("cancellation invoice"), 1);
        assert_eq!(
            report.skips.reasons()["price"].examples.len(),
            SkipSummary::EXAMPLES_PER_REASON
        );
        assert_eq!(report.skipped_total(), 26);
        assert!(report.to_string().contains("price: 25"));
    }
}
