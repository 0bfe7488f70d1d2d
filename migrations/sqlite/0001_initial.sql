-- crmhost schema, SQLite dialect (JSON as TEXT, bytes as BLOB, instants as TEXT written by sqlx). Never edit an applied migration: add a new file.
-- Timestamps are written by the application (UTC), so both backends store the same instants.

create table integrations (
    integration_id      text primary key,
    workspace_id        text not null,
    integration_slug    text not null,
    status              text not null
        check (status in ('connected', 'paused', 'needs_reauth', 'error', 'disconnected')),
    encrypted_tokens    blob,
    token_nonce         blob,
    key_version         bigint,
    credentials_version bigint not null default 0,
    token_expires_at    text,
    metadata            text not null default '{}',
    settings            text not null default '{}',
    connected_by        text,
    connected_at        text,
    last_sync_at        text,
    created_at          text not null,
    updated_at          text not null,
    constraint integrations_workspace_slug_key unique (workspace_id, integration_slug)
);

create table oauth_states (
    state_hash          text primary key,
    workspace_id        text not null,
    user_id             text not null,
    integration_slug    text not null,
    encrypted_verifier  blob,
    verifier_nonce      blob,
    key_version         bigint,
    return_url          text,
    created_at          text not null,
    expires_at          text not null,
    used_at             text
);
create index oauth_states_expires_at_idx on oauth_states (expires_at);

create table integration_field_mappings (
    mapping_id          integer primary key autoincrement,
    workspace_id        text not null,
    integration_slug    text not null,
    entity              text not null,
    app_field           text not null,
    crm_field           text not null,
    direction           text not null check (direction in ('push', 'pull', 'both', 'none')),
    transform           text,
    updated_at          text not null,
    constraint integration_field_mappings_key unique (workspace_id, integration_slug, entity, app_field)
);

create table records (
    workspace_id        text not null,
    entity              text not null,
    record_id           text not null,
    fields              text not null,
    created_at          text not null,
    updated_at          text not null,
    deleted_at          text,
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
    base                text,
    crm_modified_at     text,
    last_error          text,
    last_synced_at      text,
    updated_at          text not null,
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
    started_at          text not null,
    completed_at        text,
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
    error               text,
    primary key (run_id, item_index)
);

create table sync_conflicts (
    conflict_id         text primary key,
    workspace_id        text not null,
    integration_slug    text not null,
    entity              text not null,
    record_id           text not null,
    crm_id              text,
    app_values          text not null,
    crm_values          text not null,
    base_values         text,
    conflicting_fields  text not null,
    status              text not null check (status in ('pending', 'resolved', 'ignored')),
    resolution          text,
    resolved_by         text,
    resolved_at         text,
    created_at          text not null
);
create index sync_conflicts_workspace_idx on sync_conflicts (workspace_id, status);

-- Append-only: the application never updates or deletes rows here.
create table audit_log (
    audit_id            integer primary key autoincrement,
    workspace_id        text,
    actor               text not null,
    action              text not null,
    target              text not null,
    details             text not null default '{}',
    at                  text not null
);
create index audit_log_workspace_idx on audit_log (workspace_id, audit_id desc);
