//! The sandbox: every limit tested kept and broken, with the hostile plugin.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crmhost::plugins::bindings::AdapterError;
use crmhost::plugins::{CallContext, CallError, CredentialError, CredentialSource, LoadedPlugin};
use crmhost_tests::{EgressServer, hostile, load, operator};
use secrecy::SecretString;

/// Loads the hostile plugin allowed to reach `server` over plain HTTP on loopback.
async fn hostile_reaching(server: &EgressServer, extra: &str) -> LoadedPlugin {
    let port = server.addr.port();
    let config = format!(
        "[plugins.hostile]\nextra_allowed_hosts = [\"127.0.0.1:{port}\", \"localhost:{port}\"]\nallow_http = true\nallow_private_networks = true\n{extra}"
    );
    load(hostile(), operator(&config)).await
}

/// Runs `list-fields(entity)` and returns the first field's name or the error message.
async fn attack(plugin: &LoadedPlugin, entity: &str) -> Result<Result<String, String>, CallError> {
    attack_with(plugin, CallContext::detached(), entity).await
}

async fn attack_with(
    plugin: &LoadedPlugin,
    ctx: CallContext,
    entity: &str,
) -> Result<Result<String, String>, CallError> {
    Ok(match plugin.list_fields(ctx, entity).await? {
        Ok(fields) => Ok(fields[0].name.clone()),
        Err(AdapterError::Internal(info)) => Err(info.message),
        Err(other) => Err(format!("{other:?}")),
    })
}

#[tokio::test]
async fn an_infinite_loop_fails_near_its_cpu_budget_and_the_host_keeps_serving() {
    let plugin = load(hostile(), operator("[plugins.hostile]\ncpu_ms = 200\nwall_ms = 10000")).await;

    let started = Instant::now();
    let outcome = attack(&plugin, "loop").await;
    let elapsed = started.elapsed();

    assert_eq!(outcome, Err(CallError::CpuBudgetExceeded { budget_ms: 200 }));
    assert!(elapsed >= Duration::from_millis(190), "stopped before its budget: {elapsed:?}");
    // Generous: a loaded CI machine may be slow to schedule, but never anywhere near the wall clock.
    assert!(elapsed < Duration::from_secs(3), "stopped long after its budget: {elapsed:?}");
    // Kept: a call within budget on the same plugin works right after.
    assert_eq!(attack(&plugin, "ok").await, Ok(Ok("ok".to_owned())));
}

#[tokio::test]
async fn a_memory_hog_fails_at_the_limit_and_a_modest_allocation_succeeds() {
    let plugin = load(hostile(), operator("[plugins.hostile]\nmemory_bytes = 33554432")).await; // 32 MiB

    assert_eq!(attack(&plugin, "hog:8").await, Ok(Ok("allocated:8".to_owned())));
    assert_eq!(attack(&plugin, "hog:64").await, Err(CallError::MemoryLimitExceeded { limit_bytes: 32 << 20 }));
    assert_eq!(attack(&plugin, "ok").await, Ok(Ok("ok".to_owned())));
}

#[tokio::test]
async fn a_panic_traps_that_call_only_and_says_why() {
    let plugin = load(hostile(), operator("")).await;

    match attack(&plugin, "panic").await {
        Err(CallError::Trap(message)) => {
            assert!(message.contains("panicked") && message.contains("hostile plugin panicked on purpose"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(attack(&plugin, "ok").await, Ok(Ok("ok".to_owned())));
}

#[tokio::test]
async fn wasi_sockets_load_but_every_connection_is_denied_even_where_http_may_go() {
    // The plugin may reach this listener through `http.send`; its own sockets may not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "").await;

    for target in [address.to_string(), server.addr.to_string()] {
        let denied = attack(&plugin, &format!("tcp:{target}")).await.unwrap().unwrap_err();
        assert!(denied.starts_with("tcp: ") && denied.to_lowercase().contains("denied"), "{target}: {denied}");
    }
    // A connection that succeeded would be queued by now (the handshake ends before `connect` returns).
    let queued = listener.accept().map(|(_, peer)| peer);
    assert!(queued.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "{queued:?}");
    assert_eq!(attack(&plugin, &format!("get:{}", server.url("/ok"))).await, Ok(Ok("status:200:5".to_owned())));
}

#[tokio::test]
async fn a_host_not_in_the_allowed_list_is_denied_and_an_allowed_one_is_reached() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "").await;

    let denied = attack(&plugin, "get:https://not-declared.example/").await.unwrap().unwrap_err();
    assert!(denied.contains("Denied") && denied.contains("not in the plugin's allowed hosts"), "{denied}");
    assert_eq!(attack(&plugin, &format!("get:{}", server.url("/ok"))).await, Ok(Ok("status:200:5".to_owned())));
}

#[tokio::test]
async fn loopback_and_metadata_addresses_are_denied_without_operator_permission() {
    let server = EgressServer::start().await;
    let port = server.addr.port();
    // Declared by the plugin and even listed by the operator, but private networks not allowed.
    let config = format!(
        "[plugins.hostile]\nextra_allowed_hosts = [\"127.0.0.1:{port}\", \"localhost:{port}\"]\nallow_http = true"
    );
    let plugin = load(hostile(), operator(&config)).await;

    for url in [server.url("/ok"), "https://169.254.169.254/latest/meta-data/".to_owned()] {
        let denied = attack(&plugin, &format!("get:{url}")).await.unwrap().unwrap_err();
        assert!(denied.contains("Denied") && denied.contains("private"), "{url}: {denied}");
    }
    // A name is checked after resolution: `localhost` resolves to loopback.
    let denied = attack(&plugin, &format!("get:http://localhost:{port}/ok")).await.unwrap().unwrap_err();
    assert!(denied.contains("Denied") && denied.contains("resolves to"), "{denied}");

    // Kept: with permission the same loopback server is reached, by address and by name.
    let allowed = hostile_reaching(&server, "").await;
    assert_eq!(attack(&allowed, &format!("get:{}", server.url("/ok"))).await, Ok(Ok("status:200:5".to_owned())));
    assert_eq!(attack(&allowed, &format!("get:http://localhost:{port}/ok")).await, Ok(Ok("status:200:5".to_owned())));
}

#[tokio::test]
async fn plain_http_is_denied_unless_the_operator_allows_it() {
    let server = EgressServer::start().await;
    let port = server.addr.port();
    let config =
        format!("[plugins.hostile]\nextra_allowed_hosts = [\"127.0.0.1:{port}\"]\nallow_private_networks = true");
    let plugin = load(hostile(), operator(&config)).await;
    let denied = attack(&plugin, &format!("get:{}", server.url("/ok"))).await.unwrap().unwrap_err();
    assert!(denied.contains("plain http is not allowed"), "{denied}");
}

#[tokio::test]
async fn a_plugin_setting_authorization_is_refused() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "").await;
    let denied = attack(&plugin, &format!("auth:{}", server.url("/ok"))).await.unwrap().unwrap_err();
    assert!(denied.contains("Denied") && denied.contains("Authorization"), "{denied}");
}

#[tokio::test]
async fn a_huge_response_is_capped_and_a_small_one_passes() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "http_response_bytes = 65536").await;

    let small = attack(&plugin, &format!("get:{}", server.url("/big?size=1024"))).await;
    assert_eq!(small, Ok(Ok("status:200:1024".to_owned())));
    let huge = attack(&plugin, &format!("get:{}", server.url("/big?size=10485760"))).await.unwrap().unwrap_err();
    assert!(huge.contains("TooLarge"), "{huge}");
}

#[tokio::test]
async fn a_huge_request_body_is_refused_before_sending() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "http_request_bytes = 65536").await;

    let small = attack(&plugin, &format!("post:1000:{}", server.url("/echo"))).await;
    assert_eq!(small, Ok(Ok("status:200:1000".to_owned())));
    let huge = attack(&plugin, &format!("post:100000:{}", server.url("/echo"))).await.unwrap().unwrap_err();
    assert!(huge.contains("TooLarge"), "{huge}");
}

#[tokio::test]
async fn a_call_blocked_on_a_slow_host_hits_the_wall_clock_timeout() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "wall_ms = 500").await;

    assert_eq!(attack(&plugin, &format!("get:{}", server.url("/slow?ms=10"))).await, Ok(Ok("status:200:4".to_owned())));
    let started = Instant::now();
    let slow = attack(&plugin, &format!("get:{}", server.url("/slow?ms=5000"))).await;
    assert_eq!(slow, Err(CallError::WallClockTimeout { timeout_ms: 500 }));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_request_slower_than_the_http_timeout_fails_as_a_timeout() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "http_timeout_ms = 200").await;
    let slow = attack(&plugin, &format!("get:{}", server.url("/slow?ms=3000"))).await.unwrap().unwrap_err();
    assert!(slow.contains("Timeout"), "{slow}");
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "").await;
    let outcome = attack(&plugin, &format!("get:{}", server.url("/redirect"))).await;
    assert_eq!(outcome, Ok(Ok("status:302:0".to_owned())));
}

#[tokio::test]
async fn a_log_flood_is_capped_and_the_call_still_succeeds() {
    let plugin = load(hostile(), operator("[plugins.hostile]\nlog_lines_per_call = 10")).await;
    assert_eq!(attack(&plugin, "log-flood").await, Ok(Ok("flooded".to_owned())));
}

/// A credential source that hands out `stale` first and `good` after a refresh.
struct RotatingToken {
    refreshes: AtomicU32,
    can_refresh: bool,
}

#[async_trait::async_trait]
impl CredentialSource for RotatingToken {
    async fn access_token(&self) -> Result<Option<SecretString>, CredentialError> {
        let token = if self.refreshes.load(Ordering::SeqCst) > 0 { "good" } else { "stale" };
        Ok(Some(SecretString::from(token)))
    }

    async fn refresh_after_unauthorized(&self) -> Result<Option<SecretString>, CredentialError> {
        if !self.can_refresh {
            return Ok(None);
        }
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        Ok(Some(SecretString::from("good")))
    }
}

#[tokio::test]
async fn the_host_attaches_the_token_and_refreshes_once_after_a_401() {
    let server = EgressServer::start().await;
    let plugin = hostile_reaching(&server, "").await;
    let url = format!("get:{}", server.url("/auth"));

    let source = Arc::new(RotatingToken { refreshes: AtomicU32::new(0), can_refresh: true });
    let ctx = CallContext { credentials: Some(source.clone()), ..CallContext::detached() };
    assert_eq!(attack_with(&plugin, ctx, &url).await, Ok(Ok("status:200:0".to_owned())));
    assert_eq!(source.refreshes.load(Ordering::SeqCst), 1);

    // Without a way to refresh, the 401 reaches the plugin.
    let stuck = Arc::new(RotatingToken { refreshes: AtomicU32::new(0), can_refresh: false });
    let ctx = CallContext { credentials: Some(stuck), ..CallContext::detached() };
    assert_eq!(attack_with(&plugin, ctx, &url).await, Ok(Ok("status:401:0".to_owned())));

    // Without credentials nothing is attached.
    assert_eq!(attack(&plugin, &url).await, Ok(Ok("status:401:0".to_owned())));
}

#[tokio::test]
async fn the_call_slot_semaphore_bounds_concurrency_without_failing_calls() {
    // 16 slots (see `loader`), 40 concurrent calls: all succeed, some wait.
    let plugin = Arc::new(load(hostile(), operator("")).await);
    let calls = (0..40).map(|_| {
        let plugin = plugin.clone();
        tokio::spawn(async move { attack(&plugin, "ok").await })
    });
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(Ok("ok".to_owned())));
    }
}
