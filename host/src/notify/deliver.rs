//! The delivery worker: claims due deliveries, posts each signed body to its endpoint, and records
//! the attempt: delivered on a 2xx answer, else retried with backoff until the delivery's deadline,
//! then failed. It wakes when deliveries are stored and when the next retry is due, and prunes
//! finished deliveries past their retention.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt as _;
use rand::Rng as _;
use secrecy::SecretString;

use super::Notifier;
use super::signature::{self, SIGNATURE_HEADER};
use crate::metrics::DeliveryOutcome;
use crate::store::{AttemptRecord, DeliveryStatus, DueDelivery};
use crate::vault::{Purpose, Sealed};

/// Deliveries claimed per pass.
const BATCH: i64 = 32;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;
/// The longest the worker sleeps without looking (a delivery stored by another process).
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// How often finished deliveries past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most of an endpoint's answer kept as the attempt's error.
const ANSWER_EXCERPT: usize = 300;

/// Why an attempt failed: the answer's status (if there was one) and what to show.
struct Failure {
    status_code: Option<i32>,
    error: String,
}

impl Notifier {
    /// Starts the delivery worker; it runs until the handle is aborted.
    pub fn spawn_worker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let notifier = self.clone();
        tokio::spawn(async move { notifier.worker_loop().await })
    }

    async fn worker_loop(self: Arc<Self>) {
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            let claimed = self.deliver_due().await;
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                self.prune().await;
                last_prune = Some(tokio::time::Instant::now());
            }
            if claimed >= BATCH as usize {
                continue;
            }
            let wait = self.until_next_due(claimed == 0).await;
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims what is due and attempts it; how many were claimed.
    async fn deliver_due(&self) -> usize {
        let now = Utc::now();
        // A claim outlives the slowest attempt, so only a stopped worker's claims are taken over.
        let hold = chrono::Duration::from_std(self.options.attempt_timeout * 2 + Duration::from_secs(5))
            .unwrap_or(chrono::Duration::minutes(1));
        let due = match self.store.claim_due_deliveries(&self.owner, now, now + hold, BATCH).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "could not claim outbound webhook deliveries; retrying shortly");
                return 0;
            }
        };
        let claimed = due.len();
        futures::stream::iter(due).for_each_concurrent(CONCURRENCY, |d| self.attempt(d)).await;
        claimed
    }

    /// How long to sleep: until the next retry is due, at most [`IDLE_LOOK`]; a little while at
    /// least when nothing could be claimed (what is due may be another process's claim).
    async fn until_next_due(&self, nothing_claimed: bool) -> Duration {
        let floor = if nothing_claimed { Duration::from_millis(200) } else { Duration::ZERO };
        let until = match self.store.next_delivery_due().await {
            Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            Ok(None) => IDLE_LOOK,
            Err(_) => IDLE_LOOK,
        };
        until.clamp(floor, IDLE_LOOK)
    }

    /// One attempt of one delivery, recorded.
    #[tracing::instrument(name = "notify.deliver", skip_all, fields(delivery = %due.delivery.id, endpoint = %due.delivery.endpoint_id, event = %due.delivery.event_type))]
    async fn attempt(&self, due: DueDelivery) {
        let result = match self.signing_secrets(&due) {
            Ok(secrets) => self.post(&due, &secrets).await,
            Err(error) => Err(Failure { status_code: None, error }),
        };
        let at = Utc::now();
        let attempts = due.delivery.attempts + 1;
        let record = match result {
            Ok(code) => AttemptRecord {
                status: DeliveryStatus::Delivered,
                at,
                status_code: Some(code),
                error: None,
                next_attempt_at: None,
            },
            Err(failure) => {
                let jitter = rand::thread_rng().gen_range(0.8..=1.2);
                let next = self.options.next_attempt(attempts, at, due.delivery.give_up_at, jitter);
                AttemptRecord {
                    status: if next.is_some() { DeliveryStatus::Pending } else { DeliveryStatus::Failed },
                    at,
                    status_code: failure.status_code,
                    error: Some(failure.error),
                    next_attempt_at: next,
                }
            }
        };
        tracing::info!(attempt = attempts, status = %record.status, status_code = record.status_code,
            error = record.error.as_deref(), "outbound webhook attempt");
        self.metrics.webhook_delivery(match record.status {
            DeliveryStatus::Delivered => DeliveryOutcome::Delivered,
            DeliveryStatus::Pending => DeliveryOutcome::Retrying,
            DeliveryStatus::Failed => DeliveryOutcome::Failed,
        });
        if let Err(err) = self.store.record_delivery_attempt(&due.delivery.id, &self.owner, &record).await {
            // The claim lapses and another pass sends it again: at least once, never lost.
            tracing::warn!(error = %err, "could not record a webhook attempt; it will be made again");
        }
    }

    /// The endpoint's secrets that sign now: the current one, and the previous one during its overlap.
    fn signing_secrets(&self, due: &DueDelivery) -> Result<Vec<SecretString>, String> {
        let workspace = &due.delivery.workspace;
        let subject = due.delivery.endpoint_id.as_str();
        let open = |text: &str| {
            let sealed = Sealed::from_text(text).ok_or("the endpoint's stored secret is unreadable")?;
            let plain = self
                .vault
                .open_for(Purpose::EndpointSecret, workspace, subject, &sealed)
                .map_err(|e| format!("cannot open the endpoint's secret: {e}"))?;
            let text = String::from_utf8(secrecy::ExposeSecret::expose_secret(&plain).clone())
                .map_err(|_| "the endpoint's secret is not text".to_owned())?;
            Ok::<SecretString, String>(SecretString::from(text))
        };
        let mut secrets = vec![open(&due.secret_sealed)?];
        let overlap = due.previous_secret_until.is_some_and(|until| until > Utc::now());
        if let (Some(previous), true) = (&due.previous_secret_sealed, overlap) {
            secrets.push(open(previous)?);
        }
        Ok(secrets)
    }

    /// Posts the body; the answer's status on success (2xx).
    async fn post(&self, due: &DueDelivery, secrets: &[SecretString]) -> Result<i32, Failure> {
        let refused = |error: String| Failure { status_code: None, error };
        let url = url::Url::parse(&due.url).map_err(|e| refused(format!("the endpoint URL is invalid: {e}")))?;
        // Checked again: the operator may have tightened the policy since the endpoint was made.
        self.policy.check_url(&url).map_err(|why| refused(format!("refused by the outbound policy: {why}")))?;
        let d = &due.delivery;
        let body = d.payload.as_bytes();
        let signers: Vec<&SecretString> = secrets.iter().collect();
        let signature = signature::header_value(&signers, Utc::now().timestamp(), body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Crmhost-Event-Id", d.event_id.as_str())
            .header("Crmhost-Event-Type", d.event_type.as_str())
            .header("Crmhost-Delivery-Id", d.id.as_str())
            .header("Crmhost-Delivery-Attempt", (d.attempts + 1).to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(d.payload.clone())
            .send()
            .await
            .map_err(|e| refused(describe_send_error(&e, self.options.attempt_timeout)))?;
        let status = response.status();
        let code = i32::from(status.as_u16());
        if status.is_success() {
            return Ok(code);
        }
        let excerpt = answer_excerpt(response).await;
        let what = if status.is_redirection() { " (redirects are not followed)" } else { "" };
        let error = match excerpt {
            Some(text) => format!("answered {code}{what}: {text}"),
            None => format!("answered {code}{what}"),
        };
        Err(Failure { status_code: Some(code), error })
    }

    /// Deletes finished deliveries older than the retention.
    async fn prune(&self) {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(self.options.retention).unwrap_or(chrono::Duration::days(30));
        match self.store.prune_deliveries(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "pruned old outbound webhook deliveries"),
            Err(err) => tracing::warn!(error = %err, "could not prune old outbound webhook deliveries"),
        }
    }
}

/// What went wrong sending, without the URL (it may carry a token of the receiver's).
fn describe_send_error(err: &reqwest::Error, timeout: Duration) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(denied) = e.downcast_ref::<crate::plugins::egress::ResolveDenied>() {
            return format!("refused by the outbound policy: {denied}");
        }
        source = e.source();
    }
    if err.is_timeout() {
        format!("no answer within {} s", timeout.as_secs())
    } else if err.is_connect() {
        "could not connect to the endpoint".to_owned()
    } else {
        let mut text = err.to_string();
        if let Some(url) = err.url() {
            text = text.replace(url.as_str(), "the endpoint");
        }
        format!("the request failed: {text}")
    }
}

/// The first few hundred characters of an answer's body, on one line, if it has one.
async fn answer_excerpt(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < ANSWER_EXCERPT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ANSWER_EXCERPT)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
