//! The production deployment files in docker/ cannot be run here (no Docker engine), so these
//! tests keep them honest: the compose file parses, every file, port, service and variable it
//! refers to exists, it sets every documented setting, and the Grafana dashboard only charts
//! metrics the service registers.

use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker/docker-compose.yml")).expect("docker-compose.yml parses")
}

fn services(compose: &Value) -> &serde_yaml::Mapping {
    compose["services"].as_mapping().expect("services")
}

/// `CONVREC__…` variables documented in docs/configuration.md.
fn documented_settings() -> BTreeSet<String> {
    read("docs/configuration.md")
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| {
            let start = line.find("`CONVREC__")? + 1;
            let end = start + line[start..].find('`')?;
            Some(line[start..end].to_string())
        })
        .collect()
}

#[test]
fn every_build_context_dockerfile_and_bind_mount_exists() {
    let compose = compose();
    let docker = root().join("docker");
    for (name, service) in services(&compose) {
        let name = name.as_str().unwrap();
        assert!(
            service.get("image").is_some() || service.get("build").is_some(),
            "{name}: neither image nor build"
        );
        if let Some(build) = service.get("build") {
            let context = docker.join(build["context"].as_str().expect("build.context"));
            assert!(context.is_dir(), "{name}: context {}", context.display());
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert!(dockerfile.is_file(), "{name}: {}", dockerfile.display());
        }
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                let path = docker.join(source);
                assert!(path.exists(), "{name}: volume source {}", path.display());
            } else {
                assert!(
                    compose["volumes"].get(source).is_some(),
                    "{name}: named volume {source} is not declared"
                );
            }
        }
    }
}

/// Only the service faces the network: the data stores (a plaintext broker, a search server
/// without security) are reached on the compose network, and the operators' tools listen on
/// loopback.
#[test]
fn only_the_service_is_published_beyond_loopback() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let name = name.as_str().unwrap();
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().unwrap();
            let on_loopback = port.starts_with("127.0.0.1:");
            assert!(
                name == "convrec" || on_loopback,
                "{name} publishes {port} on every interface"
            );
        }
        if ["postgres", "redis", "kafka", "elasticsearch"].contains(&name) {
            assert!(service.get("ports").is_none(), "{name} publishes a port");
        }
    }
    let text = read("docker/docker-compose.yml");
    assert!(
        !text.contains("POSTGRES_PASSWORD:-"),
        "no default database password"
    );
    assert!(text.contains("--requirepass"), "Redis asks for a password");
}

#[test]
fn ports_are_numeric_unique_and_dependencies_exist() {
    let compose = compose();
    let names: BTreeSet<&str> = services(&compose)
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    let mut host_ports = BTreeSet::new();
    for (name, service) in services(&compose) {
        let name = name.as_str().unwrap();
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().expect("ports are quoted strings");
            // "host:container" or "address:host:container".
            let (host, container) = port.rsplit_once(':').expect("host:container");
            let host = host.rsplit(':').next().unwrap();
            let host: u16 = host.parse().unwrap_or_else(|_| panic!("{name}: {port}"));
            container
                .parse::<u16>()
                .unwrap_or_else(|_| panic!("{name}: {port}"));
            assert!(host_ports.insert(host), "host port {host} used twice");
        }
        let depends = &service["depends_on"];
        let deps: Vec<&str> = match depends {
            Value::Sequence(list) => list.iter().map(|d| d.as_str().unwrap()).collect(),
            Value::Mapping(map) => map.keys().map(|d| d.as_str().unwrap()).collect(),
            _ => vec![],
        };
        for dep in deps {
            assert!(names.contains(dep), "{name} depends on unknown {dep}");
        }
    }
    assert!(
        host_ports.contains(&8080),
        "the service is published on 8080"
    );
}

#[test]
fn the_service_sets_every_documented_setting_and_nothing_else() {
    let compose = compose();
    let env = services(&compose)["convrec"]["environment"]
        .as_mapping()
        .expect("convrec.environment is a mapping");
    let set: BTreeSet<String> = env
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let documented = documented_settings();
    assert!(documented.len() > 40, "settings table parsed");
    let missing: Vec<_> = documented.difference(&set).collect();
    assert!(
        missing.is_empty(),
        "not set in docker-compose.yml: {missing:?}"
    );
    let unknown: Vec<_> = set.difference(&documented).collect();
    assert!(
        unknown.is_empty(),
        "undocumented settings in compose: {unknown:?}"
    );
}

#[test]
fn every_interpolated_variable_is_in_the_env_example() {
    let text = read("docker/docker-compose.yml");
    let example = read("docker/.env.example");
    let defined: BTreeSet<&str> = example
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap();
        let var = &after[..end];
        assert!(
            defined.contains(var),
            "${{{var}}} is not in docker/.env.example"
        );
        rest = &after[end..];
    }
}

#[test]
fn prometheus_scrapes_the_service_port() {
    let prometheus: Value =
        serde_yaml::from_str(&read("docker/prometheus/prometheus.yml")).expect("parses");
    let target = prometheus["scrape_configs"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap();
    assert_eq!(target, "convrec:8080");
}

/// Metric names a PromQL expression uses (identifiers followed by `{`, `[` or end, minus
/// functions and keywords), with histogram suffixes removed.
fn metric_names(expr: &str) -> Vec<String> {
    const NOT_METRICS: &[&str] = &[
        "sum",
        "rate",
        "by",
        "le",
        "histogram_quantile",
        "irate",
        "increase",
        "avg",
        "max",
        "min",
        "count",
        "without",
        "route",
        "method",
        "status",
        "endpoint",
        "outcome",
        "group",
        "state",
        "result",
        "operation",
        "dependency",
        "source",
    ];
    let mut names = Vec::new();
    let mut current = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            current.push(c);
            continue;
        }
        let word = std::mem::take(&mut current);
        if !word.is_empty()
            && word.contains('_')
            && !word.chars().next().unwrap().is_ascii_digit()
            && !NOT_METRICS.contains(&word.as_str())
        {
            let base = word
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum")
                .to_string();
            names.push(base);
        }
    }
    names
}

#[test]
fn the_dashboard_charts_only_metrics_the_service_registers() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("docker/grafana/dashboards/convrec.json")).expect("parses");
    let mut sources = String::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut unknown = BTreeSet::new();
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            for name in metric_names(target["expr"].as_str().unwrap()) {
                if !sources.contains(&format!("\"{name}\"")) {
                    unknown.insert(name);
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "dashboard metrics the code never registers: {unknown:?}"
    );
}
