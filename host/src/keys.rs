//! `crmhost keys`: generating a master key, and rotating every stored credential to the current
//! master key while servers keep running.
//!
//! Rotation without downtime: give every server the new key as `CRMHOST_MASTER_KEY` and the old one
//! in `CRMHOST_PREVIOUS_MASTER_KEYS` (they then read both and write with the new one), run
//! `crmhost keys rotate`, then drop the old key. Each row is re-sealed with a compare-and-set on its
//! credentials version and key version, so a refresh that lands meanwhile is never overwritten;
//! such rows are simply read again.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{PluginSlug, WorkspaceId};
use crate::store::{Store, StoreError};
use crate::vault::{Purpose, Vault};

/// What a rotation did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RotationReport {
    /// Rows re-sealed under the current key.
    pub resealed: u64,
    /// Rows that changed while being rotated and were read again.
    pub retried: u64,
    /// Rows that could not be opened (`workspace/slug` → why); they keep their old sealing.
    pub failed: BTreeMap<String, String>,
}

/// How many passes over rows that keep changing before giving up on them.
const MAX_PASSES: usize = 5;

/// Re-seals every integration's tokens that are not under the vault's current key.
#[tracing::instrument(name = "keys.rotate", skip_all)]
pub async fn rotate(store: &Store, vault: &Vault) -> Result<RotationReport, StoreError> {
    let mut report = RotationReport::default();
    for _ in 0..MAX_PASSES {
        let rows = store.sealed_needing_rotation(vault.current_version()).await?;
        let mut changed = 0;
        for row in rows {
            let label = format!("{}/{}", row.workspace_id, row.integration_slug);
            if report.failed.contains_key(&label) {
                continue;
            }
            let (Ok(workspace), Ok(slug)) =
                (WorkspaceId::parse(&row.workspace_id), PluginSlug::parse(&row.integration_slug))
            else {
                report.failed.insert(label, "invalid workspace or slug".to_owned());
                continue;
            };
            match vault.reseal(Purpose::Tokens, &workspace, &slug, &row.sealed) {
                Ok(resealed) => {
                    if store.replace_sealed_tokens(&row, &resealed).await? {
                        report.resealed += 1;
                    } else {
                        changed += 1;
                    }
                }
                Err(err) => {
                    report.failed.insert(label, err.to_string());
                }
            }
        }
        report.retried += changed;
        if changed == 0 {
            break;
        }
    }
    Ok(report)
}
