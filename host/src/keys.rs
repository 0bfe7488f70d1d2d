//! `crmhost keys`: generating a master key, and rotating every stored credential to the current
//! master key while servers keep running.
//!
//! Rotation without downtime: give every server the new key as `CRMHOST_MASTER_KEY` and the old one
//! in `CRMHOST_PREVIOUS_MASTER_KEYS` (they then read both and write with the new one), run
//! `crmhost keys rotate`, then drop the old key. Each row is re-sealed with a compare-and-set on its
//! credentials version and key version, so a refresh that lands meanwhile is never overwritten;
//! such rows are simply read again.
//!
//! [`rotate_from_cli`] is the command itself, [`rotate`] the rotation over an open store.

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

/// `crmhost keys rotate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Database URL; default: the embedded SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The data directory (for the embedded SQLite and a generated key file).
    #[arg(long, env = "CRMHOST_DATA_DIR", default_value = "./data")]
    pub data_dir: std::path::PathBuf,
    /// The new master key.
    #[arg(long, env = "CRMHOST_MASTER_KEY", hide_env_values = true)]
    pub master_key: String,
    /// The keys being rotated away from (comma-separated base64).
    #[arg(long, env = "CRMHOST_PREVIOUS_MASTER_KEYS", hide_env_values = true, default_value = "")]
    pub previous_master_keys: String,
}

/// `crmhost keys rotate`: opens the database, rotates every credential to the new key and returns
/// the summary to print; an error names the setting at fault, or lists the rows left behind.
pub async fn rotate_from_cli(args: RotateArgs) -> Result<String, String> {
    use crate::vault::MasterKey;
    let current = MasterKey::from_base64(&args.master_key)
        .ok_or("CRMHOST_MASTER_KEY: expected 32 bytes, base64-encoded (crmhost keys generate)")?;
    let mut previous = Vec::new();
    for raw in args.previous_master_keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        previous.push(
            MasterKey::from_base64(raw)
                .ok_or("CRMHOST_PREVIOUS_MASTER_KEYS: each key must be 32 bytes, base64-encoded")?,
        );
    }
    // Moving off the generated key file is the common first rotation: read it as a previous key.
    if let Ok((file_key, _)) = MasterKey::load(None, &args.data_dir).map_err(|e| e.to_string())
        && args.data_dir.join("master.key").exists()
        && file_key.fingerprint() != current.fingerprint()
    {
        previous.push(file_key);
    }
    let vault = Vault::new(current, previous);
    let store = match args.database_url.filter(|u| !u.trim().is_empty()) {
        Some(url) => Store::connect(&url).await,
        None => Store::open_sqlite_file(&args.data_dir.join("crmhost.db")).await,
    }
    .map_err(|e| format!("DATABASE_URL: cannot open the database: {e}"))?;
    store.migrate().await.map_err(|e| format!("database migration failed: {e}"))?;
    let report = rotate(&store, &vault).await.map_err(|e| format!("rotation failed: {e}"))?;
    store.close().await;
    let mut summary = format!(
        "re-sealed {} credential(s) under key {:#x}; {} retried after concurrent changes; {} failed",
        report.resealed,
        vault.current_version(),
        report.retried,
        report.failed.len()
    );
    for (connection, why) in &report.failed {
        summary.push_str(&format!("\n  {connection}: {why}"));
    }
    if report.failed.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\nsome credentials could not be re-sealed"))
    }
}
