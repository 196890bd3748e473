--
-- 17_claims: a claim takes what it can and reads nothing it cannot take.
-- An agent at its concurrency limit with a large backlog, a run row whose
-- kind does not match its agent, and another agent's backlog do not keep
-- other runs from being claimed.  (Runs of a locked parent's children:
-- test/isolation/specs/engine_locked_parent.spec.)
--
\set SHOW_CONTEXT never
RESET ROLE;
SET agent_tasks.account = 'claims';
SET agent_tasks.email = 'cleo@example.com';
SELECT name FROM agent_tasks.create_agent('busy', 'external', concurrency => 2);
SELECT name FROM agent_tasks.create_agent('idle', 'external');

-- busy: 2 runs in progress (its limit) and 20,000 queued behind them,
-- loaded in bulk with the triggers off
SELECT count(*) FROM (SELECT agent_tasks.create_task('busy ' || i, agent => 'busy', auto_process => true)
						FROM generate_series(1, 2) i) x;
SELECT count(*) AS busy_claimed FROM agent_tasks.claim_runs('w-busy', '{busy}', 2);
CREATE FUNCTION pg_temp.backlog(agent text, n integer) RETURNS void
	LANGUAGE plpgsql
AS $$
DECLARE
	agent_id uuid := agent_tasks_internal.agent_id('claims', agent);
BEGIN
	SET LOCAL session_replication_role = replica;
	CREATE TEMP TABLE backlog_ids ON COMMIT DROP AS
		SELECT agent_tasks.uuid_v7() AS task_id, agent_tasks.uuid_v7() AS run_id FROM generate_series(1, n);
	INSERT INTO agent_tasks_internal.tasks (account, id, title, created_by, agent_id, status, latest_run_id)
	SELECT 'claims', task_id, 'backlog', 'cleo@example.com', agent_id, 'queued', run_id FROM backlog_ids;
	INSERT INTO agent_tasks_internal.runs (account, id, task_id, agent_id, kind, status)
	SELECT 'claims', run_id, task_id, agent_id, 'external', 'queued' FROM backlog_ids;
END
$$;
SELECT pg_temp.backlog('busy', 20000);
ANALYZE agent_tasks_internal.runs;

-- the idle agent's one run is claimed, by name and without naming agents
SELECT (agent_tasks.create_task('idle work', agent => 'idle', auto_process => true)).status;
SELECT task ->> 'title' AS claimed, agent FROM agent_tasks.claim_runs('w-any', NULL, 5);
SELECT count(*) FILTER (WHERE status = 'in_progress') AS busy_in_progress,
	   count(*) FILTER (WHERE status = 'queued') AS busy_queued
  FROM agent_tasks_internal.runs r WHERE r.account = 'claims' AND r.agent_id = agent_tasks_internal.agent_id('claims', 'busy');
-- and the busy agent's runs wait for a free slot
SELECT count(*) AS busy_claimed_over_limit FROM agent_tasks.claim_runs('w-busy', '{busy}', 5);

-- A run row whose kind does not match its agent (here an sql run of an
-- http agent whose URL is no function name) neither stops the executors'
-- claims nor runs as sql: it is claimed by its agent's worker type.
CREATE FUNCTION public.claims_answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{"ok": true}'::jsonb $$;
SELECT name FROM agent_tasks.create_agent('answerer', 'sql', 'public.claims_answer');
SELECT name FROM agent_tasks.create_agent('web', 'http', 'https://agents.example.com/v1.2/run');
SELECT id AS poison_task FROM agent_tasks.create_task('poison', agent => 'web') \gset
INSERT INTO agent_tasks_internal.runs (account, task_id, agent_id, kind)
VALUES ('claims', :'poison_task', agent_tasks_internal.agent_id('claims', 'web'), 'sql');
SELECT (agent_tasks.create_task('sql work', agent => 'answerer', auto_process => true)).status;
-- (the call reads the task and the run each by its key: a plan kept from
-- when the tables were new cannot join them through all of an account's tasks)
SELECT a.name AS agent, c.call LIKE '%public.claims_answer(t, r)%' AS calls_its_function,
	   c.task_id = r.task_id AND c.call LIKE '%r.account = $1 AND r.id = $2%'
		 AND c.call LIKE '%t.account = $1 AND t.id = $3%' AS by_keys
  FROM agent_tasks_internal.claim_sql_runs('exec-test', 16) c
  JOIN agent_tasks_internal.runs r ON r.account = c.account AND r.id = c.run_id
  JOIN agent_tasks_internal.agents a ON a.account = r.account AND a.id = r.agent_id;
SELECT r.kind, r.status, a.name AS agent
  FROM agent_tasks_internal.claim_batch('{http,openai}', 'claims', NULL, 'dispatcher-test', NULL, 5) r
  JOIN agent_tasks_internal.agents a ON a.account = r.account AND a.id = r.agent_id;

-- A queued run follows its task: a new priority changes the claim order, a
-- new agent its queue, a new run_after its due time (a retry's backoff stays
-- otherwise)
SELECT name FROM agent_tasks.create_agent('order', 'external');
SELECT name FROM agent_tasks.create_agent('other', 'external');
SELECT id AS first_task FROM agent_tasks.create_task('first', agent => 'order', auto_process => true) \gset
SELECT id AS second_task FROM agent_tasks.create_task('second', agent => 'order', auto_process => true) \gset
SELECT priority FROM agent_tasks.update_task(:'second_task', '{"priority": 10}');
SELECT r.priority, r.status FROM agent_tasks.runs r WHERE r.task_id = :'second_task';
SELECT t.title FROM agent_tasks.claim_runs('w-order', '{order}', 1) c
  JOIN agent_tasks.tasks t ON t.id = c.task_id;
SELECT agent FROM agent_tasks.update_task(:'first_task', '{"agent": "other", "run_after": "2099-01-01T00:00:00Z"}');
SELECT r.agent, r.due_at = '2099-01-01T00:00:00Z' AS due_later
  FROM agent_tasks.runs r WHERE r.task_id = :'first_task';
SELECT count(*) AS not_due FROM agent_tasks.claim_runs('w-order', '{other}', 1);
SELECT count(*) AS updated_activities FROM agent_tasks.activities
 WHERE task_id IN (:'first_task', :'second_task') AND event = 'updated';

-- Unless it names its agents, a claim looks only at the agents that have
-- queued runs: 1,000 idle sql agents of other accounts and 1,000 idle
-- external agents of this one are not read (a claim read every agent of
-- the kinds it wanted before).
SET session_replication_role = replica;
INSERT INTO agent_tasks_internal.agents (account, name, kind, target)
SELECT 'claims-idle-' || (i % 200), 'idle-' || i, 'sql', 'public.claims_answer' FROM generate_series(1, 1000) i;
INSERT INTO agent_tasks_internal.agents (account, name, kind)
SELECT 'claims', 'idle-' || i, 'external' FROM generate_series(1, 1000) i;
RESET session_replication_role;
ANALYZE agent_tasks_internal.agents;
SELECT (agent_tasks.create_task('among idle agents', agent => 'answerer', auto_process => true)).status;
SELECT (agent_tasks.create_task('among idle agents too', agent => 'idle', auto_process => true)).status;
CREATE FUNCTION pg_temp.agents_read() RETURNS bigint LANGUAGE sql
	AS $$ SELECT pg_stat_get_xact_tuples_returned('agent_tasks_internal.agents'::regclass)
				 + pg_stat_get_xact_tuples_fetched('agent_tasks_internal.agents'::regclass) $$;
-- (counting from here: the statistics of the statements before are flushed)
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT count(*) AS claimed FROM agent_tasks_internal.claim_sql_runs('exec-test', 16);
SELECT pg_temp.agents_read() < 100 AS idle_agents_not_read;
COMMIT;
-- (counting from here: the statistics of the statements before are flushed)
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT task ->> 'title' AS claimed FROM agent_tasks.claim_runs('w-idle', NULL, 5);
SELECT pg_temp.agents_read() < 100 AS idle_agents_of_the_account_not_read;
COMMIT;
DELETE FROM agent_tasks_internal.agents WHERE account LIKE 'claims-idle-%' OR name LIKE 'idle-%';

-- queue_stats: per agent, and the runs of tasks without an agent as agent NULL
SELECT (agent_tasks.create_task('no agent', auto_process => true)).status;
SELECT agent, kind, queued, in_progress FROM agent_tasks.queue_stats
 WHERE account = 'claims' ORDER BY agent NULLS FIRST;

RESET ROLE;
DELETE FROM agent_tasks_internal.tasks WHERE account = 'claims';
DELETE FROM agent_tasks_internal.agents WHERE account = 'claims';
DROP FUNCTION public.claims_answer(agent_tasks.tasks, agent_tasks.runs);
-- the backlog's index entries go with it (21_schedules checks that the
-- maintenance job rebuilds a bloated queue index)
REINDEX INDEX agent_tasks_internal.runs_queued;
