-- Placeholder: the lead replaces this with the README demo.
select agent_tasks.uuid_v7();
