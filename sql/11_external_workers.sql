--
-- 11_external_workers: the claim API of external workers (the same code the
-- in-server executors use): claim_runs, heartbeat_run, report_progress.
-- Exclusive claims, priority then due order, run_after, agents' concurrency,
-- leases.  (No background worker serves this database: nothing else claims.)
--
\set SHOW_CONTEXT never
SET ROLE regress_engine;
SET agent_tasks.account = 'eng-claim';
SET agent_tasks.email = 'claire@example.com';

-- Titles of the tasks a claim got, in claim order.
CREATE FUNCTION pg_temp.claim(worker text, agents text[] DEFAULT NULL, n integer DEFAULT 1)
	RETURNS text
	LANGUAGE sql
AS $$
	SELECT coalesce(string_agg(c.task ->> 'title', ', ' ORDER BY c.ord), '(none)')
	  FROM agent_tasks.claim_runs(worker, agents, n)
		   WITH ORDINALITY AS c(run_id, task_id, agent, attempt, lease_expires_at, task, messages, ord)
$$;
CREATE FUNCTION pg_temp.task(title text) RETURNS uuid
	LANGUAGE sql
AS $$ SELECT t.id FROM agent_tasks.tasks t WHERE t.title = task.title $$;
CREATE FUNCTION pg_temp.run(title text) RETURNS uuid
	LANGUAGE sql
AS $$ SELECT t.latest_run_id FROM agent_tasks.tasks t WHERE t.title = run.title $$;

SELECT name FROM agent_tasks.create_agent('ext', 'external', concurrency => 10);
SELECT name FROM agent_tasks.create_agent('solo', 'external', concurrency => 1);
SELECT name FROM agent_tasks.create_agent('inproc', 'sql', target => 'engine_fns.answer');

--
-- Argument checks
--
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('')$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs(NULL)$$);
SELECT expect_error(format('SELECT * FROM agent_tasks.claim_runs(%L)', repeat('w', 201)));
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', max_runs => 0)$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', max_runs => 1001)$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', max_runs => NULL)$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', lease => '0')$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', lease => '-1 minute')$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', lease => '7 days 1 second')$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', ARRAY['nobody'])$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', ARRAY['ext', 'nobody'])$$);
-- the agents of sql (and http, openai) agents run inside the server
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', ARRAY['inproc'])$$);
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w', ARRAY['ext', 'inproc'])$$);
-- the bounds themselves are allowed; nothing is queued yet
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('w', ARRAY['ext'], 1000, '7 days');
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('w', '{}', 1);
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('w');

--
-- Claim order: priority first, then due time (then id); never a run that is
-- not due (run_after), not queued, not external, or of another account.
--
SELECT (agent_tasks.create_task('low', agent => 'ext', priority => -5, auto_process => true)).status;
SELECT (agent_tasks.create_task('mid-a', agent => 'ext', auto_process => true)).status;
SELECT (agent_tasks.create_task('mid-b', agent => 'ext', auto_process => true)).status;
SELECT (agent_tasks.create_task('high', agent => 'ext', priority => 10, auto_process => true)).status;
SELECT (agent_tasks.create_task('later', agent => 'ext', priority => 100,
	run_after => now() + interval '1 hour', auto_process => true)).status;
SELECT (agent_tasks.create_task('never processed', agent => 'ext', priority => 100)).status;
SELECT (agent_tasks.create_task('in the server', agent => 'inproc', priority => 100, auto_process => true)).status;
SELECT (agent_tasks.create_task('no agent', priority => -10, auto_process => true)).status;
SET agent_tasks.account = 'eng-claim-2';
SELECT (agent_tasks.create_task('other account', priority => 1000, auto_process => true)).status;
SET agent_tasks.account = 'eng-claim';
SELECT t.title, r.status, r.kind, r.attempt, r.due_at > now() AS scheduled
  FROM agent_tasks.runs r JOIN agent_tasks.tasks t ON t.id = r.task_id ORDER BY r.id;

-- one at a time: high, mid-a, mid-b, low; agents NULL means every external
-- agent (and tasks without one)
SELECT pg_temp.claim('w1') AS first;
SELECT pg_temp.claim('w1', ARRAY['ext']) AS second;
SELECT pg_temp.claim('w2', ARRAY['ext', 'solo'], 1) AS third;
SELECT pg_temp.claim('w2', ARRAY['ext'], 5) AS rest_of_ext;
SELECT pg_temp.claim('w3') AS rest;
-- exclusive: nothing left for anyone
SELECT pg_temp.claim('w4', NULL, 100) AS again;
SELECT t.title, r.status, r.worker, r.attempt, r.started_at IS NOT NULL AS started,
	   r.heartbeat_at IS NOT NULL AS heartbeat, r.lease_expires_at IS NOT NULL AS leased
  FROM agent_tasks.runs r JOIN agent_tasks.tasks t ON t.id = r.task_id ORDER BY t.priority DESC, r.id;
-- the task follows its run, and the trail names the worker
SELECT status, status_reason FROM agent_tasks.get_task(pg_temp.task('high'));
SELECT event, from_status, to_status, reason, actor FROM trail(pg_temp.task('high'));

-- What a claim returns: the run, its task (as the tasks view, without the
-- search document) and the conversation; the lease is the default one.
SELECT (agent_tasks.create_task('with a message', agent => 'solo', prompt => 'Summarize',
	output_schema => '{"type": "object"}', context => '{"repo": "x/y"}')).id AS t \gset
SELECT (agent_tasks.process_task(:'t', 'Use the main branch')).status;
SELECT c.run_id = pg_temp.run('with a message') AS run_id, c.task_id = :'t' AS task_id, c.agent, c.attempt,
	   c.lease_expires_at = now() + interval '5 minutes' AS default_lease,
	   c.task ->> 'title' AS title, c.task ->> 'prompt' AS prompt, c.task ->> 'status' AS task_status,
	   c.task -> 'context' AS context, c.task -> 'output_schema' AS output_schema,
	   c.task ? 'search' AS has_search,
	   jsonb_array_length(c.messages) AS messages, c.messages -> 0 ->> 'body' AS message,
	   c.messages -> 0 ->> 'role' AS role, c.messages -> 0 ? 'account' AS message_has_account
  FROM agent_tasks.claim_runs('w5', ARRAY['solo'], lease => NULL) c;
SELECT input FROM agent_tasks.runs WHERE id = pg_temp.run('with a message');

--
-- An agent's concurrency limit holds across workers and claims.
--
SELECT (agent_tasks.create_task('solo 2', agent => 'solo', auto_process => true)).status;
SELECT (agent_tasks.create_task('solo 3', agent => 'solo', auto_process => true)).status;
SELECT pg_temp.claim('w6', ARRAY['solo'], 10) AS solo_is_busy;
SELECT pg_temp.claim('w6', NULL, 10) AS nothing_else;
SELECT (agent_tasks.complete_run(pg_temp.run('with a message'), '{"summary": "ok"}')).status;
SELECT pg_temp.claim('w6', ARRAY['solo'], 10) AS one_more;
SELECT (agent_tasks.alter_agent('solo', '{"concurrency": 2}')).concurrency;
SELECT pg_temp.claim('w7', ARRAY['solo'], 10) AS with_two;
SELECT count(*) AS solo_in_progress FROM agent_tasks.runs WHERE agent = 'solo' AND status = 'in_progress';

-- A run scheduled for later is claimed once it is due.
RESET ROLE;
UPDATE agent_tasks_internal.runs SET due_at = now() - interval '1 second'
 WHERE account = 'eng-claim' AND status = 'queued' AND due_at > now();
SET ROLE regress_engine;
SELECT pg_temp.claim('w8', ARRAY['ext'], 10) AS now_due;

-- Leases: explicit, and the default from agent_tasks.default_lease
SELECT (agent_tasks.create_task('leased', agent => 'ext', auto_process => true)).status;
SELECT (agent_tasks.create_task('leased 2', agent => 'ext', auto_process => true)).status;
SELECT lease_expires_at = now() + interval '30 seconds' AS lease_30s
  FROM agent_tasks.claim_runs('w9', ARRAY['ext'], lease => '30 seconds');
SET agent_tasks.default_lease = '90s';
SELECT lease_expires_at = now() + interval '90 seconds' AS lease_90s
  FROM agent_tasks.claim_runs('w9', ARRAY['ext']);
RESET agent_tasks.default_lease;

--
-- heartbeat_run
--
SELECT pg_temp.run('leased') AS r \gset
SELECT agent_tasks.heartbeat_run(:'r', 'w9') = now() + interval '5 minutes' AS default_lease,
	   agent_tasks.heartbeat_run(:'r', 'w9', '1 hour') = now() + interval '1 hour' AS one_hour;
SELECT lease_expires_at = heartbeat_at + interval '1 hour' AS extended, worker FROM agent_tasks.runs WHERE id = :'r';
-- without a worker name, the holder is not checked
SELECT agent_tasks.heartbeat_run(:'r') = now() + interval '5 minutes' AS anonymous;
-- the lease of a heartbeat is bounded like the lease of a claim
SELECT error_code(format('SELECT agent_tasks.heartbeat_run(%L, %L, %L)', :'r', 'w9', '0')) AS zero_lease,
	   error_code(format('SELECT agent_tasks.heartbeat_run(%L, %L, %L)', :'r', 'w9', '-1 hour')) AS negative_lease,
	   error_code(format('SELECT agent_tasks.heartbeat_run(%L, %L, %L)', :'r', 'w9', '8 days')) AS long_lease;
-- another worker's run, a run not in progress, an unknown run, another account's run
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L, %L)', :'r', 'w-intruder'));
SELECT (agent_tasks.create_task('queued only', agent => 'solo', auto_process => true, priority => -100)).status;
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L)', pg_temp.run('queued only')));
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L)', pg_temp.run('with a message')));
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L)', agent_tasks.uuid_v7()));
SET agent_tasks.account = 'eng-claim-2';
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L, %L)', :'r', 'w9'));
-- its workers claim its own runs only
SELECT pg_temp.claim('w-other', NULL, 10) AS other_account_claims;
SET agent_tasks.account = 'eng-claim';
-- an expired lease cannot be renewed (a superuser plays the clock)
RESET ROLE;
UPDATE agent_tasks_internal.runs SET lease_expires_at = now() - interval '1 second' WHERE id = :'r';
SET ROLE regress_engine;
SELECT error_message(format('SELECT agent_tasks.heartbeat_run(%L, %L)', :'r', 'w9'));
SELECT status, worker FROM agent_tasks.runs WHERE id = :'r';

--
-- report_progress: phase, message and data on the run, a 'progress'
-- activity, and a heartbeat (the lease never shrinks).
--
SELECT pg_temp.run('leased 2') AS r2 \gset
SELECT phase, progress, progress_data, status, lease_expires_at = now() + interval '5 minutes' AS lease
  FROM agent_tasks.report_progress(:'r2', 'fetching', 'page 1 of 3', '{"pages": 3}', 'w9');
SELECT phase, progress, progress_data
  FROM agent_tasks.report_progress(:'r2', 'writing', worker => 'w9');
SELECT agent_tasks.heartbeat_run(:'r2', 'w9', '1 hour') IS NOT NULL AS long_lease;
SELECT lease_expires_at > now() + interval '30 minutes' AS lease_kept
  FROM agent_tasks.report_progress(:'r2', 'checking', 'almost', worker => 'w9');
SELECT event, actor, reason, data, run_id = :'r2' AS of_the_run
  FROM agent_tasks.activities WHERE task_id = pg_temp.task('leased 2') AND event = 'progress' ORDER BY id;
-- refusals
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, %L)', :'r2', ''));
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, NULL)', :'r2'));
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, %L)', :'r2', repeat('p', 101)));
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, %L, data => %L)', :'r2', 'x', '[1]'));
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, %L, data => %L)', :'r2', 'x', '{"usage": {"total_tokens": "many"}}'));
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, %L, worker => %L)', :'r2', 'x', 'w-intruder'));
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, %L)', pg_temp.run('queued only'), 'x'));
SELECT error_message(format('SELECT agent_tasks.report_progress(%L, %L)', :'r', 'x'));
-- a refused report changed nothing
SELECT phase, progress, status FROM agent_tasks.runs WHERE id = :'r2';

-- Workers need agent_tasks_worker.
SET ROLE regress_writer;
SELECT expect_error($$SELECT * FROM agent_tasks.claim_runs('w')$$);
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L)', :'r2'));
SELECT expect_error(format('SELECT agent_tasks.report_progress(%L, %L)', :'r2', 'x'));
SET ROLE regress_engine;
