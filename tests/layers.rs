//! The import rule of README.md ("Layout"): modules import downward only —
//! entry points → shells (`http/`, `actors/`) → domain → infrastructure — and no two modules
//! depend on each other in a circle. Read from the source, so it needs no services.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of `src/`, by layer (higher imports lower, never the reverse).
const LAYERS: &[(&str, &[&str])] = &[
    // Composition roots and commands: they wire everything.
    ("entry", &["main", "lib", "cli", "app", "eval", "bench"]),
    // Sockets, routes, mailboxes and threads.
    ("shell", &["http", "actors"]),
    (
        "domain",
        &[
            "chat",
            "reply",
            "llm",
            "recommend",
            "analysis",
            "intent",
            "events",
            "search",
            "embeddings",
            "import",
            "catalog",
        ],
    ),
    (
        "infrastructure",
        &[
            "db",
            "redis",
            "ml",
            "cache",
            "identity",
            "errors",
            "retry",
            "rate_limit",
            "metrics",
            "telemetry",
            "config",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to: `src/chat/store.rs` → `chat`, `src/redis.rs` → `redis`.
fn top_module(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The top-level modules a file names through `crate::…` outside comments.
fn imported_modules(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if after.starts_with('{') {
                panic!("write `use crate::a::…;` once per module, not `crate::{{…}}`: {line}");
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

fn module_graph() -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // module → imported module → the files that import it
    let mut graph: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for file in files {
        let from = top_module(&src, &file);
        let source = std::fs::read_to_string(&file).unwrap();
        let entry = graph.entry(from.clone()).or_default();
        for to in imported_modules(&source) {
            if to != from {
                let shown = file.strip_prefix(&src).unwrap().display().to_string();
                entry.entry(to).or_default().push(shown);
            }
        }
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    let unknown: Vec<String> = module_graph()
        .into_keys()
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "add these modules to a layer in tests/layers.rs and README.md: {unknown:?}"
    );
}

#[test]
fn modules_import_downward_only() {
    let mut upward = Vec::new();
    for (from, targets) in module_graph() {
        let Some(from_layer) = layer_of(&from) else {
            continue;
        };
        for (to, files) in targets {
            match layer_of(&to) {
                Some(to_layer) if to_layer < from_layer => upward.push(format!(
                    "{from} ({}) imports {to} ({}) in {files:?}",
                    LAYERS[from_layer].0, LAYERS[to_layer].0
                )),
                _ => {}
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

#[test]
fn no_modules_depend_on_each_other_in_a_circle() {
    let graph = module_graph();
    // Depth-first search; a grey node met again closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
        grey: &mut Vec<String>,
        black: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if black.contains(node) {
            return;
        }
        if let Some(at) = grey.iter().position(|g| g == node) {
            cycles.push(format!("{} → {node}", grey[at..].join(" → ")));
            return;
        }
        grey.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|t| t.keys()) {
            visit(next, graph, grey, black, cycles);
        }
        grey.pop();
        black.insert(node.to_string());
    }
    let mut cycles = Vec::new();
    let mut black = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut black, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn the_check_sees_imports() {
    // A guard against a check that cannot fail: it must find what it is looking for.
    let found = imported_modules(
        "use crate::actors::recommender::Recommender; // crate::http in a comment\n\
         let x = crate::redis::connect(s);",
    );
    assert_eq!(
        found,
        BTreeSet::from(["actors".to_string(), "redis".to_string()])
    );
    let graph = module_graph();
    assert!(graph["chat"].contains_key("recommend"));
    assert!(graph["http"].contains_key("actors"));
}
