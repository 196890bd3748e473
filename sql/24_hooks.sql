--
-- 24_hooks: task hooks, an application's own functions called inside the
-- transaction of a task change: every event fires its hooks once, in name
-- order, with the task, the previous status and the webhook payload, as the
-- role that registered them, restricted, with a pinned search_path; a hook
-- that raises aborts the change; other accounts' hooks never fire; a hook
-- may only run its own role's function; changes made by hooks are checked
-- and logged; nesting is bounded.
--
\set SHOW_CONTEXT never
RESET ROLE;
CREATE SCHEMA hook_app AUTHORIZATION regress_app;
SET ROLE regress_app;
SET agent_tasks.account = 'hooks';
SET agent_tasks.email = 'hana@example.com';

-- The application's table and its hook, owned by the registering role.
CREATE TABLE hook_app.seen (
	n			serial,
	hook		text,
	event		text,
	title		text,
	previous	text,
	status		text,
	payload		jsonb,
	who			text,
	path		text
);
CREATE FUNCTION hook_app.record(hook text, event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE sql
	BEGIN ATOMIC
		INSERT INTO hook_app.seen (hook, event, title, previous, status, payload, who, path)
		VALUES (hook, event, task.title, previous_status, task.status,
				data - 'created_at' - 'updated_at' - 'id' - 'latest_run_id', current_user,
				current_setting('search_path'));
	END;
CREATE FUNCTION hook_app.first(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE sql
	BEGIN ATOMIC SELECT hook_app.record('first', event, task, previous_status, data); END;
CREATE FUNCTION hook_app.second(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE sql
	BEGIN ATOMIC SELECT hook_app.record('second', event, task, previous_status, data); END;

-- Registered out of name order; called in name order.
SELECT name, events, function, run_as, enabled FROM agent_tasks.create_hook('second', '{task.completed}', 'hook_app.second');
SELECT name, events, function, run_as, enabled FROM agent_tasks.create_hook('first', '{*}', 'hook_app.first');
SELECT name, events FROM agent_tasks.hooks ORDER BY name;

-- Changes by the API: created and queued, one call each
SELECT name FROM agent_tasks.create_agent('hook-worker', 'external');
SELECT (agent_tasks.create_task('Hooked', agent => 'hook-worker', auto_process => true)).id AS t \gset
-- by an external worker: started, completed
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('hw', '{hook-worker}', 1);
SELECT status FROM agent_tasks.complete_run((SELECT latest_run_id FROM agent_tasks.tasks WHERE id = :'t'),
	'{"answer": 42}', worker => 'hw');
-- a message and feedback
SELECT role FROM agent_tasks.send_message(:'t', 'thanks', 'system');
SELECT feedback FROM agent_tasks.send_feedback(:'t', 'like');
SELECT n, hook, event, title, previous, status, who, path FROM hook_app.seen ORDER BY n;
-- the data is the webhook event's payload
SELECT event, payload ->> 'status' AS status, payload ->> 'previous_status' AS previous_status,
	   payload ->> 'previous_feedback' AS previous_feedback, payload -> 'message' ->> 'body' AS message,
	   payload -> 'output' AS output
  FROM hook_app.seen WHERE hook = 'first' ORDER BY n;
TRUNCATE hook_app.seen;

-- The other events: a question, its answer, a stop, a resume, a failure and a cancellation.
SELECT (agent_tasks.create_task('Asked', agent => 'hook-worker', auto_process => true)).id AS q \gset
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('hw', '{hook-worker}', 1);
SELECT status FROM agent_tasks.request_clarification((SELECT latest_run_id FROM agent_tasks.tasks WHERE id = :'q'),
	'Which colour?', worker => 'hw');
SELECT role FROM agent_tasks.send_message(:'q', 'Blue');
SELECT status FROM agent_tasks.stop_task(:'q');
SELECT status FROM agent_tasks.process_task(:'q');
SELECT count(*) AS claimed FROM agent_tasks.claim_runs('hw', '{hook-worker}', 1);
SELECT status FROM agent_tasks.fail_run((SELECT latest_run_id FROM agent_tasks.tasks WHERE id = :'q'),
	'broken', retryable => false, worker => 'hw');
SELECT status FROM agent_tasks.retry_task(:'q');
SELECT status FROM agent_tasks.cancel_task(:'q');
SELECT string_agg(event || coalesce(' from ' || previous, ''), ', ' ORDER BY n) AS events
  FROM hook_app.seen WHERE hook = 'first';
SELECT count(DISTINCT event) AS kinds FROM hook_app.seen;
TRUNCATE hook_app.seen;

-- A hook that raises aborts the change; its error reaches the caller.
CREATE FUNCTION hook_app.no_cancel(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
	IF task.labels @> '{keep}' THEN
		RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = format('task %s may not be cancelled', task.title),
			HINT = 'Remove the label "keep" first.';
	END IF;
END
$$;
SELECT name FROM agent_tasks.create_hook('guard', '{task.cancelled}', 'hook_app.no_cancel');
SELECT (agent_tasks.create_task('Kept', labels => '{keep}')).id AS kept \gset
SELECT expect_error(format('SELECT agent_tasks.cancel_task(%L)', :'kept'));
SELECT status, (SELECT count(*) FROM agent_tasks.activities a WHERE a.task_id = t.id AND a.to_status = 'cancelled') AS logged
  FROM agent_tasks.tasks t WHERE id = :'kept';
SELECT hook, event FROM hook_app.seen ORDER BY n;
TRUNCATE hook_app.seen;
SELECT agent_tasks.drop_hook('guard'), agent_tasks.drop_hook('guard') AS again;

-- Another account's changes never reach these hooks.
SET agent_tasks.account = 'not-hooks';
SELECT status FROM agent_tasks.create_task('Elsewhere', auto_process => true);
SELECT count(*) AS seen_from_elsewhere FROM hook_app.seen;
SELECT count(*) AS hooks_seen_elsewhere FROM agent_tasks.hooks;
SET agent_tasks.account = 'hooks';

-- A hook runs only a function of the role that registers it.
RESET ROLE;
CREATE FUNCTION hook_app.not_yours(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE sql BEGIN ATOMIC SELECT 1; END;
SET ROLE regress_app;
SELECT expect_error($$SELECT agent_tasks.create_hook('stolen', '{*}', 'hook_app.not_yours')$$);
SELECT expect_error($$SELECT agent_tasks.create_hook('missing', '{*}', 'hook_app.nothing_here')$$);
SELECT expect_error($$SELECT agent_tasks.create_hook('wrong', '{*}', 'hook_app.record')$$);
SELECT expect_error($$SELECT agent_tasks.create_hook('bad events', '{task.exploded}', 'hook_app.first')$$);
SELECT expect_error($$SELECT agent_tasks.create_hook('bad-events', '{task.exploded}', 'hook_app.first')$$);
SELECT expect_error($$SELECT agent_tasks.create_hook('first', '{*}', 'hook_app.first')$$);
-- ... and again when it fires: a function given away stops its hook (and the change)
RESET ROLE;
ALTER FUNCTION hook_app.first(text, agent_tasks.tasks, text, jsonb) OWNER TO regress_writer;
SET ROLE regress_app;
SELECT expect_error($$SELECT agent_tasks.create_task('Given away')$$);
RESET ROLE;
ALTER FUNCTION hook_app.first(text, agent_tasks.tasks, text, jsonb) OWNER TO regress_app;
SET ROLE regress_app;
-- a writer may not manage hooks
SET ROLE regress_writer;
SELECT expect_error($$SELECT agent_tasks.drop_hook('first')$$);
SET ROLE regress_app;

-- The hook's context: restricted (no SET ROLE), search_path pinned.
CREATE FUNCTION hook_app.escape(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
	SET ROLE postgres;
END
$$;
SELECT name FROM agent_tasks.alter_hook('second', events => '{task.created}', function => 'hook_app.escape');
SELECT expect_error($$SELECT agent_tasks.create_task('Escape')$$);
SELECT name, enabled FROM agent_tasks.alter_hook('second', enabled => false);
SELECT count(*) AS escaped FROM agent_tasks.tasks WHERE title = 'Escape';
TRUNCATE hook_app.seen;

-- A hook's own changes are checked by the state machine and logged, and fire hooks again.
CREATE FUNCTION hook_app.prioritize(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM agent_tasks.update_task(task.id, '{"priority": 7}');
	IF task.title = 'Jump' THEN
		PERFORM agent_tasks.set_task_status(task.id, 'completed');
	END IF;
END
$$;
SELECT name FROM agent_tasks.create_hook('prioritize', '{task.queued}', 'hook_app.prioritize');
SELECT status, priority FROM agent_tasks.create_task('Prioritized', auto_process => true);
SELECT event, actor, data FROM agent_tasks.activities
 WHERE task_id = (SELECT id FROM agent_tasks.tasks WHERE title = 'Prioritized') ORDER BY id;
SELECT expect_error($$SELECT agent_tasks.create_task('Jump', auto_process => true)$$);
SELECT count(*) AS jumped FROM agent_tasks.tasks WHERE title = 'Jump';
SELECT agent_tasks.drop_hook('prioritize');
TRUNCATE hook_app.seen;

-- Nesting is bounded: a hook that answers feedback with feedback.
CREATE FUNCTION hook_app.flip(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM agent_tasks.send_feedback(task.id, CASE task.feedback WHEN 'like' THEN 'dislike' ELSE 'like' END);
END
$$;
SELECT name FROM agent_tasks.create_hook('flip', '{task.feedback}', 'hook_app.flip');
SELECT (agent_tasks.create_task('Flip')).id AS flip \gset
SELECT expect_error(format('SELECT agent_tasks.send_feedback(%L, %L)', :'flip', 'like'));
SELECT feedback FROM agent_tasks.tasks WHERE id = :'flip';
SELECT agent_tasks.drop_hook('flip');

-- Without enabled hooks nothing is called.
SELECT name FROM agent_tasks.alter_hook('first', enabled => false);
TRUNCATE hook_app.seen;
SELECT status FROM agent_tasks.create_task('Quiet', auto_process => true);
SELECT count(*) AS called FROM hook_app.seen;

RESET ROLE;
DROP SCHEMA hook_app CASCADE;
DELETE FROM agent_tasks_internal.hooks;
