//! Architecture rules that the compiler does not check (ARCHITECTURE.md, "Architecture
//! invariants"): components talk only through the API, so no component crate depends on another;
//! what they share lives in the libraries `api` and `client-runtime`, which depend on no component
//! (and `api` on nothing in the workspace). Only the `skiff` binary (the root package) puts them
//! together.

use std::path::PathBuf;

/// The component crates: each is a process of its own (or runs in `skiff server`/`skiff agent`).
const COMPONENTS: [&str; 5] = ["apiserver", "scheduler", "controller-manager", "kubelet", "proxy"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names of the packages a manifest lists under `[dependencies]` and
/// `[build-dependencies]` (dev-dependencies may use test harnesses, never components either).
fn dependencies(manifest: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        if !section.ends_with("dependencies") || line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((name, _)) = line.split_once('=') {
            // `name = ...` or `name.workspace = true`.
            let name = name.trim().split('.').next().unwrap_or("").trim_matches('"');
            out.push((section.clone(), name.to_string()));
        }
    }
    out
}

#[test]
fn no_component_depends_on_another() {
    let mut violations = Vec::new();
    for component in COMPONENTS {
        let path = root().join(component).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for (section, dep) in dependencies(&manifest) {
            if COMPONENTS.contains(&dep.as_str()) || dep == "controller_manager" {
                violations.push(format!("{component} [{section}] depends on the component {dep}"));
            }
        }
    }
    assert!(violations.is_empty(), "components must talk only through the API:\n{}", violations.join("\n"));
}

#[test]
fn the_shared_libraries_depend_on_no_component() {
    let mut violations = Vec::new();
    for (library, forbidden) in [("api", &["client-runtime", "testkit"][..]), ("client-runtime", &[][..])] {
        let path = root().join(library).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for (section, dep) in dependencies(&manifest) {
            if section == "dev-dependencies" {
                continue;
            }
            if COMPONENTS.contains(&dep.as_str()) || forbidden.contains(&dep.as_str()) {
                violations.push(format!("{library} [{section}] depends on {dep}"));
            }
        }
    }
    assert!(violations.is_empty(), "shared libraries must not depend on components:\n{}", violations.join("\n"));
}

#[test]
fn the_rule_sees_a_violation() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\napi = { workspace = true }\nscheduler = { path = \"../scheduler\" }\n[dev-dependencies]\ntestkit.workspace = true\n";
    let deps = dependencies(manifest);
    assert!(deps.contains(&("dependencies".to_string(), "scheduler".to_string())), "{deps:?}");
    assert!(deps.contains(&("dev-dependencies".to_string(), "testkit".to_string())), "{deps:?}");
}
