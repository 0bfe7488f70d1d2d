-- What each pulled or pushed record costs the server in the two tables every record touches.
--
-- Ids compare byte by byte: every index entry of `records` and `record_links` is found by
-- (workspace, integration, entity, id) text keys, and under the database's default collation (a
-- libc locale such as C.UTF-8 or en_US) each comparison calls strcoll. Byte order is also the
-- order SQLite keeps, so both backends list records the same way.
alter table records
    alter column workspace_id type text collate "C",
    alter column entity type text collate "C",
    alter column record_id type text collate "C";
alter table record_links
    alter column workspace_id type text collate "C",
    alter column integration_slug type text collate "C",
    alter column entity type text collate "C",
    alter column record_id type text collate "C",
    alter column crm_id type text collate "C";
-- No query filters or sorts on the JSON documents themselves (match keys have their own
-- expression indexes, whose statistics ANALYZE still gathers), so ANALYZE need not sample and
-- sort them: on a growing import that was most of its cost.
alter table records alter column fields set statistics 0;
alter table record_links alter column base set statistics 0, alter column last_error set statistics 0;
