//! `crmhost serve --sandbox`: both CRM emulators (`crm-sim`) in-process on free loopback ports,
//! seeded with sample records, and the bundled plugins pointed at them: OAuth endpoints and the
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

impl Sandbox {
    /// Starts both emulators on free loopback ports.
    pub async fn start() -> std::io::Result<Self> {
        let options = crm_sim::SimOptions {
            seed_records: SEED
                .iter()
                .map(|(entity, count)| crm_sim::SeedSpec { entity: (*entity).to_owned(), count: *count })
                .collect(),
            ..crm_sim::SimOptions::both_on_free_ports()
        };
        Ok(Self { handle: crm_sim::start(options).await? })
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
    {
        let client = crm_sim::OAuthClient::default_client();
        let salesforce = handle.salesforce_url().unwrap_or_default();
        let hubspot = handle.hubspot_url().unwrap_or_default();
        let targets = [
            (
                "salesforce",
                handle.salesforce_addr(),
                OAuthOverrides {
                    authorize_url: Some(format!("{salesforce}/services/oauth2/authorize")),
                    token_url: Some(format!("{salesforce}/services/oauth2/token")),
                    revoke_url: Some(format!("{salesforce}/services/oauth2/revoke")),
                    client_id: Some(client.id.clone()),
                },
                ("login_url", salesforce.clone()),
            ),
            (
                "hubspot",
                handle.hubspot_addr(),
                OAuthOverrides {
                    authorize_url: Some(format!("{hubspot}/oauth/authorize")),
                    token_url: Some(format!("{hubspot}/oauth/v3/token")),
                    revoke_url: Some(format!("{hubspot}/oauth/v3/token/revoke")),
                    client_id: Some(client.id.clone()),
                },
                ("base_url", hubspot.clone()),
            ),
        ];
        for (slug, addr, oauth, (setting, value)) in targets {
            let Ok(slug) = PluginSlug::parse(slug) else { continue };
            let Some(addr) = addr else { continue };
            let entry = config.plugins.entry(slug).or_default();
            entry.extra_allowed_hosts.push(format!("127.0.0.1:{}", addr.port()));
            entry.allow_http = Some(true);
            entry.allow_private_networks = Some(true);
            entry.settings.insert(setting.to_owned(), value);
            entry.secrets.insert("client_secret".to_owned(), secrecy::SecretString::from(client.secret.clone()));
            entry.oauth = Some(oauth);
        }
    }
}
