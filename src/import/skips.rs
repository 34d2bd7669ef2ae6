//! A compact report of skipped rows: a count per reason plus a few examples each, so an
//! import of 500k lines says "cancellation invoice: 9,288" instead of listing 9,288 lines.
//!
//! Readers phrase every skip reason as `label: detail` (or just `label`). The label is the
//! stable part that is counted ("cancellation invoice", "price", "malformed JSON"); the
//! detail names this row's value and only shows up in the examples.

use super::rows::{RowResult, SkippedRow};
use crate::catalog::MoneyError;
use std::collections::BTreeMap;
use std::fmt;

/// Skipped rows sharing one reason label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReasonStats {
    pub count: u64,
    /// The first [`SkipSummary::EXAMPLES_PER_REASON`] rows with this label, in file order.
    pub examples: Vec<SkippedRow>,
}

/// Skipped rows of one import, grouped by reason label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipSummary {
    by_reason: BTreeMap<String, ReasonStats>,
}

impl SkipSummary {
    pub const EXAMPLES_PER_REASON: usize = 3;

    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `row` under its reason label and keeps it if it is among the first few.
    pub fn record(&mut self, row: SkippedRow) {
        let stats = self
            .by_reason
            .entry(reason_label(&row.reason).to_string())
            .or_default();
        stats.count += 1;
        if stats.examples.len() < Self::EXAMPLES_PER_REASON {
            stats.examples.push(row);
        }
    }

    /// Adds the skips of another import (or another pass over the same file).
    pub fn merge(&mut self, other: SkipSummary) {
        for (label, theirs) in other.by_reason {
            let ours = self.by_reason.entry(label).or_default();
            ours.count += theirs.count;
            let room = Self::EXAMPLES_PER_REASON.saturating_sub(ours.examples.len());
            ours.examples.extend(theirs.examples.into_iter().take(room));
        }
    }

    /// Reason labels with their statistics, in label order.
    pub fn reasons(&self) -> &BTreeMap<String, ReasonStats> {
        &self.by_reason
    }

    /// How many rows were skipped with this label (0 when none).
    pub fn count(&self, label: &str) -> u64 {
        self.by_reason.get(label).map_or(0, |s| s.count)
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().map(|s| s.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_reason.is_empty()
    }
}

impl fmt::Display for SkipSummary {
    /// One line per reason: `cancellation invoice: 9288 (e.g. line 142: cancellation invoice: C536379)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no rows skipped");
        }
        write!(f, "{} rows skipped", self.total())?;
        for (label, stats) in &self.by_reason {
            write!(f, "\n  {label}: {}", stats.count)?;
            if let Some(first) = stats.examples.first() {
                write!(f, " (e.g. line {}: {})", first.line, first.reason)?;
            }
        }
        Ok(())
    }
}

impl Extend<SkippedRow> for SkipSummary {
    fn extend<I: IntoIterator<Item = SkippedRow>>(&mut self, rows: I) {
        for row in rows {
            self.record(row);
        }
    }
}

/// The counted part of a reason: the text before the first `:`, or all of it.
pub fn reason_label(reason: &str) -> &str {
    reason
        .split_once(':')
        .map_or(reason, |(label, _)| label)
        .trim()
}

/// Collects a reader's rows, summarising the skipped ones. Holds every row in memory:
/// for tests and small files; large imports should fold rows into a [`SkipSummary`] as
/// they stream.
pub fn partition<T>(rows: impl IntoIterator<Item = RowResult<T>>) -> (Vec<T>, SkipSummary) {
    let mut kept = Vec::new();
    let mut skipped = SkipSummary::new();
    for row in rows {
        match row {
            Ok(item) => kept.push(item),
            Err(skip) => skipped.record(skip),
        }
    }
    (kept, skipped)
}

/// A skip reason for a price that did not convert, labelled with the field it came from
/// (`price: KRW prices have at most 0 decimal digits`).
pub(crate) fn money_reason(field: &str, error: &MoneyError) -> String {
    match error {
        MoneyError::Empty => format!("{field}: must not be empty"),
        MoneyError::Negative => format!("{field}: must not be negative"),
        MoneyError::NotANumber(text) => format!("{field}: {text:?} is not a number"),
        MoneyError::TooLarge => format!("{field}: is too large"),
        MoneyError::TooPrecise { .. } | MoneyError::UnknownCurrency(_) => {
            format!("{field}: {error}")
        }
    }
}

/// Fixtures and real-data lookup shared by the readers' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file or folder under the system temp dir, removed when dropped.
    pub(crate) struct TempPath(PathBuf);

    impl TempPath {
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            // Best effort: a leftover temp file must not fail a test.
            let _ = std::fs::remove_dir_all(&self.0).or_else(|_| std::fs::remove_file(&self.0));
        }
    }

    fn unique_path(name: &str) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("convrec-test-{}-{n}-{name}", std::process::id()))
    }

    /// Writes `contents` to a fresh temp file whose name ends with `name` (extension included).
    pub(crate) fn temp_file(name: &str, contents: &str) -> TempPath {
        let path = unique_path(name);
        std::fs::write(&path, contents).expect("write temp fixture");
        TempPath(path)
    }

    /// A fresh temp folder holding the given `(file name, contents)` pairs.
    pub(crate) fn temp_dir_with(files: &[(&str, &str)]) -> TempPath {
        let dir = unique_path("dir");
        std::fs::create_dir_all(&dir).expect("create temp dir");
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).expect("write temp fixture");
        }
        TempPath(dir)
    }

    /// `relative` under the shared data sets (`$CONVREC_SHARED_DATA`, else
    /// `../shared/data` next to the crate), or `None` when it is not there.
    pub(crate) fn shared_data(relative: &str) -> Option<PathBuf> {
        let root = std::env::var_os("CONVREC_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
        let path = root.join(relative);
        path.exists().then_some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_by_label_with_a_few_examples() {
        let mut summary = SkipSummary::new();
        for line in 1..=5 {
            summary.record(SkippedRow::new(
                line,
                format!("cancellation invoice: C{line}"),
            ));
        }
        summary.record(SkippedRow::new(9, "empty description"));
        assert_eq!(summary.total(), 6);
        assert_eq!(summary.count("cancellation invoice"), 5);
        assert_eq!(summary.count("empty description"), 1);
        assert_eq!(summary.count("nothing like this"), 0);
        let cancelled = &summary.reasons()["cancellation invoice"];
        assert_eq!(cancelled.examples.len(), SkipSummary::EXAMPLES_PER_REASON);
        assert_eq!(
            cancelled.examples[0],
            SkippedRow::new(1, "cancellation invoice: C1")
        );
        let text = summary.to_string();
        assert!(text.starts_with("6 rows skipped"), "{text}");
        assert!(
            text.contains("cancellation invoice: 5 (e.g. line 1:"),
            "{text}"
        );
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_example_cap() {
        let mut a = SkipSummary::new();
        a.extend((1..=2).map(|l| SkippedRow::new(l, "price: must not be negative")));
        let mut b = SkipSummary::new();
        b.extend((10..=12).map(|l| SkippedRow::new(l, "price: is too large")));
        a.merge(b);
        assert_eq!(a.count("price"), 5);
        let lines: Vec<_> = a.reasons()["price"]
            .examples
            .iter()
            .map(|r| r.line)
            .collect();
        assert_eq!(lines, [1, 2, 10]);
    }

    #[test]
    fn partition_splits_rows_from_skips() {
        let rows = vec![Ok(1), Err(SkippedRow::new(2, "missing title")), Ok(3)];
        let (kept, skipped) = partition(rows);
        assert_eq!(kept, [1, 3]);
        assert_eq!(skipped.count("missing title"), 1);
        assert!(SkipSummary::new().to_string().contains("no rows skipped"));
    }

    #[test]
    fn merged_summaries_add_counts_and_keep_bounded_examples() {
        let mut summary = SkipSummary::new();
        summary.extend((1..=5).map(|l| SkippedRow::new(l, "cancellation invoice: C1")));
        summary.record(SkippedRow::new(8, "empty description"));
        let mut total = SkipSummary::new();
        total.record(SkippedRow::new(1, "cancellation invoice: C0"));
        total.merge(summary);
        assert_eq!(total.count("cancellation invoice"), 6);
        assert_eq!(total.count("empty description"), 1);
        assert_eq!(total.total(), 7);
        assert_eq!(
            total.reasons()["cancellation invoice"].examples.len(),
            SkipSummary::EXAMPLES_PER_REASON
        );
    }

    #[test]
    fn money_errors_become_labelled_reasons() {
        let too_precise = crate::catalog::Currency::Krw
            .parse_major("12.5")
            .unwrap_err();
        assert_eq!(
            money_reason("price", &too_precise),
            "price: KRW prices have at most 0 decimal digits"
        );
        assert_eq!(
            money_reason("price", &MoneyError::Negative),
            "price: must not be negative"
        );
        assert_eq!(reason_label("price: must not be negative"), "price");
    }
}
