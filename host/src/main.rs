//! The `crmhost` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use crmhost::config::{Config, ServeArgs};
use crmhost::startup::Application;

/// crmhost: connect your workspaces to CRMs through sandboxed WebAssembly adapters.
#[derive(Debug, Parser)]
#[command(name = "crmhost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite in the data directory and the bundled plugins by default).
    Serve(ServeArgs),
    /// Print a workspace bearer token signed with CRMHOST_JWT_SECRET (for operators, demos and tests).
    Token(TokenArgs),
    /// Master keys: `generate` prints a new one; `rotate` re-seals stored credentials under it.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new random master key (32 bytes, base64) for CRMHOST_MASTER_KEY.
    Generate,
    /// Re-seal every stored credential under CRMHOST_MASTER_KEY, reading old rows with
    /// CRMHOST_PREVIOUS_MASTER_KEYS (and the data directory's generated key file, if any).
    /// Safe while servers run.
    Rotate(RotateArgs),
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// Database URL; default: the embedded SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The data directory (for the embedded SQLite and a generated key file).
    #[arg(long, env = "CRMHOST_DATA_DIR", default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// The new master key.
    #[arg(long, env = "CRMHOST_MASTER_KEY", hide_env_values = true)]
    master_key: String,
    /// The keys being rotated away from (comma-separated base64).
    #[arg(long, env = "CRMHOST_PREVIOUS_MASTER_KEYS", hide_env_values = true, default_value = "")]
    previous_master_keys: String,
}

async fn rotate(args: RotateArgs) -> Result<(), String> {
    use crmhost::vault::{MasterKey, Vault};
    let current = MasterKey::from_base64(&args.master_key)
        .ok_or("CRMHOST_MASTER_KEY: expected 32 bytes, base64-encoded (crmhost keys generate)")?;
    let mut previous = Vec::new();
    for raw in args.previous_master_keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        previous.push(
            MasterKey::from_base64(raw)
                .ok_or("CRMHOST_PREVIOUS_MASTER_KEYS: each key must be 32 bytes, base64-encoded")?,
        );
    }
    // Moving off the generated key file is the common first rotation: read it as a previous key.
    if let Ok((file_key, _)) = MasterKey::load(None, &args.data_dir).map_err(|e| e.to_string())
        && args.data_dir.join("master.key").exists()
        && file_key.fingerprint() != current.fingerprint()
    {
        previous.push(file_key);
    }
    let vault = Vault::new(current, previous);
    let store = match args.database_url.filter(|u| !u.trim().is_empty()) {
        Some(url) => crmhost::store::Store::connect(&url).await,
        None => crmhost::store::Store::open_sqlite_file(&args.data_dir.join("crmhost.db")).await,
    }
    .map_err(|e| format!("DATABASE_URL: cannot open the database: {e}"))?;
    store.migrate().await.map_err(|e| format!("database migration failed: {e}"))?;
    let report = crmhost::keys::rotate(&store, &vault).await.map_err(|e| format!("rotation failed: {e}"))?;
    store.close().await;
    println!(
        "re-sealed {} credential(s) under key {:#x}; {} retried after concurrent changes; {} failed",
        report.resealed,
        vault.current_version(),
        report.retried,
        report.failed.len()
    );
    for (connection, why) in &report.failed {
        println!("  {connection}: {why}");
    }
    if report.failed.is_empty() { Ok(()) } else { Err("some credentials could not be re-sealed".to_owned()) }
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The workspace the token is for.
    #[arg(long)]
    workspace: String,
    /// The caller's role.
    #[arg(long, value_enum)]
    role: crmhost::auth::Role,
    /// The user id (`sub`).
    #[arg(long, default_value = "operator")]
    user: String,
    /// How long the token lasts: 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// The signing secret.
    #[arg(long, env = "CRMHOST_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
}

fn token(args: TokenArgs) -> Result<(), String> {
    let workspace = crmhost::domain::WorkspaceId::parse(&args.workspace).map_err(|e| format!("--workspace: {e}"))?;
    let ttl = crmhost::auth::parse_duration(&args.ttl).map_err(|e| format!("--ttl: {e}"))?;
    if args.jwt_secret.len() < 32 {
        return Err("CRMHOST_JWT_SECRET: use at least 32 characters".to_owned());
    }
    let now = chrono::Utc::now().timestamp();
    let claims = crmhost::auth::Claims {
        sub: args.user,
        workspace: workspace.to_string(),
        role: args.role,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        iat: now,
    };
    let secret = secrecy::SecretString::from(args.jwt_secret);
    println!("{}", crmhost::auth::sign_hs256(&secret, &claims)?);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cli = match cli.command {
        Command::Token(args) => {
            return match token(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Keys(KeysCommand::Generate) => {
            println!("{}", crmhost::vault::MasterKey::generate().to_base64());
            return ExitCode::SUCCESS;
        }
        command => Cli { command },
    };
    crmhost::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Token(_) | Command::Keys(KeysCommand::Generate) => Ok(()),
            Command::Keys(KeysCommand::Rotate(args)) => rotate(args).await,
            Command::Serve(args) => {
                let config = Config::from_args(args).map_err(|e| e.to_string())?;
                let app = Application::build(config).await.map_err(|e| e.to_string())?;
                app.run_until_stopped().await.map_err(|e| format!("server error: {e}"))
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
