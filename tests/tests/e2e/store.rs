//! The store suite, run against SQLite and PostgreSQL alike.

use crmhost::domain::{PluginSlug, WorkspaceId};
use crmhost::store::{AuditAction, AuditTarget, IntegrationStatus, NewAuditEntry, StoreError};
use crmhost_tests::{Backend, TestDb};
use serde_json::json;

/// Generates one test per backend from an async body taking a migrated store.
macro_rules! on_both_backends {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn run($store: crmhost::store::Store) $body

            #[tokio::test]
            async fn sqlite() {
                let db = TestDb::new(Backend::Sqlite).await.expect("sqlite is always available");
                run(db.store().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = TestDb::new(Backend::Postgres).await else { return };
                run(db.store().await).await;
            }
        }
    };
}

fn ws(s: &str) -> WorkspaceId {
    WorkspaceId::parse(s).unwrap()
}

fn slug(s: &str) -> PluginSlug {
    PluginSlug::parse(s).unwrap()
}

on_both_backends!(migrations_apply_twice_without_error, |store| {
    store.migrate().await.expect("a second migrate is a no-op");
    store.ping().await.unwrap();
});

on_both_backends!(audit_entries_list_newest_first_per_workspace, |store| {
    let entries = [
        (Some("w1"), AuditAction::SyncStarted),
        (Some("w2"), AuditAction::SyncFinished),
        (Some("w1"), AuditAction::IntegrationPaused),
        (None, AuditAction::PluginReload),
    ];
    for (workspace, action) in entries {
        store
            .append_audit(&NewAuditEntry {
                workspace_id: workspace.map(ws),
                actor: "u1".to_owned(),
                action,
                target: AuditTarget::Integration(slug("hubspot")),
                details: json!({ "n": 1, "nested": { "ok": true } }),
            })
            .await
            .unwrap();
    }
    let w1 = store.list_audit(Some(&ws("w1")), 10).await.unwrap();
    let actions: Vec<&str> = w1.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["integration.paused", "sync.started"]);
    assert_eq!(w1[0].target, "integration:hubspot");
    assert_eq!(w1[0].details.0, json!({ "n": 1, "nested": { "ok": true } }));
    assert!(w1[0].id > w1[1].id && w1[0].at >= w1[1].at);
    let operator = store.list_audit(None, 10).await.unwrap();
    assert_eq!(operator.len(), 1);
    assert_eq!(operator[0].action, "plugin.reload");
    assert_eq!(store.list_audit(Some(&ws("w1")), 1).await.unwrap().len(), 1);
});

on_both_backends!(integrations_upsert_per_workspace_and_slug, |store| {
    let first = store
        .upsert_integration(
            &ws("w1"),
            &slug("hubspot"),
            IntegrationStatus::Connected,
            &json!({ "hub_id": "62515" }),
            Some("u1"),
        )
        .await
        .unwrap();
    assert_eq!(first.status, IntegrationStatus::Connected);
    assert_eq!(first.metadata, json!({ "hub_id": "62515" }));

    // The same (workspace, slug) updates in place: same id, new metadata.
    let second = store
        .upsert_integration(
            &ws("w1"),
            &slug("hubspot"),
            IntegrationStatus::Connected,
            &json!({ "hub_id": "99" }),
            Some("u2"),
        )
        .await
        .unwrap();
    assert_eq!(second.integration_id, first.integration_id);
    assert_eq!(second.connected_by.as_deref(), Some("u2"));
    assert!(second.updated_at >= first.updated_at);

    store
        .upsert_integration(&ws("w1"), &slug("salesforce"), IntegrationStatus::Connected, &json!({}), None)
        .await
        .unwrap();
    store
        .upsert_integration(&ws("w2"), &slug("hubspot"), IntegrationStatus::Connected, &json!({}), None)
        .await
        .unwrap();
    let listed: Vec<String> =
        store.list_integrations(&ws("w1")).await.unwrap().into_iter().map(|i| i.integration_slug).collect();
    assert_eq!(listed, ["hubspot", "salesforce"]);

    let fetched = store.get_integration(&ws("w1"), &slug("hubspot")).await.unwrap();
    assert_eq!(fetched.metadata, json!({ "hub_id": "99" }));
    assert_eq!(fetched.connected_at.map(|t| t.timestamp_micros()), second.connected_at.map(|t| t.timestamp_micros()));
});

on_both_backends!(integration_status_changes_and_missing_rows_are_not_found, |store| {
    store
        .upsert_integration(&ws("w1"), &slug("hubspot"), IntegrationStatus::Connected, &json!({}), None)
        .await
        .unwrap();
    store.set_integration_status(&ws("w1"), &slug("hubspot"), IntegrationStatus::Paused).await.unwrap();
    assert_eq!(store.get_integration(&ws("w1"), &slug("hubspot")).await.unwrap().status, IntegrationStatus::Paused);

    let missing = store.set_integration_status(&ws("w9"), &slug("hubspot"), IntegrationStatus::Paused).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert!(matches!(store.get_integration(&ws("w9"), &slug("hubspot")).await, Err(StoreError::NotFound)));
});

#[tokio::test]
async fn an_unsupported_database_url_is_a_clear_error() {
    let err = crmhost::store::Store::connect("mysql://localhost/x").await.unwrap_err();
    assert!(err.to_string().contains("postgres://") && err.to_string().contains("mysql"), "{err}");
}

fn pending(state_hash: &str, slug_text: &str, expires_in: chrono::Duration) -> crmhost::store::NewOAuthState {
    crmhost::store::NewOAuthState {
        state_hash: state_hash.to_owned(),
        workspace: ws("w1"),
        user_id: "u1".to_owned(),
        slug: slug(slug_text),
        verifier: Some(crmhost::vault::Sealed { ciphertext: vec![1, 2, 3], nonce: vec![0; 12], key_version: -42 }),
        return_url: Some("https://app.example/settings".to_owned()),
        expires_at: chrono::Utc::now() + expires_in,
    }
}

on_both_backends!(oauth_states_are_single_use_expiring_and_bound_to_their_integration, |store| {
    use crmhost::store::StateRejection;
    let now = chrono::Utc::now();
    store.insert_oauth_state(&pending("h-ok", "hubspot", chrono::Duration::minutes(10))).await.unwrap();
    let consumed = store.consume_oauth_state("h-ok", &slug("hubspot"), now).await.unwrap().unwrap();
    assert_eq!((consumed.workspace_id.as_str(), consumed.user_id.as_str()), ("w1", "u1"));
    let verifier = consumed.verifier.unwrap();
    assert_eq!((verifier.ciphertext, verifier.key_version), (vec![1, 2, 3], -42));
    assert_eq!(consumed.return_url.as_deref(), Some("https://app.example/settings"));

    let replay = store.consume_oauth_state("h-ok", &slug("hubspot"), now).await.unwrap();
    assert_eq!(replay.unwrap_err(), StateRejection::Replayed);
    let unknown = store.consume_oauth_state("h-never", &slug("hubspot"), now).await.unwrap();
    assert_eq!(unknown.unwrap_err(), StateRejection::Unknown);

    store.insert_oauth_state(&pending("h-old", "hubspot", chrono::Duration::minutes(-1))).await.unwrap();
    assert_eq!(
        store.consume_oauth_state("h-old", &slug("hubspot"), now).await.unwrap().unwrap_err(),
        StateRejection::Expired
    );

    store.insert_oauth_state(&pending("h-sf", "salesforce", chrono::Duration::minutes(10))).await.unwrap();
    assert_eq!(
        store.consume_oauth_state("h-sf", &slug("hubspot"), now).await.unwrap().unwrap_err(),
        StateRejection::WrongIntegration
    );
    // A refused state is used up too.
    assert_eq!(
        store.consume_oauth_state("h-sf", &slug("salesforce"), now).await.unwrap().unwrap_err(),
        StateRejection::Replayed
    );

    store.insert_oauth_state(&pending("h-dup", "hubspot", chrono::Duration::minutes(10))).await.unwrap();
    assert!(matches!(
        store.insert_oauth_state(&pending("h-dup", "hubspot", chrono::Duration::minutes(10))).await,
        Err(StoreError::Conflict { .. })
    ));

    assert_eq!(store.purge_expired_oauth_states(now).await.unwrap(), 1, "only the expired one");
});

on_both_backends!(concurrent_callbacks_with_one_state_succeed_once, |store| {
    store.insert_oauth_state(&pending("h-race", "hubspot", chrono::Duration::minutes(10))).await.unwrap();
    let now = chrono::Utc::now();
    let attempts = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.consume_oauth_state("h-race", &slug("hubspot"), now).await.unwrap().is_ok() })
    });
    let mut successes = 0;
    for attempt in attempts {
        successes += usize::from(attempt.await.unwrap());
    }
    assert_eq!(successes, 1);
});

/// Migration 0006 rebuilds SQLite's run table (to allow the `change` trigger): a database made by
/// the earlier migrations keeps its runs and their items, and deleting a run still deletes its
/// items (the foreign key follows the rebuilt table).
#[tokio::test]
async fn the_run_table_rebuild_keeps_runs_and_their_items() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upgrade.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    let mut earlier = sqlx::migrate::Migrator::new(migrations.as_path()).await.unwrap();
    earlier.migrations = earlier.migrations.iter().filter(|m| m.version < 6).cloned().collect::<Vec<_>>().into();
    {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("pragma foreign_keys = on").execute(&mut conn).await.unwrap();
        earlier.run(&mut conn).await.unwrap();
        sqlx::query(
            "insert into sync_history (run_id, workspace_id, integration_slug, direction, entity, trigger, status, \
             started_at, params, timeline) values ('r1', 'w1', 'salesforce', 'push', 'contact', 'webhook', \
             'completed', '2026-12-01T00:00:00Z', '{\"entity\":\"contact\"}', '[]')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "insert into sync_run_items (run_id, item_index, entity, record_id, crm_id, outcome) \
             values ('r1', 0, 'contact', 'c1', '003A', 'created'), ('r1', 1, 'contact', 'c2', '003B', 'updated')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }

    let store = crmhost::store::Store::open_sqlite_file(&path).await.unwrap();
    store.migrate().await.unwrap();
    drop(store);
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("pragma foreign_keys = on").execute(&mut conn).await.unwrap();
    let (trigger, params): (String, String) =
        sqlx::query_as("select trigger, params from sync_history where run_id = 'r1'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((trigger.as_str(), params.as_str()), ("webhook", "{\"entity\":\"contact\"}"));
    let items: i64 = sqlx::query_scalar("select count(*) from sync_run_items").fetch_one(&mut conn).await.unwrap();
    assert_eq!(items, 2, "the run's items came along");
    sqlx::query(
        "insert into sync_history (run_id, workspace_id, integration_slug, direction, trigger, status, started_at) \
         values ('r2', 'w1', 'salesforce', 'push', 'change', 'running', '2026-12-02T00:00:00Z')",
    )
    .execute(&mut conn)
    .await
    .expect("the new trigger is allowed");
    let refused = sqlx::query(
        "insert into sync_history (run_id, workspace_id, integration_slug, direction, trigger, status, started_at) \
         values ('r3', 'w1', 'salesforce', 'push', 'cron', 'running', '2026-12-02T00:00:00Z')",
    )
    .execute(&mut conn)
    .await;
    assert!(refused.is_err(), "the check still refuses unknown triggers");
    sqlx::query("delete from sync_history where run_id = 'r1'").execute(&mut conn).await.unwrap();
    let items: i64 = sqlx::query_scalar("select count(*) from sync_run_items").fetch_one(&mut conn).await.unwrap();
    assert_eq!(items, 0, "deleting a run still deletes its items");
}
