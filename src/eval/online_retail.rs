//! Offline evaluation on UCI Online Retail: a time split of the purchase ledger, a
//! top-k list per test customer from each method, Recall@k and NDCG@k against what the
//! customer bought after the cutoff.
//!
//! The ledger is read with the importer's own reader, so cancellations, non-positive
//! quantities and non-product stock codes (POST, DOT, M, C2, BANK CHARGES, vouchers, ...)
//! are dropped by exactly the rules the catalog import applies.

use super::metrics::{binary_ndcg_at_k, recall_at_k, Mean};
use crate::import::online_retail::read_orders;
use crate::import::rows::OrderLine;
use anyhow::Context;
use chrono::NaiveDateTime;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

/// How the split is drawn and scored.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Purchases strictly before this instant train; the rest test.
    pub cutoff: NaiveDateTime,
    /// When false (the default), items a customer bought before the cutoff are neither
    /// recommended to them nor counted as relevant: the task is "what will they buy that
    /// they have not bought before". Repeat purchases dominate this ledger, so the
    /// other setting mostly measures how well a method replays history.
    pub include_train_items: bool,
    /// Keep only the first N test customers (by customer id), for quick runs.
    pub limit_customers: Option<usize>,
}

/// One purchase line of the training period.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPurchase {
    pub member: String,
    pub sku: String,
    pub quantity: i32,
    pub at: NaiveDateTime,
}

/// The split: every training purchase, and for each test customer what counts as relevant.
#[derive(Debug, Clone, Default)]
pub struct RetailSplit {
    pub train: Vec<TrainPurchase>,
    /// Test customer → the items they bought in the training period.
    pub history: BTreeMap<String, HashSet<String>>,
    /// Test customer → the items bought after the cutoff that count as relevant.
    pub relevant: BTreeMap<String, HashSet<String>>,
    pub include_train_items: bool,
}

impl RetailSplit {
    /// Splits purchase lines at the cutoff. Test customers are those with at least one
    /// purchase on each side (and, when training items are excluded, at least one new
    /// item after the cutoff).
    pub fn build(lines: impl IntoIterator<Item = OrderLine>, options: &SplitOptions) -> Self {
        let mut train = Vec::new();
        let mut bought_before: HashMap<String, HashSet<String>> = HashMap::new();
        let mut bought_after: HashMap<String, HashSet<String>> = HashMap::new();
        for line in lines {
            if line.occurred_at < options.cutoff {
                bought_before
                    .entry(line.member_id.clone())
                    .or_default()
                    .insert(line.sku.clone());
                train.push(TrainPurchase {
                    member: line.member_id,
                    sku: line.sku,
                    quantity: line.quantity,
                    at: line.occurred_at,
                });
            } else {
                bought_after
                    .entry(line.member_id)
                    .or_default()
                    .insert(line.sku);
            }
        }
        let mut history = BTreeMap::new();
        let mut relevant = BTreeMap::new();
        for (member, after) in bought_after {
            let Some(before) = bought_before.get(&member) else {
                continue;
            };
            let wanted: HashSet<String> = if options.include_train_items {
                after
            } else {
                after.difference(before).cloned().collect()
            };
            if !wanted.is_empty() {
                history.insert(member.clone(), before.clone());
                relevant.insert(member, wanted);
            }
        }
        if let Some(limit) = options.limit_customers {
            let kept: HashSet<String> = relevant.keys().take(limit).cloned().collect();
            relevant.retain(|member, _| kept.contains(member));
            history.retain(|member, _| kept.contains(member));
        }
        Self {
            train,
            history,
            relevant,
            include_train_items: options.include_train_items,
        }
    }

    /// Reads the ledger at `path` (skipping what the importer skips) and splits it.
    pub fn read(path: &Path, options: &SplitOptions) -> anyhow::Result<Self> {
        Ok(Self::from_lines(read_lines(path)?, options))
    }

    /// Splits lines already read with [`read_lines`].
    pub fn from_lines(lines: impl IntoIterator<Item = OrderLine>, options: &SplitOptions) -> Self {
        let split = Self::build(lines, options);
        tracing::info!(
            train_lines = split.train.len(),
            test_customers = split.relevant.len(),
            "online retail split built"
        );
        split
    }

    /// Whether `sku` may be recommended to `member` under this split's rule.
    pub fn may_recommend(&self, member: &str, sku: &str) -> bool {
        self.include_train_items || !self.history.get(member).is_some_and(|h| h.contains(sku))
    }

    /// Scores one top-k list per test customer; a customer missing from `lists` scores 0.
    pub fn score(&self, method: &str, lists: &HashMap<String, Vec<String>>, k: usize) -> Score {
        let mut recall = Mean::default();
        let mut ndcg = Mean::default();
        for (member, wanted) in &self.relevant {
            let ranked = lists.get(member).map(Vec::as_slice).unwrap_or(&[]);
            recall.add(recall_at_k(ranked, wanted, k));
            ndcg.add(binary_ndcg_at_k(ranked, wanted, k));
        }
        Score {
            method: method.to_string(),
            customers: recall.count(),
            recall: recall.value(),
            ndcg: ndcg.value(),
        }
    }

    /// Writes the split for an outside baseline: `train.tsv` (member, sku, quantity, unix
    /// seconds) and `test_members.tsv` (one test customer a line), both with a header.
    pub fn export(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut train = BufWriter::new(std::fs::File::create(dir.join("train.tsv"))?);
        writeln!(train, "member\tsku\tquantity\tat")?;
        for p in &self.train {
            writeln!(
                train,
                "{}\t{}\t{}\t{}",
                p.member,
                p.sku,
                p.quantity,
                p.at.and_utc().timestamp()
            )?;
        }
        train.flush()?;
        let mut members = BufWriter::new(std::fs::File::create(dir.join("test_members.tsv"))?);
        writeln!(members, "member")?;
        for member in self.relevant.keys() {
            writeln!(members, "{member}")?;
        }
        members.flush()?;
        Ok(())
    }
}

/// The purchase lines of the ledger at `path` that the importer keeps.
pub fn read_lines(path: &Path) -> anyhow::Result<Vec<OrderLine>> {
    Ok(read_orders(path)?.filter_map(Result::ok).collect())
}

/// One method's scores on the validation split (when it was scored there) and on the
/// test split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitScores {
    pub method: String,
    pub validation: Option<Score>,
    pub test: Score,
}

/// Validation and test results side by side, as a markdown table.
pub fn two_split_table(scores: &[SplitScores], k: usize) -> String {
    let mut out = format!(
        "| Method | Customers (val) | Recall@{k} val | NDCG@{k} val | Customers (test) | \
         Recall@{k} test | NDCG@{k} test |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for s in scores {
        let validation = match &s.validation {
            Some(v) => format!("{} | {:.4} | {:.4}", v.customers, v.recall, v.ndcg),
            None => "– | – | –".to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {validation} | {} | {:.4} | {:.4} |",
            s.method, s.test.customers, s.test.recall, s.test.ndcg
        );
    }
    out
}

/// Top-k by number of training purchase lines per item (ties by stock code), minus what
/// the split forbids for each customer.
pub fn popularity_lists(split: &RetailSplit, k: usize) -> HashMap<String, Vec<String>> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for purchase in &split.train {
        *counts.entry(purchase.sku.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(&str, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    split
        .relevant
        .keys()
        .map(|member| {
            let list = ranked
                .iter()
                .map(|(sku, _)| *sku)
                .filter(|sku| split.may_recommend(member, sku))
                .take(k)
                .map(str::to_string)
                .collect();
            (member.clone(), list)
        })
        .collect()
}

/// Reads ranked lists written by an outside baseline: a `member\tsku` line per
/// recommendation, in rank order within a member (a header line is allowed). Items the
/// split forbids are dropped here too, so every method obeys the same rule.
pub fn read_ranked_lists(
    split: &RetailSplit,
    path: &Path,
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        let mut fields = line.split('\t');
        let (Some(member), Some(sku)) = (fields.next(), fields.next()) else {
            anyhow::bail!("{}:{}: expected member<TAB>sku", path.display(), number + 1);
        };
        if number == 0 && member == "member" {
            continue;
        }
        if split.may_recommend(member, sku) {
            lists
                .entry(member.to_string())
                .or_default()
                .push(sku.to_string());
        }
    }
    Ok(lists)
}

/// One method's averages over the test customers.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub method: String,
    pub customers: u64,
    pub recall: f64,
    pub ndcg: f64,
}

/// The results as a markdown table.
pub fn markdown_table(scores: &[Score], k: usize) -> String {
    let mut out = format!("| Method | Customers | Recall@{k} | NDCG@{k} |\n|---|---:|---:|---:|\n");
    for s in scores {
        let _ = writeln!(
            out,
            "| {} | {} | {:.4} | {:.4} |",
            s.method, s.customers, s.recall, s.ndcg
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(day: u32, month: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2011, month, day)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    }

    fn line(member: &str, sku: &str, when: NaiveDateTime) -> OrderLine {
        OrderLine {
            order_id: "1".into(),
            member_id: member.into(),
            sku: sku.into(),
            quantity: 1,
            unit_price_minor: 100,
            occurred_at: when,
        }
    }

    fn options(include_train_items: bool) -> SplitOptions {
        SplitOptions {
            cutoff: at(1, 11),
            include_train_items,
            limit_customers: None,
        }
    }

    fn ledger() -> Vec<OrderLine> {
        vec![
            line("1", "A", at(1, 10)),
            line("1", "B", at(2, 10)),
            line("2", "A", at(3, 10)),
            line("3", "C", at(4, 10)),
            // After the cutoff.
            line("1", "A", at(2, 11)),
            line("1", "C", at(2, 11)),
            line("2", "A", at(3, 11)),
            line("4", "A", at(3, 11)),
        ]
    }

    #[test]
    fn customers_need_both_sides_and_something_new_when_history_is_excluded() {
        let split = RetailSplit::build(ledger(), &options(false));
        // 2 only re-bought A; 3 bought nothing later; 4 nothing before.
        assert_eq!(split.relevant.keys().collect::<Vec<_>>(), ["1"]);
        assert_eq!(split.relevant["1"], HashSet::from(["C".to_string()]));
        assert_eq!(split.train.len(), 4);

        let with_history = RetailSplit::build(ledger(), &options(true));
        assert_eq!(with_history.relevant.keys().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(with_history.relevant["1"].len(), 2);
    }

    #[test]
    fn popularity_skips_what_the_customer_already_bought() {
        let split = RetailSplit::build(ledger(), &options(false));
        let lists = popularity_lists(&split, 10);
        // Train counts: A 2, B 1, C 1; customer 1 bought A and B.
        assert_eq!(lists["1"], ["C"]);
        let score = split.score("popularity", &lists, 10);
        assert_eq!(score.customers, 1);
        assert_eq!(score.recall, 1.0);
        assert_eq!(score.ndcg, 1.0);
    }

    #[test]
    fn exported_split_and_ranked_lists_round_trip() {
        let split = RetailSplit::build(ledger(), &options(false));
        let dir = std::env::temp_dir().join(format!("convrec-eval-{}", std::process::id()));
        split.export(&dir).unwrap();
        let train = std::fs::read_to_string(dir.join("train.tsv")).unwrap();
        assert_eq!(train.lines().count(), 5);
        assert!(train.starts_with("member\tsku\tquantity\tat\n1\tA\t1\t"));
        let members = std::fs::read_to_string(dir.join("test_members.tsv")).unwrap();
        assert_eq!(members, "member\n1\n");

        let ranked = dir.join("ranked.tsv");
        std::fs::write(&ranked, "member\tsku\n1\tA\n1\tZ\n1\tC\n").unwrap();
        let lists = read_ranked_lists(&split, &ranked).unwrap();
        // A was bought before the cutoff, so it is dropped and C moves up to rank 2.
        assert_eq!(lists["1"], ["Z", "C"]);
        let score = split.score("outside", &lists, 10);
        assert!((score.ndcg - 1.0 / 3f64.log2()).abs() < 1e-9);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_two_split_table_marks_methods_without_validation() {
        let score = |ndcg| Score {
            method: "m".into(),
            customers: 2,
            recall: 0.5,
            ndcg,
        };
        let table = two_split_table(
            &[
                SplitScores {
                    method: "cf".into(),
                    validation: Some(score(0.25)),
                    test: score(0.125),
                },
                SplitScores {
                    method: "als".into(),
                    validation: None,
                    test: score(0.5),
                },
            ],
            10,
        );
        assert!(
            table.contains("| cf | 2 | 0.5000 | 0.2500 | 2 | 0.5000 | 0.1250 |"),
            "{table}"
        );
        assert!(
            table.contains("| als | – | – | – | 2 | 0.5000 | 0.5000 |"),
            "{table}"
        );
    }

    #[test]
    fn the_table_has_one_row_per_method() {
        let table = markdown_table(
            &[Score {
                method: "popularity".into(),
                customers: 3,
                recall: 0.5,
                ndcg: 0.25,
            }],
            10,
        );
        assert!(
            table.contains("| popularity | 3 | 0.5000 | 0.2500 |"),
            "{table}"
        );
    }
}
