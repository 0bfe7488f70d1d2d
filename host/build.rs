//! Builds the bundled plugins (`plugins/salesforce`, `plugins/hubspot`) for `wasm32-wasip2` and
//! embeds them (see `src/plugins/bundled.rs`).

use std::path::PathBuf;

const BUNDLED: &[(&str, &str)] =
    &[("crmhost-plugin-salesforce", "crmhost_plugin_salesforce"), ("crmhost-plugin-hubspot", "crmhost_plugin_hubspot")];

fn main() {
    let workspace = guest_build::workspace_root();
    // `migrations`: `sqlx::migrate!` embeds them, and cargo cannot see a new file by itself.
    for watched in
        ["wit", "sdk/src", "sdk/Cargo.toml", "plugins/salesforce", "plugins/hubspot", "Cargo.lock", "migrations"]
    {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    let target_dir = guest_build::target_dir(&workspace);
    let packages: Vec<&str> = BUNDLED.iter().map(|(package, _)| *package).collect();
    let artifacts = guest_build::build(&workspace, &target_dir, &packages, &[]);

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut source = String::from(
        "/// (crate name, component bytes) of each bundled plugin.\nstatic BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (package, artifact) in BUNDLED {
        let wasm = artifacts.join(format!("{artifact}.wasm"));
        // Copy into OUT_DIR so the embedded bytes cannot change under a later guest build.
        let copy = out_dir.join(format!("{artifact}.wasm"));
        std::fs::copy(&wasm, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", wasm.display()));
        source.push_str(&format!("    ({package:?}, include_bytes!({:?})),\n", copy.display().to_string()));
    }
    source.push_str("];\n");
    std::fs::write(out_dir.join("bundled_plugins.rs"), source).expect("writing bundled_plugins.rs");
}
