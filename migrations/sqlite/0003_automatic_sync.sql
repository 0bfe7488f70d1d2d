-- Automatic sync: schedules with leases shared by several host processes, run-level backoff,
-- webhook routing by CRM account and de-duplication, and per-record retry backoff.

-- When the scheduler next runs the integration (null: not scheduled, e.g. manual frequency).
alter table integrations add column next_sync_at text;
-- Which process holds the integration (runs it) and until when; an expired lease is free again.
alter table integrations add column lease_owner text;
alter table integrations add column lease_expires_at text;
-- Consecutive whole-run failures (CRM down): the schedule backs off exponentially on them.
alter table integrations add column failure_streak bigint not null default 0;
-- Why the integration is not running on schedule (paused by whom, needs re-authorization,
-- deferred until the daily limit resets, backing off after failures).
alter table integrations add column status_reason text;
-- The CRM account the connection belongs to (Salesforce org id, HubSpot hub id): webhooks name it.
alter table integrations add column crm_account_id text;
create index integrations_due_idx on integrations (next_sync_at);
create index integrations_account_idx on integrations (integration_slug, crm_account_id);

-- Consecutive failed pushes of a record; reset when the record changes or syncs. A failed record
-- is retried after a delay that doubles with each attempt, up to a cap.
alter table record_links add column attempts bigint not null default 0;

-- Webhook events already seen, by the CRM's event id (CRMs deliver at least once).
create table webhook_events (
    integration_slug    text not null,
    event_id            text not null,
    received_at         text not null,
    primary key (integration_slug, event_id)
);
create index webhook_events_received_idx on webhook_events (received_at);

update integrations set crm_account_id = json_extract(metadata, '$.account.id') where crm_account_id is null;
