//! End-to-end tests: one binary, one module per area (zero2prod's layout).
// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used)]

/// One test per (adapter, backend) from an async body taking a connected harness; with
/// `pipedrive_too:` also for the Pipedrive plugin (Python, from the plugins directory), skipped
/// where Python is missing and not required.
macro_rules! each_crm_and_backend {
    (pipedrive_too: $name:ident, |$h:ident| $body:block) => {
        each_crm_and_backend!(@module $name, |$h| $body, {
            #[tokio::test]
            async fn pipedrive_sqlite() {
                let Some(h) = start(Backend::Sqlite, Crm::Pipedrive).await else { return };
                run(h).await;
            }

            #[tokio::test]
            async fn pipedrive_postgres() {
                let Some(h) = start(Backend::Postgres, Crm::Pipedrive).await else { return };
                run(h).await;
            }
        });
    };
    ($name:ident, |$h:ident| $body:block) => {
        each_crm_and_backend!(@module $name, |$h| $body, {});
    };
    (@module $name:ident, |$h:ident| $body:block, { $($more:item)* }) => {
        mod $name {
            use super::*;

            async fn run($h: SyncHarness) $body

            async fn start(backend: Backend, crm: Crm) -> Option<SyncHarness> {
                SyncHarness::start(backend, crm, crm_sim::knobs::Knobs::default()).await
            }

            #[tokio::test]
            async fn salesforce_sqlite() {
                run(start(Backend::Sqlite, Crm::Salesforce).await.unwrap()).await;
            }

            #[tokio::test]
            async fn salesforce_postgres() {
                let Some(h) = start(Backend::Postgres, Crm::Salesforce).await else { return };
                run(h).await;
            }

            #[tokio::test]
            async fn hubspot_sqlite() {
                run(start(Backend::Sqlite, Crm::Hubspot).await.unwrap()).await;
            }

            #[tokio::test]
            async fn hubspot_postgres() {
                let Some(h) = start(Backend::Postgres, Crm::Hubspot).await else { return };
                run(h).await;
            }

            $($more)*
        }
    };
}

mod api;
mod automatic;
mod bulk;
mod campaigns;
mod connect;
mod contract;
mod deletes;
mod field_rules;
mod files;
mod fuzz;
mod hardening;
mod hot_reload;
mod hubspot;
mod mapping_assist;
mod merges;
mod metrics;
mod outbound_webhooks;
mod owner_filters;
mod pipedrive;
mod plugin_authoring;
mod plugin_calls;
mod realtime_push;
mod relationships;
mod salesforce;
mod salesforce_webhooks;
mod sandbox;
mod sandbox_mode;
mod store;
mod sync;
mod sync_health;
mod workspaces;
