-- The sync engine: record versions for change detection, run parameters for retries, run ownership
-- for crash detection, and per-(integration, entity) pull cursors.

-- Bumped on every change of a record; a link remembers the version it last synced, so "changed
-- since the last sync" is an integer comparison rather than a timestamp race.
alter table records add column version bigint not null default 1;
alter table record_links add column synced_version bigint not null default 0;

-- What the run was asked to do (entity, record ids, since, limit), so a retry can do it again.
alter table sync_history add column params jsonb not null default '{}';
-- The run this one retries.
alter table sync_history add column retry_of text;
-- Which process runs it, and when that process last reported progress (crash detection).
alter table sync_history add column owner_id text;
alter table sync_history add column heartbeat_at timestamptz;
create index sync_history_status_idx on sync_history (status);

-- Where the next incremental pull of an entity starts.
create table sync_cursors (
    workspace_id        text not null,
    integration_slug    text not null,
    entity              text not null,
    modified_since      text,
    updated_at          timestamptz not null,
    primary key (workspace_id, integration_slug, entity)
);
