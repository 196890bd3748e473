--
-- 99_drop_recreate (last): DROP EXTENSION removes everything it made (the
-- roles stay, by design: they are cluster-wide), and CREATE EXTENSION works
-- again afterwards.
--
\set SHOW_CONTEXT never
RESET ROLE;
SELECT oid AS ext_oid FROM pg_extension WHERE extname = 'agent_tasks' \gset
SELECT count(*) > 0 AS has_members FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND refobjid = :ext_oid AND deptype = 'e';

DROP EXTENSION agent_tasks;

SELECT count(*) AS extension FROM pg_extension WHERE extname = 'agent_tasks';
SELECT nspname AS schema_left FROM pg_namespace WHERE nspname LIKE 'agent\_tasks%';
-- nothing that was a member of it, or refers to it, is left
SELECT count(*) AS members_left FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND refobjid = :ext_oid;
SELECT count(*) AS c_functions_left FROM pg_proc WHERE probin LIKE '%agent_tasks%';
SELECT p.oid::regprocedure AS function_left FROM pg_proc p
 WHERE p.prosrc LIKE '%agent_tasks%' AND p.pronamespace <> 'public'::regnamespace;
SELECT t.oid::regtype AS type_left FROM pg_type t
 WHERE t.typnamespace NOT IN (SELECT oid FROM pg_namespace)
	OR t.typname IN ('tasks', 'runs', 'activities', 'messages') AND t.typnamespace <> 'pg_catalog'::regnamespace;
SELECT c.oid AS relation_left FROM pg_class c WHERE c.relnamespace NOT IN (SELECT oid FROM pg_namespace);
SELECT count(*) AS policies_left FROM pg_policy p WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.polrelid);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname IN ('enforce_status_transition', 'task_changed', 'run_changed');
SELECT count(*) AS event_triggers FROM pg_event_trigger;
SELECT count(*) AS default_acls_left FROM pg_default_acl d
 WHERE d.defaclnamespace <> 0 AND NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.oid = d.defaclnamespace);
SELECT count(*) AS comments_left FROM pg_description WHERE description LIKE '%agent_tasks%';
SELECT count(*) AS init_privs_left FROM pg_init_privs i
 WHERE pg_describe_object(i.classoid, i.objoid, i.objsubid) IS NULL;
-- pg_depend: every entry still names existing objects
SELECT count(*) AS dangling_depend FROM pg_depend
 WHERE pg_describe_object(classid, objid, objsubid) IS NULL
	OR pg_describe_object(refclassid, refobjid, refobjsubid) IS NULL;
-- no privileges of the extension's roles are recorded in this database
SELECT count(*) AS shared_deps_left FROM pg_shdepend s
 WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND s.refclassid = 'pg_authid'::regclass
   AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname LIKE 'agent\_tasks\_%');
-- the roles stay (they may be granted to application roles, in any database)
SELECT rolname FROM pg_roles WHERE rolname LIKE 'agent\_tasks\_%' ORDER BY 1;

-- Created again, it works.
CREATE EXTENSION agent_tasks;
SELECT extversion FROM pg_extension WHERE extname = 'agent_tasks';
SET ROLE regress_app;
SET agent_tasks.account = 'again';
SET agent_tasks.email = 'ada@example.com';
SELECT (agent_tasks.create_task('After re-creation', assignees => ARRAY['ada@example.com'])).id AS t \gset
SELECT status FROM agent_tasks.process_task(:'t');
SELECT (agent_tasks.list_tasks()) ->> 'count' AS tasks;
SELECT event, from_status, to_status, actor FROM agent_tasks.activities ORDER BY id;
-- old rows did not come back
SELECT count(*) AS rows_of_earlier_accounts FROM agent_tasks.tasks WHERE account <> 'again';
RESET ROLE;
SELECT count(*) AS all_tasks FROM agent_tasks_internal.tasks;

-- The suite's roles go (the extension's roles stay).
DROP ROLE regress_app, regress_writer, regress_reader, regress_nobody;
