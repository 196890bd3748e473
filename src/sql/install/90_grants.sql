-- Tenancy, privileges and backups, applied last so that they cover
-- everything the files before made.

-- Row-level security on every table, all with the same policy: a row is
-- seen and written only by sessions of its account.  Done here, for every
-- table of the schema, so that no table can be added without it.
DO $$
DECLARE
	t name;
BEGIN
	FOR t IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
	LOOP
		EXECUTE format('ALTER TABLE agent_tasks_internal.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format($p$CREATE POLICY account_isolation ON agent_tasks_internal.%I
			USING (account = (SELECT agent_tasks.current_account()))
			WITH CHECK (account = (SELECT agent_tasks.current_account()))$p$, t);
	END LOOP;
END
$$;

-- Every table's rows are the users' data: pg_dump saves them with the
-- extension and a restore loads them after CREATE EXTENSION (see
-- src/restore.c for how the triggers let them in unchanged).  None holds
-- install-time rows, so no filter is needed.
-- (One call per statement: each updates the extension's catalog row.)
DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT c.oid FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
			  ORDER BY c.relname
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(t, '');
	END LOOP;
END
$$;

-- Nothing is executable by PUBLIC; each call is granted to the least of the
-- extension's roles that needs it (reader < writer < worker < admin, each a
-- member of the next).

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks_internal FROM PUBLIC;

-- The API functions run with the caller's rights and use these helpers;
-- table privileges and row-level security decide what the helpers may do.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agent_tasks_internal TO agent_tasks_reader;

GRANT SELECT ON ALL TABLES IN SCHEMA agent_tasks TO agent_tasks_reader;

GRANT EXECUTE ON FUNCTION
	agent_tasks.uuid_v7(),
	agent_tasks.uuid_v7_time(uuid),
	agent_tasks.status_kind(text),
	agent_tasks.current_account(),
	agent_tasks.current_user_email(),
	agent_tasks.get_task(uuid),
	agent_tasks.list_tasks(text, text, text, text, boolean, text, text, text, text, text, text, text, uuid, integer, integer)
TO agent_tasks_reader;

GRANT EXECUTE ON FUNCTION
	agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
		text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean),
	agent_tasks.update_task(uuid, jsonb),
	agent_tasks.archive_task(uuid),
	agent_tasks.unarchive_task(uuid),
	agent_tasks.delete_task(uuid),
	agent_tasks.process_task(uuid, text, jsonb),
	agent_tasks.stop_task(uuid, text),
	agent_tasks.cancel_task(uuid, text),
	agent_tasks.retry_task(uuid),
	agent_tasks.send_message(uuid, text, text, jsonb),
	agent_tasks.send_feedback(uuid, text),
	agent_tasks.set_assignees(uuid, text[]),
	agent_tasks.add_followers(uuid, text[]),
	agent_tasks.remove_followers(uuid, text[]),
	agent_tasks.add_dependency(uuid, uuid),
	agent_tasks.remove_dependency(uuid, uuid)
TO agent_tasks_writer;

GRANT EXECUTE ON FUNCTION
	agent_tasks.set_task_status(uuid, text, text, jsonb, jsonb)
TO agent_tasks_worker;
