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
            Command::Token(_) => Ok(()),
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
