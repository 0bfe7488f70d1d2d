//! A crmhost whose workspace `w1` is connected to an empty emulator, driven through the sync
//! API ([`SyncHarness`]), and sample contacts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::*;
use crm_sim::pipedrive::Kind;

/// Which emulated CRM a sync test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crm {
    /// The Salesforce emulator.
    Salesforce,
    /// The HubSpot emulator.
    Hubspot,
    /// The Pipedrive emulator, with the Python plugin (`plugins/pipedrive`) built by the tests and
    /// installed from the plugins directory like any third party's.
    Pipedrive,
}

impl Crm {
    /// The plugin slug.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Salesforce => "salesforce",
            Self::Hubspot => "hubspot",
            Self::Pipedrive => "pipedrive",
        }
    }

    /// How finely the CRM times changes: an edit made sooner after another may carry the same
    /// modification time (Pipedrive's are to the second).
    pub fn timestamp_resolution(self) -> Duration {
        match self {
            Self::Salesforce | Self::Hubspot => Duration::from_millis(1),
            Self::Pipedrive => Duration::from_secs(1),
        }
    }

    /// The CRM's name of a contact field, by the default mapping's workspace field; panics when
    /// the default mapping has none.
    pub fn contact_field(self, app_field: &str) -> &'static str {
        self.mapped_contact_field(app_field)
            .unwrap_or_else(|| panic!("no contact field `{app_field}` in {self:?}'s default mapping"))
    }

    /// The CRM's name of a contact field, by the default mapping's workspace field, if mapped.
    pub fn mapped_contact_field(self, app_field: &str) -> Option<&'static str> {
        Some(match (self, app_field) {
            (Self::Salesforce, "email") => "Email",
            (Self::Salesforce, "first_name") => "FirstName",
            (Self::Salesforce, "last_name") => "LastName",
            (Self::Salesforce, "phone") => "Phone",
            (Self::Salesforce, "title") => "Title",
            (Self::Hubspot, "email") => "email",
            (Self::Hubspot, "first_name") => "firstname",
            (Self::Hubspot, "last_name") => "lastname",
            (Self::Hubspot, "phone") => "phone",
            (Self::Hubspot, "title") => "jobtitle",
            // The plugin flattens a person's primary email and phone into `email` and `phone`.
            (Self::Pipedrive, "email") => "email",
            (Self::Pipedrive, "first_name") => "first_name",
            (Self::Pipedrive, "last_name") => "last_name",
            (Self::Pipedrive, "phone") => "phone",
            _ => return None,
        })
    }
}

/// A crmhost whose workspace `w1` is connected to one CRM, driven through the API (the CRM may
/// run in this process or another).
pub struct ConnectedWorkspace {
    /// The app.
    pub app: TestApp,
    /// Which CRM.
    pub crm: Crm,
}

impl ConnectedWorkspace {
    /// Connects `w1` of `app` to `crm` through the OAuth flow.
    pub async fn connect(app: TestApp, crm: Crm) -> Self {
        let connected = app.connect("w1", crm.slug()).await;
        assert_eq!(connected.status(), reqwest::StatusCode::OK, "connect {}", crm.slug());
        Self { app, crm }
    }

    /// A request to `/api/v1/workspaces/w1{path}` as an admin of `w1`.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app.as_role(method, &format!("/api/v1/workspaces/w1{path}"), "w1", crmhost::auth::Role::Admin)
    }

    /// `/integrations/<slug>{rest}`.
    pub fn integration_path(&self, rest: &str) -> String {
        format!("/integrations/{}{rest}", self.crm.slug())
    }

    /// Sends a request and returns its status and JSON body.
    pub async fn send(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, serde_json::Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Upserts workspace records of `entity`; panics unless every one was written.
    pub async fn put_records(&self, entity: &str, records: Vec<serde_json::Value>) -> serde_json::Value {
        let (status, body) = Self::send(
            self.api(reqwest::Method::PUT, &format!("/records/{entity}"))
                .json(&serde_json::json!({ "records": records })),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        assert_eq!(body["failed"], 0, "{body}");
        body
    }

    /// Runs `push` / `pull` / `sync` with `?wait=true` and returns the finished run.
    pub async fn run(&self, operation: &str, body: serde_json::Value) -> serde_json::Value {
        let path = self.integration_path(&format!("/{operation}?wait=true"));
        let (status, run) = Self::send(self.api(reqwest::Method::POST, &path).json(&body)).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{operation}: {run}");
        assert_ne!(run["status"], "running", "the run should have ended: {run}");
        run
    }

    /// Starts `push` / `pull` / `sync` and polls the run until it ends (for runs longer than
    /// `?wait=true` waits); returns the finished run.
    pub async fn run_to_end(&self, operation: &str, body: serde_json::Value) -> serde_json::Value {
        let path = self.integration_path(&format!("/{operation}"));
        let (status, started) = Self::send(self.api(reqwest::Method::POST, &path).json(&body)).await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{operation}: {started}");
        let run_path = self
            .integration_path(&format!("/sync-runs/{}?items_limit=1", started["run_id"].as_str().unwrap_or_default()));
        loop {
            let (_, run) = Self::send(self.api(reqwest::Method::GET, &run_path)).await;
            if run["status"] != "running" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Changes the integration's settings; returns the status and body.
    pub async fn patch_settings(&self, patch: serde_json::Value) -> (reqwest::StatusCode, serde_json::Value) {
        Self::send(self.api(reqwest::Method::PATCH, &self.integration_path("/settings")).json(&patch)).await
    }

    /// The integration as the workspace's integrations list shows it.
    pub async fn listed_integration(&self) -> serde_json::Value {
        let (status, body) = Self::send(self.api(reqwest::Method::GET, "/integrations")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body["integrations"]
            .as_array()
            .and_then(|list| list.iter().find(|i| i["slug"] == self.crm.slug()).cloned())
            .expect("the integration is listed")
    }

    /// The runs in the sync history matching `query` (e.g. `trigger=schedule`… filters are the
    /// history's own), newest first, up to 200.
    pub async fn history(&self, query: &str) -> Vec<serde_json::Value> {
        let path = self.integration_path(&format!("/sync-history?limit=200&{query}"));
        let (status, body) = Self::send(self.api(reqwest::Method::GET, &path)).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body["runs"].as_array().cloned().unwrap_or_default()
    }

    /// Finished runs started by `trigger`, newest first.
    pub async fn finished_runs(&self, trigger: &str) -> Vec<serde_json::Value> {
        self.history(&format!("trigger={trigger}")).await.into_iter().filter(|r| r["status"] != "running").collect()
    }

    /// Waits for the scheduler to complete `passes` more passes (see [`TestApp::scheduler_passes`]).
    pub async fn scheduler_passes(&self, passes: u64) {
        self.app.scheduler_passes(passes).await;
    }

    /// Waits until no run of the integration is running.
    pub async fn wait_until_idle(&self) {
        let idle =
            crate::eventually(Duration::from_secs(60), || async { self.history("status=running").await.is_empty() });
        assert!(idle.await, "a run kept running");
    }

    /// Waits until every webhook change accepted so far has its pull run recorded.
    pub async fn webhooks_settled(&self) {
        let sync = &self.app.state.sync;
        assert!(
            crate::eventually(Duration::from_secs(30), || async { sync.webhooks_settled() }).await,
            "webhook changes stayed queued"
        );
    }

    /// Waits up to `timeout` for `count` finished runs of `trigger`; returns them, newest first.
    pub async fn wait_for_runs(&self, trigger: &str, count: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let runs = self.finished_runs(trigger).await;
            if runs.len() >= count || Instant::now() >= deadline {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A run with its per-record outcomes.
    pub async fn run_detail(&self, run_id: &str) -> serde_json::Value {
        let (status, body) =
            Self::send(self.api(reqwest::Method::GET, &self.integration_path(&format!("/sync-runs/{run_id}")))).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body
    }

    /// A workspace record, with its sync status.
    pub async fn record(&self, entity: &str, id: &str) -> serde_json::Value {
        let (status, body) = Self::send(self.api(reqwest::Method::GET, &format!("/records/{entity}/{id}"))).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body
    }

    /// Every live workspace record of `entity`, following the pages.
    pub async fn all_records(&self, entity: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut path = format!("/records/{entity}?limit=200");
        loop {
            let (status, body) = Self::send(self.api(reqwest::Method::GET, &path)).await;
            assert_eq!(status, reqwest::StatusCode::OK, "{body}");
            out.extend(body["records"].as_array().cloned().unwrap_or_default());
            match body["next_after"].as_str() {
                Some(after) => path = format!("/records/{entity}?limit=200&after={after}"),
                None => return out,
            }
        }
    }
}

/// A crmhost whose workspace `w1` is connected to one emulated CRM that starts empty; the API
/// helpers of [`ConnectedWorkspace`] and the emulator's state in reach.
pub struct SyncHarness {
    /// The app and its connected workspace.
    pub workspace: ConnectedWorkspace,
    /// The emulators.
    pub sim: Arc<crm_sim::SimHandle>,
}

impl std::ops::Deref for SyncHarness {
    type Target = ConnectedWorkspace;

    fn deref(&self) -> &ConnectedWorkspace {
        &self.workspace
    }
}

impl std::ops::DerefMut for SyncHarness {
    fn deref_mut(&mut self) -> &mut ConnectedWorkspace {
        &mut self.workspace
    }
}

impl SyncHarness {
    /// Starts emulators (with `knobs`) and an app on `backend`, and connects `w1`; `None` when
    /// the backend is unavailable.
    pub async fn start(backend: Backend, crm: Crm, knobs: crm_sim::knobs::Knobs) -> Option<Self> {
        Self::start_with(backend, crm, knobs, crmhost::sync::SchedulerOptions::default()).await
    }

    /// [`SyncHarness::start`] with scheduler options (tests shorten its timings).
    pub async fn start_with(
        backend: Backend,
        crm: Crm,
        knobs: crm_sim::knobs::Knobs,
        scheduler: crmhost::sync::SchedulerOptions,
    ) -> Option<Self> {
        Self::start_configured(backend, crm, knobs, |options| options.scheduler = scheduler).await
    }

    /// [`SyncHarness::start`] with the app's options adjusted by `configure`.
    pub async fn start_configured(
        backend: Backend,
        crm: Crm,
        knobs: crm_sim::knobs::Knobs,
        configure: impl FnOnce(&mut AppOptions),
    ) -> Option<Self> {
        let mut options = match crm {
            Crm::Pipedrive => crm_sim::SimOptions::all_on_free_ports(),
            Crm::Salesforce | Crm::Hubspot => crm_sim::SimOptions::both_on_free_ports(),
        };
        options.knobs = knobs;
        let sim = Arc::new(crm_sim::start(options).await.expect("emulators start"));
        let mut app_options = AppOptions { backend, sim: Some(sim.clone()), ..AppOptions::default() };
        if crm == Crm::Pipedrive {
            let plugin = crate::pipedrive_plugin().await?;
            app_options.plugin_files.push(("pipedrive.wasm".to_owned(), plugin));
            app_options.share_compiled_components = true;
        }
        configure(&mut app_options);
        let app = TestApp::spawn(app_options).await?;
        Some(Self { workspace: ConnectedWorkspace::connect(app, crm).await, sim })
    }

    /// Sends a request and returns its status and JSON body.
    pub async fn send(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, serde_json::Value) {
        ConnectedWorkspace::send(request).await
    }

    /// The live contacts in the emulator: CRM id → fields by workspace field name.
    pub fn crm_contacts(&self) -> std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
        let app_fields = ["email", "first_name", "last_name", "phone", "title"];
        let app_fields: Vec<&str> =
            app_fields.into_iter().filter(|f| self.crm.mapped_contact_field(f).is_some()).collect();
        let mut out = std::collections::BTreeMap::new();
        match self.crm {
            Crm::Salesforce => {
                let state = self.sim.sim().salesforce();
                let contacts = state.objects.iter().find(|o| o.schema.name == "Contact").expect("Contact");
                for r in contacts.records.values().filter(|r| r.deleted_at.is_none()) {
                    let fields = app_fields
                        .iter()
                        .filter_map(|f| r.fields.get(self.crm.contact_field(f)).map(|v| ((*f).to_owned(), v.clone())))
                        .collect();
                    out.insert(r.id.clone(), fields);
                }
            }
            Crm::Hubspot => {
                let state = self.sim.sim().hubspot();
                for r in state.objects["contacts"].records.values().filter(|r| r.archived_at.is_none()) {
                    let fields = app_fields
                        .iter()
                        .filter_map(|f| {
                            r.properties
                                .get(self.crm.contact_field(f))
                                .map(|v| ((*f).to_owned(), serde_json::Value::String(v.clone())))
                        })
                        .collect();
                    out.insert(r.id.to_string(), fields);
                }
            }
            Crm::Pipedrive => {
                let state = self.sim.sim().pipedrive();
                for r in state.records[&Kind::Persons].values().filter(|r| !r.deleted) {
                    let fields = app_fields
                        .iter()
                        .filter_map(|f| {
                            let value = match self.crm.mapped_contact_field(f)? {
                                "email" => r.values_of("emails").into_iter().next().map(serde_json::Value::String),
                                "phone" => r.values_of("phones").into_iter().next().map(serde_json::Value::String),
                                other => r.fields.get(other).filter(|v| !v.is_null()).cloned(),
                            }?;
                            Some(((*f).to_owned(), value))
                        })
                        .collect();
                    out.insert(r.id.to_string(), fields);
                }
            }
        }
        out
    }

    /// The CRM id of the emulator contact with this email.
    pub fn crm_id_of(&self, email: &str) -> String {
        self.crm_contacts()
            .into_iter()
            .find(|(_, f)| f.get("email").and_then(|v| v.as_str()) == Some(email))
            .map(|(id, _)| id)
            .unwrap_or_else(|| panic!("no CRM contact with email {email}"))
    }

    /// Edits a contact in the emulator as a CRM user would (its modification time moves).
    pub fn edit_crm_contact(&self, crm_id: &str, app_field: &str, value: &str) {
        self.edit_crm_contact_field(crm_id, self.crm.contact_field(app_field), value);
    }

    /// [`SyncHarness::edit_crm_contact`] by the CRM's own field name.
    pub fn edit_crm_contact_field(&self, crm_id: &str, field: &str, value: &str) {
        let now = self.sim.sim().clock.now();
        match self.crm {
            Crm::Salesforce => {
                let mut state = self.sim.sim().salesforce();
                let contacts = state.objects.iter_mut().find(|o| o.schema.name == "Contact").expect("Contact");
                let mut input = serde_json::Map::new();
                input.insert(field.to_owned(), serde_json::Value::String(value.to_owned()));
                contacts.update(crm_id, &input, now).expect("update accepted");
            }
            Crm::Hubspot => {
                let mut state = self.sim.sim().hubspot();
                let id: u64 = crm_id.parse().expect("numeric id");
                let contacts = state.objects.get_mut("contacts").expect("contacts");
                contacts
                    .edit(id, |record| {
                        record.properties.insert(field.to_owned(), value.to_owned());
                        record.updated_at = now;
                    })
                    .expect("contact");
            }
            Crm::Pipedrive => {
                let mut state = self.sim.sim().pipedrive();
                let id: u64 = crm_id.parse().expect("numeric id");
                let edited = state.edit(Kind::Persons, id, now, |fields| set_pipedrive_field(fields, field, value));
                assert!(edited, "a live Pipedrive person {id}");
            }
        }
    }
}

impl SyncHarness {
    /// Has the HubSpot emulator deliver its webhooks to this app (signed with the app's client
    /// secret, 3 attempts).
    pub fn deliver_hubspot_webhooks(&self) {
        self.sim.sim().set_webhook_target(Some(crm_sim::hubspot::webhooks::WebhookTarget {
            target_url: format!("{}/api/v1/webhooks/hubspot", self.app.base),
            client_secret: crm_sim::OAuthClient::default_client().secret,
            max_attempts: 3,
            retry_base_ms: 200,
        }));
    }

    /// A live access token of the emulated HubSpot portal (to act there as a user's app would).
    pub fn hubspot_token(&self) -> String {
        let state = self.sim.sim().hubspot();
        state.oauth.access.iter().find(|(_, t)| !t.revoked).map(|(k, _)| k.clone()).expect("a live HubSpot token")
    }

    /// Edits a HubSpot contact through the emulator's API (as another HubSpot user or integration
    /// would), which emits a `contact.propertyChange` webhook.
    pub async fn edit_through_hubspot_api(&self, crm_id: &str, property: &str, value: &str) {
        let url = format!("{}/crm/v3/objects/contacts/{crm_id}", self.sim.hubspot_url().expect("HubSpot emulated"));
        // The app's client: a fresh one per edit would time its own set-up in the realtime bench.
        let response = self
            .app
            .client
            .patch(url)
            .bearer_auth(self.hubspot_token())
            .json(&serde_json::json!({"properties": {property: value}}))
            .send()
            .await
            .expect("the emulator answers");
        assert!(response.status().is_success(), "{}", response.status());
    }
}

impl SyncHarness {
    /// Deletes a record of `entity` in the emulator as a CRM user would (Salesforce: into the
    /// recycle bin; HubSpot: archived), with no webhook.
    pub fn delete_crm_record(&self, entity: &str, crm_id: &str) {
        let now = self.sim.sim().clock.now();
        match self.crm {
            Crm::Salesforce => {
                let mut state = self.sim.sim().salesforce();
                let store = state.object_mut(entity).expect("a Salesforce object");
                store.delete(crm_id, now).expect("deleted");
            }
            Crm::Hubspot => {
                let mut state = self.sim.sim().hubspot();
                let id: u64 = crm_id.parse().expect("numeric id");
                let store = state.objects.get_mut(hubspot_object(entity)).expect("a HubSpot object");
                store.edit(id, |record| archive(record, now)).expect("a HubSpot record");
            }
            Crm::Pipedrive => {
                let id: u64 = crm_id.parse().expect("numeric id");
                assert!(self.sim.sim().pipedrive().delete(pipedrive_kind(entity), id, now), "a live Pipedrive record");
            }
        }
    }

    /// Whether the CRM record of `entity` exists and is not deleted.
    pub fn crm_record_live(&self, entity: &str, crm_id: &str) -> bool {
        match self.crm {
            Crm::Salesforce => {
                let state = self.sim.sim().salesforce();
                state.object(entity).is_some_and(|s| s.live(crm_id).is_some())
            }
            Crm::Hubspot => {
                let state = self.sim.sim().hubspot();
                let id: u64 = crm_id.parse().unwrap_or_default();
                state.objects[hubspot_object(entity)].records.get(&id).is_some_and(|r| r.archived_at.is_none())
            }
            Crm::Pipedrive => {
                let id: u64 = crm_id.parse().unwrap_or_default();
                self.sim.sim().pipedrive().live(pipedrive_kind(entity), id).is_some()
            }
        }
    }

    /// Creates a contact in the emulator as a CRM user would (no webhook); its CRM id.
    pub fn create_crm_contact(&self, email: &str, first_name: &str, last_name: &str) -> String {
        let now = self.sim.sim().clock.now();
        let field = |f: &str| self.crm.contact_field(f).to_owned();
        let values = [(field("email"), email), (field("first_name"), first_name), (field("last_name"), last_name)];
        match self.crm {
            Crm::Salesforce => {
                let mut state = self.sim.sim().salesforce();
                let input: serde_json::Map<String, serde_json::Value> =
                    values.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
                let user = crm_sim::salesforce::USER_ID;
                state.object_mut("Contact").expect("Contact").create(&input, now, user).expect("created")
            }
            Crm::Hubspot => {
                let mut state = self.sim.sim().hubspot();
                let id = state.new_id();
                let properties = values.iter().map(|(k, v)| (k.clone(), (*v).to_owned())).collect();
                let record =
                    crm_sim::hubspot::HsRecord { id, properties, created_at: now, updated_at: now, archived_at: None };
                state.objects.get_mut("contacts").expect("contacts").insert(record);
                id.to_string()
            }
            Crm::Pipedrive => {
                let mut fields = serde_json::Map::new();
                fields.insert("name".to_owned(), serde_json::json!(format!("{first_name} {last_name}")));
                fields.insert("owner_id".to_owned(), serde_json::json!(crm_sim::pipedrive::USER_ID));
                for (field, value) in &values {
                    set_pipedrive_field(&mut fields, field, value);
                }
                self.sim.sim().pipedrive().create(Kind::Persons, fields, now).to_string()
            }
        }
    }

    /// Merges the contact `merged` into `survivor` in the emulator, as a CRM user would
    /// (Salesforce: `merge()`, the loser deleted with `MasterRecordId`; HubSpot: `…/merge`).
    pub fn merge_crm_contacts(&self, survivor: &str, merged: &str) {
        let now = self.sim.sim().clock.now();
        match self.crm {
            Crm::Salesforce => {
                let mut state = self.sim.sim().salesforce();
                state.object_mut("Contact").expect("Contact").merge(survivor, &[merged], now).expect("merged");
            }
            Crm::Hubspot => {
                let mut state = self.sim.sim().hubspot();
                let (survivor, merged) = (survivor.parse().expect("id"), merged.parse().expect("id"));
                state.objects.get_mut("contacts").expect("contacts").merge(survivor, merged, now).expect("merged");
            }
            Crm::Pipedrive => panic!("the Pipedrive emulator does not merge persons"),
        }
    }

    /// Deletes a contact in the emulator as a CRM user would (Salesforce: into the recycle bin;
    /// HubSpot: archived), with no webhook.
    pub fn delete_crm_contact(&self, crm_id: &str) {
        let now = self.sim.sim().clock.now();
        match self.crm {
            Crm::Salesforce => {
                let mut state = self.sim.sim().salesforce();
                let contacts = state.objects.iter_mut().find(|o| o.schema.name == "Contact").expect("Contact");
                contacts.delete(crm_id, now).expect("deleted");
            }
            Crm::Hubspot => {
                let mut state = self.sim.sim().hubspot();
                let id: u64 = crm_id.parse().expect("numeric id");
                let contacts = state.objects.get_mut("contacts").expect("contacts");
                contacts.edit(id, |record| archive(record, now)).expect("contact");
            }
            Crm::Pipedrive => self.delete_crm_record("contact", crm_id),
        }
    }
}

/// Sets a field of a Pipedrive person by the plugin's flattened name: `email` and `phone` become
/// the primary entry of `emails` / `phones`, as a user editing them in Pipedrive leaves them.
fn set_pipedrive_field(fields: &mut serde_json::Map<String, serde_json::Value>, field: &str, value: &str) {
    match field {
        "email" | "phone" => {
            let list = serde_json::json!([{ "value": value, "primary": true, "label": "work" }]);
            fields.insert(format!("{field}s"), list);
        }
        other => {
            fields.insert(other.to_owned(), serde_json::Value::String(value.to_owned()));
        }
    }
}

/// The Pipedrive kind of an entity.
fn pipedrive_kind(entity: &str) -> Kind {
    Kind::parse(entity).unwrap_or_else(|| panic!("Pipedrive has no entity `{entity}`"))
}

/// Archives a HubSpot record as a user deleting it does.
fn archive(record: &mut crm_sim::hubspot::HsRecord, now: chrono::DateTime<chrono::Utc>) {
    record.archived_at = Some(now);
    record.updated_at = now;
}

/// What [`SyncHarness::edits_from_three_places`] measured.
#[derive(Debug, Clone, Copy)]
pub struct ThreePlaces {
    /// The first two-way sync of every contact (all created in the CRM), in seconds.
    pub first_sync_secs: f64,
    /// The two-way sync that brought the three tenths of edits across, in seconds.
    pub edit_sync_secs: f64,
    /// Records that sync wrote (either side).
    pub edits_written: u64,
}

impl SyncHarness {
    /// Two-way sync of `n` contacts (`c0`…), then a tenth edited directly in the CRM, a tenth
    /// through a second workspace `w2` connected to the same CRM account (and synced from there),
    /// and a tenth in `w1`; one more sync of `w1` must carry every edit to the other side, with
    /// exactly those counts in the run (panics otherwise). Returns the timings.
    pub async fn edits_from_three_places(&self, n: usize) -> ThreePlaces {
        let (crm, tenth) = (self.crm, n / 10);
        let at = format!("{crm:?}");
        for chunk in contacts(0..n, "").chunks(200) {
            self.put_records("contact", chunk.to_vec()).await;
        }
        let started = Instant::now();
        let first = self.run_to_end("sync", serde_json::json!({"entities": ["contact"]})).await;
        let first_sync_secs = started.elapsed().as_secs_f64();
        assert_eq!(
            (first["status"].as_str(), first["success_count"].as_u64()),
            (Some("completed"), Some(n as u64)),
            "{at}: {first}"
        );

        // A second workspace on the same CRM account brings everything in.
        assert_eq!(self.app.connect("w2", crm.slug()).await.status(), reqwest::StatusCode::OK);
        let imported = self.sync_other_workspace("w2").await;
        assert_eq!(imported["success_count"].as_u64(), Some(n as u64), "{at}: {imported}");
        let crm_ids: Vec<String> = {
            let by_email: std::collections::HashMap<String, String> = self
                .crm_contacts()
                .into_iter()
                .filter_map(|(id, f)| f.get("email").and_then(|e| e.as_str()).map(|e| (e.to_owned(), id)))
                .collect();
            (0..n).map(|i| by_email[&format!("c{i}@example.com")].clone()).collect()
        };

        // A tenth edited through the second workspace, and synced from there.
        let w2_edits: Vec<serde_json::Value> = (tenth..2 * tenth)
            .map(|i| {
                serde_json::json!({"id": format!("{}-{}", crm.slug(), crm_ids[i]), "fields": {
                    "email": format!("c{i}@example.com"), "first_name": format!("First{i}"),
                    "last_name": format!("Last{i}"), "title": format!("W2Edit{i}")}})
            })
            .collect();
        for chunk in w2_edits.chunks(200) {
            let put = self
                .app
                .as_role(
                    reqwest::Method::PUT,
                    "/api/v1/workspaces/w2/records/contact",
                    "w2",
                    crmhost::auth::Role::Admin,
                )
                .json(&serde_json::json!({ "records": chunk }));
            let (status, written) = Self::send(put).await;
            assert_eq!((status, written["failed"].as_u64()), (reqwest::StatusCode::OK, Some(0)), "{written}");
        }
        let pushed = self.sync_other_workspace("w2").await;
        assert_eq!(
            (pushed["success_count"].as_u64(), pushed["failure_count"].as_u64()),
            (Some(tenth as u64), Some(0)),
            "{at}: {pushed}"
        );

        // A tenth edited directly in the CRM, and a tenth in the first workspace.
        for (i, crm_id) in crm_ids.iter().enumerate().take(tenth) {
            self.edit_crm_contact(crm_id, "title", &format!("CrmEdit{i}"));
        }
        let app_edits: Vec<serde_json::Value> = contacts(2 * tenth..3 * tenth, "")
            .into_iter()
            .enumerate()
            .map(|(k, mut c)| {
                c["fields"]["title"] = serde_json::json!(format!("AppEdit{}", 2 * tenth + k));
                c
            })
            .collect();
        for chunk in app_edits.chunks(200) {
            self.put_records("contact", chunk.to_vec()).await;
        }

        let started = Instant::now();
        let run = self.run_to_end("sync", serde_json::json!({"entities": ["contact"]})).await;
        let edit_sync_secs = started.elapsed().as_secs_f64();
        assert_eq!(run["status"], "completed", "{at}: {run}");
        assert_eq!(
            (run["success_count"].as_u64(), run["failure_count"].as_u64(), run["conflict_count"].as_u64()),
            (Some(3 * tenth as u64), Some(0), Some(0)),
            "{at}: {tenth} pulled from the CRM, {tenth} from the other workspace, {tenth} pushed: {run}"
        );
        let records: std::collections::HashMap<String, serde_json::Value> = self
            .all_records("contact")
            .await
            .into_iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned).map(|id| (id, r)))
            .collect();
        let crm_side = self.crm_contacts();
        for (i, crm_id) in crm_ids.iter().enumerate() {
            let app_title = records[&format!("c{i}")]["fields"]["title"].as_str();
            let crm_title = crm_side[crm_id].get("title").and_then(|t| t.as_str());
            let expected = match i / tenth.max(1) {
                0 => format!("CrmEdit{i}"),
                1 => format!("W2Edit{i}"),
                2 => format!("AppEdit{i}"),
                _ => "Buyer".to_owned(),
            };
            assert_eq!((app_title, crm_title), (Some(expected.as_str()), Some(expected.as_str())), "{at}: c{i}");
        }
        ThreePlaces { first_sync_secs, edit_sync_secs, edits_written: 3 * tenth as u64 }
    }

    /// Runs a two-way contact sync of another workspace of the app (admin) to its end.
    async fn sync_other_workspace(&self, workspace: &str) -> serde_json::Value {
        let base = format!("/api/v1/workspaces/{workspace}/integrations/{}", self.crm.slug());
        let request = |method: reqwest::Method, path: String| {
            self.app.as_role(method, &path, workspace, crmhost::auth::Role::Admin)
        };
        let start =
            request(reqwest::Method::POST, format!("{base}/sync")).json(&serde_json::json!({"entities": ["contact"]}));
        let (status, started) = Self::send(start).await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{started}");
        let path = format!("{base}/sync-runs/{}?items_limit=1", started["run_id"].as_str().unwrap_or_default());
        loop {
            let (_, run) = Self::send(request(reqwest::Method::GET, path.clone())).await;
            if run["status"] != "running" {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `n` workspace contacts `c<i>` with emails `c<i>@example.com` (`prefix` varies the names).
pub fn contacts(range: std::ops::Range<usize>, prefix: &str) -> Vec<serde_json::Value> {
    range
        .map(|i| {
            serde_json::json!({
                "id": format!("c{i}"),
                "fields": {
                    "email": format!("c{i}@example.com"),
                    "first_name": format!("{prefix}First{i}"),
                    "last_name": format!("Last{i}"),
                    "title": "Buyer",
                }
            })
        })
        .collect()
}

/// The HubSpot object of an entity.
fn hubspot_object(entity: &str) -> &'static str {
    match entity {
        "company" => "companies",
        "deal" => "deals",
        "email" => "emails",
        _ => "contacts",
    }
}
