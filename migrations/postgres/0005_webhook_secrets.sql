-- Per-workspace secrets that authenticate CRM deliveries the CRM cannot sign itself (Salesforce
-- Apex callouts and Outbound Messages). Only the secret's SHA-256 is kept: it is shown once, when
-- it is made, and replacing it (rotation) stops the old one at once.
create table webhook_secrets (
    workspace_id        text not null,
    integration_slug    text not null,
    secret_sha256       text not null,
    created_at          timestamptz not null,
    created_by          text not null,
    primary key (workspace_id, integration_slug)
);
