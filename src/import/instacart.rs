//! Instacart's grocery catalog: `products.csv` (`product_id,product_name,aisle_id,
//! department_id`) with the `aisles.csv` and `departments.csv` lookup tables beside it.
//! No prices and no brands: only names and a two-level taxonomy.

use super::generic::csv_rows;
use super::rows::{RowResult, SkippedRow};
use crate::catalog::{Currency, ProductDraft};
use anyhow::{bail, Context};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// Streams `dir/products.csv` as drafts, after loading the two small lookup tables.
/// Fails when a file is missing or a header is not Instacart's.
pub fn read_products(
    dir: &Path,
    default_stock: i32,
) -> anyhow::Result<impl Iterator<Item = RowResult<ProductDraft>> + Send> {
    let aisles = read_lookup(&dir.join("aisles.csv"), "aisle_id", "aisle")?;
    let departments = read_lookup(&dir.join("departments.csv"), "department_id", "department")?;

    let path = dir.join("products.csv");
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let columns = ProductColumns::from_header(reader.headers()?)
        .with_context(|| format!("{}: not an Instacart products file", path.display()))?;

    Ok(csv_rows(reader).map(move |row| {
        let (line, record) = row?;
        draft_from_record(&record, &columns, &aisles, &departments, default_stock)
            .map_err(|reason| SkippedRow::new(line, reason))
    }))
}

/// Maps an Instacart department to the shop's taxonomy: the top-level category and the
/// department's own segment under it. Pets and babies go under `home`, named after the
/// shop's wording (`home/pets`, `home/baby`); everything edible is `food`.
pub fn department_path(department: &str) -> (&'static str, String) {
    let top = match department {
        "personal care" => "beauty",
        "household" => "home",
        "pets" => return ("home", "pets".into()),
        "babies" => return ("home", "baby".into()),
        "produce" | "dairy eggs" | "snacks" | "frozen" | "pantry" | "beverages" | "bakery"
        | "deli" | "meat seafood" | "breakfast" | "canned goods" | "dry goods pasta" | "bulk"
        | "international" | "alcohol" => "food",
        // "missing", "other" and any department a newer release adds.
        _ => "uncategorized",
    };
    (top, slug(department))
}

/// `dairy eggs` → `dairy-eggs`: category segments carry no spaces.
fn slug(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join("-")
}

fn draft_from_record(
    record: &csv::StringRecord,
    columns: &ProductColumns,
    aisles: &HashMap<u32, String>,
    departments: &HashMap<u32, String>,
    default_stock: i32,
) -> Result<ProductDraft, String> {
    let field = |index: usize| record.get(index).unwrap_or_default();
    let id = |index: usize, name: &str| {
        let text = field(index);
        text.parse::<u32>()
            .map_err(|_| format!("{name}: {text:?} is not a number"))
    };

    let product_id = id(columns.product_id, "product_id")?;
    let title = field(columns.product_name);
    if title.is_empty() {
        return Err("empty product_name".into());
    }
    let aisle_id = id(columns.aisle_id, "aisle_id")?;
    let aisle = aisles
        .get(&aisle_id)
        .ok_or_else(|| format!("unknown aisle_id: {aisle_id}"))?;
    let department_id = id(columns.department_id, "department_id")?;
    let department = departments
        .get(&department_id)
        .ok_or_else(|| format!("unknown department_id: {department_id}"))?;

    let (top, department_segment) = department_path(department);
    let mut attributes = Map::new();
    attributes.insert("department".into(), Value::from(department.as_str()));
    attributes.insert("aisle".into(), Value::from(aisle.as_str()));
    Ok(ProductDraft {
        sku: format!("IC-{product_id}"),
        title: title.to_string(),
        description: String::new(),
        category: format!("{top}/{department_segment}/{}", slug(aisle)),
        brand: None,
        price_minor: None,
        currency: Currency::Usd,
        stock: default_stock,
        attributes,
        image_url: None,
    })
}

struct ProductColumns {
    product_id: usize,
    product_name: usize,
    aisle_id: usize,
    department_id: usize,
}

impl ProductColumns {
    fn from_header(header: &csv::StringRecord) -> anyhow::Result<Self> {
        Ok(Self {
            product_id: column(header, "product_id")?,
            product_name: column(header, "product_name")?,
            aisle_id: column(header, "aisle_id")?,
            department_id: column(header, "department_id")?,
        })
    }
}

fn column(header: &csv::StringRecord, name: &str) -> anyhow::Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .with_context(|| format!("missing column {name:?}"))
}

/// Reads an `id,name` table (134 aisles, 21 departments). A bad row here would silently
/// mislabel thousands of products, so it fails the import instead of being skipped.
fn read_lookup(
    path: &Path,
    id_column: &str,
    name_column: &str,
) -> anyhow::Result<HashMap<u32, String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let header = reader.headers()?.clone();
    let id_index = column(&header, id_column).with_context(|| path.display().to_string())?;
    let name_index = column(&header, name_column).with_context(|| path.display().to_string())?;
    let mut table = HashMap::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        let id_text = record.get(id_index).unwrap_or_default();
        let Ok(id) = id_text.parse::<u32>() else {
            bail!(
                "{} line {line}: {id_column} {id_text:?} is not a number",
                path.display()
            );
        };
        let name = record.get(name_index).unwrap_or_default().to_lowercase();
        if table.insert(id, name).is_some() {
            bail!(
                "{} line {line}: {id_column} {id} appears twice",
                path.display()
            );
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::skips::partition;
    use crate::import::skips::test_support::{shared_data, temp_dir_with};
    use serde_json::json;

    const AISLES: &str = "\"aisle_id\",\"aisle\"\n61,\"cookies cakes\"\n104,\"spices seasonings\"\n22,\"hair care\"\n40,\"dog food care\"\n92,\"baby food formula\"\n100,\"missing\"\n75,\"laundry\"\n";
    const DEPARTMENTS: &str = "\"department_id\",\"department\"\n19,\"snacks\"\n13,\"pantry\"\n11,\"personal care\"\n8,\"pets\"\n18,\"babies\"\n21,\"missing\"\n17,\"household\"\n2,\"other\"\n";

    fn read(products: &str) -> (Vec<ProductDraft>, Vec<SkippedRow>) {
        let dir = temp_dir_with(&[
            ("products.csv", products),
            ("aisles.csv", AISLES),
            ("departments.csv", DEPARTMENTS),
        ]);
        let mut kept = Vec::new();
        let mut skipped = Vec::new();
        for row in read_products(dir.path(), 4).unwrap() {
            match row {
                Ok(draft) => kept.push(draft),
                Err(skip) => skipped.push(skip),
            }
        }
        (kept, skipped)
    }

    #[test]
    fn products_map_to_the_shop_taxonomy() {
        let (kept, skipped) = read(concat!(
            "product_id,product_name,aisle_id,department_id\n",
            "1,Chocolate Sandwich Cookies,61,19\n",
            "2,\"Salt, All-Seasons\",104,13\n",
            "3,Argan Oil Shampoo,22,11\n",
            "4,Chicken Dog Food,40,8\n",
            "5,Apple Puree Pouch,92,18\n",
            "6,Mystery Item,100,21\n",
            "7,Dish Soap,75,17\n",
            "8,Something Else,100,2\n",
        ));
        assert!(skipped.is_empty(), "{skipped:?}");
        let cookies = &kept[0];
        assert_eq!(cookies.sku, "IC-1");
        assert_eq!(cookies.title, "Chocolate Sandwich Cookies");
        assert_eq!(cookies.price_minor, None);
        assert_eq!(cookies.currency, Currency::Usd);
        assert_eq!(cookies.stock, 4);
        assert_eq!(
            Value::Object(cookies.attributes.clone()),
            json!({"department": "snacks", "aisle": "cookies cakes"})
        );
        assert_eq!(kept[1].title, "Salt, All-Seasons");
        let categories: Vec<_> = kept.iter().map(|d| d.category.as_str()).collect();
        assert_eq!(
            categories,
            [
                "food/snacks/cookies-cakes",
                "food/pantry/spices-seasonings",
                "beauty/personal-care/hair-care",
                "home/pets/dog-food-care",
                "home/baby/baby-food-formula",
                "uncategorized/missing/missing",
                "home/household/laundry",
                "uncategorized/other/missing",
            ]
        );
    }

    #[test]
    fn rows_with_unknown_ids_are_skipped() {
        let (kept, skipped) = read(concat!(
            "product_id,product_name,aisle_id,department_id\n",
            "1,Cookies,61,19\n",
            "2,Ghost Aisle,999,19\n",
            "3,Ghost Department,61,99\n",
            "x,Bad Id,61,19\n",
            "5,,61,19\n",
            "6,Short Row\n",
        ));
        assert_eq!(kept.len(), 1);
        let reasons: Vec<_> = skipped
            .iter()
            .map(|s| (s.line, s.reason.split(" (").next().unwrap().to_string()))
            .collect();
        assert_eq!(
            reasons[..5],
            [
                (3, "unknown aisle_id: 999".to_string()),
                (4, "unknown department_id: 99".to_string()),
                (5, "product_id: \"x\" is not a number".to_string()),
                (6, "empty product_name".to_string()),
                (7, "malformed CSV row: 2 fields, expected 4".to_string()),
            ][..]
        );
    }

    #[test]
    fn a_missing_or_broken_lookup_table_fails_the_import() {
        let dir = temp_dir_with(&[(
            "products.csv",
            "product_id,product_name,aisle_id,department_id\n",
        )]);
        assert!(read_products(dir.path(), 0).is_err());
        let dir = temp_dir_with(&[
            (
                "products.csv",
                "product_id,product_name,aisle_id,department_id\n",
            ),
            ("aisles.csv", "aisle_id,aisle\n1,a\n1,b\n"),
            ("departments.csv", DEPARTMENTS),
        ]);
        let error = format!("{:#}", read_products(dir.path(), 0).err().unwrap());
        assert!(error.contains("appears twice"), "{error}");
    }

    #[test]
    fn every_department_has_a_top_level_category() {
        assert_eq!(
            department_path("dry goods pasta"),
            ("food", "dry-goods-pasta".into())
        );
        assert_eq!(department_path("alcohol").0, "food");
        assert_eq!(department_path("brand new aisle").0, "uncategorized");
    }

    #[test]
    fn the_real_catalog_imports_completely() {
        let Some(dir) = shared_data("instacart") else {
            return;
        };
        let (kept, skipped) = partition(read_products(&dir, 0).unwrap());
        assert!(skipped.is_empty(), "{skipped}");
        assert_eq!(kept.len(), 49_688);
        let tops: std::collections::BTreeMap<&str, usize> =
            kept.iter().fold(Default::default(), |mut tops, d| {
                *tops
                    .entry(d.category.split('/').next().unwrap())
                    .or_default() += 1;
                tops
            });
        let names: Vec<_> = tops.keys().copied().collect();
        assert_eq!(names, ["beauty", "food", "home", "uncategorized"]);
        let invalid = kept
            .into_iter()
            .filter(|d| d.clone().validate().is_err())
            .count();
        assert_eq!(invalid, 0);
    }
}
