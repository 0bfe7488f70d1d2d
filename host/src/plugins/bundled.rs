//! The plugins embedded in the binary at build time (see `host/build.rs`), so a bare
//! `crmhost serve` serves Salesforce and HubSpot with an empty plugins directory.

use super::registry::BundledPlugin;

include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// The bundled plugins.
pub fn bundled() -> Vec<BundledPlugin> {
    BUNDLED.iter().map(|(name, bytes)| BundledPlugin { name, bytes }).collect()
}
