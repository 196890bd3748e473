--
-- 19_writes: the rows one task's lifecycle writes (create with auto_process,
-- claim, complete), table by table, and that the task's status changes are
-- HOT updates (no index of tasks covers a column they change).
--
\set SHOW_CONTEXT never
RESET ROLE;
SET agent_tasks.account = 'writes';
SET agent_tasks.email = 'wes@example.com';
SELECT name FROM agent_tasks.create_agent('counted', 'external');

CREATE FUNCTION pg_temp.writes() RETURNS TABLE (table_name name, inserted bigint, updated bigint, hot boolean)
	LANGUAGE sql
AS $$
	SELECT c.relname, pg_stat_get_xact_tuples_inserted(c.oid), pg_stat_get_xact_tuples_updated(c.oid),
		   CASE WHEN pg_stat_get_xact_tuples_updated(c.oid) > 0
				THEN pg_stat_get_xact_tuples_hot_updated(c.oid) = pg_stat_get_xact_tuples_updated(c.oid) END
	  FROM pg_class c
	 WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
	   AND pg_stat_get_xact_tuples_inserted(c.oid) + pg_stat_get_xact_tuples_updated(c.oid) > 0
	 ORDER BY 1
$$;

-- A task's whole lifecycle: created with auto_process, claimed, completed.
CREATE FUNCTION pg_temp.lifecycle(title text) RETURNS uuid
	LANGUAGE plpgsql
AS $$
DECLARE
	task uuid := (agent_tasks.create_task(title, agent => 'counted', auto_process => true)).id;
BEGIN
	PERFORM agent_tasks.claim_runs('counter', '{counted}', 1);
	PERFORM agent_tasks.complete_run((SELECT t.latest_run_id FROM agent_tasks.tasks t WHERE t.id = task),
		'{"done": true}', worker => 'counter');
	RETURN task;
END
$$;

-- (the person is known from an earlier task, and statistics of earlier
-- transactions are flushed first: the counts are this transaction's alone)
SELECT count(*) AS warm_up FROM agent_tasks.create_task('Warm up');
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT pg_temp.lifecycle('Count my writes') AS t \gset
SELECT status FROM agent_tasks.tasks WHERE id = :'t';
SELECT * FROM pg_temp.writes();
COMMIT;
SELECT event, from_status, to_status FROM agent_tasks.activities WHERE task_id = :'t' ORDER BY id;

-- The search document is made when a task is inserted and remade only when
-- its title or prompt change, not at each status change.
SET track_functions = 'all';
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT pg_temp.lifecycle('Index me') AS s \gset
SELECT priority FROM agent_tasks.update_task(:'s', '{"priority": 5}');
SELECT pg_stat_get_xact_function_calls('agent_tasks_internal.index_task_text'::regproc) AS made;
SELECT title FROM agent_tasks.update_task(:'s', '{"title": "Reindexed"}');
SELECT pg_stat_get_xact_function_calls('agent_tasks_internal.index_task_text'::regproc) AS remade;
COMMIT;
SELECT search @@ plainto_tsquery('english', 'reindexed') AS new_title_found,
	   search @@ plainto_tsquery('english', 'index') AS old_title_found
  FROM agent_tasks.tasks WHERE id = :'s';
RESET track_functions;
