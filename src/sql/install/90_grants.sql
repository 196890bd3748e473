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

-- Private tables (issue 10).  The API roles have no privilege on the
-- tables of agent_tasks_internal, nor on its functions: they read through
-- the views of agent_tasks and write through its functions.  Both belong to
-- agent_tasks_engine (00_base.sql), which alone holds the table privileges
-- and is subject to row-level security like any caller, so every read and
-- write sees only the caller's account (defence in depth: the functions
-- name the account too).  The functions are SECURITY DEFINER with
-- search_path pinned; which role may call which is their EXECUTE grant,
-- checked against the caller before the function takes its owner's rights,
-- so a reader cannot call a writer's function; inside, checks that depend
-- on who calls use agent_tasks_internal.caller(), not current_user.
-- Kept in step with the end of the upgrade script, which applies the same
-- blocks: a CREATE OR REPLACE FUNCTION makes a function SECURITY INVOKER
-- again, so every upgrade script ends with them.
REVOKE ALL ON ALL TABLES IN SCHEMA agent_tasks_internal
	FROM agent_tasks_reader, agent_tasks_writer, agent_tasks_worker, agent_tasks_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA agent_tasks_internal TO agent_tasks_engine;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks_internal
	FROM agent_tasks_reader, agent_tasks_writer, agent_tasks_worker, agent_tasks_admin;
-- (the readers' grants of the identity functions after the engine's, in
-- the same order whether installed or upgraded)
REVOKE EXECUTE ON FUNCTION agent_tasks.current_account(), agent_tasks.current_user_email(), agent_tasks.status_kind(text),
	agent_tasks.uuid_v7(), agent_tasks.uuid_v7_time(uuid) FROM agent_tasks_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agent_tasks, agent_tasks_internal TO agent_tasks_engine;
GRANT EXECUTE ON FUNCTION agent_tasks.current_account(), agent_tasks.current_user_email(), agent_tasks.status_kind(text),
	agent_tasks.uuid_v7(), agent_tasks.uuid_v7_time(uuid) TO agent_tasks_reader;
-- The helpers of the functions that keep the caller's rights (above, and
-- the INSTEAD OF triggers of 89_resources.sql).
GRANT EXECUTE ON FUNCTION agent_tasks_internal.raise(text, text, text, text),
	agent_tasks_internal.check_api_key(text, text, text),
	agent_tasks_internal.refuse_server_columns(text, jsonb, text[]) TO agent_tasks_reader;
GRANT EXECUTE ON FUNCTION agent_tasks_internal.check_binding(name) TO agent_tasks_admin;
-- A pg_cron tick creates its task as agent_tasks_writer (fire_schedule):
-- what create_task() would do, with the engine's rights.
GRANT EXECUTE ON FUNCTION agent_tasks_internal.create_from_template(jsonb, boolean) TO agent_tasks_writer;
ALTER FUNCTION agent_tasks_internal.create_from_template(jsonb, boolean) SECURITY DEFINER;
ALTER FUNCTION agent_tasks_internal.create_from_template(jsonb, boolean) OWNER TO agent_tasks_engine;
-- The views run with their owner's rights (not security_invoker) and row-
-- level security applies to their owner: each caller sees its account.
-- Nobody reads a view without the privilege to: admins only for keys and
-- webhooks.
DO $$
DECLARE
	v regclass;
BEGIN
	FOR v IN SELECT c.oid FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relkind = 'v'
			  ORDER BY c.relname
	LOOP
		EXECUTE format('ALTER VIEW %s RESET (security_invoker)', v);
		EXECUTE format('ALTER VIEW %s OWNER TO agent_tasks_engine', v);
	END LOOP;
END
$$;
GRANT SELECT ON ALL TABLES IN SCHEMA agent_tasks TO agent_tasks_reader;
-- A function a view calls is executed with the reader's EXECUTE privilege
-- and rights (PostgreSQL checks tables against the view's owner, functions
-- against the caller).
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT DISTINCT d.refobjid::regprocedure FROM pg_depend d
			   JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
			   JOIN pg_class c ON c.oid = rw.ev_class
			   JOIN pg_proc p ON p.oid = d.refobjid
			  WHERE d.refclassid = 'pg_proc'::regclass
				AND c.relnamespace = 'agent_tasks'::regnamespace
				AND p.pronamespace = 'agent_tasks_internal'::regnamespace
			  ORDER BY 1
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO agent_tasks_reader', f);
		-- and runs as the caller: it needs the owner's rights to read
		IF (SELECT l.lanname IN ('sql', 'plpgsql') AND NOT p.prosecdef
			  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = f) THEN
			EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
			EXECUTE format('ALTER FUNCTION %s OWNER TO agent_tasks_engine', f);
		END IF;
	END LOOP;
END
$$;
REVOKE SELECT ON agent_tasks.api_keys, agent_tasks.webhook_endpoints, agent_tasks.webhook_deliveries,
	agent_tasks.webhook_attempts FROM agent_tasks_reader;
GRANT SELECT ON agent_tasks.api_keys, agent_tasks.webhook_endpoints, agent_tasks.webhook_deliveries,
	agent_tasks.webhook_attempts TO agent_tasks_admin;

GRANT EXECUTE ON FUNCTION
	agent_tasks.uuid_v7(),
	agent_tasks.uuid_v7_time(uuid),
	agent_tasks.status_kind(text),
	agent_tasks.current_account(),
	agent_tasks.current_user_email(),
	agent_tasks.get_task(uuid),
	agent_tasks.list_tasks(text, text, text, text, boolean, text, text, text, text, text, text, text, uuid, integer, integer),
	agent_tasks.notify_channel()
TO agent_tasks_reader;

GRANT EXECUTE ON FUNCTION
	agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
		text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean, text),
	agent_tasks.create_task(jsonb),
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

-- The API functions in SQL that API roles may call take the rights of
-- agent_tasks_engine, except those that act on roles (authenticate() sets
-- the request's role, the account bindings alter roles).  So does
-- create_task(), in C (src/tasks.c); the others in C read no table
-- (worker_status() reads shared memory as the caller).  Those for the DBA
-- alone (grant_api, run_maintenance, ...) keep the DBA's rights.
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
			  WHERE p.pronamespace = 'agent_tasks'::regnamespace
				AND (l.lanname IN ('sql', 'plpgsql') OR p.proname = 'create_task') AND NOT p.prosecdef
				AND has_function_privilege('agent_tasks_admin', p.oid, 'EXECUTE')
				AND p.proname NOT IN ('authenticate', 'bind_account', 'unbind_account', 'allow_account_choice')
			  ORDER BY p.oid::regprocedure::text
	LOOP
		IF NOT 'search_path=pg_catalog, pg_temp' = ANY (coalesce((SELECT proconfig FROM pg_proc WHERE oid = f), '{}')) THEN
			RAISE EXCEPTION 'function % does not pin search_path = pg_catalog, pg_temp', f;
		END IF;
		EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
		EXECUTE format('ALTER FUNCTION %s OWNER TO agent_tasks_engine', f);
	END LOOP;
END
$$;
