//! Builds the test plugins in `tests/plugins/` for `wasm32-wasip2` and tells the tests where they
//! are: `fixture` at version 1.0.0 and 2.0.0 (for hot-reload tests) and `hostile`.

use std::path::PathBuf;

fn main() {
    let workspace = guest_build::workspace_root();
    for watched in ["wit", "sdk/src", "sdk/Cargo.toml", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    let target_dir = guest_build::target_dir(&workspace);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
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
    for (var, package, artifact, features, file) in outputs {
        let artifacts = guest_build::build(&workspace, &target_dir, &[package], features);
        // Copied at once: the next build of the same crate (other features) overwrites the artifact.
        let copy = out_dir.join(file);
        std::fs::copy(artifacts.join(format!("{artifact}.wasm")), &copy).expect("copying a test plugin");
        println!("cargo:rustc-env={var}={}", copy.display());
    }
}
