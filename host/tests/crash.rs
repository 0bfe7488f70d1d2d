//! Crash safety with real processes: a `crmhost serve` is killed (SIGKILL) in the middle of a
//! two-way sync; the restarted server marks the run `interrupted`, a retry completes it, and
//! neither the CRM nor the workspace ends up with a duplicate. And with two servers sharing one
//! PostgreSQL database: the one running a scheduled sync is killed, its lease expires, and the
//! other takes the integration over and finishes it.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crmhost::auth::{Claims, Role, sign_hs256};
use secrecy::SecretString;
use serde_json::{Value, json};

const JWT_SECRET: &str = "crash-test-jwt-secret-0123456789-abcdef";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn admin_token() -> String {
    let now = chrono::Utc::now().timestamp();
    let claims =
        Claims { sub: "u1".to_owned(), workspace: "w1".to_owned(), role: Role::Admin, exp: now + 3600, iat: now };
    sign_hs256(&SecretString::from(JWT_SECRET), &claims).unwrap()
}

/// The operator configuration pointing the HubSpot plugin at an emulator on loopback.
fn config_for(hubspot: &str, port: u16) -> String {
    format!(
        r#"
[plugins.hubspot]
extra_allowed_hosts = ["127.0.0.1:{port}"]
allow_http = true
allow_private_networks = true
[plugins.hubspot.settings]
base_url = "{hubspot}"
[plugins.hubspot.secrets]
client_secret = "crm-sim-secret"
[plugins.hubspot.oauth]
authorize_url = "{hubspot}/oauth/authorize"
token_url = "{hubspot}/oauth/v3/token"
revoke_url = "{hubspot}/oauth/v3/token/revoke"
client_id = "crm-sim-client"
"#
    )
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(dir: &std::path::Path, port: u16) -> Self {
        Self::start_with(dir, port, &[]).await
    }

    async fn start_with(dir: &std::path::Path, port: u16, env: &[(&str, &str)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_crmhost"))
            .current_dir(dir)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--config", "crmhost.toml", "--no-watch"])
            .env_remove("DATABASE_URL")
            .env_remove("CRMHOST_PLUGINS_DIR")
            .env_remove("CRMHOST_DATA_DIR")
            .env_remove("CRMHOST_MASTER_KEY")
            .envs(env.iter().copied())
            .env("CRMHOST_JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status().is_success()) {
            assert!(Instant::now() < deadline, "the server never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, base }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (reqwest::StatusCode, Value) {
        let client = reqwest::Client::new();
        let mut request =
            client.request(method, format!("{}/api/v1/workspaces/w1{path}", self.base)).bearer_auth(admin_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Server {
    /// Connects `w1` to HubSpot as a browser would, then stores 600 workspace contacts.
    async fn connect_hubspot_with_600_contacts(&self) {
        let (status, start) = self.call(reqwest::Method::POST, "/integrations/hubspot/connect", Some(json!({}))).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{start}");
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let authorize = browser.get(start["authorize_url"].as_str().unwrap()).send().await.unwrap();
        let callback = authorize.headers()["location"].to_str().unwrap().to_owned();
        assert!(browser.get(callback).send().await.unwrap().status().is_success());
        for chunk in 0..3 {
            let records: Vec<Value> = (chunk * 200..(chunk + 1) * 200)
                .map(|i| json!({"id": format!("c{i}"), "fields": {"email": format!("c{i}@example.com"), "last_name": format!("L{i}")}}))
                .collect();
            let (status, body) =
                self.call(reqwest::Method::PUT, "/records/contact", Some(json!({"records": records}))).await;
            assert_eq!((status, body["failed"].as_u64()), (reqwest::StatusCode::OK, Some(0)), "{body}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exactly one CRM contact (600 distinct emails) and one workspace record per contact: the pull
/// after a crash linked what was written before it, it did not import copies.
async fn assert_each_contact_once(sim: &crm_sim::SimHandle, server: &Server) {
    assert_eq!(live_contacts(sim), 600, "exactly one CRM contact per workspace record");
    let emails: std::collections::BTreeSet<String> = sim.sim().hubspot().objects["contacts"]
        .records
        .values()
        .filter_map(|r| r.properties.get("email").cloned())
        .collect();
    assert_eq!(emails.len(), 600);
    let (_, page) = server.call(reqwest::Method::GET, "/records/contact?limit=1000", None).await;
    assert_eq!(page["records"].as_array().unwrap().len(), 600, "no workspace record imported twice");
}

fn live_contacts(sim: &crm_sim::SimHandle) -> usize {
    sim.sim().hubspot().objects["contacts"].records.values().filter(|r| r.archived_at.is_none()).count()
}

#[tokio::test]
async fn a_run_killed_mid_way_is_marked_interrupted_and_its_retry_creates_no_duplicates() {
    // Slow answers make the run last long enough to be killed in the middle.
    let mut options = crm_sim::SimOptions::both_on_free_ports();
    options.salesforce = None;
    options.knobs.latency_ms = 400;
    let sim = crm_sim::start(options).await.unwrap();
    let hubspot = sim.hubspot_url().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crmhost.toml"), config_for(&hubspot, sim.hubspot_addr().unwrap().port())).unwrap();
    let port = free_port();
    let mut server = Server::start(dir.path(), port).await;

    // 600 workspace contacts, then a two-way sync: three push batches of 200 (two requests each).
    server.connect_hubspot_with_600_contacts().await;
    let (status, run) =
        server.call(reqwest::Method::POST, "/integrations/hubspot/sync", Some(json!({"entities": ["contact"]}))).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();

    // Kill it once the CRM has some of the records but not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = live_contacts(&sim);
        if n > 0 && n < 600 {
            break;
        }
        assert!(n < 600, "the run finished before it could be killed");
        assert!(Instant::now() < deadline, "the run never started writing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let written_before_kill = live_contacts(&sim);
    assert!(written_before_kill < 600, "killed mid-way: {written_before_kill}");

    // Restart: the run is marked interrupted.
    let server = Server::start(dir.path(), port).await;
    let path = format!("/integrations/hubspot/sync-runs/{run_id}");
    let (status, interrupted) = server.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(interrupted["status"], "interrupted", "{interrupted}");
    assert!(interrupted["error"].as_str().unwrap().contains("retry"), "{interrupted}");

    // The retry completes it with nothing created twice, on either side.
    let (status, retried) = server.call(reqwest::Method::POST, &format!("{path}/retry?wait=true"), None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{retried}");
    assert_eq!(
        (retried["status"].as_str(), retried["failure_count"].as_i64()),
        (Some("completed"), Some(0)),
        "{retried}"
    );
    assert_each_contact_once(&sim, &server).await;
    let (_, quiet) = server
        .call(reqwest::Method::POST, "/integrations/hubspot/sync?wait=true", Some(json!({"entities": ["contact"]})))
        .await;
    assert_eq!((quiet["success_count"].as_i64(), quiet["failure_count"].as_i64()), (Some(0), Some(0)), "{quiet}");
}

/// A fresh PostgreSQL database, or `None` when the server is unreachable and not required.
async fn fresh_postgres() -> Option<String> {
    let base = std::env::var("CRMHOST_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var_os("CRMHOST_REQUIRE_POSTGRES").is_some();
    let admin = match sqlx::PgPool::connect(&base).await {
        Ok(pool) => pool,
        Err(err) if !required => {
            eprintln!("skipping: PostgreSQL unavailable ({err})");
            return None;
        }
        Err(err) => panic!("PostgreSQL is required here: {err}"),
    };
    let name = format!("crmhost_lease_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}")).execute(&admin).await.unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

async fn running_scheduled_run(db: &sqlx::PgPool) -> Option<(String, String)> {
    sqlx::query_as("select run_id, owner_id from sync_history where trigger = 'schedule' and status = 'running'")
        .fetch_optional(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_host_killed_mid_run_loses_its_lease_and_the_other_host_finishes_the_work() {
    let Some(database_url) = fresh_postgres().await else { return };
    let mut options = crm_sim::SimOptions::both_on_free_ports();
    options.salesforce = None;
    options.knobs.latency_ms = 300;
    let sim = crm_sim::start(options).await.unwrap();
    let hubspot = sim.hubspot_url().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[scheduler]\nlease_secs = 3\ntick_ms = 100\n",
        config_for(&hubspot, sim.hubspot_addr().unwrap().port())
    );
    std::fs::write(dir.path().join("crmhost.toml"), config).unwrap();
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let env = [("DATABASE_URL", database_url.as_str()), ("CRMHOST_MASTER_KEY", key)];
    let mut first = Server::start_with(dir.path(), free_port(), &env).await;
    let mut second = Server::start_with(dir.path(), free_port(), &env).await;

    first.connect_hubspot_with_600_contacts().await;
    // Due at once: one of the two hosts claims it.
    let patch = json!({"frequency": {"every_minutes": 60}, "entities": ["contact"]});
    let (status, body) = second.call(reqwest::Method::PATCH, "/integrations/hubspot/settings", Some(patch)).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");

    // Kill whichever host runs it, once the CRM has some of the records but not all.
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (killed_run, owner) = loop {
        let n = live_contacts(&sim);
        assert!(n < 600, "the run finished before it could be killed");
        assert!(Instant::now() < deadline, "the scheduled run never started writing");
        if n > 0
            && let Some(run) = running_scheduled_run(&db).await
        {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let victim_pid = owner.split('-').next().unwrap().parse::<u32>().unwrap();
    let survivor = if first.child.id() == victim_pid {
        first.kill();
        &second
    } else {
        assert_eq!(second.child.id(), victim_pid, "the owner is one of the two hosts");
        second.kill();
        &first
    };
    let written_before_kill = live_contacts(&sim);
    assert!(written_before_kill < 600);

    // The lease expires (3 s), the survivor takes over: the killed run is marked interrupted and
    // a new scheduled run, owned by the survivor, finishes the work.
    let finished = async {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let done: Option<(String,)> =
                sqlx::query_as("select owner_id from sync_history where trigger = 'schedule' and status = 'completed'")
                    .fetch_optional(&db)
                    .await
                    .unwrap();
            if let Some(done) = done {
                return done.0;
            }
            assert!(Instant::now() < deadline, "the other host never finished the work");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    .await;
    assert_ne!(finished, owner, "finished by the other host");
    let (status, interrupted) =
        survivor.call(reqwest::Method::GET, &format!("/integrations/hubspot/sync-runs/{killed_run}"), None).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(interrupted["status"], "interrupted", "{interrupted}");
    assert_each_contact_once(&sim, survivor).await;
    db.close().await;
}
