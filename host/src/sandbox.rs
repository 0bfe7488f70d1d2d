//! `crmhost serve --sandbox`: both CRM emulators (`crm-sim`) in-process on loopback — on the two
//! ports after crmhost's own when they are free (so a restarted sandbox keeps its addresses and its
//! stored connections still point at them), else on free ports — seeded with sample records, and the bundled plugins pointed at them: OAuth endpoints and the
//! emulators' default client (`crm-sim-client` / `crm-sim-secret`), API base URLs, and an egress
//! policy that allows exactly the emulators' loopback addresses over plain HTTP.

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
    /// The Salesforce emulator (login host and instance).
    pub salesforce_url: String,
    /// The HubSpot emulator (API and OAuth).
    pub hubspot_url: String,
    /// The OAuth client both emulators know.
    pub oauth_client_id: String,
    /// Where to look at the emulators' records, calls and knobs.
    pub state_urls: Vec<String>,
}

/// Sample records each emulator starts with.
const SEED: &[(&str, usize)] =
    &[("contact", 25), ("lead", 10), ("account", 10), ("opportunity", 10), ("company", 10), ("deal", 10)];

/// The loopback addresses after crmhost's port (`8787` → `8788`, `8789`); none for port 0 (a
/// port picked at start would not be the same next time anyway).
fn steady_ports(server_port: u16) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
    let first = server_port.checked_add(1).filter(|_| server_port != 0)?;
    let second = first.checked_add(1)?;
    let at = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    Some((at(first), at(second)))
}

impl Sandbox {
    /// Starts both emulators: on the two loopback ports after `server_port` when it is set and
    /// they are free, else on free ports.
    pub async fn start(server_port: u16) -> std::io::Result<Self> {
        let seeded = || crm_sim::SimOptions {
            seed_records: SEED
                .iter()
                .map(|(entity, count)| crm_sim::SeedSpec { entity: (*entity).to_owned(), count: *count })
                .collect(),
            ..crm_sim::SimOptions::both_on_free_ports()
        };
        if let Some((salesforce, hubspot)) = steady_ports(server_port) {
            let options = crm_sim::SimOptions { salesforce: Some(salesforce), hubspot: Some(hubspot), ..seeded() };
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
        let salesforce_url = self.handle.salesforce_url().unwrap_or_default();
        let hubspot_url = self.handle.hubspot_url().unwrap_or_default();
        SandboxInfo {
            state_urls: vec![format!("{salesforce_url}/__sim/state"), format!("{hubspot_url}/__sim/state")],
            salesforce_url,
            hubspot_url,
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

/// Points the bundled plugins at running emulators: their OAuth endpoints and default client, API
/// base URLs, and an egress policy allowing exactly the emulators' loopback addresses over HTTP.
/// (Tests use this to run several crmhost instances against one pair of emulators.)
pub fn point_plugins_at(handle: &crm_sim::SimHandle, config: &mut OperatorPluginConfig) {
    point_plugins_at_urls(handle.salesforce_url().as_deref(), handle.hubspot_url().as_deref(), config);
}

/// [`point_plugins_at`] for emulators known by their base URLs (`http://127.0.0.1:PORT`), such as
/// `crm-sim` running as its own process.
pub fn point_plugins_at_urls(salesforce: Option<&str>, hubspot: Option<&str>, config: &mut OperatorPluginConfig) {
    let client = crm_sim::OAuthClient::default_client();
    let salesforce = salesforce.map(|base| {
        let oauth = OAuthOverrides {
            authorize_url: Some(format!("{base}/services/oauth2/authorize")),
            token_url: Some(format!("{base}/services/oauth2/token")),
            revoke_url: Some(format!("{base}/services/oauth2/revoke")),
            client_id: Some(client.id.clone()),
        };
        ("salesforce", base, oauth, "login_url")
    });
    let hubspot = hubspot.map(|base| {
        let oauth = OAuthOverrides {
            authorize_url: Some(format!("{base}/oauth/authorize")),
            token_url: Some(format!("{base}/oauth/v3/token")),
            revoke_url: Some(format!("{base}/oauth/v3/token/revoke")),
            client_id: Some(client.id.clone()),
        };
        ("hubspot", base, oauth, "base_url")
    });
    for (slug, base, oauth, setting) in salesforce.into_iter().chain(hubspot) {
        let Ok(slug) = PluginSlug::parse(slug) else { continue };
        let Some(port) = url::Url::parse(base).ok().and_then(|u| u.port_or_known_default()) else { continue };
        let entry = config.plugins.entry(slug).or_default();
        entry.extra_allowed_hosts.push(format!("127.0.0.1:{port}"));
        entry.allow_http = Some(true);
        entry.allow_private_networks = Some(true);
        entry.settings.insert(setting.to_owned(), base.to_owned());
        entry.secrets.insert("client_secret".to_owned(), secrecy::SecretString::from(client.secret.clone()));
        entry.oauth = Some(oauth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port whose next two are free right now.
    fn port_with_two_free_after() -> u16 {
        loop {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            let next_free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            if port < 65000 && next_free(port + 1) && next_free(port + 2) {
                return port;
            }
        }
    }

    #[test]
    fn the_steady_ports_follow_crmhosts_own() {
        let (sf, hs) = steady_ports(8787).unwrap();
        assert_eq!((sf.port(), hs.port()), (8788, 8789));
        assert!(sf.ip().is_loopback());
        assert_eq!(steady_ports(0), None, "a port picked at start is not steady");
        assert_eq!(steady_ports(65535), None);
    }

    #[tokio::test]
    async fn a_sandbox_takes_the_ports_after_crmhosts_or_free_ones_when_those_are_taken() {
        let port = port_with_two_free_after();
        let first = Sandbox::start(port).await.unwrap();
        let info = first.info();
        assert_eq!(info.salesforce_url, format!("http://127.0.0.1:{}", port + 1));
        assert_eq!(info.hubspot_url, format!("http://127.0.0.1:{}", port + 2));
        // While the first holds them, a second sandbox takes free ports instead of failing.
        let second = Sandbox::start(port).await.unwrap();
        assert_ne!(second.info().salesforce_url, info.salesforce_url);
        drop(second);
        drop(first);
    }
}
