--
-- 15_deep_chains: consequences of a status change travel through long
-- dependency chains without one trigger level per link.  Cancelling or
-- failing the head of a 10,000-long chain cancels every task of it, each
-- with its own activity and the blocker named in its reason.
--
\set SHOW_CONTEXT never
RESET ROLE;
SET agent_tasks.account = 'chains';
SET agent_tasks.email = 'chris@example.com';

-- Two chains of 10,000 blocked tasks each, built in bulk with the triggers
-- off (creating them through the API would take most of the suite's time;
-- their "created" activities and notifications are not what is tested).
CREATE FUNCTION pg_temp.make_chain(name text, n integer) RETURNS uuid
	LANGUAGE plpgsql
AS $$
DECLARE
	ids uuid[] := ARRAY(SELECT agent_tasks.uuid_v7() FROM generate_series(1, n));
BEGIN
	SET LOCAL session_replication_role = replica;
	INSERT INTO agent_tasks_internal.tasks (account, id, title, created_by, agent_id, status, status_reason)
	SELECT 'chains', ids[i], format('%s %s', name, i), 'chris@example.com',
		   CASE WHEN i = 1 THEN agent_tasks_internal.agent_id('chains', 'chain-worker') END,
		   'pending', CASE WHEN i > 1 THEN 'blocked' END
	  FROM generate_series(1, n) AS i;
	INSERT INTO agent_tasks_internal.task_dependencies (account, task_id, depends_on)
	SELECT 'chains', ids[i], ids[i - 1] FROM generate_series(2, n) AS i;
	RETURN ids[1];
END
$$;
SELECT name FROM agent_tasks.create_agent('chain-worker', 'external', max_attempts => 1);
SELECT pg_temp.make_chain('cancel', 10000) AS cancel_head \gset
SELECT pg_temp.make_chain('fail', 10000) AS fail_head \gset

SET ROLE regress_writer;
-- cancel the head: the whole chain is cancelled
SELECT status FROM agent_tasks.cancel_task(:'cancel_head');
SELECT status, status_reason ~ '^dependency_cancelled:' AS names_blocker, count(*)
  FROM agent_tasks.tasks WHERE title LIKE 'cancel %' AND id <> :'cancel_head'
 GROUP BY 1, 2;
SELECT count(*) AS cancel_activities FROM agent_tasks.activities a
  JOIN agent_tasks.tasks t ON t.id = a.task_id
 WHERE t.title LIKE 'cancel %' AND a.to_status = 'cancelled';

-- fail the head through its worker: the chain is cancelled, the first link
-- naming the failure
RESET ROLE;
SELECT status FROM agent_tasks.process_task(:'fail_head');
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('chain-w', '{chain-worker}', 1) \gset
SELECT status FROM agent_tasks.fail_run((SELECT latest_run_id FROM agent_tasks_internal.tasks WHERE id = :'fail_head'),
	'broken', retryable => false, worker => 'chain-w');
SELECT status, split_part(status_reason, ':', 1) AS reason, count(*)
  FROM agent_tasks.tasks WHERE title LIKE 'fail %' AND id <> :'fail_head'
 GROUP BY 1, 2 ORDER BY 2;
SELECT count(*) AS unfinished_runs FROM agent_tasks_internal.runs
 WHERE account = 'chains' AND status NOT IN ('completed', 'failed', 'cancelled');

