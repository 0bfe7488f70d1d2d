//! The `crmhost` binary itself: a bare `serve` with an empty plugins directory serves both
#![allow(clippy::unwrap_used)]
//! bundled CRMs; bad configuration stops start-up with one line; SIGTERM stops it cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_saying_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_crmhost"))
        .current_dir(dir.path())
        .args(["serve", "--database-url", "mysql://localhost/x"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: DATABASE_URL:") && lines[0].contains("postgres://"), "{stderr}");
}

#[tokio::test]
async fn a_bare_serve_with_no_plugins_directory_serves_both_bundled_crms_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crmhost"))
        .current_dir(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("DATABASE_URL")
        .env_remove("CRMHOST_PLUGINS_DIR")
        .env_remove("CRMHOST_DATA_DIR")
        .env_remove("CRMHOST_MASTER_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let url = format!("http://127.0.0.1:{port}/api/v1/integrations");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body: serde_json::Value = loop {
        if let Ok(response) = reqwest::get(&url).await {
            break response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "the server never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let slugs: Vec<&str> =
        body["integrations"].as_array().unwrap().iter().map(|i| i["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["hubspot", "salesforce"]);
    // The embedded default: SQLite, the compile cache and a private master key file in ./data.
    assert!(dir.path().join("data").join("crmhost.db").is_file());
    let key_file = dir.path().join("data").join("master.key");
    assert!(key_file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(dir.path().join("data").join("cache").join("components").read_dir().unwrap().count() >= 2);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn serve_sandbox_runs_seeded_emulators_beside_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crmhost"))
        .current_dir(dir.path())
        .args(["serve", "--sandbox", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/sandbox");
    let deadline = Instant::now() + Duration::from_secs(60);
    let info: serde_json::Value = loop {
        if let Ok(response) = reqwest::get(&url).await {
            break response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "the sandbox server never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hubspot = info["sandbox"]["emulators"]["hubspot"].as_str().unwrap();
    let state: serde_json::Value = reqwest::get(format!("{hubspot}/__sim/state")).await.unwrap().json().await.unwrap();
    assert_eq!(state["hubspot"]["records"]["contacts"], 25);
    assert!(dir.path().join("data").join("sandbox.db").is_file(), "sandbox data is kept apart");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn the_token_command_prints_a_token_the_server_accepts() {
    let secret = "a-cli-test-secret-0123456789-0123456789";
    let output = Command::new(env!("CARGO_BIN_EXE_crmhost"))
        .args(["token", "--workspace", "w9", "--role", "member", "--user", "ops", "--ttl", "10m"])
        .env("CRMHOST_JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    let verifier = crmhost::auth::JwtVerifier::new(Some(&secrecy::SecretString::from(secret)), None).unwrap().unwrap();
    let claims = verifier.verify(token.trim()).unwrap();
    assert_eq!(
        (claims.workspace.as_str(), claims.role, claims.sub.as_str()),
        ("w9", crmhost::auth::Role::Member, "ops")
    );
    assert!((claims.exp - claims.iat - 600).abs() <= 1);

    let bad = Command::new(env!("CARGO_BIN_EXE_crmhost"))
        .args(["token", "--workspace", "w9", "--role", "member", "--ttl", "soon"])
        .env("CRMHOST_JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--ttl"));
}

#[tokio::test]
async fn keys_generate_and_rotate_move_stored_tokens_off_the_generated_key_file() {
    use crmhost::domain::{PluginSlug, WorkspaceId};
    use crmhost::oauth::TokenSet;
    use crmhost::store::{NewConnection, Store};
    use crmhost::vault::{MasterKey, Vault};
    use secrecy::{ExposeSecret, SecretString};

    let generated = Command::new(env!("CARGO_BIN_EXE_crmhost")).args(["keys", "generate"]).output().unwrap();
    assert!(generated.status.success());
    let new_key = String::from_utf8(generated.stdout).unwrap().trim().to_owned();
    assert!(MasterKey::from_base64(&new_key).is_some(), "32 bytes of base64: {new_key}");

    // The embedded default: a generated key file and tokens sealed with it.
    let dir = tempfile::tempdir().unwrap();
    let (file_key, _) = MasterKey::load(None, dir.path()).unwrap();
    let old_vault = Vault::new(file_key, Vec::new());
    let (workspace, slug) = (WorkspaceId::parse("w1").unwrap(), PluginSlug::parse("hubspot").unwrap());
    let store = Store::open_sqlite_file(&dir.path().join("crmhost.db")).await.unwrap();
    store.migrate().await.unwrap();
    let tokens = TokenSet::new(SecretString::from("access-1"), Some(SecretString::from("refresh-1")));
    let sealed = tokens.seal(&old_vault, &workspace, &slug);
    let metadata = serde_json::json!({});
    let connection = NewConnection { sealed: &sealed, expires_at: None, metadata: &metadata, connected_by: "u" };
    store.save_connection(&workspace, &slug, &connection).await.unwrap();
    store.close().await;

    let rotate = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_crmhost"))
            .args(["keys", "rotate", "--data-dir", dir.path().to_str().unwrap()])
            .env_remove("DATABASE_URL")
            .env_remove("CRMHOST_PREVIOUS_MASTER_KEYS")
            .env("CRMHOST_MASTER_KEY", key)
            .output()
            .unwrap()
    };
    let bad = rotate("not-a-key");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("CRMHOST_MASTER_KEY"));

    let output = rotate(&new_key);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("re-sealed 1 credential(s)"), "{stdout}");
    assert!(!stdout.contains(&new_key), "the key is never printed back");

    // Only the new key is needed now.
    let store = Store::open_sqlite_file(&dir.path().join("crmhost.db")).await.unwrap();
    let stored = store.get_credentials(&workspace, &slug).await.unwrap();
    let new_vault = Vault::new(MasterKey::from_base64(&new_key).unwrap(), Vec::new());
    let opened = TokenSet::open(&new_vault, &workspace, &slug, stored.sealed.as_ref().unwrap()).unwrap();
    assert_eq!(opened.access_token().expose_secret(), "access-1");
    assert_eq!(stored.version, 1, "rotation does not change the credentials, only their key");
}
