--
-- 13_budgets_and_waiting: token and cost budgets of tasks and agents (a run
-- over budget is put on hold with budget_exceeded; process_task resumes it,
-- and a resumed run goes ahead), wait_task, queue_stats and run_history.
--
\set SHOW_CONTEXT never
SET ROLE regress_engine;
SET agent_tasks.account = 'eng-budget';
SET agent_tasks.email = 'bea@example.com';

CREATE FUNCTION pg_temp.task(title text) RETURNS uuid
	LANGUAGE sql
AS $$ SELECT t.id FROM agent_tasks.tasks t WHERE t.title = task.title $$;
CREATE FUNCTION pg_temp.run(title text) RETURNS uuid
	LANGUAGE sql
AS $$ SELECT t.latest_run_id FROM agent_tasks.tasks t WHERE t.title = run.title $$;
CREATE FUNCTION pg_temp.st(title text) RETURNS text
	LANGUAGE sql
AS $$ SELECT t.status || coalesce(' (' || t.status_reason || ')', '') FROM agent_tasks.tasks t WHERE t.title = st.title $$;
-- Titles of what a claim of one agent got.
CREATE FUNCTION pg_temp.claim(agent text, worker text DEFAULT 'w1') RETURNS text
	LANGUAGE sql
AS $$
	SELECT coalesce(string_agg(c.task ->> 'title', ', '), '(none)')
	  FROM agent_tasks.claim_runs(worker, ARRAY[agent], 10) c
$$;

SELECT name FROM agent_tasks.create_agent('plain', 'external', max_attempts => 2, backoff_base => '0', backoff_max => '0');
SELECT name FROM agent_tasks.create_agent('metered', 'external', budget_tokens => 100, budget_cost => 1.0);

--
-- A task's token budget, reached while the run reports its usage: the run
-- stops (on hold, lease released) and its worker can no longer finish it.
--
SELECT (agent_tasks.create_task('capped', agent => 'plain', budget_tokens => 50, auto_process => true)).status;
SELECT pg_temp.claim('plain') AS claimed;
SELECT status, status_reason, tokens, lease_expires_at IS NULL AS lease_released
  FROM agent_tasks.report_progress(pg_temp.run('capped'), 'thinking', data => '{"usage": {"total_tokens": 30}}');
SELECT status, status_reason, tokens
  FROM agent_tasks.report_progress(pg_temp.run('capped'), 'thinking more', data => '{"usage": {"total_tokens": 25}}');
SELECT pg_temp.st('capped') AS task;
SELECT error_code(format('SELECT agent_tasks.complete_run(%L, %L)', pg_temp.run('capped'), '{}')) AS late_complete;
-- process_task resumes it; a resumed run goes ahead even over budget
SELECT status, status_reason FROM agent_tasks.process_task(pg_temp.task('capped'));
SELECT pg_temp.claim('plain') AS claimed_over_budget;
SELECT status, tokens FROM agent_tasks.complete_run(pg_temp.run('capped'), '{"done": true}', '{"total_tokens": 5}');
SELECT attempt, status, status_reason, tokens FROM agent_tasks.runs WHERE task_id = pg_temp.task('capped') ORDER BY id;
SELECT event, from_status, to_status, reason, actor FROM trail(pg_temp.task('capped')) WHERE event <> 'progress';

-- A cost budget works the same way.
SELECT (agent_tasks.create_task('pricey', agent => 'plain', budget_cost => 0.10, auto_process => true)).status;
SELECT pg_temp.claim('plain') AS claimed;
SELECT status, status_reason, cost
  FROM agent_tasks.report_progress(pg_temp.run('pricey'), 'calling', data => '{"usage": {"cost": 0.25}}');

-- A task that went over budget between attempts is held when claimed.
SELECT (agent_tasks.create_task('retried', agent => 'plain', budget_tokens => 100, auto_process => true)).status;
SELECT pg_temp.claim('plain') AS claimed;
SELECT status FROM agent_tasks.report_progress(pg_temp.run('retried'), 'x', data => '{"usage": {"total_tokens": 40}}');
SELECT status FROM agent_tasks.fail_run(pg_temp.run('retried'), 'timeout upstream');
SELECT (agent_tasks.update_task(pg_temp.task('retried'), '{"budget_tokens": 40}')).budget_tokens;
SELECT pg_temp.claim('plain') AS held_not_claimed;
SELECT pg_temp.st('retried') AS task;
SELECT attempt, status, status_reason FROM agent_tasks.runs WHERE task_id = pg_temp.task('retried') ORDER BY id;
SELECT status, status_reason FROM agent_tasks.process_task(pg_temp.task('retried'));
SELECT pg_temp.claim('plain') AS resumed;
SELECT status FROM agent_tasks.complete_run(pg_temp.run('retried'), '{}');

--
-- An agent's budget counts the usage of all its runs.
--
SELECT (agent_tasks.create_task('big job', agent => 'metered', auto_process => true)).status;
SELECT pg_temp.claim('metered') AS claimed;
SELECT status, tokens FROM agent_tasks.complete_run(pg_temp.run('big job'), '{}', '{"total_tokens": 120, "cost": 0.5}');
SELECT agent, used_tokens, used_cost FROM agent_tasks.queue_stats WHERE agent = 'metered';
SELECT (agent_tasks.create_task('next job', agent => 'metered', auto_process => true)).status;
SELECT pg_temp.claim('metered') AS held_not_claimed;
SELECT pg_temp.st('next job') AS task;
SELECT event, from_status, to_status, reason, actor FROM trail(pg_temp.task('next job'));
-- resumed by a person, it goes ahead
SELECT status, status_reason FROM agent_tasks.process_task(pg_temp.task('next job'));
SELECT pg_temp.claim('metered') AS resumed;
SELECT status FROM agent_tasks.complete_run(pg_temp.run('next job'), '{}', '{"total_tokens": 1}');
-- a bigger budget lets new work through
SELECT (agent_tasks.alter_agent('metered', '{"budget_tokens": 1000}')).budget_tokens;
SELECT (agent_tasks.create_task('after raise', agent => 'metered', auto_process => true)).status;
SELECT pg_temp.claim('metered') AS claimed;
-- ... unless the cost budget is used up
SELECT status FROM agent_tasks.complete_run(pg_temp.run('after raise'), '{}', '{"cost": 0.6}');
SELECT agent, used_tokens, used_cost FROM agent_tasks.queue_stats WHERE agent = 'metered';
SELECT (agent_tasks.create_task('over cost', agent => 'metered', auto_process => true)).status;
SELECT pg_temp.claim('metered') AS held_not_claimed;
SELECT pg_temp.st('over cost') AS task;

--
-- wait_task: at once for a finished task or one waiting for a person,
-- else after the timeout (tiny here); only the status is printed.
--
CREATE FUNCTION pg_temp.waited(title text, timeout interval)
	RETURNS TABLE (status text, at_least_timeout boolean, quick boolean)
	LANGUAGE plpgsql
AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	s text;
BEGIN
	s := (agent_tasks.wait_task(pg_temp.task(title), timeout)).status;
	RETURN QUERY SELECT s, clock_timestamp() - t0 >= greatest(timeout, '0'), clock_timestamp() - t0 < interval '5 seconds';
END
$$;
SELECT (agent_tasks.create_task('waiting for a person', agent => 'plain', auto_process => true)).status;
SELECT pg_temp.claim('plain') AS claimed;
SELECT status FROM agent_tasks.request_clarification(pg_temp.run('waiting for a person'), 'Which one?');
SELECT (agent_tasks.create_task('queued for long', agent => 'plain', run_after => now() + interval '1 day', auto_process => true)).status;
SELECT (agent_tasks.create_task('never started')).status;
SELECT title, w.* FROM (VALUES ('capped'), ('retried'), ('over cost'), ('waiting for a person'), ('pricey')) v(title),
	   LATERAL pg_temp.waited(v.title, '10 seconds') w;
SELECT title, w.* FROM (VALUES ('queued for long'), ('never started')) v(title),
	   LATERAL pg_temp.waited(v.title, '50 milliseconds') w;
SELECT * FROM pg_temp.waited('queued for long', '0');
SELECT * FROM pg_temp.waited('queued for long', '-1 second');
SELECT expect_error(format('SELECT agent_tasks.wait_task(%L, %L)', agent_tasks.uuid_v7(), '10 milliseconds'));
SELECT pg_temp.task('capped') AS capped \gset
SET agent_tasks.account = 'eng-budget-2';
SELECT expect_error(format('SELECT agent_tasks.wait_task(%L, %L)', :'capped', '10 milliseconds'));
SET agent_tasks.account = 'eng-budget';
SET ROLE regress_reader;
SELECT (agent_tasks.wait_task(pg_temp.task('capped'), '10 milliseconds')).status AS reader_waits;
SET ROLE regress_engine;

--
-- queue_stats: per agent, counts of the runs (times are not printed)
--
SELECT name FROM agent_tasks.create_agent('stats', 'external', concurrency => 10);
SELECT (agent_tasks.create_task('s queued', agent => 'stats', auto_process => true)).status;
SELECT (agent_tasks.create_task('s scheduled', agent => 'stats', run_after => now() + interval '1 day', auto_process => true)).status;
SELECT (agent_tasks.create_task('s running', agent => 'stats', priority => 3, auto_process => true)).status;
SELECT (agent_tasks.create_task('s done', agent => 'stats', priority => 2, auto_process => true)).status;
SELECT (agent_tasks.create_task('s failed', agent => 'stats', priority => 1, auto_process => true)).status;
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('w1', ARRAY['stats'], 3);
SELECT status FROM agent_tasks.complete_run(pg_temp.run('s done'), '{}', '{"total_tokens": 7}');
SELECT status FROM agent_tasks.fail_run(pg_temp.run('s failed'), 'no', false);
SELECT agent, kind, queued, runnable, in_progress, oldest_queued_age > '0' AS has_oldest_age,
	   completed_last_hour, failed_last_hour, duration_p50_seconds >= 0 AS has_p50,
	   duration_p95_seconds >= duration_p50_seconds AS p95_ge_p50, used_tokens, used_cost, account
  FROM agent_tasks.queue_stats ORDER BY agent;
-- an agent without runs has a row of zeros
SELECT name FROM agent_tasks.create_agent('idle', 'external');
SELECT agent, queued, runnable, in_progress, oldest_queued_age, completed_last_hour, failed_last_hour,
	   duration_p50_seconds, duration_p95_seconds
  FROM agent_tasks.queue_stats WHERE agent = 'idle';
-- other accounts see only theirs
SET agent_tasks.account = 'eng-budget-2';
SELECT count(*) AS other_accounts_rows FROM agent_tasks.queue_stats;
SET agent_tasks.account = 'eng-budget';

--
-- run_history: each task's attempts in order
--
SELECT attempt, status, status_reason, agent, worker, error ->> 'message' AS error, tokens, cost,
	   duration IS NOT NULL AS has_duration, started_at IS NOT NULL AS started
  FROM agent_tasks.run_history WHERE task_id = pg_temp.task('retried') ORDER BY run_id;
SELECT attempt, status, status_reason, agent, worker, tokens, duration IS NOT NULL AS has_duration
  FROM agent_tasks.run_history WHERE task_id = pg_temp.task('capped') ORDER BY run_id;
SELECT count(*) AS history_rows, count(DISTINCT task_id) AS tasks FROM agent_tasks.run_history;
SET agent_tasks.account = 'eng-budget-2';
SELECT count(*) AS other_accounts_rows FROM agent_tasks.run_history;
SET agent_tasks.account = 'eng-budget';
