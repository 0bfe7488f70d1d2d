//! Builds the test plugins in `tests/plugins/` for `wasm32-wasip2` and tells the tests where they
//! are: `fixture` at version 1.0.0 and 2.0.0 (for hot-reload tests) and `hostile`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn build(workspace: &Path, target_dir: &Path, package: &str, features: &[&str]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", package, "--target-dir"])
        .arg(target_dir);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
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
    let status = command.status().unwrap_or_else(|e| panic!("could not run cargo: {e}"));
    assert!(
        status.success(),
        "building {package} for wasm32-wasip2 failed; is the target installed? rustup target add wasm32-wasip2"
    );
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.parent().expect("tests/ is inside the workspace").to_path_buf();
    for watched in ["wit", "sdk/src", "sdk/Cargo.toml", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    let target_dir = env::var_os("CRMHOST_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("guest"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let artifact = |name: &str| target_dir.join("wasm32-wasip2").join("release").join(format!("{name}.wasm"));

    let outputs = [
        ("FIXTURE_V1_WASM", "crmhost-test-plugin-fixture", "crmhost_test_plugin_fixture", &[][..], "fixture-v1.wasm"),
        (
            "FIXTURE_V2_WASM",
            "crmhost-test-plugin-fixture",
            "crmhost_test_plugin_fixture",
            &["v2"][..],
            "fixture-v2.wasm",
        ),
        ("HOSTILE_WASM", "crmhost-test-plugin-hostile", "crmhost_test_plugin_hostile", &[][..], "hostile.wasm"),
    ];
    for (var, package, name, features, file) in outputs {
        build(&workspace, &target_dir, package, features);
        let copy = out_dir.join(file);
        std::fs::copy(artifact(name), &copy).expect("copying a test plugin");
        println!("cargo:rustc-env={var}={}", copy.display());
    }
}
