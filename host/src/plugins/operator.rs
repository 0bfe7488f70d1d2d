//! The operator's say over plugins: limits, egress and settings per plugin, with defaults for all.
//!
//! Read from the `[plugin_defaults]` and `[plugins.<slug>]` tables of the configuration file;
//! secrets also from `CRMHOST_<SLUG>_CLIENT_SECRET`. A plugin's declared allowed hosts can be
//! replaced (`allowed_hosts`, to narrow or pin them) or extended (`extra_allowed_hosts`).

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use super::capability::secrets::PluginSecrets;
use super::egress::{EgressPolicy, HostPattern};
use super::limits::PluginLimits;
use crate::domain::PluginSlug;

/// Operator settings for one plugin (or for all, as defaults). Every field is optional; unset
/// fields fall back to `[plugin_defaults]`, then to the built-in defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginOverrides {
    /// See [`PluginLimits::memory_bytes`].
    pub memory_bytes: Option<u64>,
    /// See [`PluginLimits::cpu_ms`].
    pub cpu_ms: Option<u64>,
    /// See [`PluginLimits::wall_ms`].
    pub wall_ms: Option<u64>,
    /// See [`PluginLimits::http_request_bytes`].
    pub http_request_bytes: Option<u64>,
    /// See [`PluginLimits::http_response_bytes`].
    pub http_response_bytes: Option<u64>,
    /// See [`PluginLimits::http_timeout_ms`].
    pub http_timeout_ms: Option<u64>,
    /// See [`PluginLimits::http_requests_per_call`].
    pub http_requests_per_call: Option<u32>,
    /// See [`PluginLimits::log_lines_per_call`].
    pub log_lines_per_call: Option<u32>,
    /// Replaces the plugin's declared allowed hosts.
    pub allowed_hosts: Option<Vec<String>>,
    /// Added to the allowed hosts.
    #[serde(default)]
    pub extra_allowed_hosts: Vec<String>,
    /// Allow private, loopback and link-local addresses (tests, sandbox, on-premise CRMs).
    pub allow_private_networks: Option<bool>,
    /// Allow plain `http://` (only sensible together with loopback emulators).
    pub allow_http: Option<bool>,
    /// Connection facts every connection of this plugin gets (`api_version`, `base_url`, ...).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secrets the plugin may use through `secrets.hmac-sha256`, by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretString>,
    /// OAuth endpoints and client credentials replacing what the plugin describes (sandbox, a
    /// Salesforce sandbox org at test.salesforce.com, a My Domain login host).
    pub oauth: Option<OAuthOverrides>,
    /// The catalogue category (`crm` unless set).
    pub category: Option<super::branding::Category>,
    /// An SVG logo for the catalogue, replacing the plugin's own (a path, relative to the working
    /// directory). Only per plugin: a default logo for every plugin would name none of them.
    pub logo: Option<std::path::PathBuf>,
}

/// Operator overrides of a plugin's OAuth settings; unset fields keep the plugin's values.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthOverrides {
    /// Authorization endpoint.
    pub authorize_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Revocation endpoint.
    pub revoke_url: Option<String>,
    /// The OAuth client id (otherwise `CRMHOST_<SLUG>_CLIENT_ID`).
    pub client_id: Option<String>,
}

/// Operator settings for every plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorPluginConfig {
    /// Applies to every plugin.
    #[serde(default)]
    pub plugin_defaults: PluginOverrides,
    /// Per plugin, by slug.
    #[serde(default)]
    pub plugins: BTreeMap<PluginSlug, PluginOverrides>,
}

/// What the operator's settings resolve to for one plugin.
#[derive(Debug, Clone)]
pub struct ResolvedPluginPolicy {
    /// Sandbox limits.
    pub limits: PluginLimits,
    /// Egress.
    pub egress: EgressPolicy,
    /// Default connection facts.
    pub settings: BTreeMap<String, String>,
    /// Secrets.
    pub secrets: PluginSecrets,
    /// OAuth overrides.
    pub oauth: OAuthOverrides,
}

impl OperatorPluginConfig {
    /// The branding settings of `slug` (a category may be set for all plugins, a logo only per plugin).
    pub fn branding(&self, slug: &PluginSlug) -> super::branding::BrandingOverrides<'_> {
        let own = self.plugins.get(slug);
        super::branding::BrandingOverrides {
            category: own.and_then(|o| o.category).or(self.plugin_defaults.category),
            logo: own.and_then(|o| o.logo.as_deref()),
        }
    }

    /// Resolves the policy of `slug`, given the hosts it declared.
    pub fn resolve(
        &self,
        slug: &PluginSlug,
        declared_hosts: &[String],
        max_memory_bytes: u64,
    ) -> Result<ResolvedPluginPolicy, String> {
        let empty = PluginOverrides::default();
        let own = self.plugins.get(slug).unwrap_or(&empty);
        let all = &self.plugin_defaults;
        let base = PluginLimits::default();
        let limits = PluginLimits {
            memory_bytes: own.memory_bytes.or(all.memory_bytes).unwrap_or(base.memory_bytes),
            cpu_ms: own.cpu_ms.or(all.cpu_ms).unwrap_or(base.cpu_ms),
            wall_ms: own.wall_ms.or(all.wall_ms).unwrap_or(base.wall_ms),
            http_request_bytes: own.http_request_bytes.or(all.http_request_bytes).unwrap_or(base.http_request_bytes),
            http_response_bytes: own
                .http_response_bytes
                .or(all.http_response_bytes)
                .unwrap_or(base.http_response_bytes),
            http_timeout_ms: own.http_timeout_ms.or(all.http_timeout_ms).unwrap_or(base.http_timeout_ms),
            http_requests_per_call: own
                .http_requests_per_call
                .or(all.http_requests_per_call)
                .unwrap_or(base.http_requests_per_call),
            log_lines_per_call: own.log_lines_per_call.or(all.log_lines_per_call).unwrap_or(base.log_lines_per_call),
        };
        limits.validate(max_memory_bytes)?;

        let hosts = own.allowed_hosts.as_deref().or(all.allowed_hosts.as_deref()).unwrap_or(declared_hosts);
        let patterns = hosts
            .iter()
            .chain(&all.extra_allowed_hosts)
            .chain(&own.extra_allowed_hosts)
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()?;
        let egress = EgressPolicy::new(
            patterns,
            own.allow_private_networks.or(all.allow_private_networks).unwrap_or(false),
            own.allow_http.or(all.allow_http).unwrap_or(false),
        );

        let mut settings = all.settings.clone();
        settings.extend(own.settings.clone());
        let mut secrets = all.secrets.clone();
        secrets.extend(own.secrets.clone());
        let oauth = own.oauth.clone().unwrap_or_default();
        for url in [&oauth.authorize_url, &oauth.token_url, &oauth.revoke_url].into_iter().flatten() {
            url::Url::parse(url).map_err(|e| format!("oauth URL `{url}` is not a URL: {e}"))?;
        }
        Ok(ResolvedPluginPolicy { limits, egress, settings, secrets: PluginSecrets::new(secrets), oauth })
    }

    /// Adds the client secrets the environment holds (`CRMHOST_<SLUG>_CLIENT_SECRET` →
    /// `client_secret`) for any slug, bundled or not: a plugin dropped into the plugins directory
    /// finds its secret without a configuration block. The environment wins over the file.
    pub fn add_env_secrets(&mut self) {
        // `vars_os`: a variable that is not Unicode (`std::env::vars` would panic on it) is not ours.
        let vars =
            std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
        self.add_secrets_from(vars);
    }

    /// [`OperatorPluginConfig::add_env_secrets`] over the given variables.
    fn add_secrets_from(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in vars {
            let Some(slug) = slug_of_secret_variable(&name) else { continue };
            if !value.is_empty() {
                self.plugins
                    .entry(slug)
                    .or_default()
                    .secrets
                    .insert("client_secret".to_owned(), SecretString::from(value));
            }
        }
    }
}

/// The plugin a `CRMHOST_<SLUG>_CLIENT_SECRET` variable is for (slugs are lowercase letters,
/// digits and `-`, which [`PluginSlug::env_name`] writes as upper case and `_`).
fn slug_of_secret_variable(name: &str) -> Option<PluginSlug> {
    let env_name = name.strip_prefix("CRMHOST_")?.strip_suffix("_CLIENT_SECRET")?;
    let slug = PluginSlug::parse(&env_name.to_ascii_lowercase().replace('_', "-")).ok()?;
    (slug.env_name() == env_name).then_some(slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    use secrecy::ExposeSecret;

    fn slug(s: &str) -> PluginSlug {
        PluginSlug::parse(s).unwrap()
    }

    #[test]
    fn client_secrets_come_from_the_environment_for_any_slug_and_win_over_the_file() {
        let mut config: OperatorPluginConfig =
            toml::from_str("[plugins.hubspot.secrets]\nclient_secret = \"from-file\"").unwrap();
        let vars = [
            ("CRMHOST_HUBSPOT_CLIENT_SECRET", "from-env"),
            ("CRMHOST_ACME_CRM_CLIENT_SECRET", "acme"),
            ("CRMHOST_EMPTY_CLIENT_SECRET", ""),
            ("CRMHOST_lower_CLIENT_SECRET", "not a slug's spelling"),
            ("CRMHOST_MASTER_KEY", "not a client secret"),
        ];
        config.add_secrets_from(vars.map(|(k, v)| (k.to_owned(), v.to_owned())));

        let secret = |s: &str| {
            config
                .plugins
                .get(&slug(s))
                .and_then(|p| p.secrets.get("client_secret"))
                .map(|v| v.expose_secret().to_owned())
        };
        assert_eq!(secret("hubspot").as_deref(), Some("from-env"));
        assert_eq!(secret("acme-crm").as_deref(), Some("acme"), "a plugin no file names gets its secret");
        assert_eq!(secret("empty"), None);
        assert_eq!(config.plugins.len(), 2, "{:?}", config.plugins.keys().collect::<Vec<_>>());
    }

    #[test]
    fn plugin_settings_override_defaults_which_override_built_ins() {
        let config: OperatorPluginConfig = toml::from_str(
            r#"
            [plugin_defaults]
            cpu_ms = 1000
            wall_ms = 2000
            [plugins.hubspot]
            cpu_ms = 500
            "#,
        )
        .unwrap();
        let p = config.resolve(&slug("hubspot"), &[], 256 << 20).unwrap();
        assert_eq!((p.limits.cpu_ms, p.limits.wall_ms), (500, 2000));
        assert_eq!(p.limits.memory_bytes, PluginLimits::default().memory_bytes);
    }

    #[test]
    fn allowed_hosts_can_be_replaced_or_extended() {
        let config: OperatorPluginConfig = toml::from_str(
            r#"
            [plugins.a1]
            allowed_hosts = ["only.example.com"]
            [plugins.b1]
            extra_allowed_hosts = ["127.0.0.1:9000"]
            "#,
        )
        .unwrap();
        let declared = vec!["api.hubapi.com".to_owned()];
        let a = config.resolve(&slug("a1"), &declared, 256 << 20).unwrap();
        let hosts: Vec<String> = a.egress.hosts().iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["only.example.com"]);
        let b = config.resolve(&slug("b1"), &declared, 256 << 20).unwrap();
        let hosts: Vec<String> = b.egress.hosts().iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["api.hubapi.com", "127.0.0.1:9000"]);
    }

    #[test]
    fn unknown_keys_and_bad_hosts_are_errors() {
        assert!(toml::from_str::<OperatorPluginConfig>("[plugins.x1]\ncpu = 1").is_err());
        let config: OperatorPluginConfig =
            toml::from_str("[plugins.x1]\nextra_allowed_hosts = [\"https://x\"]").unwrap();
        assert!(config.resolve(&slug("x1"), &[], 256 << 20).is_err());
    }
}
