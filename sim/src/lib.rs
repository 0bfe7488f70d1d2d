//! # crm-sim: faithful Salesforce, HubSpot and Pipedrive emulators
//!
//! In-memory, deterministic (seeded ids and tokens, a controllable clock) emulators that follow
//! the real wire protocols (`shared/reference/crm-apis.md`) closely enough for the CRMs' official
//! clients. They back crmhost's test suite, the `crmhost serve --sandbox` demo and the plugin
//! conformance check.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = crm_sim::start(crm_sim::SimOptions::both_on_free_ports()).await?;
//! println!("Salesforce at {}", sim.salesforce_url().unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! Every listener also serves `/__sim/…` (see [`admin`]) to turn knobs, seed records, move the
//! clock and read state.

pub mod acme;
pub mod admin;
pub mod clock;
pub mod hubspot;
pub mod ids;
pub mod knobs;
pub mod oauth;
pub mod pipedrive;
pub mod salesforce;
mod server;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use clock::Clock;
use ids::TokenGen;
use knobs::Knobs;
pub use oauth::OAuthClient;

/// Which CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crm {
    /// Salesforce.
    Salesforce,
    /// HubSpot.
    Hubspot,
    /// Pipedrive.
    Pipedrive,
    /// Acme, the SDK's example CRM (a mock for new plugins).
    Acme,
}

impl Crm {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Salesforce => "salesforce",
            Self::Hubspot => "hubspot",
            Self::Pipedrive => "pipedrive",
            Self::Acme => "acme",
        }
    }
}

/// Where a crmhost plugin finds an emulated CRM: what an operator would configure to point the
/// CRM's plugin at this emulator (its base URL setting and OAuth endpoints). crmhost's sandbox
/// applies these without knowing any CRM itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginWiring {
    /// The plugin's slug.
    pub slug: &'static str,
    /// The emulator's base URL, `http(s)://127.0.0.1:PORT`.
    pub base_url: String,
    /// The connection setting the plugin reads its API (or login) base URL from.
    pub base_url_setting: &'static str,
    /// The authorize endpoint.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The revocation endpoint.
    pub revoke_url: String,
}

impl Crm {
    /// How the CRM's plugin reaches its emulator at `base_url`.
    pub fn plugin_wiring(self, base_url: &str) -> PluginWiring {
        let (setting, authorize, token, revoke) = match self {
            Self::Salesforce => {
                ("login_url", "/services/oauth2/authorize", "/services/oauth2/token", "/services/oauth2/revoke")
            }
            Self::Hubspot => ("base_url", "/oauth/authorize", "/oauth/v3/token", "/oauth/v3/token/revoke"),
            Self::Pipedrive | Self::Acme => ("base_url", "/oauth/authorize", "/oauth/token", "/oauth/revoke"),
        };
        PluginWiring {
            slug: self.as_str(),
            base_url: base_url.to_owned(),
            base_url_setting: setting,
            authorize_url: format!("{base_url}{authorize}"),
            token_url: format!("{base_url}{token}"),
            revoke_url: format!("{base_url}{revoke}"),
        }
    }
}

/// Records to create at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// `contact`, `lead`, `account`, `opportunity` (Salesforce), `contact`, `company`, `deal` (HubSpot).
    pub entity: String,
    /// How many.
    pub count: usize,
}

/// How to start the emulators.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where Salesforce listens (`None`: not started). Port 0 picks a free port.
    pub salesforce: Option<SocketAddr>,
    /// Where HubSpot listens (`None`: not started).
    pub hubspot: Option<SocketAddr>,
    /// Where Pipedrive listens (`None`: not started).
    pub pipedrive: Option<SocketAddr>,
    /// Where Acme, the SDK's example CRM, listens (`None`: not started).
    pub acme: Option<SocketAddr>,
    /// Seed for ids, tokens and fault injection.
    pub seed: u64,
    /// OAuth clients, in addition to the default `crm-sim-client`.
    pub clients: Vec<OAuthClient>,
    /// Initial knobs.
    pub knobs: Knobs,
    /// Records to create at start, in every started CRM that has the entity.
    pub seed_records: Vec<SeedSpec>,
    /// Serve https with a self-signed certificate written (PEM) to this path.
    pub tls_cert: Option<std::path::PathBuf>,
}

impl SimOptions {
    /// Salesforce and HubSpot on free loopback ports, default knobs, seed 1.
    pub fn both_on_free_ports() -> Self {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self {
            salesforce: Some(any),
            hubspot: Some(any),
            pipedrive: None,
            acme: None,
            seed: 1,
            clients: Vec::new(),
            knobs: Knobs::default(),
            seed_records: Vec::new(),
            tls_cert: None,
        }
    }

    /// Every emulator (Salesforce, HubSpot, Pipedrive) on free loopback ports.
    pub fn all_on_free_ports() -> Self {
        Self { pipedrive: Some(([127, 0, 0, 1], 0).into()), ..Self::both_on_free_ports() }
    }

    /// Acme, the SDK's example CRM, alone on a free loopback port.
    pub fn acme_on_a_free_port() -> Self {
        Self { salesforce: None, hubspot: None, acme: Some(([127, 0, 0, 1], 0).into()), ..Self::both_on_free_ports() }
    }
}

/// The shared state of both emulators.
pub struct Sim {
    /// The clock every timestamp comes from.
    pub clock: Clock,
    knobs: RwLock<Knobs>,
    tokens: Mutex<TokenGen>,
    calls: Mutex<BTreeMap<String, u64>>,
    salesforce: Mutex<salesforce::SalesforceState>,
    hubspot: Mutex<hubspot::HubspotState>,
    pipedrive: Mutex<pipedrive::PipedriveState>,
    acme: Mutex<acme::AcmeState>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("knobs", &self.knobs()).finish_non_exhaustive()
    }
}

/// A plausible email address: `local@domain.tld`, no spaces. Both CRMs reject what fails this
/// (Salesforce `INVALID_EMAIL_ADDRESS`, HubSpot `INVALID_EMAIL`).
pub(crate) fn is_valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

/// Locks a mutex, recovering from poisoning (a panicking handler must not wedge the emulator).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sim {
    fn new(options: &SimOptions) -> Self {
        let mut clients = vec![OAuthClient::default_client()];
        clients.extend(options.clients.iter().cloned());
        Self {
            clock: Clock::default(),
            knobs: RwLock::new(options.knobs.clone()),
            tokens: Mutex::new(TokenGen::new(options.seed)),
            calls: Mutex::new(BTreeMap::new()),
            salesforce: Mutex::new(salesforce::SalesforceState::new(&clients)),
            hubspot: Mutex::new(hubspot::HubspotState::new(&clients)),
            pipedrive: Mutex::new(pipedrive::PipedriveState::new(&clients)),
            acme: Mutex::new(acme::AcmeState::new(&clients)),
        }
    }

    /// The current knobs.
    pub fn knobs(&self) -> Knobs {
        self.knobs.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Replaces the knobs.
    pub fn set_knobs(&self, knobs: Knobs) -> Result<(), String> {
        knobs.validate()?;
        if let Ok(mut current) = self.knobs.write() {
            *current = knobs;
        }
        Ok(())
    }

    /// Changes some knobs.
    pub fn update_knobs(&self, change: impl FnOnce(&mut Knobs)) -> Result<(), String> {
        let mut knobs = self.knobs();
        change(&mut knobs);
        self.set_knobs(knobs)
    }

    /// API calls so far by `"<crm> <METHOD> <route>"`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }

    /// API calls to one route (`"salesforce GET /services/data/{version}/query"`).
    pub fn call_count(&self, key: &str) -> u64 {
        lock(&self.calls).get(key).copied().unwrap_or(0)
    }

    pub(crate) fn count_call(&self, key: String) {
        *lock(&self.calls).entry(key).or_default() += 1;
    }

    pub(crate) fn token_gen(&self) -> MutexGuard<'_, TokenGen> {
        lock(&self.tokens)
    }

    /// The Salesforce state (records, tokens), locked.
    pub fn salesforce(&self) -> MutexGuard<'_, salesforce::SalesforceState> {
        lock(&self.salesforce)
    }

    /// The HubSpot state (records, tokens), locked.
    pub fn hubspot(&self) -> MutexGuard<'_, hubspot::HubspotState> {
        lock(&self.hubspot)
    }

    /// The Pipedrive state (records, tokens), locked.
    pub fn pipedrive(&self) -> MutexGuard<'_, pipedrive::PipedriveState> {
        lock(&self.pipedrive)
    }

    /// Acme's state (contacts, tokens), locked.
    pub fn acme(&self) -> MutexGuard<'_, acme::AcmeState> {
        lock(&self.acme)
    }

    /// Starts (or, with `None`, stops) delivering HubSpot webhook events to a target.
    pub fn set_webhook_target(&self, target: Option<hubspot::webhooks::WebhookTarget>) {
        self.hubspot().webhooks.target = target;
    }

    /// Revokes a token of any CRM; returns whether it existed.
    pub fn revoke_token(&self, token: &str) -> bool {
        let sf = self.salesforce().oauth.revoke(token);
        let hs = self.hubspot().oauth.revoke(token);
        let pd = self.pipedrive().oauth.revoke(token);
        let acme = self.acme().oauth.revoke(token);
        sf || hs || pd || acme
    }

    /// Creates `count` records of `entity` in every CRM that has it; returns how many were made.
    pub fn seed(&self, entity: &str, count: usize) -> Result<usize, String> {
        let now = self.clock.now();
        let mut made = 0;
        let mut known = false;
        if let Some(n) = self.salesforce().seed(entity, count, now) {
            made += n;
            known = true;
        }
        if let Some(n) = self.hubspot().seed(entity, count, now) {
            made += n;
            known = true;
        }
        // Pipedrive joined later: it is seeded only when it runs, so the others' seeding costs the same.
        let mut pipedrive = self.pipedrive();
        if !pipedrive.base_url.is_empty()
            && let Some(n) = pipedrive.seed(entity, count, now)
        {
            made += n;
            known = true;
        }
        drop(pipedrive);
        let mut acme = self.acme();
        if !acme.base_url.is_empty()
            && let Some(n) = acme.seed(entity, count, now)
        {
            made += n;
            known = true;
        }
        drop(acme);
        if known { Ok(made) } else { Err(format!("no emulated CRM has an entity named `{entity}`")) }
    }
}

/// Running emulators. Dropping the handle stops them.
pub struct SimHandle {
    sim: Arc<Sim>,
    salesforce: Option<SocketAddr>,
    hubspot: Option<SocketAddr>,
    pipedrive: Option<SocketAddr>,
    acme: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    scheme: &'static str,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("salesforce", &self.salesforce)
            .field("hubspot", &self.hubspot)
            .field("pipedrive", &self.pipedrive)
            .field("acme", &self.acme)
            .finish()
    }
}

impl SimHandle {
    /// The shared state, for assertions and knobs.
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// `http(s)://127.0.0.1:PORT` of the Salesforce emulator (login host and instance alike).
    pub fn salesforce_url(&self) -> Option<String> {
        self.salesforce.map(|a| format!("{}://{a}", self.scheme))
    }

    /// `http(s)://127.0.0.1:PORT` of the HubSpot emulator (API, OAuth and the authorize page).
    pub fn hubspot_url(&self) -> Option<String> {
        self.hubspot.map(|a| format!("{}://{a}", self.scheme))
    }

    /// How each running emulator's plugin reaches it.
    pub fn plugin_wirings(&self) -> Vec<PluginWiring> {
        let running = [
            (Crm::Salesforce, self.salesforce_url()),
            (Crm::Hubspot, self.hubspot_url()),
            (Crm::Pipedrive, self.pipedrive_url()),
            (Crm::Acme, self.acme_url()),
        ];
        running.into_iter().filter_map(|(crm, url)| url.map(|url| crm.plugin_wiring(&url))).collect()
    }

    /// `http(s)://127.0.0.1:PORT` of the Pipedrive emulator (API, OAuth and the authorize page).
    pub fn pipedrive_url(&self) -> Option<String> {
        self.pipedrive.map(|a| format!("{}://{a}", self.scheme))
    }

    /// `http(s)://127.0.0.1:PORT` of Acme, the SDK's example CRM.
    pub fn acme_url(&self) -> Option<String> {
        self.acme.map(|a| format!("{}://{a}", self.scheme))
    }

    /// The Salesforce listener's address.
    pub fn salesforce_addr(&self) -> Option<SocketAddr> {
        self.salesforce
    }

    /// The HubSpot listener's address.
    pub fn hubspot_addr(&self) -> Option<SocketAddr> {
        self.hubspot
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the emulators the options ask for.
pub async fn start(options: SimOptions) -> std::io::Result<SimHandle> {
    options.knobs.validate().map_err(std::io::Error::other)?;
    let sim = Arc::new(Sim::new(&options));
    let tls = options.tls_cert.as_deref().map(tls::self_signed).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let serve = |listener, router| match &tls {
        Some(material) => server::spawn_tls(listener, router, material.clone()),
        None => server::spawn(listener, router),
    };
    let mut tasks = Vec::new();
    let mut salesforce_addr = None;
    let mut hubspot_addr = None;
    if let Some(addr) = options.salesforce {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        sim.salesforce().base_url = format!("{scheme}://{bound}");
        tasks.push(serve(listener, salesforce::router(sim.clone())));
        tasks.push(salesforce::notifications::spawn_delivery(sim.clone()));
        salesforce_addr = Some(bound);
    }
    if let Some(addr) = options.hubspot {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        sim.hubspot().base_url = format!("{scheme}://{bound}");
        tasks.push(serve(listener, hubspot::router(sim.clone())));
        tasks.push(hubspot::webhooks::spawn_delivery(sim.clone()));
        hubspot_addr = Some(bound);
    }
    let mut pipedrive_addr = None;
    if let Some(addr) = options.pipedrive {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        sim.pipedrive().base_url = format!("{scheme}://{bound}");
        tasks.push(serve(listener, pipedrive::router(sim.clone())));
        pipedrive_addr = Some(bound);
    }
    let mut acme_addr = None;
    if let Some(addr) = options.acme {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        sim.acme().base_url = format!("{scheme}://{bound}");
        tasks.push(serve(listener, acme::router(sim.clone())));
        acme_addr = Some(bound);
    }
    for spec in &options.seed_records {
        sim.seed(&spec.entity, spec.count).map_err(std::io::Error::other)?;
    }
    Ok(SimHandle {
        sim,
        salesforce: salesforce_addr,
        hubspot: hubspot_addr,
        pipedrive: pipedrive_addr,
        acme: acme_addr,
        tasks,
        scheme,
    })
}
