-- A bulk job (Salesforce's Bulk API 2.0, say) under way for an (integration, entity, direction):
-- the plugin's latest cursor, so a run resumed after a crash continues the job instead of
-- starting another. `params` (JSON text) says what the job is: for a pull, its modified-since
-- and fields (a pull asking for something else starts afresh); for a push, the workspace record
-- ids and the records sent, in order, which the job's outcomes answer.
create table bulk_jobs (
    workspace_id        text not null,
    integration_slug    text not null,
    entity              text not null,
    direction           text not null check (direction in ('pull', 'push')),
    cursor              text not null,
    params              text not null,
    updated_at          timestamptz not null,
    primary key (workspace_id, integration_slug, entity, direction)
);
