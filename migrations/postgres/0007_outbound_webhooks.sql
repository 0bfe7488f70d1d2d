-- Outbound webhooks: endpoints a workspace registers to be told what happened (signed JSON
-- events), and every delivery of an event to an endpoint, kept so retries survive a restart and
-- the delivery log can be read and redelivered.
create table webhook_endpoints (
    id                      text primary key,
    workspace_id            text not null,
    url                     text not null,
    description             text not null,
    -- JSON array of the event types it receives (never empty).
    events                  text not null,
    -- JSON condition on the event (entity, field and value), or null.
    filter                  text,
    enabled                 boolean not null,
    -- The signing secret, sealed by the vault ("v1.<key version>.<nonce>.<ciphertext>").
    secret_sealed           text not null,
    -- After a rotation the previous secret also signs, until previous_secret_until.
    previous_secret_sealed  text,
    previous_secret_until   timestamptz,
    created_at              timestamptz not null,
    created_by              text not null,
    updated_at              timestamptz not null
);
create index webhook_endpoints_by_workspace on webhook_endpoints (workspace_id, created_at);

create table webhook_deliveries (
    id                  text primary key,
    endpoint_id         text not null references webhook_endpoints (id) on delete cascade,
    workspace_id        text not null,
    event_id            text not null,
    event_type          text not null,
    -- The exact JSON body sent (the signature covers these bytes).
    payload             text not null,
    status              text not null check (status in ('pending', 'delivered', 'failed')),
    attempts            bigint not null,
    next_attempt_at     timestamptz,
    -- Retries stop here (24 hours after the event by default).
    give_up_at          timestamptz not null,
    last_attempt_at     timestamptz,
    last_status_code    integer,
    last_error          text,
    claimed_by          text,
    claimed_until       timestamptz,
    created_at          timestamptz not null,
    delivered_at        timestamptz,
    -- A redelivery on request names the delivery it repeats.
    redelivery_of       text
);
create index webhook_deliveries_due on webhook_deliveries (status, next_attempt_at);
create index webhook_deliveries_by_endpoint on webhook_deliveries (endpoint_id, created_at);
