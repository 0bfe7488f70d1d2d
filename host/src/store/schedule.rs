//! Scheduling state of integrations: when each is next due, which process holds it (a lease that
//! expires when its owner stops renewing it), the run-failure streak behind the backoff, and the
//! reason an integration is not running on schedule. Claims use `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL so several host processes share the due work without waiting on each other.

use chrono::{DateTime, Utc};

use super::{Backend, Store, StoreError, StoreResult, with_pool};
use crate::domain::{PluginSlug, WorkspaceId};

/// An integration a process now holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The integration.
    pub slug: PluginSlug,
    /// The process that held it before and let it expire (its running runs are orphans).
    pub previous_owner: Option<String>,
    /// When it fell due (a claimed lease only): how late the claim came is the scheduler's lag.
    pub due_at: Option<DateTime<Utc>>,
}

/// What the end of a run means for the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleUpdate {
    /// When to run next (`None`: not scheduled).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Consecutive whole-run failures.
    pub failure_streak: i64,
    /// Why it is not simply running on schedule, if it is not.
    pub status_reason: Option<String>,
}

/// The scheduling columns of one integration.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleState {
    /// When it is next due.
    pub next_sync_at: Option<DateTime<Utc>>,
    /// The holder of its lease.
    pub lease_owner: Option<String>,
    /// When that lease expires.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Consecutive whole-run failures.
    pub failure_streak: i64,
    /// Why it is not running on schedule.
    pub status_reason: Option<String>,
}

type LeaseRow = (String, String, Option<String>, Option<DateTime<Utc>>);

fn to_lease((workspace, slug, previous_owner, due_at): LeaseRow) -> StoreResult<Lease> {
    Ok(Lease {
        due_at,
        workspace: WorkspaceId::parse(&workspace).map_err(|e| StoreError::Corrupt(format!("workspace id: {e}")))?,
        slug: PluginSlug::parse(&slug).map_err(|e| StoreError::Corrupt(format!("slug: {e}")))?,
        previous_owner,
    })
}

impl Store {
    /// Claims up to `limit` due integrations (connected, `next_sync_at` passed, lease free or
    /// expired), oldest due first so none starves, holding each until `lease_until`.
    #[tracing::instrument(name = "store.claim_due", skip_all, fields(limit))]
    pub async fn claim_due_integrations(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Lease>> {
        let sql = match self.backend() {
            // The previous owner comes from the locked subquery, so a takeover knows whose runs
            // it orphaned.
            Backend::Postgres => {
                "update integrations set lease_owner = $1, lease_expires_at = $2 \
                 from (select integration_id as due_id, lease_owner as previous_owner, next_sync_at as due_at \
                       from integrations \
                       where status in ('connected', 'error') and next_sync_at <= $3 \
                       and (lease_owner is null or lease_expires_at < $3) \
                       order by next_sync_at limit $4 for update skip locked) due \
                 where integrations.integration_id = due.due_id \
                 returning workspace_id, integration_slug, due.previous_owner, due.due_at"
            }
            // SQLite has one writer and one process: the update is atomic on its own, and a
            // previous process's runs were marked interrupted when this one started.
            Backend::Sqlite => {
                "update integrations set lease_owner = $1, lease_expires_at = $2 \
                 where integration_id in (select integration_id from integrations \
                       where status in ('connected', 'error') and next_sync_at <= $3 \
                       and (lease_owner is null or lease_expires_at < $3) \
                       order by next_sync_at limit $4) \
                 returning workspace_id, integration_slug, null, next_sync_at"
            }
        };
        let rows: Vec<LeaseRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(owner).bind(lease_until).bind(Utc::now()).bind(limit).fetch_all(pool).await)?;
        rows.into_iter().map(to_lease).collect()
    }

    /// How many integrations are due for a scheduled sync and not held by any process: the
    /// scheduler's queue.
    #[tracing::instrument(name = "store.count_due", skip_all)]
    pub async fn count_due_integrations(&self) -> StoreResult<i64> {
        let sql = "select count(*) from integrations where status in ('connected', 'error') and next_sync_at <= $1 \
                   and (lease_owner is null or lease_expires_at < $1)";
        let (n,): (i64,) = with_pool!(self, pool => sqlx::query_as(sql).bind(Utc::now()).fetch_one(pool).await)?;
        Ok(n)
    }

    /// Takes the lease of one integration if it is free, expired or already ours; `None` if
    /// another process holds it.
    #[tracing::instrument(name = "store.acquire_lease", skip_all, fields(workspace = %workspace, slug = %slug))]
    pub async fn acquire_lease(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Lease>> {
        let sql = match self.backend() {
            Backend::Postgres => {
                "update integrations set lease_owner = $1, lease_expires_at = $2 \
                 from (select integration_id as held_id, lease_owner as previous_owner from integrations \
                       where workspace_id = $3 and integration_slug = $4) held \
                 where integrations.integration_id = held.held_id \
                 and (integrations.lease_owner is null or integrations.lease_owner = $1 \
                      or integrations.lease_expires_at < $5) \
                 returning workspace_id, integration_slug, held.previous_owner, null::timestamptz"
            }
            Backend::Sqlite => {
                "update integrations set lease_owner = $1, lease_expires_at = $2 \
                 where workspace_id = $3 and integration_slug = $4 \
                 and (lease_owner is null or lease_owner = $1 or lease_expires_at < $5) \
                 returning workspace_id, integration_slug, null, null"
            }
        };
        let row: Option<LeaseRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(owner).bind(lease_until).bind(workspace.as_str()).bind(slug.as_str()).bind(Utc::now())
            .fetch_optional(pool).await)?;
        let Some(mut lease) = row.map(to_lease).transpose()? else { return Ok(None) };
        if lease.previous_owner.as_deref() == Some(owner) {
            lease.previous_owner = None;
        }
        Ok(Some(lease))
    }

    /// Extends a lease this process holds; `false` if it no longer holds it.
    pub async fn renew_lease(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let sql = "update integrations set lease_expires_at = $1 \
                   where workspace_id = $2 and integration_slug = $3 and lease_owner = $4";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(lease_until).bind(workspace.as_str()).bind(slug.as_str()).bind(owner).execute(pool).await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Gives a lease back, with what the run means for the schedule (`None`: unchanged).
    pub async fn release_lease(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        owner: &str,
        update: Option<&ScheduleUpdate>,
    ) -> StoreResult<()> {
        match update {
            None => {
                let sql = "update integrations set lease_owner = null, lease_expires_at = null \
                           where workspace_id = $1 and integration_slug = $2 and lease_owner = $3";
                with_pool!(self, pool => sqlx::query(sql)
                    .bind(workspace.as_str()).bind(slug.as_str()).bind(owner).execute(pool).await.map(|_| ()))?;
            }
            Some(update) => {
                let sql = "update integrations set lease_owner = null, lease_expires_at = null, \
                           next_sync_at = $1, failure_streak = $2, status_reason = $3 \
                           where workspace_id = $4 and integration_slug = $5 and lease_owner = $6";
                with_pool!(self, pool => sqlx::query(sql)
                    .bind(update.next_sync_at).bind(update.failure_streak).bind(update.status_reason.as_deref())
                    .bind(workspace.as_str()).bind(slug.as_str()).bind(owner).execute(pool).await.map(|_| ()))?;
            }
        }
        Ok(())
    }

    /// Frees every lease (SQLite at start-up: the one process that could hold them is gone).
    pub async fn release_all_leases(&self) -> StoreResult<u64> {
        let sql = "update integrations set lease_owner = null, lease_expires_at = null where lease_owner is not null";
        Ok(with_pool!(self, pool => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// Sets when the integration is next due and why it is not running on schedule, outside a
    /// run (settings changed, paused, resumed).
    pub async fn set_schedule(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        next_sync_at: Option<DateTime<Utc>>,
        status_reason: Option<&str>,
    ) -> StoreResult<()> {
        let sql = "update integrations set next_sync_at = $1, status_reason = $2, failure_streak = 0 \
                   where workspace_id = $3 and integration_slug = $4";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(next_sync_at).bind(status_reason).bind(workspace.as_str()).bind(slug.as_str()).execute(pool).await
            .map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Sets only the reason (e.g. why the schedule stopped).
    pub async fn set_status_reason(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        status_reason: Option<&str>,
    ) -> StoreResult<()> {
        let sql = "update integrations set status_reason = $1 where workspace_id = $2 and integration_slug = $3";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(status_reason).bind(workspace.as_str()).bind(slug.as_str()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// The scheduling columns of one integration.
    pub async fn schedule_state(&self, workspace: &WorkspaceId, slug: &PluginSlug) -> StoreResult<ScheduleState> {
        let sql = "select next_sync_at, lease_owner, lease_expires_at, failure_streak, status_reason \
                   from integrations where workspace_id = $1 and integration_slug = $2";
        Ok(with_pool!(self, pool => sqlx::query_as::<_, ScheduleState>(sql)
            .bind(workspace.as_str()).bind(slug.as_str()).fetch_one(pool).await)?)
    }

    /// Marks the runs a process left running on an integration as interrupted (that process let
    /// the integration's lease expire, so it is gone or stuck).
    pub async fn interrupt_runs_of(
        &self,
        workspace: &WorkspaceId,
        slug: &PluginSlug,
        dead_owner: &str,
    ) -> StoreResult<u64> {
        let sql = "update sync_history set status = 'interrupted', completed_at = $1, \
                   error = 'the process running it stopped before it finished; a later run takes over' \
                   where workspace_id = $2 and integration_slug = $3 and owner_id = $4 and status = 'running'";
        Ok(with_pool!(self, pool => sqlx::query(sql)
            .bind(Utc::now()).bind(workspace.as_str()).bind(slug.as_str()).bind(dead_owner).execute(pool).await
            .map(|r| r.rows_affected()))?)
    }

    /// Integrations of a plugin connected to a CRM account (webhook routing).
    pub async fn integrations_for_account(
        &self,
        slug: &PluginSlug,
        account_id: &str,
    ) -> StoreResult<Vec<super::Integration>> {
        let sql = format!(
            "select {} from integrations where integration_slug = $1 and crm_account_id = $2 order by workspace_id",
            super::integrations::COLUMNS
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, super::integrations::IntegrationRow>(&sql)
            .bind(slug.as_str()).bind(account_id).fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Records webhook event ids; returns those not seen before (the others are redeliveries).
    pub async fn first_seen_events(&self, slug: &PluginSlug, event_ids: &[String]) -> StoreResult<Vec<String>> {
        let now = Utc::now();
        let mut fresh = Vec::new();
        // `returning` on an insert that skips conflicts names only the rows it inserted.
        for chunk in event_ids.chunks(500) {
            let rows: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, $2)", i + 3)).collect();
            let sql = format!(
                "insert into webhook_events (integration_slug, event_id, received_at) values {} \
                 on conflict do nothing returning event_id",
                rows.join(", ")
            );
            let inserted: Vec<String> = with_pool!(self, pool => {
                let mut query = sqlx::query_scalar(&sql).bind(slug.as_str()).bind(now);
                for id in chunk {
                    query = query.bind(id);
                }
                query.fetch_all(pool).await
            })?;
            fresh.extend(inserted);
        }
        Ok(fresh)
    }

    /// Forgets webhook event ids older than `before` (CRMs stop redelivering long before).
    pub async fn prune_webhook_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let sql = "delete from webhook_events where received_at < $1";
        Ok(with_pool!(self, pool => sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }
}
