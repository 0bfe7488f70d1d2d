-- A mapping may say its workspace field holds the id of another entity's workspace record (a
-- contact's company): the host sends the linked CRM id on push and maps it back on pull.
alter table integration_field_mappings add column references_entity text;
