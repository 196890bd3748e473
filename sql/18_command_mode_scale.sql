--
-- 18_command_mode_scale: a command-mode task with 10,000 items (the most
-- agent_tasks.max_items allows) is created and processed: each child is
-- queued once and the parent is counted against its children only when
-- one finishes, so processing stays linear in the number of items.
--
\set SHOW_CONTEXT never
RESET ROLE;
SET agent_tasks.max_items = 10000;
SET agent_tasks.account = 'scale';
SET agent_tasks.email = 'sam@example.com';
SELECT name FROM agent_tasks.create_agent('pager', 'external', concurrency => 10000);
SET ROLE regress_writer;
SELECT id AS parent FROM agent_tasks.create_task('Site', command => 'generate_pages', agent => 'pager',
	items => (SELECT jsonb_agg(jsonb_build_object('title', 'page ' || i, 'external_id', 'p' || i))
				FROM generate_series(1, 10000) i)) \gset
SELECT status, (SELECT count(*) FROM agent_tasks.tasks c WHERE c.parent_id = :'parent') AS children
  FROM agent_tasks.tasks WHERE id = :'parent';
SELECT status FROM agent_tasks.process_task(:'parent');
SELECT status, count(*) FROM agent_tasks.tasks WHERE parent_id = :'parent' GROUP BY status;
SELECT count(*) AS queued_runs FROM agent_tasks.runs r
  JOIN agent_tasks.tasks t ON t.id = r.task_id WHERE t.parent_id = :'parent' AND r.status = 'queued';

-- The first child to start starts the parent; the last to finish ends it
-- with the resources of all.
RESET ROLE;
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('pager-w', '{pager}', 1000);
SELECT status FROM agent_tasks.tasks WHERE id = :'parent';
SET session_replication_role = replica;
-- (all but one finish in bulk, without the triggers)
UPDATE agent_tasks_internal.runs r SET status = 'completed', ended_at = now()
  FROM agent_tasks_internal.tasks t
 WHERE t.account = 'scale' AND t.parent_id = :'parent' AND r.account = t.account AND r.id = t.latest_run_id
   AND t.external_id <> 'p1';
UPDATE agent_tasks_internal.tasks t SET status = 'completed', output = jsonb_build_object('created', jsonb_build_array(t.external_id))
 WHERE t.account = 'scale' AND t.parent_id = :'parent' AND t.external_id <> 'p1';
RESET session_replication_role;
SELECT status FROM agent_tasks.complete_run(
	(SELECT latest_run_id FROM agent_tasks_internal.tasks WHERE account = 'scale' AND external_id = 'p1'),
	'{"created": ["p1"]}', worker => 'pager-w');
SELECT status, jsonb_array_length(output -> 'created') AS created, output -> 'created' -> 0 AS first
  FROM agent_tasks.tasks WHERE id = :'parent';
DELETE FROM agent_tasks_internal.tasks WHERE account = 'scale';
