//! Holding an integration while a run executes: the lease row in the store says which process runs
//! it, a renewal task keeps it alive, and a process that dies simply stops renewing, so the lease
//! expires and another process takes over (marking the dead owner's runs interrupted).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::domain::{PluginSlug, WorkspaceId};
use crate::store::{ScheduleUpdate, Store, StoreError};

/// How often a waiting run asks again for a lease another process holds.
const POLL: Duration = Duration::from_millis(250);

/// A lease this process holds, renewed in the background until released.
pub(super) struct HeldLease {
    store: Store,
    workspace: WorkspaceId,
    slug: PluginSlug,
    owner: String,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    /// Waits until the integration's lease is free (or expired, or ours), takes it, and marks the
    /// runs of a previous owner that let it expire as interrupted.
    pub(super) async fn acquire(
        store: &Store,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        owner: &str,
        duration: Duration,
    ) -> Result<Self, StoreError> {
        let lease = loop {
            let until = chrono::Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default();
            if let Some(lease) = store.acquire_lease(workspace, slug, owner, until).await? {
                break lease;
            }
            tokio::time::sleep(POLL).await;
        };
        if let Some(dead) = &lease.previous_owner {
            let n = store.interrupt_runs_of(workspace, slug, dead).await?;
            if n > 0 {
                tracing::warn!(workspace = %workspace, slug = %slug, runs = n, previous_owner = %dead,
                    "took over an integration whose lease expired; its runs are marked interrupted");
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = {
            let (store, workspace, slug, owner, lost) =
                (store.clone(), workspace.clone(), slug.clone(), owner.to_owned(), lost.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(duration / 3).await;
                    let until = chrono::Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default();
                    match store.renew_lease(&workspace, &slug, &owner, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(workspace = %workspace, slug = %slug, "lost the integration's lease");
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A blip: try again next time; the lease has two more periods to live.
                        Err(err) => tracing::warn!(error = %err, "could not renew a lease"),
                    }
                }
            })
        };
        Ok(Self {
            store: store.clone(),
            workspace: workspace.clone(),
            slug: slug.clone(),
            owner: owner.to_owned(),
            lost,
            renewal,
        })
    }

    /// Set once another process took the lease over (this one stalled past its expiry).
    pub(super) fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Stops renewing and gives the lease back with what the run means for the schedule.
    pub(super) async fn release(self, update: Option<&ScheduleUpdate>) {
        self.renewal.abort();
        if let Err(err) = self.store.release_lease(&self.workspace, &self.slug, &self.owner, update).await {
            // It expires on its own.
            tracing::warn!(error = %err, "could not release a lease");
        }
    }
}
