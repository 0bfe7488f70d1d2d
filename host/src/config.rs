//! Configuration: command-line flags with environment fallbacks, plus an optional TOML file for
//! engine and per-plugin settings. Everything is checked here, once, so a bad setting stops
//! start-up with one line naming the setting and what to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::PluginSlug;
use crate::plugins::operator::PluginOverrides;
use crate::plugins::{EngineSettings, OperatorPluginConfig};
use crate::sync::SchedulerOptions;

/// Flags of `crmhost serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CRMHOST_BIND", default_value = "127.0.0.1:8787")]
    pub bind: SocketAddr,
    /// Database URL (`postgres://…` or `sqlite:…`); default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where crmhost keeps its SQLite database, compiled-plugin cache and key file.
    #[arg(long, env = "CRMHOST_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Directory of `.wasm` plugins to load (and watch) in addition to the bundled ones.
    #[arg(long, env = "CRMHOST_PLUGINS_DIR", default_value = "./plugins")]
    pub plugins_dir: PathBuf,
    /// Optional TOML file with `[engine]`, `[plugin_defaults]` and `[plugins.<slug>]` tables.
    #[arg(long, env = "CRMHOST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Bearer token for `/api/v1/admin/*` (at least 16 characters); the admin API is off without it.
    #[arg(long, env = "CRMHOST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Do not watch the plugins directory (reload through the admin API only).
    #[arg(long, env = "CRMHOST_NO_WATCH")]
    pub no_watch: bool,
    /// The master key for stored credentials: 32 bytes, base64. Without it a key file is generated
    /// in the data directory (0600) and a warning is logged.
    #[arg(long, env = "CRMHOST_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Earlier master keys (comma-separated base64), still accepted for reading during rotation.
    #[arg(long, env = "CRMHOST_PREVIOUS_MASTER_KEYS", hide_env_values = true)]
    pub previous_master_keys: Option<String>,
    /// Secret (at least 32 characters) for HS256 bearer tokens of the workspace API.
    #[arg(long, env = "CRMHOST_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A PEM file with an Ed25519 or RSA public key for EdDSA / RS256 bearer tokens.
    #[arg(long, env = "CRMHOST_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// The URL users' browsers reach crmhost at; OAuth redirect URIs are
    /// `<public-url>/api/v1/integrations/callback/<slug>`. Default: `http://<bind address>`.
    #[arg(long, env = "CRMHOST_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Origins (comma-separated, e.g. `https://app.example.com`) a connect request's `return_url`
    /// may point at. The public URL's own origin is always allowed.
    #[arg(long, env = "CRMHOST_ALLOWED_RETURN_ORIGINS")]
    pub allowed_return_origins: Option<String>,
    /// Start Salesforce and HubSpot emulators in-process and point the bundled plugins at them:
    /// try everything with no CRM account. Uses `<data-dir>/sandbox.db` unless DATABASE_URL is set.
    #[arg(long, env = "CRMHOST_SANDBOX")]
    pub sandbox: bool,
}

/// Engine settings of the configuration file (`[engine]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineFileSettings {
    /// Plugin calls that may run at once.
    pub max_concurrent_calls: Option<u32>,
    /// Ceiling on any plugin's memory limit.
    pub max_plugin_memory_bytes: Option<u64>,
    /// Use the pooling allocator when possible.
    pub pooling: Option<bool>,
    /// Core module instances one plugin instance may create.
    pub max_core_instances_per_plugin: Option<u32>,
}

/// Scheduler settings of the configuration file (`[scheduler]`); see [`SchedulerOptions`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerFileSettings {
    /// Run scheduled syncs in this process (false: serve the API and webhooks only).
    pub enabled: Option<bool>,
    /// Scheduled runs at once in this process.
    pub max_concurrent_runs: Option<usize>,
    /// Seconds a lease lives without renewal; another process takes over after it.
    pub lease_secs: Option<u64>,
    /// Milliseconds between looks for due integrations.
    pub tick_ms: Option<u64>,
    /// Seconds before retrying a run that failed as a whole (doubles per failure).
    pub run_retry_base_secs: Option<u64>,
    /// The longest such wait.
    pub run_retry_cap_secs: Option<u64>,
    /// Seconds before a failed record is retried (doubles per failure).
    pub record_retry_base_secs: Option<u64>,
    /// The longest such wait.
    pub record_retry_cap_secs: Option<u64>,
    /// Failures after which a record waits for a change before being retried.
    pub record_retry_max_attempts: Option<i64>,
    /// Seconds between the incremental pulls behind `realtime` (plugins without webhooks).
    pub realtime_poll_secs: Option<u64>,
    /// The same for plugins with webhooks.
    pub realtime_poll_with_webhooks_secs: Option<u64>,
    /// Seconds between deletion sweeps of an entity (0: on every incremental pull).
    pub deletion_sweep_secs: Option<u64>,
    /// Records from which a pull or push runs as a bulk job, for plugins that offer them (0: never).
    pub bulk_threshold: Option<u64>,
}

impl SchedulerFileSettings {
    /// The options, defaults filled in and ranges checked.
    pub fn resolve(&self) -> Result<SchedulerOptions, ConfigError> {
        let d = SchedulerOptions::default();
        let secs = |v: Option<u64>, default: Duration, name: &str, min: u64| -> Result<Duration, ConfigError> {
            match v {
                None => Ok(default),
                Some(s) if s >= min && s <= 7 * 24 * 3600 => Ok(Duration::from_secs(s)),
                Some(_) => Err(ConfigError(format!("[scheduler] {name}: use {min} to 604800 seconds"))),
            }
        };
        let options = SchedulerOptions {
            enabled: self.enabled.unwrap_or(d.enabled),
            tick: match self.tick_ms {
                None => d.tick,
                Some(ms) if (10..=60_000).contains(&ms) => Duration::from_millis(ms),
                Some(_) => return Err(ConfigError("[scheduler] tick_ms: use 10 to 60000".to_owned())),
            },
            max_concurrent_runs: match self.max_concurrent_runs {
                None => d.max_concurrent_runs,
                Some(n) if (1..=1_000).contains(&n) => n,
                Some(_) => return Err(ConfigError("[scheduler] max_concurrent_runs: use 1 to 1000".to_owned())),
            },
            lease: secs(self.lease_secs, d.lease, "lease_secs", 2)?,
            run_retry_base: secs(self.run_retry_base_secs, d.run_retry_base, "run_retry_base_secs", 1)?,
            run_retry_cap: secs(self.run_retry_cap_secs, d.run_retry_cap, "run_retry_cap_secs", 1)?,
            record_retry: crate::sync::RetryBackoff {
                base: secs(self.record_retry_base_secs, d.record_retry.base, "record_retry_base_secs", 1)?,
                cap: secs(self.record_retry_cap_secs, d.record_retry.cap, "record_retry_cap_secs", 1)?,
                max_attempts: match self.record_retry_max_attempts {
                    None => d.record_retry.max_attempts,
                    Some(n) if (1..=100).contains(&n) => n,
                    Some(_) => {
                        return Err(ConfigError("[scheduler] record_retry_max_attempts: use 1 to 100".to_owned()));
                    }
                },
            },
            realtime_poll: secs(self.realtime_poll_secs, d.realtime_poll, "realtime_poll_secs", 5)?,
            realtime_poll_with_webhooks: secs(
                self.realtime_poll_with_webhooks_secs,
                d.realtime_poll_with_webhooks,
                "realtime_poll_with_webhooks_secs",
                5,
            )?,
            orphan_sweep: d.orphan_sweep,
            deletion_sweep: secs(self.deletion_sweep_secs, d.deletion_sweep, "deletion_sweep_secs", 0)?,
            bulk_threshold: match self.bulk_threshold {
                None => d.bulk_threshold,
                Some(0) => None,
                Some(n) if (1..=100_000_000).contains(&n) => Some(n),
                Some(_) => {
                    return Err(ConfigError("[scheduler] bulk_threshold: use 0 (never) to 100000000".to_owned()));
                }
            },
        };
        Ok(options)
    }
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[engine]`.
    #[serde(default)]
    pub engine: EngineFileSettings,
    /// `[scheduler]`.
    #[serde(default)]
    pub scheduler: SchedulerFileSettings,
    /// `[plugin_defaults]`.
    #[serde(default)]
    pub plugin_defaults: PluginOverrides,
    /// `[plugins.<slug>]`.
    #[serde(default)]
    pub plugins: std::collections::BTreeMap<PluginSlug, PluginOverrides>,
    /// `[console]`.
    #[serde(default)]
    pub console: crate::console::ConsoleFileSettings,
    /// `[outbound_webhooks]`.
    #[serde(default)]
    pub outbound_webhooks: crate::notify::NotifyFileSettings,
    /// `[files]`.
    #[serde(default)]
    pub files: FilesFileSettings,
}

/// `[files]` of the configuration file: files attached to CRM records, served through the API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesFileSettings {
    /// The largest file the API serves, in bytes (default 100 MiB).
    pub max_download_bytes: Option<u64>,
}

/// The largest file served by default: 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    /// A database URL.
    Url(SecretString),
    /// The embedded default: a SQLite file.
    SqliteFile(PathBuf),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub bind: SocketAddr,
    /// The database.
    pub database: DatabaseTarget,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Plugins directory.
    pub plugins_dir: PathBuf,
    /// Watch the plugins directory.
    pub watch_plugins: bool,
    /// Admin API token.
    pub admin_token: Option<SecretString>,
    /// Engine settings.
    pub engine: EngineSettings,
    /// Per-plugin operator settings.
    pub plugins: OperatorPluginConfig,
    /// Largest request body the API accepts.
    pub max_request_bytes: usize,
    /// Run against in-process emulators.
    pub sandbox: bool,
    /// The master key (`None`: use or generate the data directory's key file).
    pub master_key: Option<SecretString>,
    /// Earlier master keys, for reading rows sealed before a rotation.
    pub previous_master_keys: Vec<SecretString>,
    /// HS256 secret for workspace tokens.
    pub jwt_secret: Option<SecretString>,
    /// Public key (PEM) for EdDSA / RS256 workspace tokens.
    pub jwt_public_key: Option<Vec<u8>>,
    /// Where browsers reach crmhost (`None`: `http://<bound address>`).
    pub public_url: Option<url::Url>,
    /// Origins a `return_url` may point at, besides the public URL's.
    pub allowed_return_origins: Vec<url::Origin>,
    /// The scheduler, leases and retry backoff.
    pub scheduler: SchedulerOptions,
    /// The console's branding.
    pub console: crate::console::ConsoleBranding,
    /// Outbound webhooks: where endpoints may be, retries, retention.
    pub outbound_webhooks: crate::notify::NotifyOptions,
    /// The largest file attached to a CRM record the API serves.
    pub max_file_bytes: u64,
}

/// A configuration problem: one line saying what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Validates flags and reads the configuration file.
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => Self::read_file(path)?,
            None => FileConfig::default(),
        };
        let database = match args.database_url.filter(|u| !u.trim().is_empty()) {
            Some(url)
                if url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:") =>
            {
                DatabaseTarget::Url(SecretString::from(url))
            }
            Some(url) => {
                let scheme = url.split(':').next().unwrap_or_default().to_owned();
                return Err(ConfigError(format!(
                    "DATABASE_URL: unsupported scheme `{scheme}`; use postgres://user@host/db or sqlite:path, or unset it for the embedded SQLite"
                )));
            }
            // Sandbox data points at emulators that vanish with the process: keep it apart.
            None if args.sandbox => DatabaseTarget::SqliteFile(args.data_dir.join("sandbox.db")),
            None => DatabaseTarget::SqliteFile(args.data_dir.join("crmhost.db")),
        };
        let admin_token = match args.admin_token.filter(|t| !t.is_empty()) {
            Some(t) if t.len() < 16 => {
                return Err(ConfigError("CRMHOST_ADMIN_TOKEN: use at least 16 characters".to_owned()));
            }
            Some(t) => Some(SecretString::from(t)),
            None => None,
        };
        let jwt_secret = match args.jwt_secret.filter(|s| !s.is_empty()) {
            Some(s) if s.len() < 32 => {
                return Err(ConfigError("CRMHOST_JWT_SECRET: use at least 32 characters".to_owned()));
            }
            other => other.map(SecretString::from),
        };
        let jwt_public_key = match &args.jwt_public_key {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| ConfigError(format!("CRMHOST_JWT_PUBLIC_KEY: cannot read {}: {e}", path.display())))?,
            ),
            None => None,
        };
        crate::auth::JwtVerifier::new(jwt_secret.as_ref(), jwt_public_key.as_deref()).map_err(ConfigError)?;
        if let Some(key) = args.master_key.as_deref().filter(|k| !k.trim().is_empty())
            && crate::vault::MasterKey::from_base64(key).is_none()
        {
            return Err(ConfigError(
                "CRMHOST_MASTER_KEY: expected 32 bytes, base64-encoded (openssl rand -base64 32)".to_owned(),
            ));
        }
        let previous_master_keys: Vec<SecretString> = args
            .previous_master_keys
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| {
                crate::vault::MasterKey::from_base64(k).map(|_| SecretString::from(k.to_owned())).ok_or_else(|| {
                    ConfigError("CRMHOST_PREVIOUS_MASTER_KEYS: each key must be 32 bytes, base64-encoded".to_owned())
                })
            })
            .collect::<Result<_, _>>()?;
        let public_url = match args.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(raw) => Some(parse_origin_url(raw).map_err(|e| ConfigError(format!("CRMHOST_PUBLIC_URL: {e}")))?),
            None => None,
        };
        let allowed_return_origins = args
            .allowed_return_origins
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                parse_origin_url(o)
                    .map(|u| u.origin())
                    .map_err(|e| ConfigError(format!("CRMHOST_ALLOWED_RETURN_ORIGINS: `{o}`: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let defaults = EngineSettings::default();
        let engine = EngineSettings {
            max_concurrent_calls: file.engine.max_concurrent_calls.unwrap_or(defaults.max_concurrent_calls),
            max_memory_bytes: file.engine.max_plugin_memory_bytes.unwrap_or(defaults.max_memory_bytes),
            pooling: file.engine.pooling.unwrap_or(defaults.pooling),
            max_core_instances_per_plugin: file
                .engine
                .max_core_instances_per_plugin
                .unwrap_or(defaults.max_core_instances_per_plugin),
        };
        if engine.max_concurrent_calls == 0 || engine.max_concurrent_calls > 10_000 {
            return Err(ConfigError("[engine] max_concurrent_calls: use 1 to 10000".to_owned()));
        }
        if !(1..=1_000).contains(&engine.max_core_instances_per_plugin) {
            return Err(ConfigError("[engine] max_core_instances_per_plugin: use 1 to 1000".to_owned()));
        }
        if !(1 << 20..=4 << 30).contains(&engine.max_memory_bytes) {
            return Err(ConfigError("[engine] max_plugin_memory_bytes: use 1 MiB to 4 GiB".to_owned()));
        }
        let scheduler = file.scheduler.resolve()?;
        let console = crate::console::ConsoleBranding::from_file(file.console).map_err(ConfigError)?;
        let outbound_webhooks = file.outbound_webhooks.resolve().map_err(ConfigError)?;
        let max_file_bytes = match file.files.max_download_bytes {
            None => DEFAULT_MAX_FILE_BYTES,
            Some(n) if (1..=(1u64 << 40)).contains(&n) => n,
            Some(_) => return Err(ConfigError("[files] max_download_bytes: use 1 to 1099511627776".to_owned())),
        };
        let mut plugins = OperatorPluginConfig { plugin_defaults: file.plugin_defaults, plugins: file.plugins };
        // Validate every per-plugin block now rather than when that plugin loads.
        for slug in plugins.plugins.keys() {
            plugins
                .resolve(slug, &[], engine.max_memory_bytes)
                .map_err(|e| ConfigError(format!("[plugins.{slug}]: {e}")))?;
        }
        plugins.add_env_secrets();
        Ok(Self {
            bind: args.bind,
            database,
            data_dir: args.data_dir,
            plugins_dir: args.plugins_dir,
            watch_plugins: !args.no_watch,
            admin_token,
            engine,
            plugins,
            max_request_bytes: 4 << 20,
            sandbox: args.sandbox,
            master_key: args.master_key.filter(|k| !k.trim().is_empty()).map(SecretString::from),
            previous_master_keys,
            jwt_secret,
            jwt_public_key,
            public_url,
            allowed_return_origins,
            scheduler,
            console,
            outbound_webhooks,
            max_file_bytes,
        })
    }

    fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("CRMHOST_CONFIG: cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            let message = e.message().replace('\n', " ");
            ConfigError(format!("CRMHOST_CONFIG: {} is invalid: {message}", path.display()))
        })
    }
}

/// An absolute http(s) URL without query or fragment.
fn parse_origin_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("use an absolute http:// or https:// URL".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("leave out the query and fragment".to_owned());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["crmhost"];
        argv.extend_from_slice(extra);
        Wrapper::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn defaults_give_embedded_sqlite_in_the_data_dir() {
        let config = Config::from_args(args(&["--data-dir", "/tmp/x"])).unwrap();
        assert!(matches!(config.database, DatabaseTarget::SqliteFile(p) if p == Path::new("/tmp/x/crmhost.db")));
    }

    #[test]
    fn an_unsupported_database_scheme_is_one_clear_line() {
        let err = Config::from_args(args(&["--database-url", "mysql://x"])).unwrap_err().to_string();
        assert!(err.starts_with("DATABASE_URL:") && err.contains("mysql") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn a_short_admin_token_is_rejected() {
        let err = Config::from_args(args(&["--admin-token", "short"])).unwrap_err().to_string();
        assert!(err.contains("CRMHOST_ADMIN_TOKEN"), "{err}");
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64_and_are_never_echoed() {
        let err = Config::from_args(args(&["--master-key", "bm90LWEta2V5"])).unwrap_err().to_string();
        assert!(err.starts_with("CRMHOST_MASTER_KEY:") && !err.contains("bm90LWEta2V5"), "{err}");
        let good = crate::vault::MasterKey::generate().to_base64();
        let err =
            Config::from_args(args(&["--master-key", &good, "--previous-master-keys", "x"])).unwrap_err().to_string();
        assert!(err.starts_with("CRMHOST_PREVIOUS_MASTER_KEYS:"), "{err}");
        let config = Config::from_args(args(&["--master-key", &good, "--previous-master-keys", &good])).unwrap();
        assert_eq!(config.previous_master_keys.len(), 1);
    }

    #[test]
    fn public_url_and_return_origins_must_be_http_urls() {
        let err = Config::from_args(args(&["--public-url", "ftp://x"])).unwrap_err().to_string();
        assert!(err.starts_with("CRMHOST_PUBLIC_URL:"), "{err}");
        let err = Config::from_args(args(&["--allowed-return-origins", "https://a.example, nope"])).unwrap_err();
        assert!(err.to_string().contains("`nope`"), "{err}");
        let config = Config::from_args(args(&[
            "--public-url",
            "https://crm.example.com/base",
            "--allowed-return-origins",
            "https://app.example.com,http://localhost:3000",
        ]))
        .unwrap();
        assert_eq!(config.public_url.unwrap().as_str(), "https://crm.example.com/base");
        assert_eq!(config.allowed_return_origins.len(), 2);
    }

    #[test]
    fn a_bad_plugin_block_names_the_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[plugins.hubspot]\nmemory_bytes = 0\n").unwrap();
        let err = Config::from_args(args(&["--config", path.to_str().unwrap()])).unwrap_err().to_string();
        assert!(err.contains("[plugins.hubspot]") && err.contains("memory_bytes"), "{err}");
    }
}
