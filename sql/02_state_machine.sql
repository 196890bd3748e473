--
-- 02_state_machine: the transition table in C, status kinds, and the
-- trigger that checks every change, even direct DML on the tables.
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'acme';
SET agent_tasks.email = 'alice@example.com';

-- The whole table, for tasks and for runs.
SELECT * FROM agent_tasks.status_transitions ORDER BY
	array_position(ARRAY['pending', 'queued', 'in_progress', 'needs_clarification', 'on_hold',
						 'completed', 'failed', 'cancelled'], from_status),
	array_position(ARRAY['pending', 'queued', 'in_progress', 'needs_clarification', 'on_hold',
						 'completed', 'failed', 'cancelled'], to_status);
-- Terminal runs never move; terminal tasks only start over (queued).
SELECT from_status, string_agg(to_status, ', ' ORDER BY to_status) AS task_may_go_to
  FROM agent_tasks.status_transitions
 WHERE for_task AND agent_tasks.status_kind(from_status) = 'terminal'
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS run_moves_from_terminal FROM agent_tasks.status_transitions
 WHERE for_run AND agent_tasks.status_kind(from_status) = 'terminal';
SELECT count(*) AS self_loops FROM agent_tasks.status_transitions WHERE from_status = to_status;
SELECT count(*) AS run_only FROM agent_tasks.status_transitions WHERE for_run AND NOT for_task;

SELECT s AS status, agent_tasks.status_kind(s) AS kind
  FROM unnest(ARRAY['pending', 'queued', 'in_progress', 'needs_clarification', 'on_hold',
					'completed', 'failed', 'cancelled']) s;
SELECT agent_tasks.status_kind(NULL) IS NULL AS strict;
-- bad enum value
SELECT expect_error($$SELECT agent_tasks.status_kind('done')$$);
SELECT expect_error($$SELECT agent_tasks.status_kind('')$$);
SELECT expect_error($$SELECT agent_tasks.status_kind('Queued')$$);

-- The trigger checks every path.  Direct DML needs the table privileges of a
-- superuser here; the state machine still applies to it.
SELECT (agent_tasks.create_task('state machine')).id AS t \gset
RESET ROLE;
SET agent_tasks.account = 'acme';
-- a new task starts pending (or queued, naming its first run), a new run queued
SELECT expect_error($$INSERT INTO agent_tasks_internal.tasks (account, title, created_by, status)
	VALUES ('acme', 'x', 'test', 'queued')$$);
SELECT expect_error($$INSERT INTO agent_tasks_internal.tasks (account, title, created_by, status, latest_run_id)
	VALUES ('acme', 'x', 'test', 'in_progress', agent_tasks.uuid_v7())$$);
-- a task inserted queued gets the run it names, and follows it
BEGIN;
INSERT INTO agent_tasks_internal.tasks (account, title, created_by, status, status_reason, latest_run_id)
	VALUES ('acme', 'born queued', 'test', 'queued', 'user_request', agent_tasks.uuid_v7())
	RETURNING id AS bq, latest_run_id AS bq_run \gset
SELECT r.status, r.status_reason, r.attempt, r.kind, t.status AS task_status, t.latest_run_id = r.id AS follows
  FROM agent_tasks_internal.runs r JOIN agent_tasks_internal.tasks t ON t.account = r.account AND t.id = r.task_id
 WHERE r.task_id = :'bq';
SELECT r.id = :'bq_run' AS named_run FROM agent_tasks_internal.runs r WHERE r.task_id = :'bq';
ROLLBACK;
SELECT expect_error(format($$INSERT INTO agent_tasks_internal.runs (account, task_id, status)
	VALUES ('acme', %L, 'completed')$$, :'t'));
-- unknown and null statuses
SELECT expect_error(format($$UPDATE agent_tasks_internal.tasks SET status = 'done' WHERE id = %L$$, :'t'));
SELECT expect_error(format($$UPDATE agent_tasks_internal.tasks SET status = NULL WHERE id = %L$$, :'t'));
-- forbidden moves name 'from -> to'
SELECT expect_error(format($$UPDATE agent_tasks_internal.tasks SET status = 'completed' WHERE id = %L$$, :'t'));
SELECT expect_error(format($$UPDATE agent_tasks_internal.tasks SET status = 'in_progress' WHERE id = %L$$, :'t'));
-- every move not in the table is refused, every move in it is accepted (tasks)
CREATE TEMP TABLE sm_results (from_status text, to_status text, outcome text);
DO $$
DECLARE
	f text;
	t text;
	task uuid;
	statuses text[] := ARRAY['pending', 'queued', 'in_progress', 'needs_clarification', 'on_hold',
							 'completed', 'failed', 'cancelled'];
	outcome text;
BEGIN
	FOREACH f IN ARRAY statuses LOOP
		FOREACH t IN ARRAY statuses LOOP
			CONTINUE WHEN f = t;
			BEGIN
				-- a task in status f, reached without the trigger
				ALTER TABLE agent_tasks_internal.tasks DISABLE TRIGGER enforce_status_transition;
				INSERT INTO agent_tasks_internal.tasks (account, title, created_by, status)
				VALUES ('sm-account', 'sm', 'test', f) RETURNING id INTO task;
				ALTER TABLE agent_tasks_internal.tasks ENABLE TRIGGER enforce_status_transition;
				BEGIN
					UPDATE agent_tasks_internal.tasks SET status = t WHERE account = 'sm-account' AND id = task;
					outcome := 'allowed';
				EXCEPTION WHEN SQLSTATE 'PT409' THEN
					outcome := 'refused';
				END;
				RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'undo';
			EXCEPTION WHEN SQLSTATE 'P0001' THEN
				INSERT INTO sm_results VALUES (f, t, outcome);
			END;
		END LOOP;
	END LOOP;
END
$$;
SELECT count(*) AS checked,
	   count(*) FILTER (WHERE (outcome = 'allowed') IS DISTINCT FROM EXISTS (
			SELECT 1 FROM agent_tasks.status_transitions s
			 WHERE s.from_status = r.from_status AND s.to_status = r.to_status AND s.for_task)) AS disagreements
  FROM sm_results r;
DROP TABLE sm_results;
SELECT count(*) AS leftovers FROM agent_tasks_internal.tasks WHERE account = 'sm-account';
SET ROLE regress_app;
SELECT (agent_tasks.set_task_status(:'t', 'queued')).status;
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'t', 'completed', output => '{"ok": true}')).status;
SELECT latest_run_id AS r FROM agent_tasks.tasks WHERE id = :'t' \gset
RESET ROLE;
SELECT expect_error(format($$UPDATE agent_tasks_internal.runs SET status = 'failed' WHERE id = %L$$, :'r'));
SELECT expect_error(format($$UPDATE agent_tasks_internal.runs SET status = 'queued' WHERE id = %L$$, :'r'));
-- not even another column of a finished run
SELECT expect_error(format($$UPDATE agent_tasks_internal.runs SET output = '{}' WHERE id = %L$$, :'r'));
-- a run cannot go back from in_progress to queued (a retry is a new run)
SELECT status FROM agent_tasks.runs WHERE id = :'r';
SET ROLE regress_app;
SELECT expect_error(format($$SELECT agent_tasks.set_task_status(%L, 'in_progress')$$, :'t'));
SELECT status, status_reason, output FROM agent_tasks.get_task(:'t');
-- a terminal run can no longer change at all
SELECT agent_tasks.delete_task(:'t');
RESET ROLE;
