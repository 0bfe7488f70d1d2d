//! Calls through the real runtime: what crosses the boundary, bundled plugins' descriptions,
//! and load-time rejections.

use std::collections::BTreeMap;
use std::sync::Arc;

use crmhost::plugins::bindings::adapter::{PullRequest, PushOutcome, PushRecord, WebhookRequest};
use crmhost::plugins::bindings::{AdapterError, FieldValue, Value};
use crmhost::plugins::{CallContext, LoadError, PluginSource};
use crmhost_tests::{fixture_v1, load, loader, operator};

#[tokio::test]
async fn connection_facts_reach_the_plugin_and_operator_settings_fill_gaps() {
    let plugin =
        load(fixture_v1(), operator("[plugins.fixture.settings]\naccount = \"from-operator\"\nuser = \"op-user\""))
            .await;

    let facts = BTreeMap::from([("account".to_owned(), "acct-42".to_owned())]);
    let account = plugin.test_connection(CallContext::with_facts("ws-1/fixture", facts)).await.unwrap().unwrap();
    // The connection's own fact wins; the operator's fills what the connection lacks.
    assert_eq!(account.account_id, "acct-42");
    assert_eq!(account.user.as_deref(), Some("op-user"));
    assert_eq!(account.label, "fixture 1.0.0");
}

#[tokio::test]
async fn plugins_count_records_when_they_export_counting_and_older_ones_still_load_and_run() {
    use crmhost::plugins::bindings::counting::CountRequest;
    let request = |entity: &str, since: Option<&str>| CountRequest {
        entity: entity.to_owned(),
        modified_since: since.map(str::to_owned),
    };
    let current = load(fixture_v1(), operator("")).await;
    async fn count(plugin: &crmhost::plugins::LoadedPlugin, request: CountRequest) -> Option<u64> {
        plugin.count(CallContext::detached(), &request).await.unwrap().unwrap()
    }
    assert_eq!(count(&current, request("contact", None)).await, Some(42));
    assert_eq!(count(&current, request("contact", Some("2024-01-01T00:00:00Z"))).await, Some(7));
    assert_eq!(count(&current, request("deal", None)).await, None);

    // Built before `counting` existed: it loads, describes itself, pulls, and simply cannot count.
    let legacy = load(crmhost_tests::fixture_contract_0_1_0(), operator("")).await;
    assert_eq!(legacy.description().slug.as_str(), "fixture");
    let pull_request = || PullRequest {
        entity: "contact".to_owned(),
        cursor: Some("c1".to_owned()),
        modified_since: Some("2024-01-01T00:00:00Z".to_owned()),
        ids: vec![],
        fields: vec!["email".to_owned()],
        limit: 5,
    };
    let page = legacy.pull(CallContext::detached(), &pull_request()).await.unwrap().unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(count(&legacy, request("contact", None)).await, None);
    // Contract 0.1.0, adapted: every call's inputs and answers cross intact, and what 0.2 added
    // it does not declare.
    assert_eq!((legacy.contract_version(), current.contract_version()), ("0.1.0", "0.2.0"));
    let d = legacy.description();
    assert!(d.rate_limit_headers.is_empty() && d.logo_svg.is_none());
    assert_eq!(legacy.branding().category, crmhost::plugins::branding::Category::Crm);
    assert_eq!(
        page.records[0].fields,
        current.pull(CallContext::detached(), &pull_request()).await.unwrap().unwrap().records[0].fields
    );
    let facts = BTreeMap::from([("account".to_owned(), "acct-7".to_owned())]);
    let account = legacy.test_connection(CallContext::with_facts("w/fixture", facts)).await.unwrap().unwrap();
    assert_eq!((account.account_id.as_str(), account.label.as_str()), ("acct-7", "fixture 1.0.0"));
    let fields = legacy.list_fields(CallContext::detached(), "person").await.unwrap().unwrap();
    assert_eq!(fields[0].name, "person");
    let email = |v: &str| vec![FieldValue { name: "email".to_owned(), value: Value::Text(v.to_owned()) }];
    let records = [
        PushRecord { crm_id: None, fields: email("a@x.example") },
        PushRecord { crm_id: Some("c9".to_owned()), fields: email("b@x.example") },
        PushRecord { crm_id: None, fields: email("not-an-email") },
    ];
    let outcomes = legacy.push(CallContext::detached(), "contact", "email", &records).await.unwrap().unwrap();
    assert_eq!(outcomes[0], PushOutcome::Created("new-0".to_owned()));
    assert_eq!(outcomes[1], PushOutcome::Updated("c9".to_owned()));
    assert!(
        matches!(&outcomes[2], PushOutcome::Failed(AdapterError::Invalid(info)) if info.field.as_deref() == Some("email"))
    );

    // Files: the legacy plugin has no `files` export (no call is made); the SDK's default answers
    // "not supported"; either way the API says `not_supported`.
    let listed = legacy.list_files(CallContext::detached(), "contact", "1").await.unwrap().unwrap();
    assert!(listed.is_none());
    let listed = current.list_files(CallContext::detached(), "contact", "1").await.unwrap();
    assert!(matches!(listed, Err(crmhost::plugins::bindings::AdapterError::NotSupported(_))), "{listed:?}");
}

#[tokio::test]
async fn typed_values_and_pull_parameters_round_trip() {
    let plugin = load(fixture_v1(), operator("")).await;
    let request = PullRequest {
        entity: "contact".to_owned(),
        cursor: Some("c1".to_owned()),
        modified_since: Some("2024-01-01T00:00:00Z".to_owned()),
        ids: vec![],
        fields: vec!["email".to_owned(), "name".to_owned()],
        limit: 200,
    };
    let page = plugin.pull(CallContext::detached(), &request).await.unwrap().unwrap();
    let fields: BTreeMap<String, Value> =
        page.records[0].fields.iter().map(|f| (f.name.clone(), f.value.clone())).collect();
    assert_eq!(fields["entity"], Value::Text("contact".to_owned()));
    assert_eq!(fields["cursor"], Value::Text("c1".to_owned()));
    assert_eq!(fields["limit"], Value::Number(200.0));
    assert_eq!(fields["fields"], Value::Text("email,name".to_owned()));
    assert_eq!(fields["since"], Value::DateTime("2024-01-01T00:00:00Z".to_owned()));
    assert_eq!(fields["flag"], Value::Boolean(true));
    assert_eq!(page.next_cursor.as_deref(), Some("next"));
}

#[tokio::test]
async fn push_returns_one_outcome_per_record_in_order() {
    let plugin = load(fixture_v1(), operator("")).await;
    let record = |id: Option<&str>, email: &str| PushRecord {
        crm_id: id.map(str::to_owned),
        fields: vec![FieldValue { name: "email".to_owned(), value: Value::Text(email.to_owned()) }],
    };
    let records = [record(None, "a@x.com"), record(Some("9"), "b@x.com"), record(None, "not-an-email")];
    let outcomes = plugin.push(CallContext::detached(), "contact", "email", &records).await.unwrap().unwrap();
    assert_eq!(outcomes.len(), 3);
    assert!(matches!(&outcomes[0], PushOutcome::Created(id) if id == "new-0"));
    assert!(matches!(&outcomes[1], PushOutcome::Updated(id) if id == "9"));
    assert!(
        matches!(&outcomes[2], PushOutcome::Failed(AdapterError::Invalid(info)) if info.field.as_deref() == Some("email"))
    );
}

#[tokio::test]
async fn host_held_secrets_sign_without_entering_the_plugin() {
    let with_secret = load(fixture_v1(), operator("[plugins.fixture.secrets]\nclient_secret = \"s3cret\"")).await;
    let request = WebhookRequest {
        method: "POST".to_owned(),
        url: "https://example.com/hook".to_owned(),
        headers: vec![],
        body: b"payload".to_vec(),
        received_at_ms: 0,
    };
    let events = with_secret.parse_webhook(CallContext::detached(), &request).await.unwrap().unwrap();
    // HMAC-SHA256("s3cret", "payload"), computed independently.
    use hmac_check::hmac_hex;
    assert_eq!(events[0].event_id.as_deref(), Some(hmac_hex(b"s3cret", b"payload").as_str()));

    let without = load(fixture_v1(), operator("")).await;
    let err = without.parse_webhook(CallContext::detached(), &request).await.unwrap().unwrap_err();
    assert!(matches!(err, AdapterError::Unauthorized(ref i) if i.message.contains("client_secret")), "{err:?}");
}

mod hmac_check {
    use hmac::{Hmac, Mac};
    pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }
}

#[tokio::test]
async fn bundled_salesforce_describes_its_entities_auth_and_limits() {
    let bundled = crmhost::plugins::bundled();
    let salesforce = bundled.iter().find(|b| b.name == "crmhost-plugin-salesforce").expect("bundled");
    let plugin = loader(Default::default()).load(Arc::from(salesforce.bytes), PluginSource::Bundled).await.unwrap();
    let d = plugin.description();
    assert_eq!(d.slug.as_str(), "salesforce");
    let entities: Vec<&str> = d.entities.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(entities, ["contact", "lead", "account", "opportunity", "campaign", "campaign_member", "task"]);
    let contact = &d.entities[0];
    assert_eq!((contact.crm_name.as_str(), contact.match_keys[0].as_str()), ("Contact", "Email"));
    let Some(oauth) = d.auth.oauth2() else { panic!("salesforce uses OAuth2") };
    assert_eq!(oauth.authorize_url, "https://login.salesforce.com/services/oauth2/authorize");
    assert_eq!(oauth.token_url, "https://login.salesforce.com/services/oauth2/token");
    assert_eq!(oauth.revoke_url.as_deref(), Some("https://login.salesforce.com/services/oauth2/revoke"));
    assert!(oauth.pkce && oauth.scopes.contains(&"refresh_token".to_owned()));
    assert!(oauth.token_response_facts.contains(&"instance_url".to_owned()));
    assert!(d.allowed_hosts.contains(&"*.salesforce.com".to_owned()));
    assert!(d.rate_limits.iter().any(|r| r.window_ms == 86_400_000));
}

#[tokio::test]
async fn bundled_hubspot_describes_its_entities_auth_and_limits() {
    let bundled = crmhost::plugins::bundled();
    let hubspot = bundled.iter().find(|b| b.name == "crmhost-plugin-hubspot").expect("bundled");
    let plugin = loader(Default::default()).load(Arc::from(hubspot.bytes), PluginSource::Bundled).await.unwrap();
    let d = plugin.description();
    assert_eq!(d.slug.as_str(), "hubspot");
    let entities: Vec<(&str, &str)> = d.entities.iter().map(|e| (e.name.as_str(), e.crm_name.as_str())).collect();
    assert_eq!(
        entities,
        [
            ("contact", "contacts"),
            ("company", "companies"),
            ("deal", "deals"),
            ("email", "emails"),
            ("list", "lists"),
            ("list_membership", "list memberships")
        ]
    );
    assert_eq!(d.entities[0].match_keys, ["email"]);
    assert_eq!(d.entities[3].match_keys, ["crmhost_external_id"], "emails match on the portal's unique property");
    let Some(oauth) = d.auth.oauth2() else { panic!("hubspot uses OAuth2") };
    assert_eq!(oauth.authorize_url, "https://app.hubspot.com/oauth/authorize");
    assert!(oauth.scopes.iter().all(|s| s.starts_with("crm.objects.")));
    // Lists are optional: an app without the lists scopes still connects.
    assert!(oauth.optional_scopes.iter().any(|s| s == "crm.lists.write"), "{:?}", oauth.optional_scopes);
    assert!(d.capabilities.webhooks);
    // The API, and the file CDN the Files API's signed URLs point at.
    assert_eq!(d.allowed_hosts[0], "api.hubapi.com");
    assert!(d.allowed_hosts[1..].iter().all(|h| h.starts_with("*.hubspotusercontent")), "{:?}", d.allowed_hosts);
    assert!(d.rate_limits.iter().any(|r| r.requests == 100 && r.window_ms == 10_000));
    // Without a connection the plugin cannot reach HubSpot: test-connection fails, it does not trap.
    let err = plugin.test_connection(CallContext::detached()).await.unwrap().unwrap_err();
    assert!(!matches!(err, AdapterError::NotSupported(_)), "{err:?}");
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_rejected_as_such() {
    let err = loader(Default::default())
        .load(Arc::from(&b"definitely not wasm"[..]), PluginSource::Bundled)
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
}

#[tokio::test]
async fn a_component_without_the_adapter_export_is_rejected_as_incompatible() {
    let empty = wat::parse_str("(component)").unwrap();
    let err = loader(Default::default()).load(Arc::from(empty), PluginSource::Bundled).await.unwrap_err();
    assert!(matches!(err, LoadError::Incompatible { .. }), "{err}");
    assert!(err.to_string().contains("crmhost:adapter@0.2.0"), "{err}");
}

#[tokio::test]
async fn a_component_importing_wasi_http_is_rejected_naming_the_import() {
    let wat = r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#;
    let bytes = wat::parse_str(wat).unwrap();
    let err = loader(Default::default()).load(Arc::from(bytes), PluginSource::Bundled).await.unwrap_err();
    assert!(matches!(err, LoadError::ForbiddenImport(ref name) if name.starts_with("wasi:http/")), "{err}");
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_and_a_damaged_cache_entry_is_recompiled() {
    use crmhost::plugins::cache::{CacheOutcome, ComponentCache};
    use crmhost::plugins::sha256_hex;

    let dir = tempfile::tempdir().unwrap();
    let engine = loader(Default::default()).engine().clone();
    let cache = ComponentCache::new(Some(dir.path().to_path_buf()));
    let bytes = fixture_v1();
    let sha = sha256_hex(&bytes);

    let (_, first) = cache.load_or_compile(engine.engine(), &bytes, &sha).unwrap();
    let (_, second) = cache.load_or_compile(engine.engine(), &bytes, &sha).unwrap();
    assert_eq!((first, second), (CacheOutcome::Compiled, CacheOutcome::Hit));

    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].file_name().unwrap().to_str().unwrap().starts_with(&sha));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&entries[0]).unwrap().permissions().mode() & 0o777, 0o600);
    }

    std::fs::write(&entries[0], b"damaged").unwrap();
    let (_, third) = cache.load_or_compile(engine.engine(), &bytes, &sha).unwrap();
    assert_eq!(third, CacheOutcome::Compiled);
    let (_, fourth) = cache.load_or_compile(engine.engine(), &bytes, &sha).unwrap();
    assert_eq!(fourth, CacheOutcome::Hit);
}

#[tokio::test]
async fn calls_work_on_the_on_demand_allocator_too() {
    use crmhost::plugins::engine::Allocator;
    use crmhost::plugins::{EngineSettings, PluginEngine, PluginLoader};

    let engine = PluginEngine::new(EngineSettings { pooling: false, ..EngineSettings::default() }).unwrap();
    assert_eq!(engine.allocator(), Allocator::OnDemand);
    let loader =
        PluginLoader::new(engine, crmhost::plugins::cache::ComponentCache::new(None), Arc::new(Default::default()));
    let plugin = loader.load(Arc::from(fixture_v1()), PluginSource::Bundled).await.unwrap();
    let account = plugin.test_connection(CallContext::detached()).await.unwrap().unwrap();
    assert_eq!(account.label, "fixture 1.0.0");
}

#[tokio::test]
async fn the_conformance_checks_pass_for_the_bundled_plugins_and_stop_at_a_file_that_does_not_load() {
    use crmhost::plugins::check::{CheckOutcome, check_component};

    for bundled in crmhost::plugins::bundled() {
        let report = check_component(bundled.bytes.to_vec(), bundled.name).await;
        let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
        assert!(report.passed(), "{}: {lines:#?}", bundled.name);
        for operation in ["pull", "push", "delete"] {
            let line = format!("pass  capability `{operation}`: claimed and implemented");
            assert!(lines.contains(&line), "{}: {lines:#?}", bundled.name);
        }
    }
    let hubspot = crmhost::plugins::bundled().into_iter().find(|b| b.name == "crmhost-plugin-hubspot").unwrap();
    let report = check_component(hubspot.bytes.to_vec(), hubspot.name).await;
    let webhook = report.lines.iter().find(|l| l.name == "unverified webhook is unauthorized").unwrap();
    assert_eq!(webhook.outcome, CheckOutcome::Pass("refused as unauthorized".to_owned()));

    let report = check_component(b"not a component".to_vec(), "broken.wasm").await;
    assert!(!report.passed());
    assert_eq!(report.lines.len(), 1, "nothing else is checked once loading fails: {:?}", report.lines);
    assert!(
        matches!(&report.lines[0].outcome, CheckOutcome::Fail(why) if why.contains("not a valid WebAssembly component"))
    );
}

#[tokio::test]
async fn the_bundled_plugins_pass_the_checks_against_their_emulators_and_a_plugin_fails_against_another_crm() {
    use crmhost::plugins::check::{CheckOutcome, check_component_against};

    let sim = crm_sim::start(crm_sim::SimOptions::all_on_free_ports()).await.unwrap();
    let bundled = crmhost::plugins::bundled();
    let plugin = |name: &str| bundled.iter().find(|b| b.name == name).unwrap().bytes.to_vec();
    let against = [
        ("crmhost-plugin-salesforce", sim.salesforce_url().unwrap()),
        ("crmhost-plugin-hubspot", sim.hubspot_url().unwrap()),
    ];
    for (name, url) in &against {
        let report = check_component_against(plugin(name), name, Some(url)).await;
        crmhost_tests::assert_checks_passed(&report, &crmhost_tests::CHECKS_AGAINST_A_CRM, name);
        // Salesforce's job read is checked against the paged read; HubSpot declines (the SDK's
        // default answer), which the check accepts.
        let bulk = report.lines.iter().find(|l| l.name == "bulk pull `contact` equals the paged pull");
        match *name {
            "crmhost-plugin-salesforce" => {
                let line = bulk.expect("a bulk check");
                assert!(matches!(&line.outcome, CheckOutcome::Pass(how) if how.contains("records in")), "{line}");
            }
            _ => {
                let line = bulk.expect("a bulk check");
                assert!(matches!(&line.outcome, CheckOutcome::Skip(why) if why.contains("declined")), "{line}");
            }
        }
    }
    // The knobs the error checks turned are back, and the records the checks pushed are gone.
    assert_eq!(sim.sim().knobs(), crm_sim::knobs::Knobs::default());
    let leftovers = sim.sim().hubspot().objects["contacts"]
        .records
        .values()
        .filter(|r| r.archived_at.is_none() && r.properties.get("email").is_some_and(|e| e.starts_with("check-")))
        .count();
    assert_eq!(leftovers, 0);

    // The HubSpot plugin pointed at the Pipedrive emulator connects (every emulator runs the same
    // OAuth client) but cannot talk to it: the checks say where it breaks.
    let url = sim.pipedrive_url().unwrap();
    let report = check_component_against(plugin("crmhost-plugin-hubspot"), "hubspot.wasm", Some(&url)).await;
    assert!(!report.passed());
    let tested = report.lines.iter().find(|l| l.name == "test-connection").unwrap();
    assert!(matches!(tested.outcome, CheckOutcome::Fail(_)), "{tested}");

    // A URL where no emulator answers is refused at once.
    let report =
        check_component_against(plugin("crmhost-plugin-hubspot"), "hubspot.wasm", Some("http://127.0.0.1:9")).await;
    let emulator = report.lines.iter().find(|l| l.name == "emulator").unwrap();
    assert!(matches!(&emulator.outcome, CheckOutcome::Fail(why) if why.contains("did not answer")), "{emulator}");
    assert_eq!(report.lines.last().unwrap().name, "emulator", "nothing runs after it");
}
