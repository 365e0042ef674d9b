//! The floors of `wakehub-core` look down only (ARCHITECTURE.md, "Architecture invariant:
//! floors"). This test reads the crate's sources and checks every `crate::…` reference
//! against the floor table below, that the table itself has no cycle, and that the shared
//! transports and the plugin host do not reach into individual connectors. Run it alone
//! with `cargo test -p wakehub-core --test it layers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use. Everything else is an upward (or
/// sideways) import.
const FLOORS: &[(&str, &[&str])] = &[
    ("secrets", &[]),
    ("model", &["secrets"]),
    ("plan", &["model"]),
    ("events", &["model"]),
    ("topology_file", &["model"]),
    ("machine", &[]),
    ("stack", &[]),
    ("connector", &["model", "secrets", "machine", "stack"]),
    ("store", &["model", "secrets", "events", "plan", "connector", "machine", "stack"]),
    ("plugin", &["model", "secrets", "connector"]),
    ("engine", &["model", "secrets", "events", "plan", "connector", "store", "machine", "stack"]),
    ("energy", &["model", "events", "store"]),
    ("notify", &["model", "secrets", "events", "connector", "store", "engine"]),
    ("homeassistant", &["model", "secrets", "events", "connector", "store", "engine"]),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names through `crate::`, with the full paths.
fn crate_references(text: &str) -> Vec<(String, String)> {
    let mut refs = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a::X, b};`
                let inner = group.split('}').next().unwrap_or_default();
                for part in inner.split(',') {
                    let path = part.trim();
                    let module: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !module.is_empty() {
                        refs.push((module, path.to_owned()));
                    }
                }
            } else {
                let path: String =
                    after.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                let module: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !module.is_empty() {
                    refs.push((module, path));
                }
            }
            rest = after;
        }
    }
    refs
}

#[test]
fn floors_only_look_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let floors: BTreeMap<&str, BTreeSet<&str>> =
        FLOORS.iter().map(|(m, below)| (*m, below.iter().copied().collect())).collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        let floor = rel.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
        let floor = floor.trim_end_matches(".rs");
        if floor == "lib" {
            continue;
        }
        let allowed = floors
            .get(floor)
            .unwrap_or_else(|| panic!("{}: module `{floor}` has no floor in the table", rel.display()));
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (module, path) in crate_references(&text) {
            checked += 1;
            if module != floor && !allowed.contains(module.as_str()) {
                problems
                    .push(format!("{}: `{floor}` uses `crate::{path}` (a floor above or beside it)", rel.display()));
            }
        }
        // Transports and the plugin host share code with connectors, never borrow from one.
        let rel_s = rel.to_string_lossy();
        if rel_s.starts_with("connector/transport") || floor == "plugin" {
            for connector in ["docker", "proxmox", "sim", "wol_ssh"] {
                let needle = format!("connector::{connector}");
                if text.contains(&needle)
                    || (rel_s.starts_with("connector/") && text.contains(&format!("super::{connector}")))
                {
                    problems.push(format!("{}: reaches into the `{connector}` connector", rel.display()));
                }
            }
        }
    }
    assert!(checked > 50, "the scan found only {checked} references; is it reading the sources?");
    assert!(problems.is_empty(), "upward imports:\n{}", problems.join("\n"));
}

#[test]
fn the_floor_table_has_no_cycle() {
    let floors: BTreeMap<&str, &[&str]> = FLOORS.iter().copied().collect();
    fn visit<'a>(
        m: &'a str,
        floors: &BTreeMap<&'a str, &'a [&'a str]>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(m) {
            return;
        }
        assert!(!path.contains(&m), "the floors form a cycle: {} → {m}", path.join(" → "));
        path.push(m);
        for below in floors.get(m).copied().unwrap_or_default() {
            assert!(floors.contains_key(below), "`{m}` may use `{below}`, which has no floor");
            visit(below, floors, path, done);
        }
        path.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in floors.keys() {
        visit(m, &floors, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_scanner_sees_grouped_and_inline_paths() {
    let refs =
        crate_references("use crate::{model::X, secrets};\nlet x = crate::store::Store::open(); // crate::engine\n");
    let modules: Vec<&str> = refs.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(modules, ["model", "secrets", "store"]);
}
