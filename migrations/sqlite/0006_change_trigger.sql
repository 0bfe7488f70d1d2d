-- Runs started by a change to a workspace record (real time) get their own trigger, `change`.
-- SQLite cannot alter a CHECK constraint, so the run table is rebuilt. Its run items are rebuilt
-- with it: their foreign key must name the new table, and dropping the old table while they
-- pointed at it would cascade-delete them. Renaming the new tables afterwards rewrites the
-- reference (SQLite >= 3.26), all inside the migration's transaction.
create table sync_history_new (
    run_id              text primary key,
    workspace_id        text not null,
    integration_slug    text not null,
    direction           text not null check (direction in ('push', 'pull', 'bidirectional')),
    entity              text,
    trigger             text not null check (trigger in ('manual', 'schedule', 'webhook', 'retry', 'change')),
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
    error               text,
    params              text not null default '{}',
    retry_of            text,
    owner_id            text,
    heartbeat_at        text,
    timeline            text,
    estimated_records   bigint
);
insert into sync_history_new (run_id, workspace_id, integration_slug, direction, entity, trigger, status,
    record_count, success_count, failure_count, conflict_count, skipped_count, started_by, started_at,
    completed_at, error, params, retry_of, owner_id, heartbeat_at, timeline, estimated_records)
select run_id, workspace_id, integration_slug, direction, entity, trigger, status,
    record_count, success_count, failure_count, conflict_count, skipped_count, started_by, started_at,
    completed_at, error, params, retry_of, owner_id, heartbeat_at, timeline, estimated_records
from sync_history;

create table sync_run_items_new (
    run_id              text not null references sync_history_new (run_id) on delete cascade,
    item_index          bigint not null,
    entity              text not null,
    record_id           text,
    crm_id              text,
    outcome             text not null,
    error               text,
    primary key (run_id, item_index)
);
insert into sync_run_items_new (run_id, item_index, entity, record_id, crm_id, outcome, error)
select run_id, item_index, entity, record_id, crm_id, outcome, error from sync_run_items;

drop table sync_run_items;
drop table sync_history;
alter table sync_history_new rename to sync_history;
alter table sync_run_items_new rename to sync_run_items;
create index sync_history_workspace_idx on sync_history (workspace_id, integration_slug, started_at desc);
create index sync_history_status_idx on sync_history (status);
