--
-- 09_rls: account B sees and changes nothing of account A, through every
-- view and every function; A's rows look exactly like missing ones (PT404).
-- Superusers bypass row-level security, so this runs as an ordinary role.
--
\set SHOW_CONTEXT never
RESET ROLE;
-- A fingerprint of everything account A has, taken as superuser (no RLS).
CREATE FUNCTION public.fingerprint(acc text) RETURNS text
	LANGUAGE sql
AS $$
	SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
		SELECT 'tasks' || to_jsonb(t)::text AS x FROM agent_tasks_internal.tasks t WHERE t.account = acc
		UNION ALL SELECT 'runs' || to_jsonb(r)::text FROM agent_tasks_internal.runs r WHERE r.account = acc
		UNION ALL SELECT 'messages' || to_jsonb(m)::text FROM agent_tasks_internal.messages m WHERE m.account = acc
		UNION ALL SELECT 'activities' || to_jsonb(a)::text FROM agent_tasks_internal.activities a WHERE a.account = acc
		UNION ALL SELECT 'users' || to_jsonb(u)::text FROM agent_tasks_internal.users u WHERE u.account = acc
		UNION ALL SELECT 'agents' || to_jsonb(g)::text FROM agent_tasks_internal.agents g WHERE g.account = acc
		UNION ALL SELECT 'assignees' || to_jsonb(s)::text FROM agent_tasks_internal.task_assignees s WHERE s.account = acc
		UNION ALL SELECT 'followers' || to_jsonb(f)::text FROM agent_tasks_internal.task_followers f WHERE f.account = acc
		UNION ALL SELECT 'dependencies' || to_jsonb(d)::text FROM agent_tasks_internal.task_dependencies d WHERE d.account = acc) s
$$;

SET ROLE regress_app;
SET agent_tasks.account = 'rls-a';
SET agent_tasks.email = 'amy@a.example';
RESET ROLE;	-- setup: the tables are private (issue 10)
INSERT INTO agent_tasks_internal.agents (account, name, kind) VALUES ('rls-a', 'a-agent', 'external');
SET ROLE regress_app;
SELECT (agent_tasks.create_task('A secret', prompt => 'secret plans', agent => 'a-agent',
	assignees => ARRAY['amy@a.example'], followers => ARRAY['al@a.example'], idempotency_key => 'shared-key',
	external_id => 'shared-ext', context => '{"repository": "a/repo"}', auto_process => true)).id AS a1 \gset
SELECT (agent_tasks.create_task('A blocker')).id AS a2 \gset
SELECT (agent_tasks.create_task('A waiting', depends_on => ARRAY[:'a2'::uuid])).id AS a3 \gset
SELECT (agent_tasks.create_task('A finished', auto_process => true)).id AS a4 \gset
SELECT (agent_tasks.set_task_status(:'a4', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'a4', 'completed')).status;
SELECT (agent_tasks.send_message(:'a1', 'secret message')).role;
SELECT (agent_tasks.send_feedback(:'a4', 'like')).feedback;
SELECT latest_run_id AS a1_run FROM agent_tasks.tasks WHERE id = :'a1' \gset
SELECT count(*) AS a_tasks FROM agent_tasks.tasks;
RESET ROLE;
SELECT fingerprint('rls-a') AS a_before \gset

--
-- Account B
--
SET ROLE regress_app;
SET agent_tasks.account = 'rls-b';
SET agent_tasks.email = 'bea@b.example';
SELECT (agent_tasks.create_task('B own task')).id AS b1 \gset
-- Every view shows B's rows only.
SELECT 'tasks' AS view, count(*) AS rows, count(*) FILTER (WHERE account <> 'rls-b') AS foreign_rows FROM agent_tasks.tasks
UNION ALL SELECT 'runs', count(*), count(*) FILTER (WHERE account <> 'rls-b') FROM agent_tasks.runs
UNION ALL SELECT 'activities', count(*), count(*) FILTER (WHERE account <> 'rls-b') FROM agent_tasks.activities
UNION ALL SELECT 'messages', count(*), count(*) FILTER (WHERE account <> 'rls-b') FROM agent_tasks.messages
UNION ALL SELECT 'users', count(*), count(*) FILTER (WHERE account <> 'rls-b') FROM agent_tasks.users
UNION ALL SELECT 'agents', count(*), count(*) FILTER (WHERE account <> 'rls-b') FROM agent_tasks.agents
UNION ALL SELECT 'dependencies', count(*), count(*) FILTER (WHERE account <> 'rls-b') FROM agent_tasks.dependencies
UNION ALL SELECT 'ready_tasks', count(*), count(*) FILTER (WHERE account <> 'rls-b') FROM agent_tasks.ready_tasks;
-- not even when asking for A's rows by id or account
SELECT count(*) FROM agent_tasks.tasks WHERE id = :'a1' OR account = 'rls-a';
SELECT count(*) FROM agent_tasks.runs WHERE id = :'a1_run' OR task_id = :'a1';
SELECT count(*) FROM agent_tasks.activities WHERE task_id IN (:'a1', :'a2', :'a3', :'a4');
SELECT count(*) FROM agent_tasks.messages WHERE task_id = :'a1';
SELECT count(*) FROM agent_tasks.users WHERE email LIKE '%a.example';
SELECT count(*) FROM agent_tasks.tasks WHERE search @@ to_tsquery('english', 'secret');
-- nor through the tables
SELECT count(*) FROM agent_tasks_internal.tasks WHERE account = 'rls-a';
SELECT count(*) FROM agent_tasks_internal.activities WHERE account = 'rls-a';
-- list_tasks: B's task only, whatever the filter
SELECT (agent_tasks.list_tasks(archived => 'all')) ->> 'count' AS b_count;
SELECT (agent_tasks.list_tasks(search => 'secret')) ->> 'count' AS secret,
	   (agent_tasks.list_tasks(external_id => 'shared-ext')) ->> 'count' AS by_external_id,
	   (agent_tasks.list_tasks(repository => 'a/repo')) ->> 'count' AS by_repository,
	   (agent_tasks.list_tasks(agent => 'a-agent')) ->> 'count' AS by_agent,
	   (agent_tasks.list_tasks(assignee => 'amy@a.example')) ->> 'count' AS by_assignee,
	   (agent_tasks.list_tasks(parent => :'a1')) ->> 'count' AS by_parent;

-- Every function, given A's task: exactly the error of a task that does not exist.
CREATE TEMP TABLE calls (n serial, call text);
INSERT INTO calls (call) VALUES
	('SELECT agent_tasks.get_task(%1$L)'),
	('SELECT agent_tasks.update_task(%1$L, ''{"title": "stolen"}'')'),
	('SELECT agent_tasks.archive_task(%1$L)'),
	('SELECT agent_tasks.unarchive_task(%1$L)'),
	('SELECT agent_tasks.delete_task(%1$L)'),
	('SELECT agent_tasks.process_task(%1$L)'),
	('SELECT agent_tasks.process_task(%1$L, ''hello'')'),
	('SELECT agent_tasks.stop_task(%1$L)'),
	('SELECT agent_tasks.cancel_task(%1$L)'),
	('SELECT agent_tasks.retry_task(%1$L)'),
	('SELECT agent_tasks.set_task_status(%1$L, ''cancelled'')'),
	('SELECT agent_tasks.send_message(%1$L, ''hi'')'),
	('SELECT agent_tasks.send_feedback(%1$L, ''dislike'')'),
	('SELECT agent_tasks.set_assignees(%1$L, ARRAY[''bea@b.example''])'),
	('SELECT agent_tasks.add_followers(%1$L, ARRAY[''bea@b.example''])'),
	('SELECT agent_tasks.remove_followers(%1$L, ARRAY[''al@a.example''])'),
	('SELECT agent_tasks.add_dependency(%1$L, %2$L)'),
	('SELECT agent_tasks.add_dependency(%2$L, %1$L)'),
	('SELECT agent_tasks.remove_dependency(%1$L, %2$L)'),
	('SELECT agent_tasks.create_task(''child'', parent => %1$L)'),
	('SELECT agent_tasks.create_task(''waits'', depends_on => ARRAY[%1$L::uuid])');
SELECT c.call,
	   expect_error(format(c.call, :'a1', :'b1')) AS error_for_a_task,
	   expect_error(format(c.call, :'a1', :'b1')) = expect_error(format(c.call, '00000000-0000-7000-8000-000000000000', :'b1'))
		   AS same_as_missing
  FROM calls c ORDER BY c.n;
-- the same for A's other tasks (blocked, finished)
SELECT count(*) AS calls,
	   count(*) FILTER (WHERE expect_error(format(c.call, t.id, :'b1')) LIKE 'PT404: task not found | No task <uuid> in this account.%') AS not_found
  FROM calls c CROSS JOIN (VALUES (:'a2'::uuid), (:'a3'::uuid), (:'a4'::uuid)) AS t(id);
-- remove_dependency between two of A's tasks
SELECT expect_error(format('SELECT agent_tasks.remove_dependency(%L, %L)', :'a3', :'a2'));
-- A's agent is unknown here; A's idempotency key is free here (a new task, no PT422)
SELECT expect_error($$SELECT agent_tasks.create_task('x', agent => 'a-agent')$$);
SELECT (agent_tasks.create_task('B with the same key', idempotency_key => 'shared-key')).id <> :'a1' AS new_task;
SELECT title FROM agent_tasks.create_task('B with the same key', idempotency_key => 'shared-key');
-- the same e-mail address is another person in another account
SELECT assignees FROM agent_tasks.set_assignees(:'b1', ARRAY['amy@a.example']);
SELECT count(*) AS amy_in_b FROM agent_tasks.users WHERE email = 'amy@a.example';
-- direct DML: nothing of A can be read, changed, deleted, or written into A
UPDATE agent_tasks_internal.tasks SET title = 'stolen' WHERE id = :'a1';
UPDATE agent_tasks_internal.tasks SET title = 'stolen' WHERE account = 'rls-a';
DELETE FROM agent_tasks_internal.tasks WHERE account = 'rls-a';
DELETE FROM agent_tasks_internal.messages WHERE account = 'rls-a';
UPDATE agent_tasks_internal.runs SET status = 'cancelled' WHERE account = 'rls-a';
SELECT expect_error($$INSERT INTO agent_tasks_internal.tasks (account, title, created_by) VALUES ('rls-a', 'planted', 'bea')$$);
SELECT expect_error(format($$INSERT INTO agent_tasks_internal.messages (account, task_id, role, author, body) VALUES ('rls-a', %L, 'user', 'bea', 'planted')$$, :'a1'));
SELECT expect_error(format($$INSERT INTO agent_tasks_internal.task_assignees (account, task_id, user_id) SELECT 'rls-a', %L, id FROM agent_tasks_internal.users LIMIT 1$$, :'a1'));
SELECT expect_error(format($$UPDATE agent_tasks_internal.tasks SET account = 'rls-a' WHERE id = %L$$, :'b1'));
-- B's own task cannot point at A's rows either
SELECT expect_error(format($$INSERT INTO agent_tasks_internal.task_dependencies (account, task_id, depends_on) VALUES ('rls-b', %L, %L)$$, :'b1', :'a2'));
-- the same through PostgREST's JWT claims
SET request.jwt.claims = '{"account": "rls-b", "email": "bea@b.example"}';
RESET agent_tasks.account;
SELECT count(*) AS tasks_seen, count(*) FILTER (WHERE account <> 'rls-b') AS foreign_rows FROM agent_tasks.tasks;
SELECT expect_error(format('SELECT agent_tasks.get_task(%L)', :'a1'));
RESET request.jwt.claims;
-- and with no account at all, nothing is visible: PT403
SELECT expect_error('SELECT count(*) FROM agent_tasks.tasks');
SELECT expect_error('SELECT count(*) FROM agent_tasks.activities');
SELECT expect_error('SELECT agent_tasks.list_tasks()');
SELECT expect_error(format('SELECT agent_tasks.get_task(%L)', :'b1'));

-- Account A is exactly as it was.
RESET ROLE;
SELECT fingerprint('rls-a') = :'a_before' AS a_unchanged;
SET ROLE regress_app;
SET agent_tasks.account = 'rls-a';
SELECT title, status, assignees, followers, feedback FROM agent_tasks.tasks ORDER BY id;
SELECT count(*) AS b_rows_seen_by_a FROM agent_tasks.tasks WHERE account <> 'rls-a';
RESET ROLE;
DROP FUNCTION public.fingerprint(text);
