--
-- 20_activities: the audit trail holds every kind of change with its event,
-- from / to, reason and actor; nobody can write, change or delete it.
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'trail';
SET agent_tasks.email = 'tom@example.com';

RESET ROLE;	-- setup: the tables are private (issue 10)
INSERT INTO agent_tasks_internal.agents (account, name, kind) VALUES ('trail', 'helper', 'external');
SET ROLE regress_app;
SELECT (agent_tasks.create_task('Trail', prompt => 'p', origin => 'api')).id AS t \gset
SELECT (agent_tasks.create_task('Blocker')).id AS b \gset
SELECT (agent_tasks.create_task('Child', parent => :'t')).id AS c \gset
-- every kind of change, each by its own call
SELECT (agent_tasks.update_task(:'t', '{"title": "Trail, renamed", "priority": 2, "labels": ["x"],
	"agent": "helper", "owner": "olga@example.com", "context": {"repository": "r"}}')).title;
SELECT (agent_tasks.update_task(:'t', '{"title": "Trail, renamed"}')).title;	-- no change: no activity
SELECT (agent_tasks.set_assignees(:'t', ARRAY['ann@example.com'])).assignees;
SELECT (agent_tasks.set_assignees(:'t', ARRAY['ben@example.com'])).assignees;
SELECT (agent_tasks.add_followers(:'t', ARRAY['fay@example.com'])).followers;
SELECT (agent_tasks.remove_followers(:'t', ARRAY['fay@example.com'])).followers;
SELECT (agent_tasks.add_dependency(:'t', :'b')).status_reason;
SELECT (agent_tasks.remove_dependency(:'t', :'b')).status;		-- last blocker gone: queued
SELECT (agent_tasks.send_message(:'t', 'A question?', 'user')).role;
SELECT (agent_tasks.set_task_status(:'t', 'in_progress', 'claimed')).status;
SELECT (agent_tasks.set_task_status(:'t', 'needs_clarification', 'question')).status;
SELECT (agent_tasks.send_message(:'t', 'An answer')).role;			-- re-queues
SELECT (agent_tasks.stop_task(:'t', 'paused')).status;
-- another actor: the role, when no person is known
RESET agent_tasks.email;
SELECT (agent_tasks.process_task(:'t')).status;
-- another actor through PostgREST's claims
SET request.jwt.claims = '{"account": "trail", "email": "Jay@Example.com"}';
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'t', 'failed', 'agent_error', error => '{"message": "boom"}')).status;
RESET request.jwt.claims;
SET agent_tasks.email = 'tom@example.com';
SELECT (agent_tasks.retry_task(:'t')).status;
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'t', 'completed', 'done', output => '{"ok": true}')).status;
SELECT (agent_tasks.send_feedback(:'t', 'like')).feedback;
SELECT (agent_tasks.archive_task(:'t')).archived;
SELECT (agent_tasks.unarchive_task(:'t')).archived;
SELECT (agent_tasks.cancel_task(:'c')).status;

-- The trail, oldest first.
SELECT * FROM trail(:'t');
-- A run id goes with the status changes and messages of a run.
SELECT event, count(*) AS activities, count(run_id) AS with_run
  FROM agent_tasks.activities WHERE task_id = :'t' GROUP BY event ORDER BY event;
-- activity ids are time-ordered, like everything else
SELECT bool_and(agent_tasks.uuid_v7_time(id) IS NOT NULL) AS v7 FROM agent_tasks.activities WHERE task_id = :'t';
-- The child's own trail; a parent's trail does not include its children's.
SELECT * FROM trail(:'c');

-- Nobody writes the trail by hand.
SELECT id AS act FROM agent_tasks.activities WHERE task_id = :'t' ORDER BY id LIMIT 1 \gset
SELECT expect_error(format($$INSERT INTO agent_tasks_internal.activities (account, task_id, event, actor) VALUES ('trail', %L, 'forged', 'me')$$, :'t'));
SELECT expect_error(format($$UPDATE agent_tasks_internal.activities SET event = 'forged' WHERE id = %L$$, :'act'));
SELECT expect_error(format($$DELETE FROM agent_tasks_internal.activities WHERE id = %L$$, :'act'));
SELECT expect_error($$TRUNCATE agent_tasks_internal.activities$$);
-- the view is read-only too
SELECT expect_error(format($$INSERT INTO agent_tasks.activities (account, task_id, event, actor) VALUES ('trail', %L, 'forged', 'me')$$, :'t'));
SELECT expect_error(format($$UPDATE agent_tasks.activities SET event = 'forged' WHERE id = %L$$, :'act'));
SELECT expect_error(format($$DELETE FROM agent_tasks.activities WHERE id = %L$$, :'act'));
-- the helper that writes activities is not callable by users
SELECT expect_error(format($$SELECT agent_tasks_internal.log_activity('trail', %L, 'forged')$$, :'t'));
-- even a superuser cannot change an activity
RESET ROLE;
SELECT expect_error(format($$UPDATE agent_tasks_internal.activities SET event = 'forged' WHERE id = %L$$, :'act'));
SET ROLE regress_app;
SELECT count(*) AS forged FROM agent_tasks.activities WHERE event = 'forged';
-- the trail goes with its task
SELECT agent_tasks.delete_task(:'t');
SELECT count(*) AS left_over FROM agent_tasks.activities WHERE task_id IN (:'t', :'c');
RESET ROLE;
