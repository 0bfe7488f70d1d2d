//! `crmhost serve --sandbox`: the CRM emulators (`crm-sim`) in-process on loopback — on the ports
//! after crmhost's own when they are free (so a restarted sandbox keeps its addresses and its
//! stored connections still point at them), else on free ports — seeded with sample records, and
//! each emulated CRM's plugin pointed at its emulator as the emulator describes
//! ([`crm_sim::PluginWiring`]: OAuth endpoints, the base-URL setting), with the emulators' default
//! client (`crm-sim-client` / `crm-sim-secret`) and an egress policy that allows exactly the
//! emulator's loopback address over plain HTTP. Nothing here knows a CRM by name.

use serde::Serialize;

use crate::domain::PluginSlug;
use crate::plugins::OperatorPluginConfig;
use crate::plugins::operator::OAuthOverrides;

/// Running emulators; dropping this stops them.
pub struct Sandbox {
    handle: crm_sim::SimHandle,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("info", &self.info()).finish()
    }
}

/// What a sandbox user needs to know (served at `GET /api/v1/sandbox`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SandboxInfo {
    /// Each emulator's base URL, by the slug of the plugin it serves.
    pub emulators: std::collections::BTreeMap<String, String>,
    /// The OAuth client every emulator knows.
    pub oauth_client_id: String,
    /// Where to look at the emulators' records, calls and knobs.
    pub state_urls: Vec<String>,
}

/// Sample records each emulator starts with.
const SEED: &[(&str, usize)] =
    &[("contact", 25), ("lead", 10), ("account", 10), ("opportunity", 10), ("company", 10), ("deal", 10)];

/// The loopback addresses after crmhost's port (`8787` → Salesforce `8788`, HubSpot `8789`,
/// Pipedrive `8790`); none for port 0 (a port picked at start would not be the same next time
/// anyway).
fn steady_ports(server_port: u16) -> Option<[std::net::SocketAddr; 3]> {
    let first = server_port.checked_add(1).filter(|_| server_port != 0)?;
    let last = first.checked_add(2)?;
    let at = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    Some([at(first), at(first + 1), at(last)])
}

impl Sandbox {
    /// Starts the emulators: on the loopback ports after `server_port` when it is set and they are
    /// free, else on free ports.
    pub async fn start(server_port: u16) -> std::io::Result<Self> {
        let seeded = || crm_sim::SimOptions {
            seed_records: SEED
                .iter()
                .map(|(entity, count)| crm_sim::SeedSpec { entity: (*entity).to_owned(), count: *count })
                .collect(),
            ..crm_sim::SimOptions::all_on_free_ports()
        };
        if let Some([salesforce, hubspot, pipedrive]) = steady_ports(server_port) {
            let options = crm_sim::SimOptions {
                salesforce: Some(salesforce),
                hubspot: Some(hubspot),
                pipedrive: Some(pipedrive),
                ..seeded()
            };
            match crm_sim::start(options).await {
                Ok(handle) => return Ok(Self { handle }),
                Err(err) => {
                    tracing::info!(error = %err, "sandbox: the ports after crmhost's are taken; using free ones")
                }
            }
        }
        Ok(Self { handle: crm_sim::start(seeded()).await? })
    }

    /// The emulators' addresses and client.
    pub fn info(&self) -> SandboxInfo {
        let wirings = self.handle.plugin_wirings();
        SandboxInfo {
            state_urls: wirings.iter().map(|w| format!("{}/__sim/state", w.base_url)).collect(),
            emulators: wirings.into_iter().map(|w| (w.slug.to_owned(), w.base_url)).collect(),
            oauth_client_id: crm_sim::OAuthClient::default_client().id,
        }
    }

    /// The emulators themselves (tests inspect their records).
    pub fn sim(&self) -> &crm_sim::SimHandle {
        &self.handle
    }

    /// Points the bundled plugins at the emulators.
    pub fn configure(&self, config: &mut OperatorPluginConfig) {
        point_plugins_at(&self.handle, config);
    }
}

/// Points each emulated CRM's plugin at its running emulator: OAuth endpoints and default client,
/// base URL, and an egress policy allowing exactly the emulator's loopback address over HTTP.
/// (Tests use this to run several crmhost instances against one set of emulators.)
pub fn point_plugins_at(handle: &crm_sim::SimHandle, config: &mut OperatorPluginConfig) {
    point_plugins_at_wirings(handle.plugin_wirings(), config);
}

/// [`point_plugins_at`] for emulators described by their wirings, such as `crm-sim` running as its
/// own process (`crm_sim::Crm::…::plugin_wiring(base_url)`).
pub fn point_plugins_at_wirings(
    wirings: impl IntoIterator<Item = crm_sim::PluginWiring>,
    config: &mut OperatorPluginConfig,
) {
    for wiring in wirings {
        let Ok(slug) = PluginSlug::parse(wiring.slug) else { continue };
        point_plugin_at(&slug, wiring, config);
    }
}

/// Points the plugin `slug` at the emulator `wiring` describes (whatever the emulated CRM's own
/// plugin is called: `crmhost plugin check --against` points a third party's plugin at one).
pub fn point_plugin_at(slug: &PluginSlug, wiring: crm_sim::PluginWiring, config: &mut OperatorPluginConfig) {
    let client = crm_sim::OAuthClient::default_client();
    let Some(port) = url::Url::parse(&wiring.base_url).ok().and_then(|u| u.port_or_known_default()) else {
        return;
    };
    let entry = config.plugins.entry(slug.clone()).or_default();
    entry.extra_allowed_hosts.push(format!("127.0.0.1:{port}"));
    entry.allow_http = Some(true);
    entry.allow_private_networks = Some(true);
    entry.settings.insert(wiring.base_url_setting.to_owned(), wiring.base_url);
    entry.secrets.insert("client_secret".to_owned(), secrecy::SecretString::from(client.secret.clone()));
    entry.oauth = Some(OAuthOverrides {
        authorize_url: Some(wiring.authorize_url),
        token_url: Some(wiring.token_url),
        revoke_url: Some(wiring.revoke_url),
        client_id: Some(client.id.clone()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port whose next three are free right now.
    fn port_with_three_free_after() -> u16 {
        loop {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            let next_free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            if port < 65000 && next_free(port + 1) && next_free(port + 2) && next_free(port + 3) {
                return port;
            }
        }
    }

    #[test]
    fn the_steady_ports_follow_crmhosts_own() {
        let [sf, hs, pd] = steady_ports(8787).unwrap();
        assert_eq!((sf.port(), hs.port(), pd.port()), (8788, 8789, 8790));
        assert!(sf.ip().is_loopback());
        assert_eq!(steady_ports(0), None, "a port picked at start is not steady");
        assert_eq!(steady_ports(65535), None);
    }

    #[tokio::test]
    async fn a_sandbox_takes_the_ports_after_crmhosts_or_free_ones_when_those_are_taken() {
        let port = port_with_three_free_after();
        let first = Sandbox::start(port).await.unwrap();
        let info = first.info();
        assert_eq!(info.emulators["salesforce"], format!("http://127.0.0.1:{}", port + 1));
        assert_eq!(info.emulators["hubspot"], format!("http://127.0.0.1:{}", port + 2));
        assert_eq!(info.emulators["pipedrive"], format!("http://127.0.0.1:{}", port + 3));
        // While the first holds them, a second sandbox takes free ports instead of failing.
        let second = Sandbox::start(port).await.unwrap();
        assert_ne!(second.info().emulators["salesforce"], info.emulators["salesforce"]);
        drop(second);
        drop(first);
    }
}
