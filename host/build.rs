//! Builds the bundled plugins (`plugins/salesforce`, `plugins/hubspot`) for `wasm32-wasip2` with a
//! nested cargo and embeds them (see `src/plugins/bundled.rs`).
//!
//! The nested build uses its own target directory (`target/guest`): sharing the outer build's
//! directory would deadlock on cargo's lock. `CRMHOST_GUEST_TARGET_DIR` overrides it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const BUNDLED: &[(&str, &str)] =
    &[("crmhost-plugin-salesforce", "crmhost_plugin_salesforce"), ("crmhost-plugin-hubspot", "crmhost_plugin_hubspot")];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("host/ sits inside the workspace").to_path_buf();
    for watched in ["wit", "sdk/src", "sdk/Cargo.toml", "plugins/salesforce", "plugins/hubspot", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CRMHOST_GUEST_TARGET_DIR");

    let target_dir = env::var_os("CRMHOST_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("guest"));
    let packages: Vec<&str> = BUNDLED.iter().map(|(package, _)| *package).collect();
    build_guests(&workspace, &target_dir, &packages, &[]);

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut source = String::from(
        "/// (crate name, component bytes) of each bundled plugin.\nstatic BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (package, artifact) in BUNDLED {
        let wasm = target_dir.join("wasm32-wasip2").join("release").join(format!("{artifact}.wasm"));
        // Copy into OUT_DIR so the embedded bytes cannot change under a later guest build.
        let copy = out_dir.join(format!("{artifact}.wasm"));
        std::fs::copy(&wasm, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", wasm.display()));
        source.push_str(&format!("    ({package:?}, include_bytes!({:?})),\n", copy.display().to_string()));
    }
    source.push_str("];\n");
    std::fs::write(out_dir.join("bundled_plugins.rs"), source).expect("writing bundled_plugins.rs");
}

/// Runs `cargo build --release --target wasm32-wasip2` for `packages` with extra `args`.
pub fn build_guests(workspace: &Path, target_dir: &Path, packages: &[&str], args: &[&str]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"]);
    command.arg(target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    command.args(args);
    // The outer build's flags are for the host target, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command.status().unwrap_or_else(|e| panic!("could not run cargo to build the plugins: {e}"));
    if !status.success() {
        panic!(
            "building the wasm plugins {packages:?} failed ({status}). If the error says the target is missing, run: rustup target add wasm32-wasip2"
        );
    }
}
