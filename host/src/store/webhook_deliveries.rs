//! Outbound webhook deliveries: one row per event per endpoint (and per redelivery), holding the
//! exact body sent, where its retries stand, and the last attempt's result. Workers claim due rows
//! for a while, so several host processes never send the same attempt twice.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{DeliveryId, EndpointId, EventId, WorkspaceId, stored_enum};

stored_enum!(
    /// Where a delivery stands.
    DeliveryStatus {
        /// Not delivered yet; retried at `next_attempt_at`.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Retries ran out (or the endpoint is gone); redeliver it to try again.
        Failed = "failed",
    }
);

/// A delivery to store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Its id.
    pub id: DeliveryId,
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// The endpoint's workspace.
    pub workspace: WorkspaceId,
    /// The event's id.
    pub event_id: EventId,
    /// The event's type.
    pub event_type: String,
    /// The JSON body.
    pub payload: String,
    /// When it was made; the first attempt is due then.
    pub created_at: DateTime<Utc>,
    /// When retries stop.
    pub give_up_at: DateTime<Utc>,
    /// The delivery this one repeats, for a redelivery.
    pub redelivery_of: Option<DeliveryId>,
}

/// A delivery as stored.
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    /// Its id.
    pub id: DeliveryId,
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The event's id.
    pub event_id: EventId,
    /// The event's type.
    pub event_type: String,
    /// The JSON body.
    pub payload: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When retries stop.
    pub give_up_at: DateTime<Utc>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status, if the endpoint answered.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The delivery this one repeats.
    pub redelivery_of: Option<DeliveryId>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    endpoint_id: String,
    workspace_id: String,
    event_id: String,
    event_type: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    give_up_at: DateTime<Utc>,
    last_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    redelivery_of: Option<String>,
}

impl TryFrom<Row> for StoredDelivery {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(Self {
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery status `{}`", r.status)))?,
            id: DeliveryId::from_stored(r.id),
            endpoint_id: EndpointId::from_stored(r.endpoint_id),
            workspace: WorkspaceId::from_stored(r.workspace_id),
            event_id: EventId::from_stored(r.event_id),
            event_type: r.event_type,
            payload: r.payload,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            give_up_at: r.give_up_at,
            last_attempt_at: r.last_attempt_at,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
            redelivery_of: r.redelivery_of.map(DeliveryId::from_stored),
        })
    }
}

const COLUMNS: &str = "d.id, d.endpoint_id, d.workspace_id, d.event_id, d.event_type, d.payload, d.status, \
                       d.attempts, d.next_attempt_at, d.give_up_at, d.last_attempt_at, d.last_status_code, \
                       d.last_error, d.created_at, d.delivered_at, d.redelivery_of";

/// A due delivery claimed by a worker, with what sending it needs from its endpoint.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: StoredDelivery,
    /// Where to post it.
    pub url: String,
    /// The endpoint's secret, sealed.
    pub secret_sealed: String,
    /// The previous secret, sealed, while it still signs.
    pub previous_secret_sealed: Option<String>,
    /// Until when the previous secret signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct DueRow {
    #[sqlx(flatten)]
    delivery: Row,
    url: String,
    secret_sealed: String,
    previous_secret_sealed: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
}

/// The result of one attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Where the delivery stands after it.
    pub status: DeliveryStatus,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The HTTP status, if the endpoint answered.
    pub status_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// When to try again (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Which deliveries of an endpoint to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only these.
    pub status: Option<DeliveryStatus>,
    /// Only this event's.
    pub event_id: Option<EventId>,
    /// Only those made before this one (keyset paging: created_at, id).
    pub before: Option<(DateTime<Utc>, DeliveryId)>,
    /// At most this many.
    pub limit: i64,
}

impl Store {
    /// Stores new deliveries in one transaction.
    pub async fn insert_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let sql = "insert into webhook_deliveries (id, endpoint_id, workspace_id, event_id, event_type, payload, \
                   status, attempts, next_attempt_at, give_up_at, created_at, redelivery_of) \
                   values ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $7, $9)";
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_statement()).await?;
            for d in deliveries {
                sqlx::query(sql)
                    .bind(d.id.as_str()).bind(d.endpoint_id.as_str()).bind(d.workspace.as_str())
                    .bind(d.event_id.as_str()).bind(&d.event_type).bind(&d.payload).bind(d.created_at)
                    .bind(d.give_up_at).bind(d.redelivery_of.as_ref().map(DeliveryId::as_str))
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries of enabled endpoints for `owner` until `claim_until`
    /// (another worker takes them over after that, should this one stop mid-attempt).
    pub async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<DueDelivery>> {
        let select = format!(
            "select {COLUMNS}, e.url, e.secret_sealed, e.previous_secret_sealed, e.previous_secret_until \
             from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id \
             where d.status = 'pending' and d.next_attempt_at <= $1 and e.enabled \
             and (d.claimed_until is null or d.claimed_until < $1) \
             order by d.next_attempt_at, d.id limit $2"
        );
        let claim = "update webhook_deliveries set claimed_by = $2, claimed_until = $3 where id = $1 \
                     and status = 'pending' and (claimed_until is null or claimed_until < $4)";
        let rows = with_pool!(self, pool => sqlx::query_as::<_, DueRow>(&select)
            .bind(now).bind(limit).fetch_all(pool).await)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let taken = with_pool!(self, pool => sqlx::query(claim)
                .bind(&row.delivery.id).bind(owner).bind(claim_until).bind(now)
                .execute(pool).await.map(|r| r.rows_affected()))?;
            if taken == 1 {
                claimed.push(DueDelivery {
                    url: row.url,
                    secret_sealed: row.secret_sealed,
                    previous_secret_sealed: row.previous_secret_sealed,
                    previous_secret_until: row.previous_secret_until,
                    delivery: row.delivery.try_into()?,
                });
            }
        }
        Ok(claimed)
    }

    /// Records an attempt of a delivery `owner` claimed, and releases the claim.
    pub async fn record_delivery_attempt(
        &self,
        id: &DeliveryId,
        owner: &str,
        attempt: &AttemptRecord,
    ) -> StoreResult<()> {
        let sql = "update webhook_deliveries set status = $3, attempts = attempts + 1, last_attempt_at = $4, \
                   last_status_code = $5, last_error = $6, next_attempt_at = $7, \
                   delivered_at = case when $3 = 'delivered' then $4 else delivered_at end, \
                   claimed_by = null, claimed_until = null where id = $1 and claimed_by = $2";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(id.as_str()).bind(owner).bind(attempt.status.as_str()).bind(attempt.at)
            .bind(attempt.status_code).bind(&attempt.error).bind(attempt.next_attempt_at)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// When the next pending delivery of an enabled endpoint is due, if any is.
    pub async fn next_delivery_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let sql = "select min(d.next_attempt_at) from webhook_deliveries d \
                   join webhook_endpoints e on e.id = d.endpoint_id where d.status = 'pending' and e.enabled";
        Ok(with_pool!(self, pool => sqlx::query_scalar::<_, Option<DateTime<Utc>>>(sql).fetch_one(pool).await)?)
    }

    /// An endpoint's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        workspace: &WorkspaceId,
        endpoint: &EndpointId,
        filter: &DeliveryFilter,
    ) -> StoreResult<Vec<StoredDelivery>> {
        let (before_at, before_id) = filter
            .before
            .as_ref()
            .map_or((super::far_future(), String::new()), |(at, id)| (*at, id.as_str().to_owned()));
        let sql = format!(
            "select {COLUMNS} from webhook_deliveries d where d.workspace_id = $1 and d.endpoint_id = $2 \
             and ($3 = '' or d.status = $3) and ($4 = '' or d.event_id = $4) \
             and (d.created_at < $5 or (d.created_at = $5 and $6 <> '' and d.id < $6)) \
             order by d.created_at desc, d.id desc limit $7"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(endpoint.as_str())
            .bind(filter.status.map_or("", DeliveryStatus::as_str))
            .bind(filter.event_id.as_ref().map_or("", EventId::as_str))
            .bind(before_at).bind(before_id).bind(filter.limit.clamp(1, 500))
            .fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// One delivery of an endpoint.
    pub async fn get_delivery(
        &self,
        workspace: &WorkspaceId,
        endpoint: &EndpointId,
        id: &DeliveryId,
    ) -> StoreResult<StoredDelivery> {
        let sql = format!(
            "select {COLUMNS} from webhook_deliveries d where d.workspace_id = $1 and d.endpoint_id = $2 and d.id = $3"
        );
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(workspace.as_str()).bind(endpoint.as_str()).bind(id.as_str()).fetch_one(pool).await)?;
        row.try_into()
    }

    /// Deletes finished deliveries made before `before`; how many.
    pub async fn prune_deliveries(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let sql = "delete from webhook_deliveries where status <> 'pending' and created_at < $1";
        Ok(with_pool!(self, pool => sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }
}
