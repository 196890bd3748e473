--
-- 12_outcomes: how an attempt ends, through the external claim API:
-- complete_run (with JSON Schema validation), fail_run (retries with
-- exponential backoff, rejection, max_attempts), request_clarification and
-- the answer that re-queues the run, recovery of expired leases
-- (worker_lost), and validate_json itself.
--
\set SHOW_CONTEXT never
SET ROLE regress_engine;
SET agent_tasks.account = 'eng-out';
SET agent_tasks.email = 'oscar@example.com';

CREATE FUNCTION pg_temp.task(title text) RETURNS uuid
	LANGUAGE sql
AS $$ SELECT t.id FROM agent_tasks.tasks t WHERE t.title = task.title $$;
CREATE FUNCTION pg_temp.run(title text) RETURNS uuid
	LANGUAGE sql
AS $$ SELECT t.latest_run_id FROM agent_tasks.tasks t WHERE t.title = run.title $$;
-- Claim the queued run of one task (by its agent) and return its id.
CREATE FUNCTION pg_temp.claim(title text, worker text, lease interval DEFAULT NULL) RETURNS uuid
	LANGUAGE plpgsql
AS $$
DECLARE
	run uuid;
BEGIN
	SELECT c.run_id INTO run
	  FROM agent_tasks.claim_runs(worker, ARRAY[(SELECT t.agent FROM agent_tasks.tasks t WHERE t.title = claim.title)],
								  1, lease) c;
	IF run IS DISTINCT FROM pg_temp.run(title) THEN
		RAISE EXCEPTION 'claimed % instead of the run of %', run, title;
	END IF;
	RETURN run;
END
$$;
-- The runs of a task, oldest first.
CREATE FUNCTION pg_temp.runs(title text)
	RETURNS TABLE (attempt integer, status text, status_reason text, worker text, error text,
				   output jsonb, tokens bigint, cost numeric, ended boolean, leased boolean)
	LANGUAGE sql
AS $$
	SELECT r.attempt, r.status, r.status_reason, r.worker, r.error ->> 'message', r.output, r.tokens, r.cost,
		   r.ended_at IS NOT NULL, r.lease_expires_at IS NOT NULL
	  FROM agent_tasks.runs r WHERE r.task_id = pg_temp.task(title) ORDER BY r.id
$$;
CREATE FUNCTION pg_temp.st(title text) RETURNS text
	LANGUAGE sql
AS $$ SELECT t.status || coalesce(' (' || t.status_reason || ')', '') FROM agent_tasks.tasks t WHERE t.title = st.title $$;

-- hourly backoff, so that a retry is visibly scheduled; 'fast' retries at once
SELECT name FROM agent_tasks.create_agent('ext', 'external', max_attempts => 3,
	backoff_base => '1 hour', backoff_max => '90 minutes');
SELECT name FROM agent_tasks.create_agent('fast', 'external', max_attempts => 2,
	backoff_base => '0', backoff_max => '0');

--
-- complete_run: output and usage; the task follows
--
SELECT (agent_tasks.create_task('done', agent => 'ext', auto_process => true)).status;
SELECT pg_temp.claim('done', 'w1') AS r \gset
SELECT status, status_reason, output, usage, tokens, cost, ended_at IS NOT NULL AS ended,
	   lease_expires_at IS NULL AS lease_released, worker
  FROM agent_tasks.complete_run(:'r', '{"answer": "42"}', '{"total_tokens": 12, "cost": 0.03}', 'w1');
SELECT status, status_reason, output, error FROM agent_tasks.get_task(pg_temp.task('done'));
SELECT * FROM trail(pg_temp.task('done'));
-- the run is finished: every later report is refused
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L)', :'r', '{}'));
SELECT expect_error(format('SELECT agent_tasks.fail_run(%L, %L)', :'r', 'late'));
SELECT expect_error(format('SELECT agent_tasks.request_clarification(%L, %L)', :'r', 'late?'));
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L)', :'r'));
-- usage may also come as prompt + completion tokens; any JSON value is an output
SELECT (agent_tasks.create_task('done 2', agent => 'ext', auto_process => true)).status;
SELECT status, output, tokens, cost, usage
  FROM agent_tasks.complete_run(pg_temp.claim('done 2', 'w1'), '["a", "b"]',
	'{"prompt_tokens": 5, "completion_tokens": 7}');
-- refusals: unknown run, another account's run, another worker, not in
-- progress, bad usage (the run stays in progress)
SELECT (agent_tasks.create_task('refusals', agent => 'ext', auto_process => true)).status;
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L)', pg_temp.run('refusals'), '{}'));
SELECT pg_temp.claim('refusals', 'w1') AS rr \gset
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L)', agent_tasks.uuid_v7(), '{}'));
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L, worker => %L)', :'rr', '{}', 'w2'));
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L, %L)', :'rr', '{}', '{"cost": "free"}'));
SELECT expect_error(format('SELECT agent_tasks.fail_run(%L, %L, worker => %L)', :'rr', 'x', 'w2'));
SELECT expect_error(format('SELECT agent_tasks.fail_run(%L, %L)', :'rr', ''));
SELECT expect_error(format('SELECT agent_tasks.request_clarification(%L, %L, %L)', :'rr', 'why?', 'w2'));
SELECT expect_error(format('SELECT agent_tasks.request_clarification(%L, %L)', :'rr', ' '));
SET agent_tasks.account = 'eng-out-2';
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L)', :'rr', '{}'));
SELECT expect_error(format('SELECT agent_tasks.fail_run(%L, %L)', :'rr', 'x'));
SELECT expect_error(format('SELECT agent_tasks.request_clarification(%L, %L)', :'rr', 'x?'));
SET agent_tasks.account = 'eng-out';
SELECT * FROM pg_temp.runs('refusals');
-- an expired lease: the worker can no longer complete (nor fail) the run
RESET ROLE;
UPDATE agent_tasks_internal.runs SET lease_expires_at = now() - interval '1 second' WHERE id = :'rr';
SET ROLE regress_engine;
SELECT error_message(format('SELECT agent_tasks.complete_run(%L, %L, worker => %L)', :'rr', '{}', 'w1'));
SELECT error_message(format('SELECT agent_tasks.fail_run(%L, %L)', :'rr', 'x'));
SELECT error_message(format('SELECT agent_tasks.request_clarification(%L, %L)', :'rr', 'x?'));
SELECT * FROM pg_temp.runs('refusals');

--
-- Output validation: a task's output_schema decides; a mismatch fails the
-- run with invalid_output (not retried), the errors in the run's error.
--
SELECT (agent_tasks.create_task('typed', agent => 'ext', auto_process => true,
	output_schema => '{"type": "object", "required": ["answer", "sources"],
		"properties": {"answer": {"type": "string"}, "sources": {"type": "array", "items": {"type": "string"}}}}')).status;
SELECT status, status_reason, output, error ->> 'message' AS message, error -> 'errors' AS errors,
	   error -> 'output' AS rejected_output, tokens
  FROM agent_tasks.complete_run(pg_temp.claim('typed', 'w1'), '{"answer": 42, "sources": ["a", 7]}', '{"total_tokens": 3}');
SELECT pg_temp.st('typed') AS task, (SELECT count(*) FROM agent_tasks.runs WHERE task_id = pg_temp.task('typed')) AS runs;
SELECT (agent_tasks.get_task(pg_temp.task('typed'))).error -> 'errors' AS task_errors;
-- retried, a matching output completes it
SELECT (agent_tasks.retry_task(pg_temp.task('typed'))).status;
SELECT status, output
  FROM agent_tasks.complete_run(pg_temp.claim('typed', 'w1'), '{"answer": "yes", "sources": ["a"]}');
SELECT * FROM pg_temp.runs('typed');

--
-- fail_run: a retryable failure queues the next attempt after the agent's
-- backoff: base * 2^(attempt-1), capped at backoff_max, times a jitter in
-- [0.5, 1].  The delay is measured from the failure (same transaction).
--
SELECT (agent_tasks.create_task('flaky', agent => 'ext', prompt => 'p')).id AS ft \gset
SELECT (agent_tasks.process_task(:'ft', 'more context')).status;
SELECT status, status_reason, error FROM agent_tasks.fail_run(pg_temp.claim('flaky', 'w1'), 'upstream 503', worker => 'w1');
SELECT * FROM pg_temp.runs('flaky');
SELECT pg_temp.st('flaky') AS task;
SELECT n.attempt, n.status_reason,
	   n.due_at - o.ended_at BETWEEN interval '30 minutes' AND interval '1 hour' AS delay_in_base_range,
	   n.due_at > now() AS in_the_future, n.due_at <= now() + interval '90 minutes' AS within_backoff_max,
	   n.input = o.input AS same_input, n.input
  FROM agent_tasks.runs o JOIN agent_tasks.runs n ON n.task_id = o.task_id AND n.attempt = 2
 WHERE o.task_id = :'ft' AND o.attempt = 1;
-- not claimable before it is due
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('w1', ARRAY['ext']);
-- (the clock moves on)
RESET ROLE;
UPDATE agent_tasks_internal.runs SET due_at = now() WHERE task_id = :'ft' AND status = 'queued';
SET ROLE regress_engine;
SELECT pg_temp.claim('flaky', 'w2') AS fr \gset
SELECT attempt, status FROM agent_tasks.runs WHERE id = :'fr';
SELECT status FROM agent_tasks.fail_run(pg_temp.run('flaky'), 'upstream 503 again');
-- attempt 3: 1 hour * 2 = 2 hours, capped at 90 minutes, times [0.5, 1]
SELECT n.attempt, n.due_at - o.ended_at BETWEEN interval '45 minutes' AND interval '90 minutes' AS delay_capped
  FROM agent_tasks.runs o JOIN agent_tasks.runs n ON n.task_id = o.task_id AND n.attempt = 3
 WHERE o.task_id = :'ft' AND o.attempt = 2;
RESET ROLE;
UPDATE agent_tasks_internal.runs SET due_at = now() WHERE task_id = :'ft' AND status = 'queued';
SET ROLE regress_engine;
-- the last attempt fails the task: max_attempts
SELECT status, status_reason, error ->> 'message' AS error
  FROM agent_tasks.fail_run(pg_temp.claim('flaky', 'w3'), 'upstream 503 for good');
SELECT * FROM pg_temp.runs('flaky');
SELECT status, status_reason, error FROM agent_tasks.get_task(:'ft');
SELECT event, from_status, to_status, reason, actor, data FROM trail(:'ft');
-- a non-retryable failure fails at once: rejected
SELECT (agent_tasks.create_task('refused', agent => 'ext', auto_process => true)).status;
SELECT status, status_reason, error
  FROM agent_tasks.fail_run(pg_temp.claim('refused', 'w1'), 'cannot do this', retryable => false);
SELECT * FROM pg_temp.runs('refused');
SELECT pg_temp.st('refused') AS task;

--
-- request_clarification: the run waits for a person, the question is an
-- agent message; a user's answer re-queues the same run.
--
SELECT (agent_tasks.create_task('unclear', agent => 'ext', auto_process => true)).id AS ct \gset
SELECT pg_temp.claim('unclear', 'w1') AS cr \gset
SELECT status, status_reason, lease_expires_at IS NULL AS lease_released
  FROM agent_tasks.request_clarification(:'cr', 'Which branch?', 'w1');
SELECT pg_temp.st('unclear') AS task;
SELECT role, author, body, data, run_id = :'cr' AS of_the_run FROM agent_tasks.messages WHERE task_id = :'ct' ORDER BY id;
-- nothing to claim while it waits
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('w1', ARRAY['ext']);
SELECT error_message(format('SELECT agent_tasks.complete_run(%L, %L)', :'cr', '{}'));
-- the answer
SELECT role, body FROM agent_tasks.send_message(:'ct', 'main, please');
SELECT pg_temp.st('unclear') AS task;
SELECT c.run_id = :'cr' AS same_run, c.attempt, c.task ->> 'status' AS status,
	   jsonb_path_query_array(c.messages, '$[*].body') AS conversation
  FROM agent_tasks.claim_runs('w2', ARRAY['ext']) c;
SELECT status, output FROM agent_tasks.complete_run(:'cr', '{"branch": "main"}', worker => 'w2');
SELECT event, from_status, to_status, reason, actor FROM trail(:'ct');
-- process_task with a message answers too
SELECT (agent_tasks.create_task('unclear 2', agent => 'ext', auto_process => true)).id AS ct2 \gset
SELECT status FROM agent_tasks.request_clarification(pg_temp.claim('unclear 2', 'w1'), 'Which year?');
SELECT status, status_reason FROM agent_tasks.process_task(:'ct2', '2024');
SELECT count(*) AS runs FROM agent_tasks.runs WHERE task_id = :'ct2';

--
-- Recovery: a run whose lease expired (its worker is gone) is re-queued as
-- the next attempt, or failed with worker_lost after the last one.
-- recover_runs() is what the launcher runs; a superuser calls it here.
--
SELECT (agent_tasks.create_task('lost', agent => 'fast', auto_process => true)).id AS lt \gset
SELECT pg_temp.claim('lost', 'w-dead', '1 minute') AS lr \gset
RESET ROLE;
RESET agent_tasks.email;
-- a lease still valid is left alone
SELECT agent_tasks_internal.recover_runs() IS NOT NULL AS ran;
SELECT status FROM agent_tasks_internal.runs WHERE id = :'lr';
UPDATE agent_tasks_internal.runs SET lease_expires_at = now() - interval '1 second' WHERE id = :'lr';
SELECT agent_tasks_internal.recover_runs() >= 1 AS recovered;
SET ROLE regress_engine;
SET agent_tasks.email = 'oscar@example.com';
SELECT * FROM pg_temp.runs('lost');
SELECT error FROM agent_tasks.runs WHERE id = :'lr';
SELECT pg_temp.st('lost') AS task;
-- the late worker is told, whatever it tries
SELECT expect_error(format('SELECT agent_tasks.complete_run(%L, %L, worker => %L)', :'lr', '{}', 'w-dead'));
SELECT expect_error(format('SELECT agent_tasks.heartbeat_run(%L, %L)', :'lr', 'w-dead'));
-- attempt 2 (backoff 0: due at once) is lost too: that was the last one
SELECT pg_temp.claim('lost', 'w-dead-2') AS lr2 \gset
SELECT attempt, status FROM agent_tasks.runs WHERE id = :'lr2';
RESET ROLE;
RESET agent_tasks.email;
UPDATE agent_tasks_internal.runs SET lease_expires_at = now() - interval '1 second'
 WHERE task_id = :'lt' AND status = 'in_progress';
SELECT agent_tasks_internal.recover_runs() >= 1 AS recovered;
SET ROLE regress_engine;
SET agent_tasks.email = 'oscar@example.com';
SELECT * FROM pg_temp.runs('lost');
SELECT status, status_reason, error ->> 'message' AS error FROM agent_tasks.get_task(:'lt');
SELECT event, from_status, to_status, reason, actor FROM trail(:'lt');
-- nothing left to recover
RESET ROLE;
SELECT count(*) AS expired_in_progress FROM agent_tasks_internal.runs
 WHERE account = 'eng-out' AND status = 'in_progress' AND lease_expires_at < now();
-- The launcher's pass every second, recover_runs(false), looks only at the
-- runs whose lease has run out: 500 runs in progress under valid leases are
-- not read, and one whose lease runs out is recovered.  (With everything,
-- as after an executor started, it looks at them all.)
SET session_replication_role = replica;
CREATE TEMP TABLE leased AS
	SELECT agent_tasks.uuid_v7() AS task_id, agent_tasks.uuid_v7() AS run_id, i FROM generate_series(1, 500) i;
INSERT INTO agent_tasks_internal.tasks (account, id, title, created_by, status, latest_run_id)
SELECT 'eng-out', task_id, 'leased ' || i, 'oscar@example.com', 'in_progress', run_id FROM leased;
INSERT INTO agent_tasks_internal.runs (account, id, task_id, kind, status, worker, started_at, lease_expires_at)
SELECT 'eng-out', run_id, task_id, 'external', 'in_progress', 'w-far', now(), now() + interval '1 hour' FROM leased;
RESET session_replication_role;
ANALYZE agent_tasks_internal.runs;
-- (counting from here: the statistics of the statements before are flushed)
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT agent_tasks_internal.recover_runs(false) AS recovered;
-- (rows returned by scans of runs and of its indexes)
SELECT sum(pg_stat_get_xact_tuples_returned(c.oid)) < 100 AS valid_leases_not_read
  FROM pg_class c
 WHERE c.oid = 'agent_tasks_internal.runs'::regclass
	OR c.oid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = 'agent_tasks_internal.runs'::regclass);
COMMIT;
UPDATE agent_tasks_internal.runs SET lease_expires_at = now() - interval '1 second'
 WHERE id = (SELECT run_id FROM leased WHERE i = 1);
SELECT agent_tasks_internal.recover_runs(false) AS recovered;
SELECT status FROM agent_tasks_internal.runs WHERE id = (SELECT run_id FROM leased WHERE i = 1);
SELECT agent_tasks_internal.recover_runs(true) AS recovered_looking_at_everything;
DELETE FROM agent_tasks_internal.tasks WHERE account = 'eng-out' AND title LIKE 'leased %';
DROP TABLE leased;
SET ROLE regress_engine;

--
-- validate_json: the JSON Schema subset
--
SELECT agent_tasks.validate_json(NULL, '1') AS no_schema, agent_tasks.validate_json('{}', '1') AS empty_schema,
	   agent_tasks.validate_json('true', '1') AS boolean_schema;
SELECT s AS schema, d AS document, agent_tasks.validate_json(s::jsonb, d::jsonb) AS errors
  FROM (VALUES
	('{"type": "string"}', '"x"'),
	('{"type": "string"}', '1'),
	('{"type": "number"}', '1.5'),
	('{"type": "integer"}', '2'),
	('{"type": "integer"}', '2.0'),
	('{"type": "integer"}', '2.5'),
	('{"type": "integer"}', '"2"'),
	('{"type": "boolean"}', 'false'),
	('{"type": "null"}', 'null'),
	('{"type": "null"}', '0'),
	('{"type": "array"}', '{}'),
	('{"type": "object"}', '[]'),
	('{"type": ["string", "null"]}', 'null'),
	('{"type": ["string", "integer"]}', '3'),
	('{"type": ["string", "integer"]}', 'true'),
	('{"enum": ["a", "b"]}', '"a"'),
	('{"enum": ["a", "b"]}', '"c"'),
	('{"enum": [1, {"x": 1}]}', '{"x": 1}'),
	('{"type": "string", "enum": ["a"]}', '1'),
	('{"minLength": 2, "maxLength": 3}', '"ab"'),
	('{"minLength": 2}', '"a"'),
	('{"maxLength": 3}', '"abcd"'),
	('{"minLength": 2}', '"éé"'),
	('{"minimum": 0, "maximum": 10}', '10'),
	('{"minimum": 0}', '-1'),
	('{"maximum": 10}', '10.5'),
	('{"minimum": 0}', '"not a number"'),
	('{"minItems": 1, "maxItems": 2}', '[1]'),
	('{"minItems": 1}', '[]'),
	('{"maxItems": 2}', '[1, 2, 3]'),
	('{"items": {"type": "integer"}}', '[1, "two", 3, 4.5]'),
	('{"items": {"type": "integer"}}', '[]'),
	('{"required": ["a", "b"]}', '{"a": 1}'),
	('{"required": ["a"]}', '"not an object"'),
	('{"properties": {"a": {"type": "string"}}}', '{"a": "x", "b": 1}'),
	('{"properties": {"a": {"type": "string"}}, "additionalProperties": false}', '{"a": "x", "b": 1, "c": 2}'),
	('{"properties": {"a": {"type": "string"}}, "additionalProperties": true}', '{"b": 1}'),
	('{"type": "object", "properties": {"a": {"type": "object", "required": ["b"], "properties": {"b": {"type": "array", "items": {"type": "object", "properties": {"c": {"enum": [1]}}}}}}}}',
	 '{"a": {"b": [{"c": 1}, {"c": 2}]}}'),
	('{"type": "object", "properties": {"a": {"type": "object", "required": ["b"]}}}', '{"a": {}}')
  ) AS v(s, d);
-- the path prefix names where a nested document sits
SELECT agent_tasks.validate_json('{"type": "integer"}', '"x"', '$.output') AS custom_path;
-- readers may call it
SET ROLE regress_reader;
SELECT agent_tasks.validate_json('{"type": "integer"}', '1') AS reader_call;
SET ROLE regress_engine;
