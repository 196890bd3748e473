--
-- 10_agents: create_agent / alter_agent / drop_agent for the kinds of this
-- release (sql, external; http and openai only as far as their target URL),
-- every refusal, and who may call them.  The engine files (10-14) act as
-- regress_engine (agent_tasks_admin) so that row-level security applies.
--
\set SHOW_CONTEXT never
RESET ROLE;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_engine') THEN
		CREATE ROLE regress_engine NOLOGIN IN ROLE agent_tasks_admin;
	END IF;
END
$$;

-- Functions for sql agents (the schema public takes no objects from
-- ordinary roles in PostgreSQL 15, so the superuser makes them).
CREATE SCHEMA engine_fns;
GRANT USAGE ON SCHEMA engine_fns TO PUBLIC;
CREATE FUNCTION engine_fns.answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT jsonb_build_object('title', task.title, 'attempt', run.attempt) $$;
CREATE FUNCTION engine_fns.other_answer(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{"other": true}'::jsonb $$;
CREATE FUNCTION engine_fns.one_arg(task agent_tasks.tasks) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION engine_fns.returns_text(task agent_tasks.tasks, run agent_tasks.runs) RETURNS text
	LANGUAGE sql AS $$ SELECT 'no' $$;

SET ROLE regress_engine;
SET agent_tasks.account = 'eng';
SET agent_tasks.email = 'erin@example.com';

-- The agent as the view shows it, without ids and timestamps.
CREATE FUNCTION pg_temp.agent(n text)
	RETURNS TABLE (name text, kind text, target text, config jsonb, concurrency integer,
				   timeout interval, max_attempts integer, backoff_base interval,
				   backoff_max interval, budget_tokens bigint, budget_cost numeric)
	LANGUAGE sql
AS $$
	SELECT a.name, a.kind, a.target, a.config, a.concurrency, a.timeout, a.max_attempts,
		   a.backoff_base, a.backoff_max, a.budget_tokens, a.budget_cost
	  FROM agent_tasks.agents a WHERE a.name = agent.n
$$;

--
-- create_agent
--
-- an external agent with the defaults: concurrency 4, timeout 5 min,
-- 3 attempts, backoff 1 s doubling up to 5 min, no budget
SELECT name, kind, target, config, concurrency, timeout, max_attempts, backoff_base, backoff_max,
	   budget_tokens, budget_cost, account
  FROM agent_tasks.create_agent('crawler', 'external');
-- every limit set
SELECT * FROM agent_tasks.create_agent('writer.v2', 'external', config => '{"model": "x"}',
	concurrency => 2, timeout => '30 seconds', max_attempts => 5, backoff_base => '2 seconds',
	backoff_max => '1 minute', budget_tokens => 1000, budget_cost => 2.5) \gset w_
SELECT :'w_name' AS name, :'w_concurrency' AS concurrency, :'w_max_attempts' AS max_attempts,
	   :'w_budget_tokens' AS budget_tokens, :'w_budget_cost' AS budget_cost;
-- an sql agent: the target is a function (task, run) returning jsonb,
-- stored schema-qualified whatever the spelling
SELECT name, kind, target FROM agent_tasks.create_agent('answerer', 'sql', target => 'engine_fns.answer');
SELECT name, kind, target FROM agent_tasks.create_agent('answerer2', 'sql', target => ' ENGINE_FNS . "answer" ');
-- http and openai agents need a URL (executed by the HTTP issue's dispatcher)
SELECT name, kind, target FROM agent_tasks.create_agent('hook', 'http', target => 'https://agents.example.com/run');
SELECT name, kind, target FROM agent_tasks.create_agent('llm', 'openai', target => 'https://api.example.com/v1');
-- a target given to an external agent is kept as a note
SELECT name, kind, target FROM agent_tasks.create_agent('remote', 'external', target => 'fleet-7');
SELECT name, kind FROM agent_tasks.agents ORDER BY name;

-- refusals: names
SELECT expect_error($$SELECT agent_tasks.create_agent('Crawler', 'external')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('', 'external')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent(NULL, 'external')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('-x', 'external')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('has space', 'external')$$);
SELECT expect_error(format('SELECT agent_tasks.create_agent(%L, %L)', repeat('a', 64), 'external'));
SELECT name FROM agent_tasks.create_agent(repeat('a', 63), 'external') \gset
SELECT length(:'name') AS longest_name;
-- kinds
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'shell')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', NULL)$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'SQL', target => 'engine_fns.answer')$$);
-- limits
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', concurrency => 0)$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', concurrency => 10001)$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', max_attempts => 0)$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', max_attempts => 101)$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', timeout => '0')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', timeout => '-1 second')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', backoff_base => '-1 second')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', backoff_base => '1 minute', backoff_max => '59 seconds')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', budget_tokens => 0)$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', budget_cost => -1)$$);
-- a null limit is refused like any bad limit (not by the table's NOT NULL)
SELECT error_code($$SELECT agent_tasks.create_agent('k', 'external', concurrency => NULL)$$) AS null_concurrency,
	   error_code($$SELECT agent_tasks.create_agent('k', 'external', timeout => NULL)$$) AS null_timeout,
	   error_code($$SELECT agent_tasks.create_agent('k', 'external', max_attempts => NULL)$$) AS null_max_attempts,
	   error_code($$SELECT agent_tasks.create_agent('k', 'external', backoff_max => NULL)$$) AS null_backoff_max;
-- config must be an object
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'external', config => '[1]')$$);
-- the edges are allowed: backoff 0 (retry at once), backoff_max = backoff_base
SELECT name, concurrency, max_attempts, backoff_base, backoff_max
  FROM agent_tasks.create_agent('edges', 'external', concurrency => 10000, max_attempts => 100,
	backoff_base => '0', backoff_max => '0');
-- sql targets: missing function, wrong signature, wrong return type, no target,
-- unqualified name not on the (pinned) search path, malformed names
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql', target => 'engine_fns.missing')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql', target => 'engine_fns.one_arg')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql', target => 'engine_fns.returns_text')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql', target => 'answer')$$);
-- a malformed name is the same refusal (PT400), not a syntax error
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql', target => 'engine_fns.answer(int)')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql', target => 'not a name')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'sql', target => 'engine_fns.answer); SELECT 1; --')$$);
-- http / openai targets
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'http')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('k', 'openai', target => 'ftp://x.example.com')$$);
-- duplicates
SELECT expect_error($$SELECT agent_tasks.create_agent('crawler', 'external')$$);
SELECT expect_error($$SELECT agent_tasks.create_agent('crawler', 'sql', target => 'engine_fns.answer')$$);
-- nothing was left behind by the refusals
SELECT count(*) AS agents FROM agent_tasks.agents;
SELECT count(*) AS refused_left_behind FROM agent_tasks.agents WHERE name = 'k';

-- names are per account: another account may reuse one, and sees only its own
SET agent_tasks.account = 'eng-other';
SELECT name, kind, account FROM agent_tasks.create_agent('crawler', 'external');
SELECT name, account FROM agent_tasks.agents ORDER BY name;
SELECT expect_error($$SELECT agent_tasks.alter_agent('writer.v2', '{"concurrency": 1}')$$);
SELECT expect_error($$SELECT agent_tasks.drop_agent('writer.v2')$$);
SET agent_tasks.account = 'eng';

--
-- alter_agent
--
SELECT * FROM pg_temp.agent('writer.v2');
SELECT name, concurrency, timeout, max_attempts, backoff_base, backoff_max, budget_tokens, budget_cost, config
  FROM agent_tasks.alter_agent('writer.v2', '{"concurrency": 8, "timeout": "2 minutes", "max_attempts": 1,
	"backoff_base": "0", "backoff_max": "10 seconds", "budget_tokens": null, "budget_cost": 10,
	"config": {"model": "y"}}');
-- an empty patch changes nothing
SELECT * FROM pg_temp.agent('writer.v2');
SELECT (agent_tasks.alter_agent('writer.v2', '{}')).concurrency;
-- the target of an sql agent is checked again
SELECT name, target FROM agent_tasks.alter_agent('answerer', '{"target": "engine_fns.other_answer"}');
SELECT expect_error($$SELECT agent_tasks.alter_agent('answerer', '{"target": "engine_fns.returns_text"}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('answerer', '{"target": "engine_fns.one_arg"}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('answerer', '{"target": null}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('hook', '{"target": "not a url"}')$$);
SELECT target FROM pg_temp.agent('answerer');
-- refusals: unknown agent, unknown or immutable field, bad values, bad limits
SELECT expect_error($$SELECT agent_tasks.alter_agent('nobody', '{"concurrency": 1}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"kind": "sql"}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"name": "spider"}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"concurrency": "many"}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"timeout": "soon"}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"budget_cost": "lots"}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"concurrency": 0}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"backoff_base": "10 minutes"}')$$);
SELECT error_code($$SELECT agent_tasks.alter_agent('crawler', '{"max_attempts": null}')$$) AS null_max_attempts,
	   error_code($$SELECT agent_tasks.alter_agent('crawler', '{"concurrency": null}')$$) AS null_concurrency;
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"config": [1]}')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '[1]')$$);
-- a refused patch changes nothing, not even its valid fields
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{"concurrency": 2, "max_attempts": 0}')$$);
SELECT * FROM pg_temp.agent('crawler');

--
-- drop_agent
--
SELECT expect_error($$SELECT agent_tasks.drop_agent('nobody')$$);
SELECT error_code($$SELECT agent_tasks.drop_agent(NULL)$$) AS drop_null;
SELECT agent_tasks.drop_agent('edges');
SELECT expect_error($$SELECT agent_tasks.drop_agent('edges')$$);
-- an agent with a queued run cannot go; once the task is finished it can,
-- and the task keeps its history without the agent
SELECT (agent_tasks.create_task('Crawl the site', agent => 'crawler', auto_process => true)).id AS t \gset
SELECT status, agent FROM agent_tasks.get_task(:'t');
SELECT expect_error($$SELECT agent_tasks.drop_agent('crawler')$$);
-- ... also with a run in progress
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('w-drop', ARRAY['crawler']);
SELECT expect_error($$SELECT agent_tasks.drop_agent('crawler')$$);
SELECT (agent_tasks.complete_run(latest_run_id, '{"pages": 3}')).status FROM agent_tasks.get_task(:'t');
SELECT agent_tasks.drop_agent('crawler');
SELECT status, agent, output FROM agent_tasks.get_task(:'t');
SELECT attempt, status, agent, worker FROM agent_tasks.runs WHERE task_id = :'t';
SELECT count(*) AS crawler_left FROM agent_tasks.agents WHERE name = 'crawler';
-- the other account's agent of the same name is untouched
SET agent_tasks.account = 'eng-other';
SELECT name FROM agent_tasks.agents;
SET agent_tasks.account = 'eng';
-- a dropped name can be used again
SELECT name, kind FROM agent_tasks.create_agent('crawler', 'external', concurrency => 1);

--
-- Who may manage agents: agent_tasks_admin only; readers see them.
--
SET ROLE regress_writer;
SELECT expect_error($$SELECT agent_tasks.create_agent('w', 'external')$$);
SELECT expect_error($$SELECT agent_tasks.alter_agent('crawler', '{}')$$);
SELECT expect_error($$SELECT agent_tasks.drop_agent('crawler')$$);
SELECT expect_error($$SELECT * FROM agent_tasks.worker_status()$$);
-- writers reach the table only through the functions they are granted
SELECT expect_error($$INSERT INTO agent_tasks_internal.agents (account, name, kind) VALUES ('eng', 'sneaky', 'external')$$);
SET ROLE regress_reader;
SELECT count(*) > 0 AS reader_sees_agents FROM agent_tasks.agents;
SET ROLE regress_engine;

-- worker_status reads shared memory: it answers in every database (this one
-- has no workers of its own; the rows, if any, are the other database's)
SELECT count(*) >= 0 AS worker_status_answers FROM agent_tasks.worker_status();
SELECT count(*) AS workers_without_name FROM agent_tasks.worker_status() WHERE worker IS NULL OR pid IS NULL;

-- An agent's function runs as the role that created the agent or last set
-- its target; nobody chooses that role.
RESET ROLE;
SELECT name FROM agent_tasks.create_agent('su-made', 'sql', 'engine_fns.answer');
SELECT run_as = current_user AS runs_as_its_creator FROM agent_tasks_internal.agents WHERE name = 'su-made';
SET ROLE regress_engine;
-- changing the target makes the agent run as the role that changed it
SELECT name FROM agent_tasks.alter_agent('su-made', '{"target": "engine_fns.other_answer"}');
RESET ROLE;
SELECT run_as FROM agent_tasks_internal.agents WHERE name = 'su-made';
SET ROLE regress_engine;
-- the tables are private (issue 10): no direct write at all
SELECT expect_error($$UPDATE agent_tasks_internal.agents SET run_as = 'postgres' WHERE name = 'su-made'$$);
SELECT expect_error($$INSERT INTO agent_tasks_internal.agents (account, name, kind, target, run_as)
VALUES ('eng', 'chosen-role', 'external', NULL, 'postgres')$$);

-- An sql agent's function must be owned by the role the agent runs as (or
-- by a role that already has its rights): a superuser pointing an agent at
-- mallory's function would let mallory run code as the superuser.
RESET ROLE;
CREATE ROLE regress_mallory NOLOGIN;
CREATE TABLE engine_fns.pwned (who text);
GRANT INSERT ON engine_fns.pwned TO PUBLIC;
CREATE FUNCTION engine_fns.mallory_fn(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ INSERT INTO engine_fns.pwned VALUES (current_user) RETURNING '{}'::jsonb $$;
ALTER FUNCTION engine_fns.mallory_fn(agent_tasks.tasks, agent_tasks.runs) OWNER TO regress_mallory;
SELECT expect_error($$SELECT agent_tasks.create_agent('escalate', 'sql', 'engine_fns.mallory_fn')$$);
SELECT name FROM agent_tasks.create_agent('escalate', 'sql', 'engine_fns.answer', max_attempts => 1);
SELECT expect_error($$SELECT agent_tasks.alter_agent('escalate', '{"target": "engine_fns.mallory_fn"}')$$);
-- ownership changed after creation: the run fails and the function never runs
CREATE FUNCTION engine_fns.later_mallory(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT name FROM agent_tasks.alter_agent('escalate', '{"target": "engine_fns.later_mallory"}');
ALTER FUNCTION engine_fns.later_mallory(agent_tasks.tasks, agent_tasks.runs) OWNER TO regress_mallory;
CREATE OR REPLACE FUNCTION engine_fns.later_mallory(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
	LANGUAGE sql AS $$ INSERT INTO engine_fns.pwned VALUES (current_user) RETURNING '{}'::jsonb $$;
SELECT id AS esc_task FROM agent_tasks.create_task('escalate me', agent => 'escalate', auto_process => true) \gset
SELECT count(*) AS claimed FROM agent_tasks_internal.claim_sql_runs('regress', 16);
SELECT t.status, r.status AS run_status, r.status_reason, r.error ->> 'sqlstate' AS sqlstate, r.error ->> 'message' AS message
  FROM agent_tasks.tasks t JOIN agent_tasks.runs r ON r.id = t.latest_run_id WHERE t.id = :'esc_task';
SELECT count(*) AS executed FROM engine_fns.pwned;
SELECT agent_tasks.drop_agent('escalate') AS dropped;
DROP FUNCTION engine_fns.mallory_fn(agent_tasks.tasks, agent_tasks.runs), engine_fns.later_mallory(agent_tasks.tasks, agent_tasks.runs);
DROP TABLE engine_fns.pwned;
DROP ROLE regress_mallory;
SET ROLE regress_engine;
-- a timeout longer than a day is refused
SELECT expect_error($$SELECT agent_tasks.create_agent('forever', 'external', timeout => '2 days')$$);
SELECT agent_tasks.drop_agent('su-made') AS dropped;

-- Usage reported by an external worker (agent_tasks_worker, not admin)
-- is recorded and counted against the agent's budget (issue 10).
RESET ROLE;
CREATE ROLE regress_usage_worker NOLOGIN IN ROLE agent_tasks_worker;
SET ROLE regress_engine;
SELECT name FROM agent_tasks.create_agent('metered', 'external', budget_tokens => 15);
SELECT id AS metered_task FROM agent_tasks.create_task('metered', agent => 'metered', auto_process => true) \gset
SET ROLE regress_usage_worker;
SELECT run_id AS metered_run FROM agent_tasks.claim_runs('meter-w', '{metered}') \gset
SELECT phase FROM agent_tasks.report_progress(:'metered_run', 'thinking', data => '{"usage": {"total_tokens": 4}}');
SELECT status, tokens FROM agent_tasks.complete_run(:'metered_run', '{}', usage => '{"total_tokens": 10}');
RESET ROLE;
SELECT used_tokens FROM agent_tasks.queue_stats WHERE account = 'eng' AND agent = 'metered';
-- 14 of 15 tokens used: not over budget yet; 2 more (in another shard) and it is
SELECT agent_tasks_internal.over_budget('eng', :'metered_task') AS over_budget_yet;
INSERT INTO agent_tasks_internal.agent_usage (account, agent_id, shard, tokens)
SELECT account, id, 1, 2 FROM agent_tasks_internal.agents WHERE name = 'metered';
SELECT agent_tasks_internal.over_budget('eng', :'metered_task') AS over_budget_now;
SET ROLE regress_engine;
SELECT agent_tasks.drop_agent('metered') IS NOT NULL AS dropped;
RESET ROLE;
DROP ROLE regress_usage_worker;
SET ROLE regress_engine;
