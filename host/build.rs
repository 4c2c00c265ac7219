//! Builds the built-in plugins, and the plugins only the plugin tests use (a hostile one,
//! and one built against the first contract), for `wasm32-wasip2` (see
//! `build-support/wasm_components.rs`). Writes
//! `$OUT_DIR/builtin_plugins.rs`, which embeds the built-ins, and
//! `$OUT_DIR/test_plugins.rs`, which only names the test plugins' paths.
//! Nothing is downloaded but crates the lock file already pins.

#[path = "../build-support/wasm_components.rs"]
mod wasm_components;

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;

/// (package, embedded as a built-in)
const PLUGINS: &[(&str, bool)] = &[
    ("switchyard-plugin-websub", true),
    ("switchyard-plugin-oauth2", true),
    ("switchyard-plugin-standard-webhooks", true),
    ("switchyard-plugin-scope-filter", true),
    ("switchyard-plugin-json", true),
    ("switchyard-plugin-cloudevents", true),
    ("switchyard-test-plugin-hostile", false),
    ("switchyard-test-plugin-first-wit", false),
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    for path in [
        "plugins",
        "plugin-sdk",
        "wit",
        "tests/plugins/hostile",
        "tests/plugins/first-wit",
        "build-support",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    let builder = wasm_components::Builder::new();
    let mut builtins = String::from(
        "/// The built-in plugins, embedded: (package, component bytes).\n\
         pub(crate) const BUILTIN_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    let mut tests = String::from("// Paths of plugins built for tests only; never embedded.\n");
    for (package, builtin) in PLUGINS {
        let wasm = builder.build(&root.join("Cargo.toml"), package);
        if *builtin {
            writeln!(
                builtins,
                "    ({package:?}, include_bytes!({:?})),",
                wasm.display().to_string()
            )
            .ok();
        } else {
            let constant = package
                .trim_start_matches("switchyard-test-plugin-")
                .replace('-', "_")
                .to_uppercase();
            writeln!(
                tests,
                "pub(crate) const {constant}: &str = {:?};",
                wasm.display().to_string()
            )
            .ok();
        }
    }
    builtins.push_str("];\n");
    std::fs::write(out_dir.join("builtin_plugins.rs"), builtins)
        .expect("writing builtin_plugins.rs");
    std::fs::write(out_dir.join("test_plugins.rs"), tests).expect("writing test_plugins.rs");
}
