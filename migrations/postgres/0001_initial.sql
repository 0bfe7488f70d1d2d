-- crmhost schema, PostgreSQL dialect. Never edit an applied migration: add a new file.
-- Timestamps are written by the application (UTC), so both backends store the same instants.

create table integrations (
    integration_id      text primary key,
    workspace_id        text not null,
    integration_slug    text not null,
    status              text not null
        check (status in ('connected', 'paused', 'needs_reauth', 'error', 'disconnected')),
    encrypted_tokens    bytea,
    token_nonce         bytea,
    key_version         bigint,
    credentials_version bigint not null default 0,
    token_expires_at    timestamptz,
    metadata            jsonb not null default '{}',
    settings            jsonb not null default '{}',
    connected_by        text,
    connected_at        timestamptz,
    last_sync_at        timestamptz,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    constraint integrations_workspace_slug_key unique (workspace_id, integration_slug)
);

create table oauth_states (
    state_hash          text primary key,
    workspace_id        text not null,
    user_id             text not null,
    integration_slug    text not null,
    encrypted_verifier  bytea,
    verifier_nonce      bytea,
    key_version         bigint,
    return_url          text,
    created_at          timestamptz not null,
    expires_at          timestamptz not null,
    used_at             timestamptz
);
create index oauth_states_expires_at_idx on oauth_states (expires_at);

create table integration_field_mappings (
    mapping_id          bigint generated always as identity primary key,
    workspace_id        text not null,
    integration_slug    text not null,
    entity              text not null,
    app_field           text not null,
    crm_field           text not null,
    direction           text not null check (direction in ('push', 'pull', 'both', 'none')),
    transform           jsonb,
    updated_at          timestamptz not null,
    constraint integration_field_mappings_key unique (workspace_id, integration_slug, entity, app_field)
);

create table records (
    workspace_id        text not null,
    entity              text not null,
    record_id           text not null,
    fields              jsonb not null,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    deleted_at          timestamptz,
    primary key (workspace_id, entity, record_id)
);
create index records_updated_at_idx on records (workspace_id, entity, updated_at);

create table record_links (
    workspace_id        text not null,
    integration_slug    text not null,
    entity              text not null,
    record_id           text not null,
    crm_id              text,
    sync_status         text not null check (sync_status in ('synced', 'pending', 'failed', 'conflict')),
    base                jsonb,
    crm_modified_at     timestamptz,
    last_error          jsonb,
    last_synced_at      timestamptz,
    updated_at          timestamptz not null,
    primary key (workspace_id, integration_slug, entity, record_id),
    constraint record_links_crm_id_key unique (workspace_id, integration_slug, entity, crm_id)
);

create table sync_history (
    run_id              text primary key,
    workspace_id        text not null,
    integration_slug    text not null,
    direction           text not null check (direction in ('push', 'pull', 'bidirectional')),
    entity              text,
    trigger             text not null check (trigger in ('manual', 'schedule', 'webhook', 'retry')),
    status              text not null
        check (status in ('running', 'completed', 'partial', 'failed', 'cancelled', 'interrupted', 'deferred')),
    record_count        bigint not null default 0,
    success_count       bigint not null default 0,
    failure_count       bigint not null default 0,
    conflict_count      bigint not null default 0,
    skipped_count       bigint not null default 0,
    started_by          text,
    started_at          timestamptz not null,
    completed_at        timestamptz,
    error               text
);
create index sync_history_workspace_idx on sync_history (workspace_id, integration_slug, started_at desc);

create table sync_run_items (
    run_id              text not null references sync_history (run_id) on delete cascade,
    item_index          bigint not null,
    entity              text not null,
    record_id           text,
    crm_id              text,
    outcome             text not null,
    error               jsonb,
    primary key (run_id, item_index)
);

create table sync_conflicts (
    conflict_id         text primary key,
    workspace_id        text not null,
    integration_slug    text not null,
    entity              text not null,
    record_id           text not null,
    crm_id              text,
    app_values          jsonb not null,
    crm_values          jsonb not null,
    base_values         jsonb,
    conflicting_fields  jsonb not null,
    status              text not null check (status in ('pending', 'resolved', 'ignored')),
    resolution          jsonb,
    resolved_by         text,
    resolved_at         timestamptz,
    created_at          timestamptz not null
);
create index sync_conflicts_workspace_idx on sync_conflicts (workspace_id, status);

-- Append-only: the application never updates or deletes rows here.
create table audit_log (
    audit_id            bigint generated always as identity primary key,
    workspace_id        text,
    actor               text not null,
    action              text not null,
    target              text not null,
    details             jsonb not null default '{}',
    at                  timestamptz not null
);
create index audit_log_workspace_idx on audit_log (workspace_id, audit_id desc);
