//! The one place wit-bindgen runs for guests: Rust types and glue generated from `wit/`.
//!
//! Plugin authors never use this module directly; the crate root re-exports what they need and
//! [`export_adapter!`](crate::export_adapter) hides the export glue.

wit_bindgen::generate!({
    path: "../wit",
    // The widest world: every plugin exports `adapter`, `counting` (answering "cannot tell" unless
    // the adapter implements `Adapter::count`), `files` and `bulk` (answering "not supported"
    // unless it implements `Adapter::list_files` / `Adapter::bulk_pull`); hosts take what they know.
    world: "crm-adapter-bulk",
    // The export macro is generated here but invoked from plugin crates, so it must be public and
    // must name this module by its path from outside the crate.
    pub_export_macro: true,
    export_macro_name: "__export_crm_adapter",
    default_bindings_module: "crmhost_sdk::bindings",
    generate_all,
});
