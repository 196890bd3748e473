--
-- 04_lifecycle: process, stop, cancel, retry, clarification by message, and
-- set_task_status (for external agents and tests).  No worker serves the
-- regression database, so runs wait in queued until set_task_status moves
-- them, as an external agent would.
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'acme';
SET agent_tasks.email = 'alice@example.com';

-- The runs of a task, oldest first.
CREATE FUNCTION pg_temp.runs_of(task uuid)
	RETURNS TABLE (attempt integer, status text, status_reason text, kind text, worker text,
				   started boolean, ended boolean, input jsonb, output jsonb, error jsonb)
	LANGUAGE sql
AS $$
	SELECT r.attempt, r.status, r.status_reason, r.kind, r.worker, r.started_at IS NOT NULL,
		   r.ended_at IS NOT NULL, r.input, r.output, r.error
	  FROM agent_tasks.runs r WHERE r.task_id = runs_of.task ORDER BY r.id
$$;

--
-- process -> run -> complete
--
SELECT (agent_tasks.create_task('Lifecycle')).id AS t \gset
SELECT status, status_reason, latest_run_id FROM agent_tasks.get_task(:'t');
SELECT status, status_reason, latest_run_id IS NOT NULL AS has_run
  FROM agent_tasks.process_task(:'t', 'please start', '[{"name": "spec.md"}]');
SELECT latest_run_id AS run1 FROM agent_tasks.tasks WHERE id = :'t' \gset
SELECT * FROM pg_temp.runs_of(:'t');
-- the message joined the conversation, with the files and the run
SELECT role, author, body, data, run_id IS NULL AS before_run FROM agent_tasks.messages WHERE task_id = :'t';
-- processing a queued task again only adds the follow-up message
SELECT status, latest_run_id = :'run1' AS same_run FROM agent_tasks.process_task(:'t', 'one more thing');
SELECT status, latest_run_id = :'run1' AS same_run FROM agent_tasks.process_task(:'t');
SELECT count(*) AS runs FROM agent_tasks.runs WHERE task_id = :'t';
-- an external agent claims it (in_progress), then completes it with output
SELECT status, status_reason FROM agent_tasks.set_task_status(:'t', 'in_progress');
SELECT status, status_reason, output, error
  FROM agent_tasks.set_task_status(:'t', 'completed', 'done', output => '{"url": "https://acme.dev/about"}');
SELECT * FROM pg_temp.runs_of(:'t');
-- forbidden transitions: PT409 with 'from -> to'
SELECT expect_error(format($$SELECT agent_tasks.stop_task(%L)$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.cancel_task(%L)$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'failed')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'pending')$$, :'t'));
-- bad enum value
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'finished')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, NULL)$$, :'t'));
-- a follow-up on a finished task is a new run; the old one stays as it was
SELECT status, status_reason, output FROM agent_tasks.process_task(:'t', 'also add a photo');
SELECT * FROM pg_temp.runs_of(:'t');
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT status, error FROM agent_tasks.set_task_status(:'t', 'failed', 'agent_error', error => '{"message": "boom"}');
-- retry: a new run after a terminal one; only finished tasks can be retried
SELECT status, status_reason, error FROM agent_tasks.retry_task(:'t');
SELECT expect_error(format($$SELECT agent_tasks.retry_task(%L)$$, :'t'));
SELECT attempt, status, status_reason FROM pg_temp.runs_of(:'t');
SELECT count(DISTINCT id) AS runs, count(*) FILTER (WHERE ended_at IS NULL) AS open_runs
  FROM agent_tasks.runs WHERE task_id = :'t';

--
-- stop (-> on_hold) and resume with process_task
--
SELECT status, status_reason FROM agent_tasks.stop_task(:'t');
SELECT status, status_reason FROM agent_tasks.stop_task(:'t');		-- stopping a stopped task does nothing
SELECT status, status_reason FROM agent_tasks.process_task(:'t');	-- resumed: the same run goes back to queued
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT status, status_reason FROM agent_tasks.stop_task(:'t', 'lunch break');
SELECT status, status_reason FROM agent_tasks.process_task(:'t', 'go on');
SELECT expect_error(format($$SELECT agent_tasks.stop_task(%L, '')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.stop_task(%L, NULL)$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.stop_task(%L, repeat('r', 201))$$, :'t'));
SELECT attempt, status, status_reason FROM pg_temp.runs_of(:'t');
-- a pending task can be stopped too (no run yet), and processed later
SELECT (agent_tasks.create_task('Stopped before it started')).id AS p \gset
SELECT status, status_reason, latest_run_id FROM agent_tasks.stop_task(:'p');
SELECT status, status_reason, latest_run_id IS NOT NULL AS has_run FROM agent_tasks.process_task(:'p');

--
-- clarification: the agent asks, a person's message answers and re-queues
--
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT status, status_reason FROM agent_tasks.set_task_status(:'t', 'needs_clarification', 'question');
SELECT (agent_tasks.send_message(:'t', 'Which team members?', 'agent')).role;
SELECT role, body FROM agent_tasks.send_message(:'t', 'All of them');
SELECT status, status_reason FROM agent_tasks.get_task(:'t');
-- or process_task with the answer
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'t', 'needs_clarification', 'question')).status;
SELECT status, status_reason FROM agent_tasks.process_task(:'t', 'Only the founders');
-- agent and system messages do not answer anything
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'t', 'needs_clarification', 'question')).status;
SELECT (agent_tasks.send_message(:'t', 'a note from the system', 'system')).role;
SELECT status FROM agent_tasks.get_task(:'t');
-- a waiting task can be stopped, then resumed
SELECT status, status_reason FROM agent_tasks.stop_task(:'t');
SELECT status, status_reason FROM agent_tasks.process_task(:'t');
SELECT role, body FROM agent_tasks.messages WHERE task_id = :'t' ORDER BY id;

--
-- cancel: from any open status; idempotent
--
SELECT status, status_reason FROM agent_tasks.cancel_task(:'t');
SELECT status, status_reason FROM agent_tasks.cancel_task(:'t', 'again');	-- idempotent: unchanged
SELECT attempt, status, status_reason, ended FROM pg_temp.runs_of(:'t');
SELECT count(*) FILTER (WHERE ended_at IS NULL) AS open_runs FROM agent_tasks.runs WHERE task_id = :'t';
SELECT expect_error(format($$SELECT agent_tasks.stop_task(%L)$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'completed')$$, :'t'));
-- a cancelled task can be retried
SELECT status, status_reason FROM agent_tasks.retry_task(:'t');
SELECT status, status_reason FROM agent_tasks.cancel_task(:'t', 'changed my mind');
-- cancel a pending task (no run), a task on hold, a task waiting for clarification
SELECT (agent_tasks.create_task('Never started')).id AS n \gset
SELECT status, status_reason, latest_run_id FROM agent_tasks.cancel_task(:'n');
SELECT (agent_tasks.create_task('Held', auto_process => true)).id AS h \gset
SELECT (agent_tasks.stop_task(:'h')).status;
SELECT status, status_reason FROM agent_tasks.cancel_task(:'h');
SELECT (agent_tasks.create_task('Waiting', auto_process => true)).id AS w \gset
SELECT (agent_tasks.set_task_status(:'w', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'w', 'needs_clarification')).status;
SELECT status, status_reason FROM agent_tasks.cancel_task(:'w');
-- reason must not be empty
SELECT expect_error(format($$SELECT agent_tasks.cancel_task(%L, ' ')$$, :'p'));

--
-- set_task_status: every failure path and privileges
--
SELECT (agent_tasks.create_task('Direct')).id AS d \gset
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'completed')$$, :'d'));
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'in_progress')$$, :'d'));
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'needs_clarification')$$, :'d'));
SELECT status, status_reason FROM agent_tasks.set_task_status(:'d', 'queued');
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'needs_clarification')$$, :'d'));
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'completed')$$, :'d'));
SELECT status, status_reason FROM agent_tasks.set_task_status(:'d', 'failed', 'never_claimed');
SELECT expect_error($$SELECT agent_tasks.set_task_status('00000000-0000-7000-8000-000000000000', 'queued')$$);
SELECT expect_error($$SELECT agent_tasks.set_task_status('123', 'queued')$$);
-- unknown tasks, for every lifecycle call
SELECT expect_error($$SELECT agent_tasks.process_task('00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.stop_task('00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.cancel_task('00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.retry_task('00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.process_task('bad-uuid')$$);
-- retry needs a finished task
SELECT (agent_tasks.create_task('Not finished')).id AS nf \gset
SELECT expect_error(format($$SELECT agent_tasks.retry_task(%L)$$, :'nf'));
-- files must be an array
SELECT expect_error(format($$SELECT agent_tasks.process_task(%L, 'x', '{"name": "a"}')$$, :'p'));
-- writers may drive the lifecycle but not set a status: that needs agent_tasks_worker
SET ROLE regress_writer;
SELECT (agent_tasks.create_task('Writer task')).id AS wt \gset
SELECT (agent_tasks.process_task(:'wt')).status;
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'in_progress')$$, :'wt'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, 'I am the agent', 'agent')$$, :'wt'));
-- not even through the tables
SELECT expect_error(format($$UPDATE agent_tasks_internal.tasks SET status = 'completed' WHERE id = %L$$, :'wt'));
SELECT (agent_tasks.cancel_task(:'wt')).status;
-- readers may only read
SET ROLE regress_reader;
SELECT status FROM agent_tasks.get_task(:'wt');
SELECT expect_error(format($$SELECT agent_tasks.process_task(%L)$$, :'wt'));
SELECT expect_error($$SELECT agent_tasks.create_task('reader task')$$);
SELECT expect_error(format($$UPDATE agent_tasks_internal.tasks SET title = 'x' WHERE id = %L$$, :'wt'));
SET ROLE regress_app;

-- The whole trail of the main task: every change, with from/to, reason and actor.
SELECT * FROM trail(:'t');
RESET ROLE;

-- Writers move runs through the lifecycle but cannot rewrite what a run used.
SET ROLE regress_writer;
SELECT error_code($$UPDATE agent_tasks_internal.runs SET tokens = 0, cost = 0$$) AS writer_cannot_reset_usage;
RESET ROLE;
