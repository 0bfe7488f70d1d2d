//! `crm-sim`: run the Salesforce, HubSpot and/or Pipedrive emulators as a process.
//!
//! `crm-sim --salesforce 127.0.0.1:8081 --hubspot 127.0.0.1:8082 --pipedrive 127.0.0.1:8083 --seed contact=50`
//! (`--acme 127.0.0.1:8084` adds the SDK's example CRM)

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use crm_sim::{SeedSpec, SimOptions};

/// Faithful Salesforce, HubSpot and Pipedrive emulators, in memory.
#[derive(Debug, Parser)]
#[command(name = "crm-sim", version, about)]
struct Args {
    /// Address for the Salesforce emulator (login host and instance).
    #[arg(long)]
    salesforce: Option<SocketAddr>,
    /// Address for the HubSpot emulator (API, OAuth, authorize page).
    #[arg(long)]
    hubspot: Option<SocketAddr>,
    /// Address for the Pipedrive emulator (API v1 and v2, OAuth, authorize page).
    #[arg(long)]
    pipedrive: Option<SocketAddr>,
    /// Address for Acme, the SDK's example CRM: the mock a plugin from `crmhost plugin new` passes
    /// `crmhost plugin check --against` with.
    #[arg(long)]
    acme: Option<SocketAddr>,
    /// Records to create at start, `entity=count` (repeatable), e.g. `contact=50`.
    #[arg(long = "seed", value_parser = parse_seed)]
    seeds: Vec<SeedSpec>,
    /// Serve https with a self-signed certificate written (PEM) to this file.
    #[arg(long)]
    tls_cert: Option<std::path::PathBuf>,
    /// Seed for ids and tokens (same seed, same ids).
    #[arg(long, default_value_t = 1)]
    random_seed: u64,
}

fn parse_seed(s: &str) -> Result<SeedSpec, String> {
    let (entity, count) = s.split_once('=').ok_or("use entity=count, e.g. contact=50")?;
    let count = count.parse().map_err(|_| format!("`{count}` is not a number"))?;
    Ok(SeedSpec { entity: entity.to_owned(), count })
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    if args.salesforce.is_none() && args.hubspot.is_none() && args.pipedrive.is_none() && args.acme.is_none() {
        eprintln!("error: give one or more of --salesforce ADDR, --hubspot ADDR, --pipedrive ADDR, --acme ADDR");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let options = SimOptions {
            salesforce: args.salesforce,
            hubspot: args.hubspot,
            pipedrive: args.pipedrive,
            acme: args.acme,
            seed: args.random_seed,
            seed_records: args.seeds,
            tls_cert: args.tls_cert,
            ..SimOptions::both_on_free_ports()
        };
        let handle = match crm_sim::start(options).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(url) = handle.salesforce_url() {
            println!("Salesforce emulator: {url}  (OAuth client crm-sim-client / crm-sim-secret)");
        }
        if let Some(url) = handle.hubspot_url() {
            println!("HubSpot emulator:    {url}  (OAuth client crm-sim-client / crm-sim-secret)");
        }
        if let Some(url) = handle.pipedrive_url() {
            println!(
                "Pipedrive emulator:  {url}  (OAuth client crm-sim-client / crm-sim-secret; API token {})",
                crm_sim::pipedrive::API_TOKEN
            );
        }
        if let Some(url) = handle.acme_url() {
            println!("Acme (example CRM):  {url}  (OAuth client crm-sim-client / crm-sim-secret)");
        }
        let _ = tokio::signal::ctrl_c().await;
        ExitCode::SUCCESS
    })
}
