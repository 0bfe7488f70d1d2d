//! A run's `estimated_records` when the operation alone cannot tell: the CRM's count of what a
//! pull will read (through the plugin's optional `counting` export) plus the workspace records a
//! push will send. Best effort: a CRM that cannot count, or fails to, leaves the estimate unknown
//! and the run goes on.

use super::Operation;
use super::run::{Fatal, Run, store_fatal};
use crate::domain::EntityName;
use crate::plugins::adapter_error_summary;
use crate::plugins::bindings::counting::CountRequest;

impl Run {
    /// Stores the run's estimate, when it can be had: for a whole-entity pull, and for a sync (per
    /// entity: what the pull will read since the cursor, plus the records waiting to be pushed).
    /// Counting costs one CRM request per entity, so runs the scheduler or webhooks start count
    /// only their full pulls (a first sync), never the small incremental ones.
    pub(super) async fn estimate(&mut self, operation: &Operation) -> Result<(), Fatal> {
        let estimate = match operation {
            Operation::Pull { entity, since, limit: None, crm_ids } if crm_ids.is_empty() => {
                self.crm_count(entity, since.clone()).await.and_then(|n| i64::try_from(n).ok())
            }
            Operation::Sync { entities, direction } => {
                let caps = self.plugin.description().capabilities;
                let mut total = Some(0_i64);
                for entity in entities {
                    if caps.pull && direction.pulls() {
                        let since =
                            self.store.pull_cursor(&self.workspace, &self.slug, entity).await.map_err(store_fatal)?;
                        let pulled = self.crm_count(entity, since).await.and_then(|n| i64::try_from(n).ok());
                        total = total.zip(pulled).map(|(a, b)| a + b);
                    }
                    if caps.push && direction.pushes() {
                        let waiting = self
                            .store
                            .count_records_to_push(&self.workspace, &self.slug, entity)
                            .await
                            .map_err(store_fatal)?;
                        total = total.map(|t| t + waiting);
                    }
                }
                total
            }
            _ => None,
        };
        if let Some(records) = estimate {
            self.store.set_run_estimate(&self.run_id, records).await.map_err(store_fatal)?;
        }
        Ok(())
    }

    /// What the CRM says a pull of `entity` since `since` will read; `None` when it cannot tell,
    /// when counting failed, or when this run should not spend a request on it. Counted once per
    /// run and entity (the estimate's count also decides whether the pull runs as a bulk job).
    pub(super) async fn crm_count(&mut self, entity: &EntityName, since: Option<String>) -> Option<u64> {
        if since.is_some() && !self.count_incremental {
            return None;
        }
        if let Some(counted) = self.counted.get(entity) {
            return Some(*counted);
        }
        let counted = self.count_from_crm(entity, since).await;
        if let Some(n) = counted {
            self.counted.insert(entity.clone(), n);
        }
        counted
    }

    async fn count_from_crm(&self, entity: &EntityName, since: Option<String>) -> Option<u64> {
        let request = CountRequest { entity: entity.to_string(), modified_since: since };
        match self.plugin.count(self.context.clone(), &request).await {
            Ok(Ok(count)) => count,
            Ok(Err(err)) => {
                let (kind, message) = adapter_error_summary(&err);
                tracing::info!(run = %self.run_id, entity = %entity, kind, message, "the CRM could not count records");
                None
            }
            Err(err) => {
                tracing::info!(run = %self.run_id, entity = %entity, error = %err, "counting records failed");
                None
            }
        }
    }
}
