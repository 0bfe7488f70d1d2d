-- Runs started by a change to a workspace record (real time) get their own trigger, `change`.
alter table sync_history drop constraint sync_history_trigger_check;
alter table sync_history add constraint sync_history_trigger_check
    check (trigger in ('manual', 'schedule', 'webhook', 'retry', 'change'));
