--
-- 31_http_agents: the SQL half of http and openai agents, driven by hand
-- the way the dispatcher drives it (no background worker serves this
-- database): secrets, the requests claim_http_runs builds, what
-- finish_http_run makes of each answer, per-run tokens for agents that
-- answer 202, recovery after a dispatcher restart.  (The real dispatcher
-- and a real server: test/http/run.sh.)
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'httpacct';
SET agent_tasks.email = 'alice@example.com';

-- Tasks here run at priority 1000 so that the claims below take them before
-- any run other files left queued.
CREATE TEMP VIEW last_run AS
SELECT r.task_id, r.attempt, r.status, r.status_reason, r.phase, r.worker, r.tokens,
	   public.mask(r.error::text) AS error, r.output
  FROM agent_tasks.runs r
 WHERE r.account = 'httpacct'
   AND r.id = (SELECT x.id FROM agent_tasks.runs x WHERE x.task_id = r.task_id ORDER BY x.id DESC LIMIT 1);

-- Secrets: write-only.
SELECT name, kind, target, config FROM agent_tasks.create_agent('h', 'http', 'https://agent.example.com/run',
	config => '{"headers": {"X-Team": "blue", "Bad Name": "x", "X-Split": "a\r\nB: c", "X-Number": 7}}',
	max_attempts => 2, backoff_base => '0', backoff_max => '0', timeout => '30 seconds');
SELECT agent_tasks.agent_has_secret('h') AS has_secret;
SELECT agent_tasks.set_agent_secret('h', 'tok-123') AS set;
SELECT agent_tasks.agent_has_secret('h') AS has_secret;
SELECT expect_error('SELECT * FROM agent_tasks_internal.agent_secrets');
SELECT expect_error('SELECT * FROM agent_tasks_internal.run_tokens');
SELECT expect_error($$SELECT agent_tasks.set_agent_secret('nobody', 'x')$$);
SELECT expect_error($$SELECT agent_tasks.set_agent_secret('h', E'two\nlines')$$);
SELECT name FROM agent_tasks.create_agent('ext', 'external');
SELECT expect_error($$SELECT agent_tasks.set_agent_secret('ext', 'x')$$);
SET ROLE regress_writer;
SELECT expect_error($$SELECT agent_tasks.set_agent_secret('h', 'mine now')$$);
SET ROLE regress_app;
-- other accounts see no secret of this one
SET agent_tasks.account = 'other';
SELECT agent_tasks.agent_has_secret('h');
SET agent_tasks.account = 'httpacct';
-- a secret belongs to its target: pointing the agent elsewhere drops it
SELECT name FROM agent_tasks.create_agent('moved', 'http', 'https://agent.example.com/a');
SELECT agent_tasks.set_agent_secret('moved', 'tok-456') AS set;
SELECT name FROM agent_tasks.alter_agent('moved', '{"timeout": "1 minute"}');
SELECT agent_tasks.agent_has_secret('moved') AS kept_on_other_changes;
SELECT name FROM agent_tasks.alter_agent('moved', '{"target": "https://elsewhere.example.net/"}');
SELECT agent_tasks.agent_has_secret('moved') AS kept_after_new_target;
SELECT agent_tasks.drop_agent('moved');

-- The dispatcher's functions are for the dispatcher (a superuser).
SELECT expect_error($$SELECT * FROM agent_tasks_internal.claim_http_runs('me', 1)$$);
SELECT expect_error($$SELECT agent_tasks_internal.finish_http_run('httpacct', agent_tasks.uuid_v7(), 200, '{}', '{}', NULL, 1)$$);

-- An http agent's request: POST the task, the run, the messages, a run token.
SELECT (agent_tasks.create_task('Write the about page', prompt => 'With a team section',
	context => '{"site": "acme.dev"}', agent => 'h', priority => 1000)).id AS t1 \gset
SELECT (agent_tasks.send_message(:'t1', 'Use our brand colours')).body;
SELECT status FROM agent_tasks.process_task(:'t1');
RESET ROLE;
SELECT account, mask(id::text) AS id, url, headers, timeout_ms, max_response_bytes,
	   body::jsonb -> 'task' ->> 'title' AS title, body::jsonb -> 'task' -> 'context' AS context,
	   body::jsonb -> 'run' ->> 'attempt' AS attempt, body::jsonb -> 'run' ->> 'agent' AS agent,
	   jsonb_path_query_array(body::jsonb, '$.messages[*].body') AS messages,
	   body::jsonb ->> 'run_token' ~ '^rt_[A-Za-z0-9_-]{43}$' AS has_token,
	   (body::jsonb -> 'callback' ->> 'worker') = (body::jsonb ->> 'run_token') AS callback_token,
	   body::jsonb -> 'callback' -> 'functions' AS functions,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(body::jsonb) k) AS keys
  FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) \gx
SET ROLE regress_app;
SELECT status, phase, worker FROM last_run WHERE task_id = :'t1';
-- claimed runs are in progress: nothing more to claim here
RESET ROLE;
SELECT count(*) FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 10) WHERE account = 'httpacct';

-- 2xx with a JSON body completes the run.
SELECT agent_tasks_internal.finish_http_run('httpacct', (SELECT id FROM agent_tasks_internal.runs
	WHERE task_id = :'t1' ORDER BY id DESC LIMIT 1), 200, '{"content-type": "application/json"}',
	'{"status": "completed", "output": {"url": "https://acme.dev/about"}, "usage": {"total_tokens": 12}}', NULL, 35);
SET ROLE regress_app;
SELECT status, status_reason, tokens, output FROM last_run WHERE task_id = :'t1';
-- recording again (a duplicate) changes nothing
RESET ROLE;
SELECT agent_tasks_internal.finish_http_run('httpacct', (SELECT id FROM agent_tasks_internal.runs
	WHERE task_id = :'t1' ORDER BY id DESC LIMIT 1), 500, '{}', 'late', NULL, 35);
SET ROLE regress_app;
SELECT status, output FROM last_run WHERE task_id = :'t1';

-- One helper: queue a task of an agent, claim its run as the dispatcher,
-- and record an answer.
RESET ROLE;
CREATE FUNCTION pg_temp.answer(agent text, title text, status_code integer, body text, err text DEFAULT NULL,
	schema jsonb DEFAULT NULL)
	RETURNS TABLE (status text, status_reason text, attempt integer, error text, output jsonb)
	LANGUAGE plpgsql
AS $$
DECLARE
	t uuid;
	run uuid;
BEGIN
	SET LOCAL agent_tasks.account = 'httpacct';
	t := (agent_tasks.create_task(answer.title, agent => answer.agent, priority => 1000,
								  output_schema => answer.schema, auto_process => true)).id;
	SELECT c.id INTO run FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c;
	PERFORM agent_tasks_internal.finish_http_run('httpacct', run, status_code,
		CASE WHEN answer.err IS NULL THEN '{}'::jsonb END, answer.body, answer.err, 20);
	RETURN QUERY SELECT r.status, r.status_reason, r.attempt, public.mask(r.error::text), r.output
				   FROM agent_tasks.runs r WHERE r.account = 'httpacct' AND r.task_id = t ORDER BY r.id;
END
$$;

-- The answers of an sql agent, over HTTP (agent h1: one attempt, so that no
-- retry stays queued).
SET agent_tasks.account = 'httpacct';
SELECT name, max_attempts FROM agent_tasks.create_agent('h1', 'http', 'https://agent.example.com/one', max_attempts => 1);
SELECT * FROM pg_temp.answer('h1', 'plain output', 201, '{"pages": 3}');
SELECT * FROM pg_temp.answer('h1', 'clarify', 200, '{"status": "needs_clarification", "question": "Which colour?"}');
SELECT * FROM pg_temp.answer('h1', 'reject', 200, '{"status": "failed", "error": "cannot", "retryable": false}');
SELECT * FROM pg_temp.answer('h1', 'unknown status', 200, '{"status": "maybe"}');
SELECT * FROM pg_temp.answer('h1', 'bad question', 200, '{"status": "needs_clarification"}');
-- 2xx without JSON, or cut at the cap
SELECT * FROM pg_temp.answer('h1', 'not json', 200, 'plain words');
SELECT status, status_reason, attempt, left(error, 60) AS error_start, error ~ 'larger than 1048576 bytes' AS capped
  FROM pg_temp.answer('h1', 'capped', 200, '{"output": "' || repeat('y', 1048570));
-- non-2xx and transport errors are retryable: with one attempt they fail
-- (max_attempts, or timeout) ...
SELECT * FROM pg_temp.answer('h1', 'redirect', 302, '');
SELECT * FROM pg_temp.answer('h1', 'timeout', NULL, NULL, 'timed out after 30000 ms');
SELECT * FROM pg_temp.answer('h1', 'refused', NULL, NULL,
	'refused to connect to rebind.example: address 10.0.0.1 is in a blocked range (10.0.0.0/8, private network)');
-- ... with two (agent h, backoff 0) the retry is queued, claimable at once, and its answer counts
SELECT * FROM pg_temp.answer('h', 'server error', 503, '{"error": "busy"}');
SELECT (SELECT r.attempt FROM agent_tasks_internal.runs r WHERE r.id = c.id) AS attempt,
	   c.body::jsonb -> 'task' ->> 'title' AS title, c.body::jsonb -> 'run' ->> 'attempt' AS attempt_sent
  FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c;
SELECT agent_tasks_internal.finish_http_run('httpacct', (SELECT id FROM agent_tasks_internal.runs
	WHERE account = 'httpacct' AND status = 'in_progress' AND attempt = 2), 200, '{}', '{"ok": true}', NULL, 5);
SET agent_tasks.account = 'httpacct';
SELECT t.title, t.status, t.status_reason, t.output FROM agent_tasks.tasks t
 WHERE t.account = 'httpacct' AND t.title IN ('server error', 'redirect', 'timeout', 'refused') ORDER BY t.title;

-- 202: the agent works asynchronously and answers with its run token.
SELECT (agent_tasks.create_task('async job', agent => 'h', priority => 1000, auto_process => true)).id AS t2 \gset
SELECT c.id AS run2, c.body::jsonb ->> 'run_token' AS token2
  FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c \gset
SELECT agent_tasks_internal.finish_http_run('httpacct', :'run2', 202, '{}', '{"accepted": true}', NULL, 3);
SET ROLE regress_app;
SELECT status, phase, worker FROM last_run WHERE task_id = :'t2';
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L)', :'run2', '{}'));
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L, worker => %L)', :'run2', '{}', 'rt_guess'));
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L, worker => %L)', :'run2', '{}', 'test-dispatcher'));
RESET ROLE;	-- (report_progress writes an activity)
SELECT phase, progress FROM agent_tasks.report_progress(:'run2', 'drafting', 'half way', worker => :'token2');
SET ROLE regress_app;
SELECT agent_tasks.heartbeat_run(:'run2', :'token2', '10 minutes') > now() AS lease_extended;
SELECT status, output FROM agent_tasks.complete_run(:'run2', '{"pages": 2}', worker => :'token2');
-- the token of a finished run is refused
SELECT expect_error(format('SELECT agent_tasks.fail_run(%L, %L, worker => %L)', :'run2', 'late', :'token2'));
-- the token never shows in the trail
SELECT event, actor, public.mask(data::text) AS data FROM agent_tasks.activities
 WHERE task_id = :'t2' ORDER BY id;
-- a late copy of the 202 changes nothing
RESET ROLE;
SELECT agent_tasks_internal.finish_http_run('httpacct', :'run2', 202, '{}', '', NULL, 3);
SET ROLE regress_app;
SELECT status, phase FROM last_run WHERE task_id = :'t2';
-- a token is good for its own run only, in its own account
SELECT (agent_tasks.create_task('async job 2', agent => 'h', priority => 1000, auto_process => true)).id AS t3 \gset
RESET ROLE;
SELECT c.id AS run3, c.body::jsonb ->> 'run_token' AS token3
  FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c \gset
SELECT agent_tasks_internal.finish_http_run('httpacct', :'run3', 202, '{}', '', NULL, 3);
SET ROLE regress_app;
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L, worker => %L)', :'run3', '{}', :'token2'));
SET agent_tasks.account = 'other';
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L, worker => %L)', :'run3', '{}', :'token3'));
SET agent_tasks.account = 'httpacct';
SELECT status FROM agent_tasks.request_clarification(:'run3', 'Which pages?', worker => :'token3');

-- A stopped run's late answer is ignored.
SELECT (agent_tasks.create_task('stop me', agent => 'h', priority => 1000, auto_process => true)).id AS t4 \gset
RESET ROLE;
SELECT c.id AS run4 FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c \gset
SET ROLE regress_app;
SELECT status FROM agent_tasks.stop_task(:'t4');
RESET ROLE;
SELECT agent_tasks_internal.finish_http_run('httpacct', :'run4', 200, '{}', '{"done": true}', NULL, 3);
SET ROLE regress_app;
SELECT status, status_reason, output FROM last_run WHERE task_id = :'t4';

-- After a dispatcher restart, runs it had in flight are retried; runs whose
-- agent answered 202 keep waiting for the agent.
SELECT (agent_tasks.create_task('in flight', agent => 'h', priority => 1000, auto_process => true)).id AS t5 \gset
RESET ROLE;
SELECT count(*) FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) WHERE account = 'httpacct';
SET ROLE regress_app;
-- the answer to the clarification resumes the run: a new request with a new token
SELECT status FROM agent_tasks.process_task(:'t3', 'All of them');
RESET ROLE;
SELECT c.id = :'run3' AS same_run, c.body::jsonb ->> 'run_token' <> :'token3' AS new_token,
	   jsonb_path_query_array(c.body::jsonb, '$.messages[*].body') AS messages
  FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c;
SELECT agent_tasks_internal.finish_http_run('httpacct', :'run3', 202, '{}', '', NULL, 3);
SELECT agent_tasks_internal.recover_http_runs('test-dispatcher') AS recovered;
SET ROLE regress_app;
SELECT t.title, r.attempt, r.status, r.status_reason, r.phase
  FROM agent_tasks.runs r JOIN agent_tasks.tasks t ON t.id = r.task_id
 WHERE t.id IN (:'t3', :'t5') ORDER BY r.id;
SELECT expect_error($$SELECT agent_tasks_internal.recover_http_runs('x')$$);
SELECT status FROM agent_tasks.cancel_task(:'t5');

-- openai agents: a chat-completions request built from the task.
SELECT name, kind, target FROM agent_tasks.create_agent('o', 'openai', 'https://llm.example.com/v1/',
	config => '{"model": "gpt-test", "system_prompt": "You are terse.", "params": {"temperature": 0, "model": "ignored"}}',
	budget_tokens => 200);
SELECT agent_tasks.set_agent_secret('o', 'sk-abc');
SELECT (agent_tasks.create_task('Rate the page', prompt => 'Be fair', context => '{"url": "https://acme.dev"}',
	agent => 'o', priority => 1000, output_schema => '{"type": "object", "required": ["score"],
	"properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}}}')).id AS t6 \gset
SELECT (agent_tasks.send_message(:'t6', 'Focus on the team section')).body;
SELECT status FROM agent_tasks.process_task(:'t6');
RESET ROLE;
SELECT c.id AS run7, c.url, c.headers, jsonb_pretty(c.body::jsonb) AS body
  FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c \gset
\echo :url
\echo :headers
\echo :body
CREATE FUNCTION pg_temp.completion(content text, usage jsonb DEFAULT '{"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}')
	RETURNS text LANGUAGE sql
	RETURN jsonb_build_object('id', 'chatcmpl-1', 'object', 'chat.completion', 'model', 'gpt-test',
		'choices', jsonb_build_array(jsonb_build_object('index', 0, 'finish_reason', 'stop',
			'message', jsonb_build_object('role', 'assistant', 'content', content))),
		'usage', usage)::text;
SELECT agent_tasks_internal.finish_http_run('httpacct', :'run7', 200, '{}', pg_temp.completion('{"score": 4}'), NULL, 800);
SET ROLE regress_app;
SELECT status, tokens, output FROM last_run WHERE task_id = :'t6';
SELECT usage FROM agent_tasks.runs WHERE id = :'run7';
SELECT role, author, body, data FROM agent_tasks.messages WHERE task_id = :'t6' ORDER BY id;
RESET ROLE;
-- without a schema: the text is the output; no response_format is sent
SELECT * FROM pg_temp.answer('o', 'Say hi', 200, pg_temp.completion('Hi!'));
SET agent_tasks.account = 'httpacct';
SELECT status FROM agent_tasks.create_task('Peek', agent => 'o', priority => 1000, auto_process => true);
SELECT c.body::jsonb ? 'response_format' AS response_format, c.body::jsonb -> 'messages' AS messages
  FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c;
-- a reply that breaks the schema, text where JSON was asked, a refusal, no content
SELECT * FROM pg_temp.answer('o', 'breaks', 200, pg_temp.completion('{"score": 9, "extra": 1}'), schema => '{"type": "object", "required": ["score"], "properties": {"score": {"type": "integer", "maximum": 5}}}');
SELECT * FROM pg_temp.answer('o', 'not json', 200, pg_temp.completion('Four out of five'), schema => '{"type": "object"}');
SELECT * FROM pg_temp.answer('o', 'refusal', 200, '{"choices": [{"message": {"role": "assistant", "content": null, "refusal": "No."}}]}');
SELECT * FROM pg_temp.answer('o', 'empty', 200, '{"choices": []}');
-- error replies are retryable (agent o1 has one attempt); their message is kept
SET agent_tasks.account = 'httpacct';
SELECT name FROM agent_tasks.create_agent('o1', 'openai', 'https://llm.example.com/v1/chat/completions', max_attempts => 1);
SELECT status FROM agent_tasks.create_task('no secret', agent => 'o1', priority => 1000, auto_process => true);
SELECT c.url, c.headers FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 1) c;
SELECT * FROM pg_temp.answer('o1', 'rate limited', 429, '{"error": {"message": "Rate limit reached", "type": "requests"}}');
SELECT * FROM pg_temp.answer('o1', 'broken error', 500, '<html>oops</html>');
-- usage counts against the agent's budget (200 tokens): the next run waits
SELECT status, attempt FROM pg_temp.answer('o', 'big spender', 200,
	pg_temp.completion('Done.', '{"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100}'));
SET agent_tasks.account = 'httpacct';
SELECT used_tokens FROM agent_tasks.queue_stats WHERE agent = 'o';
SELECT status, status_reason FROM agent_tasks.create_task('over budget', agent => 'o', priority => 1000, auto_process => true);
SELECT count(*) FROM agent_tasks_internal.claim_http_runs('test-dispatcher', 5) WHERE account = 'httpacct';
SELECT title, status, status_reason FROM agent_tasks.tasks WHERE account = 'httpacct' AND title = 'over budget';

-- Clean up what the claims above left in progress, so later files see a quiet queue.
SELECT count(agent_tasks.cancel_task(t.id)) >= 0 AS cleaned
  FROM agent_tasks.tasks t
 WHERE t.account = 'httpacct' AND t.status IN ('queued', 'in_progress', 'needs_clarification', 'on_hold');
RESET ROLE;
