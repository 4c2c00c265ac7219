//! Builds the built-in plugins (and the sandbox tests' hostile plugin) for
//! `wasm32-wasip2` with a nested `cargo build`, one invocation per plugin so that each
//! component is built with only its own world's SDK feature, into
//! `<target>/wasm-plugins`. Writes `$OUT_DIR/builtin_plugins.rs`, which embeds the
//! built-ins, and `$OUT_DIR/test_plugins.rs`, which only names the test plugins' paths.
//! Nothing is downloaded but crates the lock file already pins.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

/// (package, embedded as a built-in)
const PLUGINS: &[(&str, bool)] = &[
    ("switchyard-plugin-websub", true),
    ("switchyard-plugin-oauth2", true),
    ("switchyard-plugin-standard-webhooks", true),
    ("switchyard-plugin-scope-filter", true),
    ("switchyard-plugin-json", true),
    ("switchyard-plugin-cloudevents", true),
    ("switchyard-test-plugin-hostile", false),
];

/// Environment a parent cargo sets that must not leak into the nested build: it would
/// retarget it, add host-only flags, or run clippy on the plugins.
const SCRUBBED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    for path in [
        "plugins",
        "plugin-sdk",
        "wit",
        "tests/plugins",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    ensure_wasm_target();

    let wasm_target_dir = target_root(&out_dir).join("wasm-plugins");
    let mut builtins = String::from(
        "/// The built-in plugins, embedded: (package, component bytes).\n\
         pub(crate) const BUILTIN_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    let mut tests = String::from("// Paths of plugins built for tests only; never embedded.\n");
    for (package, builtin) in PLUGINS {
        let mut command = Command::new(&cargo);
        command
            .arg("build")
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .args([
                "--target",
                WASM_TARGET,
                "--release",
                "--locked",
                "-p",
                package,
            ])
            .arg("--target-dir")
            .arg(&wasm_target_dir);
        for var in SCRUBBED_ENV {
            command.env_remove(var);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", cargo.to_string_lossy()));
        if !output.status.success() {
            panic!(
                "building plugin {package} for {WASM_TARGET} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let wasm = wasm_target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        assert!(
            wasm.is_file(),
            "the build of {package} produced no {}",
            wasm.display()
        );
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

/// `<target>` from `<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`.
fn target_root(out_dir: &Path) -> PathBuf {
    let build = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .expect("OUT_DIR lies under <target>/<profile>/build");
    let profile_dir = build.parent().expect("the build dir has a parent");
    profile_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .unwrap_or_else(|| profile_dir.parent().unwrap_or(profile_dir))
        .to_path_buf()
}

/// Installs the wasm target through rustup when it is missing.
fn ensure_wasm_target() {
    let Ok(list) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        // Not a rustup toolchain: let the nested build say what is missing.
        return;
    };
    if String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    if !added.is_ok_and(|s| s.success()) {
        panic!(
            "the {WASM_TARGET} target is missing and could not be installed; run `rustup target add {WASM_TARGET}`"
        );
    }
}
