//! Compiles guest crates of this workspace to `wasm32-wasip2` from a build script, with a nested
//! cargo in its own target directory (sharing the outer build's directory would deadlock on
//! cargo's lock). Used by `host/build.rs` (bundled plugins) and `tests/build.rs` (test plugins).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root, from the calling package's manifest directory (one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest_dir.parent().expect("the package sits inside the workspace").to_path_buf()
}

/// Where guests are built: `CRMHOST_GUEST_TARGET_DIR`, else `<workspace>/target/guest`.
pub fn target_dir(workspace: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=CRMHOST_GUEST_TARGET_DIR");
    env::var_os("CRMHOST_GUEST_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target").join("guest"))
}

/// Builds `packages` (release, `wasm32-wasip2`) with `features`; returns the artifact directory.
/// Panics with a hint when it fails, which fails the calling build script.
pub fn build(workspace: &Path, target_dir: &Path, packages: &[&str], features: &[&str]) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    // The outer build's flags and jobserver are for the host target, not for wasm.
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
    let status = command.status().unwrap_or_else(|e| panic!("could not run cargo to build {packages:?}: {e}"));
    assert!(
        status.success(),
        "building {packages:?} for wasm32-wasip2 failed ({status}); if the target is missing: rustup target add wasm32-wasip2"
    );
    target_dir.join("wasm32-wasip2").join("release")
}
