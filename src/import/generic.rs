//! The project's own import format (docs/import-formats.md): JSON Lines or CSV with the
//! fields of a [`ProductDraft`] in major-unit prices. Strict on purpose: a typo in a key
//! or an over-precise price skips the row with a reason instead of importing a wrong
//! product.
//!
//! Also home of the JSON Lines plumbing other JSON readers (ESCI) share.

use super::rows::{RowResult, SkippedRow};
use super::skips::money_reason;
use crate::catalog::{Currency, ProductDraft};
use anyhow::{bail, Context};
use serde_json::{Map, Value};
use std::path::Path;

/// Every key the format knows; anything else is a typo worth reporting.
pub const FIELDS: &[&str] = &[
    "sku",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "stock",
    "colors",
    "attributes",
    "image_url",
];

/// Category of rows that leave it out.
const UNCATEGORIZED: &str = "uncategorized";

/// Reads a generic catalog file: JSON Lines for `.jsonl`/`.ndjson`/`.json`, CSV for `.csv`.
/// Fails up front on an unknown extension, an unreadable file or a bad CSV header; bad rows
/// are yielded as [`SkippedRow`]s.
pub fn read_products(
    path: &Path,
    default_stock: i32,
) -> anyhow::Result<Box<dyn Iterator<Item = RowResult<ProductDraft>> + Send>> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl" | "ndjson" | "json") => {
            let rows = jsonl::JsonLines::open(path)?;
            Ok(Box::new(rows.map(move |row| {
                let row = row?;
                draft_from_json(row.object, default_stock)
                    .map_err(|reason| SkippedRow::new(row.line, reason))
            })))
        }
        Some("csv") => Ok(Box::new(read_csv(path, default_stock)?)),
        _ => bail!(
            "{}: unknown catalog format (expected a .jsonl, .json or .csv file)",
            path.display()
        ),
    }
}

fn draft_from_json(object: Map<String, Value>, default_stock: i32) -> Result<ProductDraft, String> {
    use jsonl::{kind, optional_str, optional_str_list, required_str};

    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let currency = match optional_str(&object, "currency")? {
        Some(code) => parse_currency(code)?,
        None => Currency::default(),
    };
    let price_minor = match object.get("price") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => parse_price(text, currency)?,
        // serde_json prints a float in its shortest round-trip form ("19.99"), so the
        // decimal the author wrote is what gets converted, never a binary approximation.
        Some(Value::Number(n)) => parse_price(&n.to_string(), currency)?,
        Some(other) => {
            return Err(format!(
                "price: expected a number or a string, got {}",
                kind(other)
            ))
        }
    };
    let stock = match object.get("stock") {
        None | Some(Value::Null) => default_stock,
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| format!("stock: expected a whole number, got {n}"))?,
        Some(other) => {
            return Err(format!(
                "stock: expected a whole number, got {}",
                kind(other)
            ))
        }
    };
    let mut attributes = match object.get("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(format!(
                "attributes: expected an object, got {}",
                kind(other)
            ))
        }
    };
    if let Some(colors) = optional_str_list(&object, "colors")? {
        put_colors(&mut attributes, colors)?;
    }
    Ok(ProductDraft {
        sku: required_str(&object, "sku")?.to_string(),
        title: required_str(&object, "title")?.to_string(),
        description: optional_str(&object, "description")?
            .unwrap_or_default()
            .to_string(),
        category: non_empty(optional_str(&object, "category")?)
            .unwrap_or(UNCATEGORIZED)
            .to_string(),
        brand: non_empty(optional_str(&object, "brand")?).map(str::to_string),
        price_minor,
        currency,
        stock,
        attributes,
        image_url: non_empty(optional_str(&object, "image_url")?).map(str::to_string),
    })
}

/// Column positions of a generic CSV file, looked up by header name.
#[derive(Debug, Clone, Copy, Default)]
struct CsvColumns {
    sku: usize,
    title: usize,
    description: Option<usize>,
    category: Option<usize>,
    brand: Option<usize>,
    price: Option<usize>,
    currency: Option<usize>,
    stock: Option<usize>,
    colors: Option<usize>,
    attributes: Option<usize>,
    image_url: Option<usize>,
}

impl CsvColumns {
    fn from_header(header: &csv::StringRecord) -> anyhow::Result<Self> {
        let mut found: [Option<usize>; FIELDS.len()] = [None; FIELDS.len()];
        for (index, name) in header.iter().enumerate() {
            let Some(field) = FIELDS.iter().position(|f| *f == name) else {
                bail!("unknown column {name:?} (known: {})", FIELDS.join(", "));
            };
            if found[field].replace(index).is_some() {
                bail!("column {name:?} appears twice");
            }
        }
        let required = |field: usize| {
            found[field].with_context(|| format!("missing required column {:?}", FIELDS[field]))
        };
        Ok(Self {
            sku: required(0)?,
            title: required(1)?,
            description: found[2],
            category: found[3],
            brand: found[4],
            price: found[5],
            currency: found[6],
            stock: found[7],
            colors: found[8],
            attributes: found[9],
            image_url: found[10],
        })
    }
}

fn read_csv(
    path: &Path,
    default_stock: i32,
) -> anyhow::Result<impl Iterator<Item = RowResult<ProductDraft>> + Send> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let columns = CsvColumns::from_header(reader.headers()?)
        .with_context(|| format!("{}: bad header", path.display()))?;
    Ok(csv_rows(reader).map(move |row| {
        let (line, record) = row?;
        draft_from_csv(&record, columns, default_stock)
            .map_err(|reason| SkippedRow::new(line, reason))
    }))
}

fn draft_from_csv(
    record: &csv::StringRecord,
    columns: CsvColumns,
    default_stock: i32,
) -> Result<ProductDraft, String> {
    // Empty cells mean "not given", like an absent key in JSON Lines.
    let cell = |index: Option<usize>| index.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
    let required = |index: usize, field: &str| {
        cell(Some(index)).ok_or_else(|| format!("missing field {field:?}"))
    };

    let currency = match cell(columns.currency) {
        Some(code) => parse_currency(code)?,
        None => Currency::default(),
    };
    let price_minor = match cell(columns.price) {
        Some(text) => parse_price(text, currency)?,
        None => None,
    };
    let stock = match cell(columns.stock) {
        Some(text) => text
            .parse::<i32>()
            .map_err(|_| format!("stock: {text:?} is not a whole number"))?,
        None => default_stock,
    };
    let mut attributes = match cell(columns.attributes) {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(format!(
                    "attributes: expected a JSON object, got {}",
                    jsonl::kind(&other)
                ))
            }
            Err(e) => return Err(format!("attributes: not valid JSON ({e})")),
        },
        None => Map::new(),
    };
    if let Some(colors) = cell(columns.colors) {
        put_colors(&mut attributes, colors.split(';').collect())?;
    }
    Ok(ProductDraft {
        sku: required(columns.sku, "sku")?.to_string(),
        title: required(columns.title, "title")?.to_string(),
        description: cell(columns.description).unwrap_or_default().to_string(),
        category: cell(columns.category).unwrap_or(UNCATEGORIZED).to_string(),
        brand: cell(columns.brand).map(str::to_string),
        price_minor,
        currency,
        stock,
        attributes,
        image_url: cell(columns.image_url).map(str::to_string),
    })
}

fn parse_currency(code: &str) -> Result<Currency, String> {
    code.parse().map_err(|e| money_reason("currency", &e))
}

/// Major-unit text to minor units; blank means "no price".
fn parse_price(text: &str, currency: Currency) -> Result<Option<i64>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    currency
        .parse_major(text)
        .map(Some)
        .map_err(|e| money_reason("price", &e))
}

/// Stores trimmed, non-empty colours as `attributes["colors"]`; the `colors` field and an
/// attribute of the same name would silently overwrite each other, so both is an error.
fn put_colors(attributes: &mut Map<String, Value>, colors: Vec<&str>) -> Result<(), String> {
    if attributes.contains_key("colors") {
        return Err("colors: given both as a field and inside attributes".into());
    }
    let colors: Vec<Value> = colors
        .into_iter()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(Value::from)
        .collect();
    if !colors.is_empty() {
        attributes.insert("colors".into(), Value::Array(colors));
    }
    Ok(())
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.filter(|t| !t.trim().is_empty())
}

/// Records of a CSV reader with their 1-based line numbers. A malformed record becomes a
/// skip; an I/O error ends the stream after one skip, since retrying would repeat it.
pub(crate) fn csv_rows<R: std::io::Read>(
    reader: csv::Reader<R>,
) -> impl Iterator<Item = RowResult<(u64, csv::StringRecord)>> {
    let mut records = reader.into_records();
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        Some(match records.next()? {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                Ok((line, record))
            }
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                let reason = match error.kind() {
                    csv::ErrorKind::Io(io) => {
                        failed = true;
                        format!("read error: {io}")
                    }
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("malformed CSV row: {len} fields, expected {expected_len}"),
                    csv::ErrorKind::Utf8 { err, .. } => format!(
                        "malformed CSV row: field {} is not valid UTF-8",
                        err.field() + 1
                    ),
                    _ => format!("malformed CSV row: {error}"),
                };
                Err(SkippedRow::new(line, reason))
            }
        })
    })
}

/// JSON Lines reading shared by the JSON-based readers.
pub(crate) mod jsonl {
    use super::super::rows::{RowResult, SkippedRow};
    use anyhow::{bail, Context};
    use serde_json::{Map, Value};
    use std::fs::File;
    use std::io::{BufRead, BufReader};
    use std::path::Path;

    /// One JSON object and the 1-based line it came from.
    pub(crate) struct JsonRow {
        pub(crate) line: u64,
        pub(crate) object: Map<String, Value>,
    }

    /// Streams the objects of a JSON Lines file, one line at a time. Blank lines are not
    /// rows and are passed over; a line that is not a JSON object is a [`SkippedRow`].
    pub(crate) struct JsonLines {
        reader: BufReader<File>,
        buffer: Vec<u8>,
        line: u64,
        done: bool,
    }

    impl JsonLines {
        /// Opens `path`, refusing a whole-file JSON array up front: it would otherwise show
        /// up as one confusing skip per line.
        pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let mut reader = BufReader::new(file);
            let head = reader
                .fill_buf()
                .with_context(|| format!("reading {}", path.display()))?;
            let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
            if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                bail!(
                    "{}: is a JSON array; expected JSON Lines (one object per line)",
                    path.display()
                );
            }
            Ok(Self {
                reader,
                buffer: Vec::new(),
                line: 0,
                done: false,
            })
        }
    }

    impl Iterator for JsonLines {
        type Item = RowResult<JsonRow>;

        fn next(&mut self) -> Option<Self::Item> {
            while !self.done {
                self.buffer.clear();
                match self.reader.read_until(b'\n', &mut self.buffer) {
                    Ok(0) => self.done = true,
                    Ok(_) => {
                        self.line += 1;
                        // Without its line end, a truncated line's error points at its
                        // last column instead of "column 0" of a line that is not there.
                        let mut bytes = self.buffer.trim_ascii_end();
                        if self.line == 1 {
                            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
                        }
                        if bytes.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        return Some(
                            parse_object(bytes)
                                .map(|object| JsonRow {
                                    line: self.line,
                                    object,
                                })
                                .map_err(|reason| SkippedRow::new(self.line, reason)),
                        );
                    }
                    Err(error) => {
                        // A failing disk fails again; report once and stop.
                        self.done = true;
                        return Some(Err(SkippedRow::new(
                            self.line + 1,
                            format!("read error: {error}"),
                        )));
                    }
                }
            }
            None
        }
    }

    fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "line is not valid UTF-8".to_string())?;
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(other) => Err(format!(
                "malformed JSON: expected an object, got {}",
                kind(&other)
            )),
            Err(error) => {
                // serde_json appends "at line 1 column N"; the line is ours, keep the column.
                let message = error.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                Err(format!(
                    "malformed JSON: {message} (column {})",
                    error.column()
                ))
            }
        }
    }

    /// The JSON type name of a value, for "expected X, got Y" reasons.
    pub(crate) fn kind(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// A string field; absent and `null` are `None`, other types are an error.
    pub(crate) fn optional_str<'a>(
        object: &'a Map<String, Value>,
        key: &str,
    ) -> Result<Option<&'a str>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!("{key}: expected a string, got {}", kind(other))),
        }
    }

    /// A string field that must be present and not blank.
    pub(crate) fn required_str<'a>(
        object: &'a Map<String, Value>,
        key: &str,
    ) -> Result<&'a str, String> {
        optional_str(object, key)?
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| format!("missing field {key:?}"))
    }

    /// An array of strings; absent and `null` are `None`.
    pub(crate) fn optional_str_list<'a>(
        object: &'a Map<String, Value>,
        key: &str,
    ) -> Result<Option<Vec<&'a str>>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().ok_or_else(|| {
                        format!("{key}: expected an array of strings, found {}", kind(item))
                    })
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(other) => Err(format!(
                "{key}: expected an array of strings, got {}",
                kind(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::skips::partition;
    use crate::import::skips::test_support::{shared_data, temp_file};
    use serde_json::json;

    fn read(name: &str, contents: &str) -> (Vec<ProductDraft>, Vec<SkippedRow>) {
        let file = temp_file(name, contents);
        let rows: Vec<_> = read_products(file.path(), 7).unwrap().collect();
        let mut kept = Vec::new();
        let mut skipped = Vec::new();
        for row in rows {
            match row {
                Ok(draft) => kept.push(draft),
                Err(skip) => skipped.push(skip),
            }
        }
        (kept, skipped)
    }

    #[test]
    fn a_full_jsonl_row_maps_every_field() {
        let (kept, skipped) = read(
            "full.jsonl",
            r#"{"sku":"JK-001","title":"경량 패딩 자켓","description":"가볍고 따뜻한","category":"fashion/outerwear","brand":"Noida","price":89000,"currency":"KRW","stock":12,"colors":["black"," navy ",""],"attributes":{"material":"nylon"},"image_url":"https://img.example/jk.jpg"}"#,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        let draft = &kept[0];
        assert_eq!(draft.sku, "JK-001");
        assert_eq!(draft.title, "경량 패딩 자켓");
        assert_eq!(draft.description, "가볍고 따뜻한");
        assert_eq!(draft.category, "fashion/outerwear");
        assert_eq!(draft.brand.as_deref(), Some("Noida"));
        assert_eq!(draft.price_minor, Some(89_000));
        assert_eq!(draft.currency, Currency::Krw);
        assert_eq!(draft.stock, 12);
        assert_eq!(draft.attributes["colors"], json!(["black", "navy"]));
        assert_eq!(draft.attributes["material"], json!("nylon"));
        assert_eq!(
            draft.image_url.as_deref(),
            Some("https://img.example/jk.jpg")
        );
    }

    #[test]
    fn defaults_apply_to_omitted_fields() {
        let (kept, skipped) = read("minimal.jsonl", "{\"sku\":\"A1\",\"title\":\"Mug\"}\n\n");
        assert!(skipped.is_empty(), "{skipped:?}");
        let draft = &kept[0];
        assert_eq!(draft.currency, Currency::Krw);
        assert_eq!(draft.stock, 7);
        assert_eq!(draft.price_minor, None);
        assert_eq!(draft.category, "uncategorized");
        assert_eq!(draft.description, "");
        assert!(draft.attributes.is_empty());
        assert_eq!(draft.brand, None);
    }

    #[test]
    fn prices_convert_exactly_from_numbers_and_strings() {
        let (kept, skipped) = read(
            "prices.jsonl",
            concat!(
                "{\"sku\":\"a\",\"title\":\"t\",\"price\":19.99,\"currency\":\"USD\"}\n",
                "{\"sku\":\"b\",\"title\":\"t\",\"price\":\"$1,234.5\",\"currency\":\"usd\"}\n",
                "{\"sku\":\"c\",\"title\":\"t\",\"price\":\"129,000\"}\n",
                "{\"sku\":\"d\",\"title\":\"t\",\"price\":0.1,\"currency\":\"EUR\"}\n",
                "{\"sku\":\"e\",\"title\":\"t\",\"price\":1200.0}\n",
                "{\"sku\":\"f\",\"title\":\"t\",\"price\":null}\n",
            ),
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        let prices: Vec<_> = kept.iter().map(|d| d.price_minor).collect();
        assert_eq!(
            prices,
            [
                Some(1999),
                Some(123_450),
                Some(129_000),
                Some(10),
                Some(1200),
                None
            ]
        );
        assert_eq!(kept[1].currency, Currency::Usd);
    }

    #[test]
    fn bad_jsonl_rows_are_skipped_with_precise_reasons() {
        let (kept, skipped) = read(
            "bad.jsonl",
            concat!(
                "{\"sku\":\"ok\",\"title\":\"fine\"}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"prise\":5}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"price\":12.5}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"price\":-3}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"price\":\"cheap\"}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"price\":true}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"currency\":\"XYZ\"}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"stock\":\"many\"}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"stock\":2.5}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"colors\":\"red\"}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"colors\":[\"red\",3]}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"attributes\":[1]}\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"colors\":[\"red\"],\"attributes\":{\"colors\":[]}}\n",
                "{\"title\":\"t\"}\n",
                "{\"sku\":\"  \",\"title\":\"t\"}\n",
                "{\"sku\":\"a\",\"title\":7}\n",
                "{\"sku\":\"a\",\"title\":\"t\"\n",
                "[1,2]\n",
                "{\"sku\":\"a\",\"title\":\"t\",\"price\":\"19.999\",\"currency\":\"USD\"}\n",
            ),
        );
        assert_eq!(kept.len(), 1);
        let reasons: Vec<String> = skipped
            .iter()
            .map(|s| format!("line {}: {}", s.line, s.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                "line 2: unknown field \"prise\"",
                "line 3: price: KRW prices have at most 0 decimal digits",
                "line 4: price: must not be negative",
                "line 5: price: \"cheap\" is not a number",
                "line 6: price: expected a number or a string, got a boolean",
                "line 7: currency: unknown currency \"XYZ\" (accepted: KRW, USD, EUR, GBP, JPY)",
                "line 8: stock: expected a whole number, got a string",
                "line 9: stock: expected a whole number, got 2.5",
                "line 10: colors: expected an array of strings, got a string",
                "line 11: colors: expected an array of strings, found a number",
                "line 12: attributes: expected an object, got an array",
                "line 13: colors: given both as a field and inside attributes",
                "line 14: missing field \"sku\"",
                "line 15: missing field \"sku\"",
                "line 16: title: expected a string, got a number",
                "line 17: malformed JSON: EOF while parsing an object (column 22)",
                "line 18: malformed JSON: expected an object, got an array",
                "line 19: price: USD prices have at most 2 decimal digits",
            ]
        );
    }

    #[test]
    fn invalid_utf8_skips_the_line_and_reading_goes_on() {
        let file = temp_file("latin1.jsonl", "");
        std::fs::write(
            file.path(),
            b"{\"sku\":\"a\",\"title\":\"caf\xe9\"}\n{\"sku\":\"b\",\"title\":\"ok\"}\n",
        )
        .unwrap();
        let (kept, skipped) = partition(read_products(file.path(), 0).unwrap());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].sku, "b");
        assert_eq!(
            skipped.reasons()["line is not valid UTF-8"].examples[0].line,
            1
        );
    }

    #[test]
    fn a_bom_and_crlf_line_ends_are_accepted() {
        let (kept, skipped) = read(
            "bom.jsonl",
            "\u{feff}{\"sku\":\"a\",\"title\":\"t\"}\r\n{\"sku\":\"b\",\"title\":\"t\"}\r\n",
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(kept.len(), 2);
        let (kept, skipped) = read("bom.csv", "\u{feff}sku,title\r\n\r\na,t\r\n");
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(kept[0].sku, "a");
    }

    #[test]
    fn a_json_array_file_or_an_unknown_extension_fails_up_front() {
        let array = temp_file("array.json", "[{\"sku\":\"a\",\"title\":\"t\"}]");
        let error = read_products(array.path(), 0).err().unwrap();
        assert!(error.to_string().contains("JSON Lines"), "{error}");
        let xml = temp_file("catalog.xml", "<catalog/>");
        assert!(read_products(xml.path(), 0).is_err());
        assert!(read_products(Path::new("/nonexistent/catalog.jsonl"), 0).is_err());
    }

    #[test]
    fn csv_rows_map_like_jsonl_rows() {
        let (kept, skipped) = read(
            "catalog.csv",
            concat!(
                "sku,title,description,category,brand,price,currency,stock,colors,attributes,image_url\n",
                "JK-001,경량 패딩 자켓,\"가볍고, 따뜻한\",fashion/outerwear,Noida,\"89,000\",KRW,12,black; navy,\"{\"\"material\"\":\"\"nylon\"\"}\",https://img.example/jk.jpg\n",
                "MUG-1,Mug,,,,12.50,USD,,,,\n",
            ),
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(kept[0].description, "가볍고, 따뜻한");
        assert_eq!(kept[0].price_minor, Some(89_000));
        assert_eq!(kept[0].stock, 12);
        assert_eq!(kept[0].attributes["colors"], json!(["black", "navy"]));
        assert_eq!(kept[0].attributes["material"], json!("nylon"));
        assert_eq!(kept[1].price_minor, Some(1250));
        assert_eq!(kept[1].currency, Currency::Usd);
        assert_eq!(kept[1].stock, 7);
        assert_eq!(kept[1].category, "uncategorized");
        assert_eq!(kept[1].brand, None);
        assert_eq!(kept[1].image_url, None);
        assert!(kept[1].attributes.is_empty());
    }

    #[test]
    fn bad_csv_rows_are_skipped_with_their_line() {
        let (kept, skipped) = read(
            "bad.csv",
            concat!(
                "sku,title,price,stock,attributes\n",
                "a,t,12.5,,\n",
                "b,t,,-,\n",
                "c,t,,,[1]\n",
                "d,t,,,{oops\n",
                ",t,,,\n",
                "e,t\n",
                "f,\"multi\nline\",100,1,\n",
                "g,t,,,\n",
            ),
        );
        let kept: Vec<_> = kept.iter().map(|d| d.sku.as_str()).collect();
        assert_eq!(kept, ["f", "g"]);
        let reasons: Vec<_> = skipped
            .iter()
            .map(|s| (s.line, s.reason.split(" (").next().unwrap()))
            .collect();
        assert_eq!(
            reasons,
            [
                (2, "price: KRW prices have at most 0 decimal digits"),
                (3, "stock: \"-\" is not a whole number"),
                (4, "attributes: expected a JSON object, got an array"),
                (5, "attributes: not valid JSON"),
                (6, "missing field \"sku\""),
                (7, "malformed CSV row: 2 fields, expected 5"),
            ]
        );
    }

    #[test]
    fn a_bad_csv_header_fails_the_whole_file() {
        let typo = temp_file("typo.csv", "sku,title,prise\na,t,1\n");
        let error = format!("{:#}", read_products(typo.path(), 0).err().unwrap());
        assert!(error.contains("unknown column \"prise\""), "{error}");
        let missing = temp_file("missing.csv", "sku,price\na,1\n");
        let error = format!("{:#}", read_products(missing.path(), 0).err().unwrap());
        assert!(
            error.contains("missing required column \"title\""),
            "{error}"
        );
    }

    #[test]
    fn the_demo_catalog_imports_without_skips() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo_catalog.jsonl");
        if !path.exists() {
            return;
        }
        let (kept, skipped) = partition(read_products(&path, 0).unwrap());
        assert!(skipped.is_empty(), "{skipped}");
        let invalid: Vec<_> = kept
            .into_iter()
            .filter_map(|d| d.validate().err())
            .collect();
        assert!(invalid.is_empty(), "{invalid:?}");
    }

    #[test]
    fn the_real_esci_file_is_not_a_generic_catalog() {
        // ESCI rows carry keys the generic format does not know: every row must be refused
        // rather than half-imported.
        let Some(path) = shared_data("esci/esci_products.jsonl") else {
            return;
        };
        let (kept, skipped) = partition(read_products(&path, 0).unwrap().take(100));
        assert!(kept.is_empty());
        assert_eq!(skipped.total(), 100);
    }
}
