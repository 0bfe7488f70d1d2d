//! The Salesforce adapter through the real host runtime against the emulator: fields, push
//! (create, update, idempotent, per-record errors, ambiguous matches), pull (paging across query
//! batches, incremental with equal timestamps, deletions), delete, limits and token expiry.

use std::collections::BTreeSet;

use crmhost::plugins::bindings::AdapterError;
use crmhost::plugins::bindings::adapter::{DeleteOutcome, FieldType, PullRequest, PushOutcome, PushRecord};
use crmhost_tests::{ConnectedAdapter as Connected, pull_request, text_field as text, written_ids};

fn contact(email: &str, last: &str) -> PushRecord {
    PushRecord { crm_id: None, fields: vec![text("Email", email), text("LastName", last)] }
}

fn contacts_in_crm(c: &Connected) -> usize {
    let state = c.app.sim().sim().salesforce();
    let contacts = state.objects.iter().find(|o| o.schema.name == "Contact").unwrap();
    contacts.records.values().filter(|r| r.deleted_at.is_none()).count()
}

async fn connected() -> Connected {
    Connected::connect("salesforce").await
}

#[tokio::test]
async fn list_fields_reports_types_requirements_and_match_keys() {
    let c = connected().await;
    let fields = c.plugin.list_fields(c.context.clone(), "contact").await.unwrap().unwrap();
    let field = |name: &str| fields.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(field("Email").field_type, FieldType::Email);
    assert!(field("Email").unique, "Email is an idLookup field: usable as a match key");
    assert!(field("LastName").required && field("LastName").writable);
    assert!(!field("FirstName").required);
    assert_eq!(field("Id").field_type, FieldType::Id);
    assert!(!field("SystemModstamp").writable);
    let err = c.plugin.list_fields(c.context.clone(), "invoice").await.unwrap().unwrap_err();
    assert!(matches!(err, AdapterError::NotSupported(_)), "{err:?}");
}

#[tokio::test]
async fn push_creates_then_updates_by_email_and_is_idempotent() {
    let c = connected().await;
    let before = contacts_in_crm(&c);
    let batch = vec![contact("a@example.com", "Ada"), contact("b@example.com", "Bob"), contact("c@example.com", "Cy")];
    let first = c.push("contact", "Email", &batch).await;
    assert!(first.iter().all(|o| matches!(o, PushOutcome::Created(_))), "{first:?}");
    // Same batch again, with different case in one email: all updates, nothing new.
    let mut again = batch.clone();
    again[1] = contact("B@Example.com", "Bobby");
    let second = c.push("contact", "Email", &again).await;
    assert!(second.iter().all(|o| matches!(o, PushOutcome::Updated(_))), "{second:?}");
    assert_eq!(written_ids(&first), written_ids(&second));
    assert_eq!(contacts_in_crm(&c), before + 3);
    // By id, too.
    let by_id = PushRecord { crm_id: Some(written_ids(&first)[0].clone()), fields: vec![text("Title", "CEO")] };
    let third = c.push("contact", "Email", &[by_id]).await;
    assert!(matches!(&third[0], PushOutcome::Updated(id) if *id == written_ids(&first)[0]));
}

#[tokio::test]
async fn a_batch_of_200_goes_in_one_push_and_more_is_refused() {
    let c = connected().await;
    let batch: Vec<PushRecord> = (0..200).map(|i| contact(&format!("bulk{i}@example.com"), &format!("L{i}"))).collect();
    let outcomes = c.push("contact", "Email", &batch).await;
    assert_eq!(written_ids(&outcomes).len(), 200);
    let too_many: Vec<PushRecord> = (0..201).map(|i| contact(&format!("x{i}@example.com"), "L")).collect();
    let err = c.plugin.push(c.context.clone(), "contact", "Email", &too_many).await.unwrap().unwrap_err();
    assert!(matches!(err, AdapterError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn per_record_errors_come_back_in_order_with_the_crm_code() {
    let c = connected().await;
    // Two contacts with the same email (created by matching on another key)...
    for last in ["Twin1", "Twin2"] {
        let created = c.push("contact", "LastName", &[contact("twin@example.com", last)]).await;
        assert!(matches!(created[0], PushOutcome::Created(_)), "{created:?}");
    }
    let batch = vec![
        contact("ok@example.com", "Fine"),
        contact("not-an-email", "Bad"),
        PushRecord { crm_id: None, fields: vec![text("Email", "nolast@example.com")] },
        contact("twin@example.com", "Which"),
        PushRecord { crm_id: None, fields: vec![text("LastName", "NoEmail")] },
        contact("ok@example.com", "Again"),
    ];
    let outcomes = c.push("contact", "Email", &batch).await;
    assert!(matches!(outcomes[0], PushOutcome::Created(_)), "{:?}", outcomes[0]);
    match &outcomes[1] {
        PushOutcome::Failed(AdapterError::Invalid(info)) => {
            assert_eq!(info.crm_code.as_deref(), Some("INVALID_EMAIL_ADDRESS"), "{info:?}")
        }
        other => panic!("{other:?}"),
    }
    match &outcomes[2] {
        PushOutcome::Failed(AdapterError::Invalid(info)) => {
            assert_eq!(info.crm_code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
            assert_eq!(info.field.as_deref(), Some("LastName"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&outcomes[3], PushOutcome::Failed(AdapterError::Duplicate(d)) if d.message.contains("matches 2")));
    assert!(
        matches!(&outcomes[4], PushOutcome::Failed(AdapterError::Invalid(i)) if i.field.as_deref() == Some("Email"))
    );
    assert!(matches!(&outcomes[5], PushOutcome::Failed(AdapterError::Duplicate(_))), "{:?}", outcomes[5]);
}

#[tokio::test]
async fn pull_pages_across_query_batches_without_losing_or_repeating_records() {
    let c = connected().await;
    // Small query batches force the adapter to follow nextRecordsUrl inside a page.
    c.app.sim().sim().update_knobs(|k| k.salesforce_query_batch_size = 3).unwrap();
    let pages = c.pull_all(pull_request("contact", 10)).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.records.len()).collect();
    assert_eq!(sizes, [10, 10, 5], "25 seeded contacts");
    let seen: BTreeSet<String> = pages.iter().flat_map(|p| p.records.iter().map(|r| r.id.clone())).collect();
    assert_eq!(seen.len(), 25);
    let record = &pages[0].records[0];
    assert!(record.modified_at.as_deref().unwrap().ends_with('Z'));
    assert!(record.fields.iter().any(|f| f.name == "Email"), "default mapped fields are read");
}

#[tokio::test]
async fn incremental_pull_keeps_records_that_share_a_timestamp_and_reports_deletions() {
    let c = connected().await;
    let sim = c.app.sim().sim().clone();
    let instant = chrono::Utc::now();
    sim.clock.set(instant);
    let batch: Vec<PushRecord> = (0..7).map(|i| contact(&format!("same{i}@example.com"), "Same")).collect();
    let created = written_ids(&c.push("contact", "Email", &batch).await);
    let since = instant.to_rfc3339();
    let pull = PullRequest { modified_since: Some(since.clone()), ..pull_request("contact", 3) };
    let pages = c.pull_all(pull.clone()).await;
    let seen: Vec<String> = pages.iter().flat_map(|p| p.records.iter().map(|r| r.id.clone())).collect();
    assert_eq!(seen.len(), 7, "no record lost or repeated at equal timestamps: {seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>(), created.iter().collect::<BTreeSet<_>>());

    // Delete two; an incremental pull reports them as deleted.
    sim.clock.advance(chrono::Duration::seconds(5));
    let gone = c.plugin.delete(c.context.clone(), "contact", &created[..2]).await.unwrap().unwrap();
    assert!(gone.iter().all(|o| matches!(o, DeleteOutcome::Deleted)), "{gone:?}");
    let again = c.plugin.delete(c.context.clone(), "contact", &created[..1]).await.unwrap().unwrap();
    assert!(matches!(again[0], DeleteOutcome::Deleted), "already gone counts as deleted: {again:?}");
    let later = (instant + chrono::Duration::seconds(5)).to_rfc3339();
    let pages = c.pull_all(PullRequest { modified_since: Some(later), ..pull_request("contact", 50) }).await;
    let deleted: BTreeSet<String> =
        pages.iter().flat_map(|p| p.records.iter().filter(|r| r.deleted).map(|r| r.id.clone())).collect();
    assert_eq!(deleted, created[..2].iter().cloned().collect());
    sim.clock.release();
}

#[tokio::test]
async fn pull_by_ids_reads_exactly_those_records() {
    let c = connected().await;
    let created = written_ids(
        &c.push(
            "lead",
            "Email",
            &[PushRecord {
                crm_id: None,
                fields: vec![text("Email", "lead@example.com"), text("LastName", "Lee"), text("Company", "Acme")],
            }],
        )
        .await,
    );
    let page = c.pull(&PullRequest { ids: created.clone(), ..pull_request("lead", 10) }).await.unwrap();
    assert_eq!(page.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), created);
    assert!(page.next_cursor.is_none());
}

#[tokio::test]
async fn the_daily_limit_is_reported_as_a_daily_rate_limit() {
    let c = connected().await;
    c.app.sim().sim().update_knobs(|k| k.salesforce_daily_limit = 1).unwrap();
    let err = c.pull(&pull_request("account", 10)).await.unwrap_err();
    match err {
        AdapterError::RateLimited(info) => {
            assert!(matches!(info.policy, crmhost::plugins::bindings::RateLimitPolicy::Daily), "{info:?}");
            assert!(info.retry_after_ms.is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_session_that_expires_mid_pull_is_refreshed_by_the_host() {
    let c = connected().await;
    let sim = c.app.sim().sim().clone();
    let first = c.pull(&pull_request("contact", 10)).await.unwrap();
    // The session ends between pages.
    let tokens: Vec<String> = sim.salesforce().oauth.access.keys().cloned().collect();
    for token in tokens {
        sim.revoke_token(&token);
    }
    let refreshes = sim.call_count("salesforce POST /services/oauth2/token");
    let second =
        c.pull(&PullRequest { cursor: first.next_cursor.clone(), ..pull_request("contact", 10) }).await.unwrap();
    assert_eq!(second.records.len(), 10);
    assert_eq!(sim.call_count("salesforce POST /services/oauth2/token"), refreshes + 1);
}

/// A bulk step through the runtime, expecting the call itself to succeed.
async fn bulk_push_step(
    c: &Connected,
    records: &[PushRecord],
    job: Option<&str>,
) -> crmhost::plugins::bindings::bulk::PushStep {
    let answer = c.plugin.bulk_push(c.context.clone(), "contact", "Email", records, job).await.expect("call");
    answer.expect("bulk push").expect("the plugin exports bulk")
}

#[tokio::test]
async fn bulk_jobs_read_and_write_like_pull_and_push() {
    use crmhost::plugins::bindings::bulk::{PullStep, PushStep};
    let c = connected().await;
    // Two records share a key in Salesforce: a record with that key fails as a duplicate; the
    // others are inserted or updated by one job each, outcomes in input order.
    for last in ["One", "Two"] {
        let input = serde_json::json!({"Email": "twin@bulk.example", "LastName": last});
        let mut state = c.app.sim().sim().salesforce();
        let now = c.app.sim().sim().clock.now();
        let contacts = state.object_mut("Contact").unwrap();
        contacts.create(input.as_object().unwrap(), now, crm_sim::salesforce::USER_ID).unwrap();
    }
    let existing = c.push("contact", "Email", &[contact("old@bulk.example", "Old")]).await;
    let batch = vec![
        contact("new@bulk.example", "New"),
        contact("TWIN@bulk.example", "Third"),
        contact("old@bulk.example", "Older"),
        PushRecord { crm_id: None, fields: vec![text("Email", "nolast@bulk.example")] },
    ];
    let PushStep::Done(outcomes) = bulk_push_step(&c, &batch, None).await else { panic!("jobs finish at once here") };
    assert!(matches!(&outcomes[0], PushOutcome::Created(_)), "{outcomes:?}");
    assert!(matches!(&outcomes[1], PushOutcome::Failed(AdapterError::Duplicate(_))), "{outcomes:?}");
    assert_eq!(written_ids(&outcomes[2..3]), written_ids(&existing), "{outcomes:?}");
    assert!(matches!(&outcomes[2], PushOutcome::Updated(_)));
    let PushOutcome::Failed(AdapterError::Invalid(info)) = &outcomes[3] else { panic!("{outcomes:?}") };
    assert_eq!(info.crm_code.as_deref(), Some("REQUIRED_FIELD_MISSING"), "{info:?}");
    let jobs = c.app.sim().sim().salesforce().bulk.jobs_by_operation();
    assert_eq!((jobs["insert"].len(), jobs["update"].len()), (1, 1), "{jobs:?}");

    // A read as a job brings what a page-by-page read does, typed alike; the object is described
    // once for the job, not once a page.
    let describes =
        || c.app.sim().sim().call_count("salesforce GET /services/data/{version}/sobjects/{object}/describe");
    let described_before = describes();
    let mut request = pull_request("contact", 2);
    let mut bulk_ids = BTreeSet::new();
    let mut pages = 0;
    loop {
        pages += 1;
        let step = c.plugin.bulk_pull(c.context.clone(), &request).await.expect("call").expect("bulk pull").unwrap();
        let PullStep::Page(page) = step else { panic!("the job is done at the first look") };
        assert!(page.records.len() <= 2);
        bulk_ids.extend(page.records.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            Some(next) => request.cursor = Some(next),
            None => break,
        }
    }
    assert!(pages > 2, "{pages} pages");
    assert_eq!(describes() - described_before, 1, "one describe for {pages} pages");
    let paged: BTreeSet<String> = c
        .pull_all(pull_request("contact", 200))
        .await
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.id.clone()))
        .collect();
    assert_eq!(bulk_ids, paged);
    let bad = PullRequest { cursor: Some("bulkq:no such".to_owned()), ..pull_request("contact", 2) };
    let refused = c.plugin.bulk_pull(c.context.clone(), &bad).await.expect("call");
    assert!(matches!(refused, Err(AdapterError::Invalid(_))), "{refused:?}");
}
