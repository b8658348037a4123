//! The layers of `src/` (docs/architecture.md): a module may use its own layer and the
//! layers below it, never one above. This test reads every `crate::` path in the code
//! (comments aside) and fails on an import that points up.

use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "wire and identity",
        &[
            "ws",
            "protocol",
            "auth",
            "config",
            "channel",
            "limits",
            "breaker",
            "chat",
            "mutes",
            "revocation",
            "sys",
            "tls",
        ],
    ),
    (
        "shared state and routing",
        &["shared", "route", "metrics", "per_ip", "telemetry"],
    ),
    ("shards", &["shard"]),
    (
        "services",
        &["relay", "rpc", "tokens", "webhooks", "control"],
    ),
    ("hub", &["hub"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line of code names as `crate::<module>`, comments left out.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// Every import from a lower layer to a higher one, as `file:line: from -> to`.
fn upward_imports(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        let Some(own) = layer_of(&top) else {
            continue; // lib.rs and main.rs sit above every layer
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in crate_paths(line) {
                if let Some(layer) = layer_of(&target) {
                    if layer > own {
                        found.push(format!(
                            "src/{}:{}: {top} ({}) imports {target} ({})",
                            rel.display(),
                            n + 1,
                            LAYERS[own].0,
                            LAYERS[layer].0
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = upward_imports(&src);
    assert!(
        found.is_empty(),
        "imports up the layers:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(layer_of(name).is_some(), "{name} has no layer in this test");
        }
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    let dir = std::env::temp_dir().join(format!("ringhub-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("shard")).unwrap();
    std::fs::write(
        dir.join("shard/x.rs"),
        "use crate::relay::Thing; // and a comment naming crate::control\n",
    )
    .unwrap();
    std::fs::write(dir.join("route.rs"), "// crate::hub in a comment\n").unwrap();
    let found = upward_imports(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("shard (shards) imports relay (services)"));
}
