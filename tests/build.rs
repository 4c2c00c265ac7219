//! Builds the plugins the end-to-end tests upload (see
//! `build-support/wasm_components.rs`): `upper` in two versions, and the plugin
//! tutorial's example, so the tutorial is proven by a test. Writes
//! `$OUT_DIR/plugin_paths.rs` with their paths.

#[path = "../build-support/wasm_components.rs"]
mod wasm_components;

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let example = root.join("examples/custom-payload-plugin");

    for path in [
        root.join("plugin-sdk"),
        root.join("wit"),
        root.join("tests/plugins/upper"),
        root.join("tests/plugins/upper-v2"),
        root.join("build-support"),
        root.join("Cargo.lock"),
        example.join("src"),
        example.join("Cargo.toml"),
        example.join("Cargo.lock"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let builder = wasm_components::Builder::new();
    let workspace = root.join("Cargo.toml");
    let plugins = [
        (
            "UPPER_V1",
            builder.build(&workspace, "switchyard-test-plugin-upper"),
        ),
        (
            "UPPER_V2",
            builder.build(&workspace, "switchyard-test-plugin-upper-v2"),
        ),
        (
            "CHAT_MESSAGE",
            builder.build(&example.join("Cargo.toml"), "chat-message"),
        ),
    ];
    let mut paths = String::new();
    for (constant, wasm) in plugins {
        writeln!(
            paths,
            "/// Path of a component built by `tests/build.rs`.\n\
             pub const {constant}: &str = {:?};",
            wasm.display().to_string()
        )
        .ok();
    }
    std::fs::write(out_dir.join("plugin_paths.rs"), paths).expect("writing plugin_paths.rs");
}
