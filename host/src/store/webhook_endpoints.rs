//! Outbound webhook endpoints: where a workspace wants events sent, which ones, and the sealed
//! secret that signs them (plus the previous one for a while after a rotation).

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, with_pool};
use crate::domain::{EndpointId, WorkspaceId};

/// An endpoint as stored. The secrets are sealed text (see `vault::Sealed::to_text`).
#[derive(Debug, Clone)]
pub struct StoredEndpoint {
    /// Its id.
    pub id: EndpointId,
    /// The workspace it belongs to.
    pub workspace: WorkspaceId,
    /// Where deliveries are posted.
    pub url: String,
    /// The admin's note.
    pub description: String,
    /// JSON array of event types.
    pub events: String,
    /// JSON condition, if any.
    pub filter: Option<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// The signing secret, sealed.
    pub secret_sealed: String,
    /// The secret before the last rotation, sealed, while it still signs.
    pub previous_secret_sealed: Option<String>,
    /// Until when the previous secret signs too.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Who registered it.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    workspace_id: String,
    url: String,
    description: String,
    events: String,
    filter: Option<String>,
    enabled: bool,
    secret_sealed: String,
    previous_secret_sealed: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
}

impl From<Row> for StoredEndpoint {
    fn from(r: Row) -> Self {
        Self {
            id: EndpointId::from_stored(r.id),
            workspace: WorkspaceId::from_stored(r.workspace_id),
            url: r.url,
            description: r.description,
            events: r.events,
            filter: r.filter,
            enabled: r.enabled,
            secret_sealed: r.secret_sealed,
            previous_secret_sealed: r.previous_secret_sealed,
            previous_secret_until: r.previous_secret_until,
            created_at: r.created_at,
            created_by: r.created_by,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, workspace_id, url, description, events, filter, enabled, secret_sealed, \
                       previous_secret_sealed, previous_secret_until, created_at, created_by, updated_at";

/// What an update may change; `None` leaves a column as it is.
#[derive(Debug, Default)]
pub struct EndpointChanges {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New event types (JSON array).
    pub events: Option<String>,
    /// A new filter: `Some(None)` removes it.
    pub filter: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

impl Store {
    /// Registers an endpoint.
    pub async fn insert_endpoint(&self, e: &StoredEndpoint) -> StoreResult<()> {
        let sql = format!(
            "insert into webhook_endpoints ({COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        with_pool!(self, pool => sqlx::query(&sql)
            .bind(e.id.as_str()).bind(e.workspace.as_str()).bind(&e.url).bind(&e.description).bind(&e.events)
            .bind(&e.filter).bind(e.enabled).bind(&e.secret_sealed).bind(&e.previous_secret_sealed)
            .bind(e.previous_secret_until).bind(e.created_at).bind(&e.created_by).bind(e.updated_at)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// The workspace's endpoints, oldest first.
    pub async fn list_endpoints(&self, workspace: &WorkspaceId) -> StoreResult<Vec<StoredEndpoint>> {
        let sql = format!("select {COLUMNS} from webhook_endpoints where workspace_id = $1 order by created_at, id");
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// How many endpoints the workspace has.
    pub async fn count_endpoints(&self, workspace: &WorkspaceId) -> StoreResult<i64> {
        let sql = "select count(*) from webhook_endpoints where workspace_id = $1";
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql).bind(workspace.as_str()).fetch_one(pool).await)?)
    }

    /// One endpoint of the workspace.
    pub async fn get_endpoint(&self, workspace: &WorkspaceId, id: &EndpointId) -> StoreResult<StoredEndpoint> {
        let sql = format!("select {COLUMNS} from webhook_endpoints where workspace_id = $1 and id = $2");
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(id.as_str()).fetch_one(pool).await)?;
        Ok(row.into())
    }

    /// Changes what `changes` names; `NotFound` if the workspace has no such endpoint.
    pub async fn update_endpoint(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        changes: &EndpointChanges,
    ) -> StoreResult<()> {
        // `$N is null` keeps a column; the filter takes a flag since null is also a value for it.
        let sql = "update webhook_endpoints set url = coalesce($3, url), description = coalesce($4, description), \
                   events = coalesce($5, events), filter = case when $6 then $7 else filter end, \
                   enabled = coalesce($8, enabled), updated_at = $9 where workspace_id = $1 and id = $2";
        let (set_filter, filter) = match &changes.filter {
            Some(f) => (true, f.clone()),
            None => (false, None),
        };
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(id.as_str()).bind(&changes.url).bind(&changes.description)
            .bind(&changes.events).bind(set_filter).bind(filter).bind(changes.enabled).bind(Utc::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(super::StoreError::NotFound) } else { Ok(()) }
    }

    /// Replaces the signing secret, keeping the old one signing until `previous_until`.
    pub async fn rotate_endpoint_secret(
        &self,
        workspace: &WorkspaceId,
        id: &EndpointId,
        secret_sealed: &str,
        previous_sealed: Option<&str>,
        previous_until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let sql = "update webhook_endpoints set secret_sealed = $3, previous_secret_sealed = $4, \
                   previous_secret_until = $5, updated_at = $6 where workspace_id = $1 and id = $2";
        let n = with_pool!(self, pool => sqlx::query(sql)
            .bind(workspace.as_str()).bind(id.as_str()).bind(secret_sealed).bind(previous_sealed)
            .bind(previous_until).bind(Utc::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(super::StoreError::NotFound) } else { Ok(()) }
    }

    /// Removes an endpoint and its delivery log; whether there was one.
    pub async fn delete_endpoint(&self, workspace: &WorkspaceId, id: &EndpointId) -> StoreResult<bool> {
        let deliveries = "delete from webhook_deliveries where workspace_id = $1 and endpoint_id = $2";
        let endpoint = "delete from webhook_endpoints where workspace_id = $1 and id = $2";
        let n = with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            sqlx::query(deliveries).bind(workspace.as_str()).bind(id.as_str()).execute(&mut *tx).await?;
            let n = sqlx::query(endpoint).bind(workspace.as_str()).bind(id.as_str()).execute(&mut *tx).await?
                .rows_affected();
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(n)
        })?;
        Ok(n > 0)
    }
}
