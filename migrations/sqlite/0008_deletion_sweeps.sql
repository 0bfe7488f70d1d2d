-- When deletions were last swept for an (integration, entity): CRMs whose incremental reads
-- cannot see deletions (HubSpot's search skips archived records) walk their whole archived list
-- instead, which is paced to once per sweep interval. The next sweep starts from the instant the
-- last one started, so nothing archived in between is missed.
alter table sync_cursors add column deletions_swept_at text;
