//! Shared by the build scripts that need plugins as WebAssembly components (`host/` for
//! its built-ins and sandbox tests, `tests/` for the end-to-end tests): one nested
//! `cargo build --target wasm32-wasip2 --release` per plugin, so that each component
//! is built with only its own world's SDK feature, into `<target>/wasm-plugins`.
//! Included with `#[path]`; it is not a crate.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const WASM_TARGET: &str = "wasm32-wasip2";

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

/// Builds components into `<target>/wasm-plugins`, `<target>` found from `OUT_DIR`.
pub struct Builder {
    cargo: OsString,
    target_dir: PathBuf,
}

impl Builder {
    /// A builder for the running build script; makes sure the wasm target is installed.
    pub fn new() -> Self {
        let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        ensure_wasm_target();
        Self {
            cargo: env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            target_dir: target_root(&out_dir).join("wasm-plugins"),
        }
    }

    /// Builds `package` of the workspace (or package) at `manifest` with the versions its
    /// lock file pins, and answers the component's path.
    pub fn build(&self, manifest: &Path, package: &str) -> PathBuf {
        let mut command = Command::new(&self.cargo);
        command
            .arg("build")
            .arg("--manifest-path")
            .arg(manifest)
            .args([
                "--target",
                WASM_TARGET,
                "--release",
                "--locked",
                "-p",
                package,
            ])
            .arg("--target-dir")
            .arg(&self.target_dir)
            // Whole-program optimisation: a plugin is small, and its code runs on every
            // delivery.
            .env("CARGO_PROFILE_RELEASE_LTO", "true")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
        for var in SCRUBBED_ENV {
            command.env_remove(var);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.cargo.to_string_lossy()));
        if !output.status.success() {
            panic!(
                "building plugin {package} for {WASM_TARGET} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let wasm = self
            .target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        assert!(
            wasm.is_file(),
            "the build of {package} produced no {}",
            wasm.display()
        );
        wasm
    }
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
