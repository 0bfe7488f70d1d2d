//! The `crmhost` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use crmhost::auth::{ConsoleLinkArgs, TokenArgs};
use crmhost::config::{Config, ServeArgs};
use crmhost::keys::RotateArgs;
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
    /// Print a sign-in link to the web console (`<public-url>/console/#token=…`) for a workspace user.
    ConsoleLink(ConsoleLinkArgs),
    /// Master keys: `generate` prints a new one; `rotate` re-seals stored credentials under it.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Tools for plugin authors: `new` scaffolds a plugin, `check` runs the conformance checks on a component.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Check a plugin component before shipping it: it loads in this host's sandbox, describes
    /// itself stably and keeps its description's promises; with `--against`, it also connects,
    /// pulls, pushes, deletes and maps errors correctly against an emulator. One pass / FAIL /
    /// skip line per check; exits non-zero when one fails.
    Check {
        /// The component (`.wasm`).
        file: std::path::PathBuf,
        /// A crm-sim emulator's base URL (`crm-sim --pipedrive 127.0.0.1:9300`, or a sandbox's):
        /// run the checks that need a CRM against it. It gets records created and deleted, and
        /// its knobs turned for a moment (then restored): never point it at a shared one in use.
        #[arg(long, value_name = "URL")]
        against: Option<String>,
    },
    /// Write a new plugin project that builds and passes `check` as generated.
    New {
        /// The plugin's slug (lower-case letters, digits and `-`), also the directory's name.
        name: String,
        /// The language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: crmhost::plugins::scaffold::Language,
        /// Where to write it (default: ./<name>).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// For Rust: the path of crmhost's `sdk/` directory, for the dependency.
        #[arg(long)]
        sdk: Option<std::path::PathBuf>,
    },
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cli = match cli.command {
        Command::Token(args) => return print_or_fail(crmhost::auth::mint_token(args)),
        Command::ConsoleLink(args) => return print_or_fail(crmhost::auth::console_link(args)),
        Command::Keys(KeysCommand::Generate) => {
            println!("{}", crmhost::vault::MasterKey::generate().to_base64());
            return ExitCode::SUCCESS;
        }
        Command::Plugin(PluginCommand::New { name, lang, dir, sdk }) => {
            let dir = dir.unwrap_or_else(|| std::path::PathBuf::from(&name));
            let written = crmhost::plugins::scaffold::scaffold(&name, lang, &dir, sdk.as_deref());
            return print_or_fail(written.map(|files| {
                let names: Vec<String> = files.iter().map(|f| format!("  {}", f.display())).collect();
                format!("wrote the `{name}` plugin ({lang:?}); its README says how to build it:\n{}", names.join("\n"))
            }));
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
            Command::Token(_)
            | Command::ConsoleLink(_)
            | Command::Keys(KeysCommand::Generate)
            | Command::Plugin(PluginCommand::New { .. }) => Ok(()),
            Command::Keys(KeysCommand::Rotate(args)) => {
                crmhost::keys::rotate_from_cli(args).await.map(|summary| println!("{summary}"))
            }
            Command::Plugin(PluginCommand::Check { file, against }) => {
                crmhost::plugins::check::check_file(&file, against.as_deref()).await
            }
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

/// Prints a one-line answer of a command that needs no server, or its error.
fn print_or_fail(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
