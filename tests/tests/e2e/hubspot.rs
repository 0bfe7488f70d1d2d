//! The HubSpot adapter through the real host runtime against the emulator: properties, push
//! (upsert by email, match by domain / deal name, per-record errors), pull (list paging, search
//! across the 10,000-result cap with shared timestamps), archive, rate limits, signed webhooks.

use std::collections::BTreeSet;

use base64::Engine as _;
use crmhost::plugins::bindings::adapter::{
    ChangeKind, DeleteOutcome, FieldType, PullRequest, PushOutcome, PushRecord, WebhookRequest,
};
use crmhost::plugins::bindings::{AdapterError, Value};
use crmhost_tests::{ConnectedAdapter as Connected, pull_request, text_field as text, written_ids};
use hmac::Mac;

fn record(fields: &[(&str, &str)]) -> PushRecord {
    PushRecord { crm_id: None, fields: fields.iter().map(|(n, v)| text(n, v)).collect() }
}

async fn connected() -> Connected {
    Connected::connect("hubspot").await
}

#[tokio::test]
async fn list_fields_reads_the_properties_api() {
    let c = connected().await;
    let fields = c.plugin.list_fields(c.context.clone(), "contact").await.unwrap().unwrap();
    let field = |name: &str| fields.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(field("email").field_type, FieldType::Email);
    assert!(field("email").unique && field("email").writable);
    assert!(!field("lastmodifieddate").writable, "read-only values are not writable");
    assert_eq!(field("hs_object_id").field_type, FieldType::Id);
}

#[tokio::test]
async fn contacts_upsert_by_email_and_pushing_twice_creates_nothing_twice() {
    let c = connected().await;
    let batch: Vec<PushRecord> =
        (0..150).map(|i| record(&[("email", &format!("p{i}@example.com")), ("firstname", "P")])).collect();
    let first = c.push("contact", "email", &batch).await;
    assert!(first.iter().all(|o| matches!(o, PushOutcome::Created(_))), "{:?}", &first[..3]);
    let second = c.push("contact", "email", &batch).await;
    assert!(second.iter().all(|o| matches!(o, PushOutcome::Updated(_))), "{:?}", &second[..3]);
    assert_eq!(written_ids(&first), written_ids(&second));
    let live =
        c.app.sim().sim().hubspot().objects["contacts"].records.values().filter(|r| r.archived_at.is_none()).count();
    assert_eq!(live, 25 + 150);
}

#[tokio::test]
async fn companies_match_on_domain_and_deals_on_name() {
    let c = connected().await;
    // Each push looks its keys up with one search; HubSpot allows 4 searches a second. Pacing
    // and retrying is the host's job (the sync engine), not this test's.
    c.app.sim().sim().update_knobs(|k| k.hubspot_search_per_second = 100).unwrap();
    let first = c.push("company", "domain", &[record(&[("domain", "acme.example"), ("name", "Acme")])]).await;
    assert!(matches!(first[0], PushOutcome::Created(_)), "{first:?}");
    let again = c.push("company", "domain", &[record(&[("domain", "ACME.example"), ("name", "Acme Inc")])]).await;
    assert_eq!(written_ids(&again), written_ids(&first));
    assert!(matches!(again[0], PushOutcome::Updated(_)));
    // A seeded company's name matches an existing record.
    let seeded = c.push("company", "name", &[record(&[("name", "Company 3"), ("phone", "123")])]).await;
    assert!(matches!(seeded[0], PushOutcome::Updated(_)), "{seeded:?}");

    let deal = c.push("deal", "dealname", &[record(&[("dealname", "Big one"), ("amount", "5000")])]).await;
    assert!(matches!(deal[0], PushOutcome::Created(_)));
    let twice = c.push("deal", "dealname", &[record(&[("dealname", "Big one"), ("amount", "6000")])]).await;
    assert_eq!(written_ids(&twice), written_ids(&deal));
}

#[tokio::test]
async fn a_bad_record_fails_alone_with_hubspots_code() {
    let c = connected().await;
    let batch = vec![
        record(&[("email", "good1@example.com")]),
        record(&[("email", "not-an-email")]),
        record(&[("email", "good2@example.com")]),
        record(&[("firstname", "no email")]),
    ];
    let outcomes = c.push("contact", "email", &batch).await;
    assert!(matches!(outcomes[0], PushOutcome::Created(_)), "{:?}", outcomes[0]);
    assert!(matches!(&outcomes[1], PushOutcome::Failed(AdapterError::Invalid(_))), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2], PushOutcome::Created(_)), "{:?}", outcomes[2]);
    assert!(
        matches!(&outcomes[3], PushOutcome::Failed(AdapterError::Invalid(i)) if i.field.as_deref() == Some("email"))
    );
}

#[tokio::test]
async fn a_full_pull_pages_through_the_list_endpoint() {
    let c = connected().await;
    let pages = c.pull_all(pull_request("contact", 10)).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.records.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let first = &pages[0].records[0];
    assert!(first.fields.iter().any(|f| f.name == "email" && matches!(&f.value, Value::Text(e) if e.contains('@'))));
}

#[tokio::test]
async fn an_incremental_pull_crosses_the_10000_result_search_cap_without_losing_records() {
    let c = connected().await;
    let sim = c.app.sim().sim().clone();
    sim.update_knobs(|k| {
        k.hubspot_search_per_second = 10_000;
        k.hubspot_ten_second_limit = 100_000;
    })
    .unwrap();
    let start = chrono::Utc::now() + chrono::Duration::seconds(1);
    sim.clock.set(start);
    // 10,100 contacts in groups of 100 sharing a timestamp.
    for _ in 0..101 {
        sim.seed("contact", 100).unwrap();
        sim.clock.advance(chrono::Duration::milliseconds(1));
    }
    let pull = PullRequest { modified_since: Some(start.to_rfc3339()), ..pull_request("contact", 200) };
    let pages = c.pull_all(pull).await;
    let all: Vec<String> = pages.iter().flat_map(|p| p.records.iter().map(|r| r.id.clone())).collect();
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), 10_100, "every record once");
    assert_eq!(all.len(), 10_100, "no record twice");
    sim.clock.release();
}

#[tokio::test]
async fn archive_and_pull_by_ids() {
    let c = connected().await;
    let created = written_ids(
        &c.push("deal", "dealname", &[record(&[("dealname", "To go")]), record(&[("dealname", "To stay")])]).await,
    );
    let page = c.pull(&PullRequest { ids: created.clone(), ..pull_request("deal", 10) }).await.unwrap();
    assert_eq!(page.records.len(), 2);
    let gone = c.plugin.delete(c.context.clone(), "deal", &created[..1]).await.unwrap().unwrap();
    assert!(matches!(gone[0], DeleteOutcome::Deleted));
    let id: u64 = created[0].parse().unwrap();
    assert!(c.app.sim().sim().hubspot().objects["deals"].records[&id].archived_at.is_some());
}

#[tokio::test]
async fn the_ten_second_limit_is_a_burst_rate_limit_with_its_retry_after() {
    let c = connected().await;
    c.app.sim().sim().update_knobs(|k| k.hubspot_ten_second_limit = 1).unwrap();
    let _ = c.pull(&pull_request("company", 5)).await;
    match c.pull(&pull_request("company", 5)).await {
        Err(AdapterError::RateLimited(info)) => assert_eq!(info.retry_after_ms, Some(10_000), "{info:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhooks_are_verified_with_the_host_held_secret_and_parsed() {
    let c = connected().await;
    let body = br#"[{"eventId":7,"subscriptionId":1,"portalId":62515,"appId":5,"occurredAt":1700000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM"},{"eventId":8,"subscriptionId":2,"portalId":62515,"appId":5,"occurredAt":1700000000001,"subscriptionType":"deal.deletion","attemptNumber":0,"objectId":9}]"#.to_vec();
    let url = "https://crm.example.com/api/v1/webhooks/hubspot";
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;
    let sign = |timestamp: &str, body: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"crm-sim-secret").unwrap();
        mac.update(b"POST");
        mac.update(url.as_bytes());
        mac.update(body);
        mac.update(timestamp.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let webhook = |timestamp: u64, signature: String, body: Vec<u8>| WebhookRequest {
        method: "POST".to_owned(),
        url: url.to_owned(),
        headers: vec![
            ("x-hubspot-signature-v3".to_owned(), signature),
            ("x-hubspot-request-timestamp".to_owned(), timestamp.to_string()),
        ],
        body,
        received_at_ms: now_ms,
    };
    let good = webhook(now_ms, sign(&now_ms.to_string(), &body), body.clone());
    let events = c.plugin.parse_webhook(c.context.clone(), &good).await.unwrap().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].entity.as_str(), events[0].crm_id.as_str()), ("contact", "123"));
    assert_eq!(events[0].kind, ChangeKind::Created);
    assert_eq!(events[0].account_id, "62515");
    assert_eq!(events[0].event_id.as_deref(), Some("7"));
    assert_eq!(events[1].kind, ChangeKind::Deleted);
    assert_eq!(events[0].occurred_at.as_deref(), Some("2023-11-14T22:13:20.000Z"));

    let mut tampered = body.clone();
    tampered[20] = b'9';
    let forged = webhook(now_ms, sign(&now_ms.to_string(), &body), tampered);
    let err = c.plugin.parse_webhook(c.context.clone(), &forged).await.unwrap().unwrap_err();
    assert!(matches!(err, AdapterError::Unauthorized(_)), "{err:?}");

    let old = now_ms - 6 * 60 * 1000;
    let stale = webhook(old, sign(&old.to_string(), &body), body.clone());
    let err = c.plugin.parse_webhook(c.context.clone(), &stale).await.unwrap().unwrap_err();
    assert!(matches!(err, AdapterError::Unauthorized(i) if i.message.contains("five minutes")));

    // Clock skew is bounded the other way too: a signed delivery dated ten minutes ahead.
    let ahead = now_ms + 10 * 60 * 1000;
    let future = webhook(ahead, sign(&ahead.to_string(), &body), body.clone());
    let err = c.plugin.parse_webhook(c.context.clone(), &future).await.unwrap().unwrap_err();
    assert!(matches!(err, AdapterError::Unauthorized(ref i) if i.message.contains("future")), "{err:?}");
    let near = now_ms + 60 * 1000;
    let skewed = webhook(near, sign(&near.to_string(), &body), body.clone());
    assert!(c.plugin.parse_webhook(c.context.clone(), &skewed).await.unwrap().is_ok(), "a minute of skew is fine");
}

/// The ids of live seeded contacts, lowest first.
fn contact_ids(c: &Connected, n: usize) -> Vec<u64> {
    c.app.sim().sim().hubspot().objects["contacts"].records.keys().copied().take(n).collect()
}

#[tokio::test]
async fn list_memberships_are_added_pulled_across_lists_and_removed() {
    let c = connected().await;
    let sim = c.app.sim().sim().clone();
    let contacts = contact_ids(&c, 6);
    // Lists by name: created once, then matched (case-insensitively); renamed by id.
    let lists =
        written_ids(&c.push("list", "name", &[record(&[("name", "Alpha")]), record(&[("name", "Beta")])]).await);
    let again = c.push("list", "name", &[record(&[("name", "ALPHA")])]).await;
    assert!(matches!(&again[0], PushOutcome::Updated(id) if *id == lists[0]), "{again:?}");

    // Alpha gets five contacts, Beta one; a contact HubSpot lacks fails alone, naming itself.
    let member = |list: &str, contact: &str| record(&[("listId", list), ("recordId", contact)]);
    let mut batch: Vec<PushRecord> = contacts[..5].iter().map(|id| member(&lists[0], &id.to_string())).collect();
    batch.push(member(&lists[1], &contacts[5].to_string()));
    batch.push(member(&lists[1], "999999"));
    let outcomes = c.push("list_membership", "recordId", &batch).await;
    assert!(outcomes[..6].iter().all(|o| matches!(o, PushOutcome::Created(_))), "{outcomes:?}");
    assert!(matches!(&outcomes[6], PushOutcome::Failed(AdapterError::Invalid(e)) if e.message.contains("999999")));
    let retried = c.push("list_membership", "recordId", &batch[..1]).await;
    assert!(matches!(&retried[0], PushOutcome::Updated(id) if *id == format!("{}:{}", lists[0], contacts[0])));

    // A full pull walks both lists in pages of two; every membership once.
    let pages = c.pull_all(pull_request("list_membership", 2)).await;
    let ids: Vec<String> = pages.iter().flat_map(|p| p.records.iter().map(|r| r.id.clone())).collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 6);
    // Incremental: only those joined since.
    let later = sim.clock.now() + chrono::Duration::seconds(5);
    sim.clock.set(later);
    c.push("list_membership", "recordId", &[member(&lists[1], &contacts[0].to_string())]).await;
    let since = PullRequest { modified_since: Some(later.to_rfc3339()), ..pull_request("list_membership", 50) };
    let recent: Vec<String> =
        c.pull_all(since).await.iter().flat_map(|p| p.records.iter().map(|r| r.id.clone())).collect();
    assert_eq!(recent, [format!("{}:{}", lists[1], contacts[0])]);
    sim.clock.release();

    // Moved to another contact: the old pair leaves; deleted: the contact leaves; by ids: gone.
    let moved = PushRecord {
        crm_id: Some(format!("{}:{}", lists[1], contacts[5])),
        fields: vec![text("recordId", &contacts[1].to_string())],
    };
    let outcome = c.push("list_membership", "recordId", &[moved]).await;
    assert!(matches!(&outcome[0], PushOutcome::Updated(id) if *id == format!("{}:{}", lists[1], contacts[1])));
    let beta: u64 = lists[1].parse().unwrap();
    let members = |list: u64| sim.hubspot().lists.lists[&list].members.keys().copied().collect::<Vec<_>>();
    assert_eq!(members(beta), [contacts[0], contacts[1]]);
    let first = format!("{}:{}", lists[0], contacts[0]);
    let gone =
        c.plugin.delete(c.context.clone(), "list_membership", std::slice::from_ref(&first)).await.unwrap().unwrap();
    assert!(matches!(gone[0], DeleteOutcome::Deleted));
    let page = c
        .pull(&PullRequest {
            ids: vec![first, format!("{}:{}", lists[0], contacts[1])],
            ..pull_request("list_membership", 10)
        })
        .await
        .unwrap();
    assert_eq!(page.records.iter().map(|r| r.deleted).collect::<Vec<_>>(), [true, false]);

    // A dynamic list refuses members with HubSpot's reason; a bad cursor is refused.
    let dynamic = sim
        .hubspot()
        .lists
        .create("Engaged", "contacts", crm_sim::hubspot::lists::Processing::Dynamic, sim.clock.now())
        .unwrap();
    let refused =
        c.push("list_membership", "recordId", &[member(&dynamic.to_string(), &contacts[0].to_string())]).await;
    assert!(matches!(&refused[0], PushOutcome::Failed(e) if format!("{e:?}").contains("DYNAMIC")), "{refused:?}");
    let bad = c.pull(&PullRequest { cursor: Some("m:{nope".to_owned()), ..pull_request("list_membership", 10) }).await;
    assert!(matches!(bad, Err(AdapterError::Invalid(_))), "{bad:?}");
}

#[tokio::test]
async fn an_email_engagement_is_associated_with_one_contact_and_moved_to_another() {
    let c = connected().await;
    let contacts = contact_ids(&c, 2);
    let email = |contact: &str| {
        record(&[
            ("crmhost_external_id", "mail-1"),
            ("hs_email_subject", "Hello"),
            ("hs_timestamp", "2027-02-01T09:00:00Z"),
            ("associations.contact", contact),
        ])
    };
    let sent = written_ids(&c.push("email", "crmhost_external_id", &[email(&contacts[0].to_string())]).await);
    let id: u64 = sent[0].parse().unwrap();
    let associated =
        || c.app.sim().sim().hubspot().associations.of("emails", id, "contacts").into_keys().collect::<Vec<_>>();
    assert_eq!(associated(), [contacts[0]]);
    // Matched on the key again, and moved: the old contact is no longer associated (no Primary
    // label to move, so one association at a time).
    let moved = c.push("email", "crmhost_external_id", &[email(&contacts[1].to_string())]).await;
    assert_eq!(written_ids(&moved), sent);
    assert_eq!(associated(), [contacts[1]]);
    // A contact HubSpot lacks fails the record, naming it; the association stays as it was.
    let refused = c.push("email", "crmhost_external_id", &[email("999999")]).await;
    assert!(matches!(&refused[0], PushOutcome::Failed(e) if format!("{e:?}").contains("999999")), "{refused:?}");
    assert_eq!(associated(), [contacts[1]]);
    let page = c
        .pull(&PullRequest {
            ids: sent.clone(),
            fields: vec!["associations.contact".to_owned()],
            ..pull_request("email", 10)
        })
        .await
        .unwrap();
    // The association read once, not also asked for as a property.
    let values: Vec<&Value> =
        page.records[0].fields.iter().filter(|f| f.name == "associations.contact").map(|f| &f.value).collect();
    assert_eq!(values, [&Value::Text(contacts[1].to_string())]);
}
