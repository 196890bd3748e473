--
-- 07_dependencies: add / remove, cycles refused, blocked tasks queued when
-- their blockers complete, cancelled when one fails or is cancelled.
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'deps';
SET agent_tasks.email = 'dana@example.com';

-- Drive a task to the end, as an external agent would.
CREATE FUNCTION pg_temp.finish(task uuid, status text) RETURNS text
	LANGUAGE plpgsql
AS $$
BEGIN
	IF (agent_tasks.get_task(task)).status = 'pending' THEN
		PERFORM agent_tasks.process_task(task);
	END IF;
	PERFORM agent_tasks.set_task_status(task, 'in_progress');
	RETURN (agent_tasks.set_task_status(task, status, 'test')).status;
END
$$;
CREATE FUNCTION pg_temp.st(task uuid) RETURNS text
	LANGUAGE sql
AS $$
	SELECT public.mask(t.status || coalesce(' (' || t.status_reason || ')', '')) FROM agent_tasks.tasks t WHERE t.id = st.task
$$;

SELECT (agent_tasks.create_task('A: deploy')).id AS a \gset
SELECT (agent_tasks.create_task('B: build')).id AS b \gset
SELECT (agent_tasks.create_task('C: test')).id AS c \gset

-- A waits for B and C
SELECT status, status_reason FROM agent_tasks.add_dependency(:'a', :'b');
SELECT status, status_reason FROM agent_tasks.add_dependency(:'a', :'c');
SELECT status, status_reason FROM agent_tasks.add_dependency(:'a', :'c');	-- again: nothing new
SELECT d.task_id = :'a' AS from_a, d.depends_on_status FROM agent_tasks.dependencies d ORDER BY d.depends_on;
-- ready_tasks: pending tasks with nothing unfinished to wait for
SELECT title FROM agent_tasks.ready_tasks ORDER BY id;
-- a blocked task cannot be processed yet
SELECT expect_error(format('SELECT agent_tasks.process_task(%L)', :'a'));
-- cycles are refused (PT409), however long
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'b', :'a'));
SELECT (agent_tasks.add_dependency(:'c', :'b')).status_reason;		-- A -> C -> B
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'b', :'a'));
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'a', :'a'));
-- unknown tasks and bad ids
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'a', '00000000-0000-7000-8000-000000000000'));
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', '00000000-0000-7000-8000-000000000000', :'a'));
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'a', 'x'));
SELECT expect_error(format('SELECT agent_tasks.remove_dependency(%L, %L)', :'a', '00000000-0000-7000-8000-000000000000'));
SELECT expect_error(format('SELECT agent_tasks.remove_dependency(%L, %L)', '00000000-0000-7000-8000-000000000000', :'a'));
SELECT expect_error(format('SELECT agent_tasks.remove_dependency(%L, %L)', :'b', :'a'));

-- B completes: C is released (its only blocker), A still waits for C
SELECT pg_temp.finish(:'b', 'completed');
SELECT pg_temp.st(:'a') AS a, pg_temp.st(:'c') AS c;
SELECT pg_temp.finish(:'c', 'completed');
SELECT pg_temp.st(:'a') AS a;
SELECT title FROM agent_tasks.ready_tasks ORDER BY id;
-- only pending tasks can get dependencies
SELECT (agent_tasks.create_task('D: later')).id AS d \gset
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'a', :'d'));
-- a completed blocker blocks nothing
SELECT (agent_tasks.create_task('E: after B')).id AS e \gset
SELECT status, status_reason FROM agent_tasks.add_dependency(:'e', :'b');
SELECT title FROM agent_tasks.ready_tasks ORDER BY id;

-- remove_dependency: the last blocker gone, the task is queued
SELECT (agent_tasks.create_task('F: waits for D')).id AS f \gset
SELECT (agent_tasks.add_dependency(:'f', :'d')).status_reason;
SELECT status, status_reason FROM agent_tasks.remove_dependency(:'f', :'d');
SELECT expect_error(format('SELECT agent_tasks.remove_dependency(%L, %L)', :'f', :'d'));

-- depends_on at creation
SELECT (agent_tasks.create_task('G: waits for D', depends_on => ARRAY[:'d'::uuid])).id AS g \gset
SELECT pg_temp.st(:'g') AS g;
SELECT expect_error(format('SELECT agent_tasks.create_task(%L, depends_on => ARRAY[%L::uuid, %L::uuid])', 'x', :'d', '00000000-0000-7000-8000-000000000000'));

-- a failed blocker cancels its dependents, and theirs (the reason names the blocker)
SELECT (agent_tasks.create_task('H: waits for G')).id AS h \gset
SELECT (agent_tasks.add_dependency(:'h', :'g')).status_reason;
SELECT pg_temp.finish(:'d', 'failed');
SELECT pg_temp.st(:'g') = format('cancelled (dependency_failed:%s)', '<uuid>') AS g_cancelled,
	   (SELECT status_reason FROM agent_tasks.tasks WHERE id = :'g') = 'dependency_failed:' || :'d' AS names_d;
SELECT (SELECT status_reason FROM agent_tasks.tasks WHERE id = :'h') = 'dependency_cancelled:' || :'g' AS h_cancelled_by_g;
-- nothing can depend on a failed or cancelled task
SELECT (agent_tasks.create_task('I')).id AS i \gset
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'i', :'d'));
SELECT expect_error(format('SELECT agent_tasks.add_dependency(%L, %L)', :'i', :'g'));
-- a cancelled blocker cancels its dependents too
SELECT (agent_tasks.create_task('J')).id AS j \gset
SELECT (agent_tasks.add_dependency(:'i', :'j')).status_reason;
SELECT (agent_tasks.cancel_task(:'j')).status;
SELECT (SELECT status_reason FROM agent_tasks.tasks WHERE id = :'i') = 'dependency_cancelled:' || :'j' AS i_cancelled_by_j;
-- a retried blocker can be waited for again
SELECT (agent_tasks.retry_task(:'j')).status;
SELECT (agent_tasks.create_task('K')).id AS k \gset
SELECT status, status_reason FROM agent_tasks.add_dependency(:'k', :'j');
SELECT pg_temp.finish(:'j', 'completed');
SELECT pg_temp.st(:'k') AS k;

-- deleting a blocker releases the tasks that waited only for it
SELECT (agent_tasks.create_task('L: blocker')).id AS l \gset
SELECT (agent_tasks.create_task('M: waits for L')).id AS m \gset
SELECT (agent_tasks.add_dependency(:'m', :'l')).status_reason;
SELECT (agent_tasks.create_task('N: waits for L too')).id AS n \gset
SELECT (agent_tasks.create_task('O: blocker of N')).id AS o \gset
SELECT (agent_tasks.add_dependency(:'n', :'l')).status_reason;
SELECT (agent_tasks.add_dependency(:'n', :'o')).status_reason;
SELECT agent_tasks.delete_task(:'l');
SELECT pg_temp.st(:'m') AS m, pg_temp.st(:'n') AS n;

-- The trail of A and of G
SELECT * FROM trail(:'a');
SELECT event, from_status, to_status, mask(reason) AS reason, data FROM trail(:'g');
RESET ROLE;
