--
-- 00_setup: roles and helpers shared by the whole suite (the database
-- persists across the files of one pg_regress run), and the conventions
-- every object of the extension must follow.
--
\set SHOW_CONTEXT never
RESET ROLE;

-- Roles of the suite.  Superusers bypass row-level security, so the tests
-- act through these ordinary roles (SET ROLE).  Roles are cluster-wide:
-- create only the missing ones, so that the suite can run twice.
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM (VALUES ('regress_app', 'agent_tasks_admin'),
								   ('regress_writer', 'agent_tasks_writer'),
								   ('regress_reader', 'agent_tasks_reader'),
								   ('regress_nobody', NULL)) AS v(name, member_of)
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
		END IF;
		IF r.member_of IS NOT NULL AND NOT pg_has_role(r.name, r.member_of, 'MEMBER') THEN
			EXECUTE format('GRANT %I TO %I', r.member_of, r.name);
		END IF;
	END LOOP;
END
$$;
SELECT r.rolname, r.rolsuper, r.rolbypassrls, array(SELECT m.rolname FROM pg_auth_members am
		JOIN pg_roles m ON m.oid = am.roleid WHERE am.member = r.oid) AS member_of
  FROM pg_roles r WHERE r.rolname IN ('regress_app', 'regress_writer', 'regress_reader', 'regress_nobody') ORDER BY 1;

-- Count calls of every function, so that 98_coverage can show that the
-- suite calls every public function (applies to the sessions of later files).
DO $$
BEGIN
	EXECUTE format('ALTER DATABASE %I SET track_functions = ''all''', current_database());
END
$$;

-- Ids and timestamps are never printed: uuids in messages become <uuid>.
CREATE FUNCTION public.mask(t text) RETURNS text
	LANGUAGE sql IMMUTABLE
	RETURN regexp_replace(t, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi');

-- Run a statement that must fail; show 'SQLSTATE: message | detail | hint: hint'.
CREATE FUNCTION public.expect_error(sql text) RETURNS text
	LANGUAGE plpgsql
AS $$
DECLARE
	st text;
	msg text;
	det text;
	hnt text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN public.mask(st || ': ' || msg || coalesce(' | ' || nullif(det, ''), '')
		|| coalesce(' | hint: ' || nullif(hnt, ''), ''));
END
$$;

-- The SQLSTATE only (for checks that compare two errors).
-- 'SQLSTATE: message' only, for errors whose detail holds a timestamp.
CREATE FUNCTION public.error_message(sql text) RETURNS text
	LANGUAGE plpgsql
AS $$
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || public.mask(SQLERRM);
END
$$;

CREATE FUNCTION public.error_code(sql text) RETURNS text
	LANGUAGE plpgsql
AS $$
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;

-- A task's activity trail, one line per activity, oldest first, ids masked.
CREATE FUNCTION public.trail(task uuid)
	RETURNS TABLE (event text, from_status text, to_status text, reason text, actor text, data text)
	LANGUAGE sql STABLE
AS $$
	SELECT a.event, a.from_status, a.to_status, a.reason, a.actor, public.mask(a.data::text)
	  FROM agent_tasks.activities a
	 WHERE a.task_id = trail.task
	 ORDER BY a.id
$$;

-- How many rows a task has left anywhere (for delete cascades); superuser only.
CREATE FUNCTION public.rows_of(task uuid) RETURNS jsonb
	LANGUAGE sql STABLE
AS $$
	SELECT jsonb_build_object(
		'tasks', (SELECT count(*) FROM agent_tasks_internal.tasks WHERE id = task OR parent_id = task),
		'runs', (SELECT count(*) FROM agent_tasks_internal.runs WHERE task_id = task),
		'messages', (SELECT count(*) FROM agent_tasks_internal.messages WHERE task_id = task),
		'activities', (SELECT count(*) FROM agent_tasks_internal.activities WHERE task_id = task),
		'assignees', (SELECT count(*) FROM agent_tasks_internal.task_assignees WHERE task_id = task),
		'followers', (SELECT count(*) FROM agent_tasks_internal.task_followers WHERE task_id = task),
		'dependencies', (SELECT count(*) FROM agent_tasks_internal.task_dependencies
						  WHERE task_id = task OR depends_on = task))
$$;

--
-- The extension as installed
--
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'agent_tasks';
SELECT nspname FROM pg_namespace WHERE nspname LIKE 'agent\_tasks%' ORDER BY 1;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'agent\_tasks\_%' ORDER BY 1;
-- reader < writer < worker < admin
SELECT r.rolname AS role, m.rolname AS member_of
  FROM pg_auth_members am
  JOIN pg_roles r ON r.oid = am.member
  JOIN pg_roles m ON m.oid = am.roleid
 WHERE r.rolname LIKE 'agent\_tasks\_%'
 ORDER BY 1, 2;
SELECT pg_has_role('agent_tasks_admin', 'agent_tasks_reader', 'MEMBER') AS admin_is_reader,
	   pg_has_role('agent_tasks_reader', 'agent_tasks_writer', 'MEMBER') AS reader_is_writer;

-- Schema agent_tasks holds views and functions only; tables live in agent_tasks_internal.
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relkind NOT IN ('v')
 ORDER BY 1;

-- The core tables (later features add more; the checks below cover all).
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
   AND c.relname IN ('users', 'agents', 'tasks', 'task_assignees', 'task_followers',
					 'task_dependencies', 'runs', 'messages', 'activities')
 ORDER BY 1;

-- Conventions (each query lists violations, so the expected result is empty):
-- every table has row-level security, with a policy on account, and leads
-- its primary key with account ...
SELECT c.oid::regclass AS table_without_rls FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
   AND (NOT c.relrowsecurity
		OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
						 AND pg_get_expr(p.polqual, p.polrelid) LIKE '%account = ( SELECT agent_tasks.current_account()%'));
SELECT c.oid::regclass AS key_not_leading_with_account FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'
					  AND pg_get_constraintdef(k.oid) LIKE 'PRIMARY KEY (account%');
-- ... every table's rows are saved by pg_dump with the extension, and every
-- trigger that fires on INSERT steps aside while a dump is restored ...
SELECT c.oid::regclass AS table_not_dumped FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
   AND NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'agent_tasks' AND c.oid = ANY (e.extconfig));
SELECT t.tgrelid::regclass AS "table", t.tgname AS insert_trigger_not_restore_aware FROM pg_trigger t
 WHERE t.tgrelid IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace)
   AND NOT t.tgisinternal AND (t.tgtype & 4) <> 0	-- TRIGGER_TYPE_INSERT
   AND pg_get_triggerdef(t.oid) NOT LIKE '%WHEN (%(NOT agent_tasks_internal.restoring())%';
-- ... a COMMENT ON every function and view of the public schema ...
SELECT p.oid::regprocedure AS function_without_comment FROM pg_proc p
 WHERE p.pronamespace = 'agent_tasks'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.oid::regclass AS view_without_comment FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND obj_description(c.oid, 'pg_class') IS NULL;
-- ... no function executable by PUBLIC, in either schema ...
SELECT p.oid::regprocedure AS executable_by_public FROM pg_proc p
 WHERE p.pronamespace IN ('agent_tasks'::regnamespace, 'agent_tasks_internal'::regnamespace)
   AND has_function_privilege('regress_nobody', p.oid, 'EXECUTE');
-- ... no table or view readable by PUBLIC ...
SELECT c.oid::regclass AS readable_by_public FROM pg_class c
 WHERE c.relnamespace IN ('agent_tasks'::regnamespace, 'agent_tasks_internal'::regnamespace)
   AND c.relkind IN ('r', 'v') AND has_table_privilege('regress_nobody', c.oid, 'SELECT');
-- ... every function not written in C pins its search_path ...
SELECT p.oid::regprocedure AS function_without_search_path FROM pg_proc p
 WHERE p.pronamespace IN ('agent_tasks'::regnamespace, 'agent_tasks_internal'::regnamespace)
   AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%');
-- ... and every view belongs to agent_tasks_engine, which alone may read
-- the private tables and is subject to row-level security (issue 10).
SELECT c.oid::regclass AS view_not_owned_by_engine FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relkind = 'v'
   AND (c.relowner <> 'agent_tasks_engine'::regrole
		OR coalesce('security_invoker=true' = ANY (c.reloptions), false))
 ORDER BY 1;
-- ... and no API role holds any privilege on a private table.
SELECT c.oid::regclass AS table_with_api_privileges FROM pg_class c
 WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
   AND EXISTS (SELECT 1 FROM unnest(ARRAY['agent_tasks_reader', 'agent_tasks_writer', 'agent_tasks_worker', 'agent_tasks_admin']) r
				WHERE has_table_privilege(r, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
				   OR has_any_column_privilege(r, c.oid, 'SELECT, INSERT, UPDATE'))
 ORDER BY 1;
-- SECURITY DEFINER functions pin their search_path to pg_catalog, pg_temp.
SELECT p.oid::regprocedure AS unsafe_security_definer FROM pg_proc p
 WHERE p.pronamespace IN ('agent_tasks'::regnamespace, 'agent_tasks_internal'::regnamespace)
   AND p.prosecdef AND NOT 'search_path=pg_catalog, pg_temp' = ANY (coalesce(p.proconfig, '{}'));
-- The core's SECURITY DEFINER functions are its trigger functions (no API
-- role may write activities; firing a trigger needs no EXECUTE grant).
SELECT p.oid::regprocedure AS security_definer FROM pg_proc p
 WHERE p.pronamespace = 'agent_tasks_internal'::regnamespace AND p.prosecdef
   AND p.proname IN ('task_transition', 'run_transition', 'task_link_changed', 'message_added',
					 'activities_are_append_only', 'child_moved')
 ORDER BY 1;

-- The settings of the extension (GUCs), all under the reserved prefix.
SELECT name, setting, context FROM pg_settings
 WHERE name IN ('agent_tasks.account', 'agent_tasks.email', 'agent_tasks.user', 'agent_tasks.max_items')
 ORDER BY 1;
SET agent_tasks.no_such_setting = 1;

--
-- Identity
--
SET ROLE regress_app;
RESET agent_tasks.account;
RESET agent_tasks.email;
SELECT expect_error('SELECT agent_tasks.current_account()');
SELECT expect_error($$SELECT agent_tasks.create_task('no account')$$);
SELECT agent_tasks.current_user_email() IS NULL AS no_user;
SELECT agent_tasks_internal.current_actor() AS actor_without_user;
SET agent_tasks.account = 'acme';
SET agent_tasks.email = 'Alice@Example.COM';
SELECT agent_tasks.current_account(), agent_tasks.current_user_email();
-- agent_tasks.user, the setting's name in 0.1.0, is still read when
-- agent_tasks.email is empty (the actor of activities, in C, too)
RESET agent_tasks.email;
SET agent_tasks."user" = 'Old.Name@Example.com';
SELECT agent_tasks.current_user_email() AS from_former_name;
SET agent_tasks.email = 'alice@example.com';
SELECT agent_tasks.current_user_email() AS new_name_first;
RESET agent_tasks."user";
-- PostgREST's JWT claims win over the settings.
SET request.jwt.claims = '{"account": "jwt-account", "email": "Jwt@Example.com", "role": "x"}';
SELECT agent_tasks.current_account(), agent_tasks.current_user_email();
SET request.jwt.claims = '{"account": "jwt-account", "sub": "sub-user@example.com"}';
SELECT agent_tasks.current_user_email();
-- an empty "email" claim names nobody: "sub" does
SET request.jwt.claims = '{"account": "jwt-account", "email": "", "sub": "Sub-User@example.com"}';
SELECT agent_tasks.current_user_email() AS from_sub;
-- a claim set without an account falls back to the setting
SET request.jwt.claims = '{"role": "anon"}';
SELECT agent_tasks.current_account(), agent_tasks.current_user_email();
RESET request.jwt.claims;
SELECT agent_tasks_internal.current_actor();
-- Roles without a grant of the extension's roles can call nothing.
SET ROLE regress_nobody;
SELECT expect_error('SELECT agent_tasks.current_account()');
SELECT expect_error('SELECT * FROM agent_tasks.tasks');
SELECT expect_error($$SELECT agent_tasks.create_task('x')$$);
RESET ROLE;
