--
-- 40_restore: a session restoring a dump (row_security off, a role that
-- bypasses row-level security: what pg_dump / pg_restore sessions are) loads
-- rows as they were dumped; every other session stays checked and logged.
-- The whole dump / restore round trip is t/040_dump_restore.pl.
--
\set SHOW_CONTEXT never
RESET ROLE;
SET agent_tasks.account = 'restore';

-- Not restoring: the defaults, and an API role that turns row_security off
-- (it cannot bypass RLS, so its reads and writes fail instead).
SELECT agent_tasks_internal.restoring() AS superuser_default;
SET ROLE regress_writer;
SET row_security = off;
SELECT expect_error('SELECT agent_tasks_internal.restoring()') AS writer_calls_no_internal_function;
SELECT expect_error($$SELECT count(*) FROM agent_tasks_internal.tasks$$);
RESET row_security;
RESET ROLE;

-- A superuser with row_security on is checked like anyone: a task cannot be
-- inserted as completed.
SELECT expect_error($$INSERT INTO agent_tasks_internal.tasks (account, title, created_by, status)
	VALUES ('restore', 'born completed', 'role:postgres', 'completed')$$);

-- Restoring: the row goes in as it is, with no activity, delivery or
-- rate-limit count of its own.
SET row_security = off;
SELECT agent_tasks_internal.restoring() AS superuser_without_row_security;
INSERT INTO agent_tasks_internal.tasks (account, id, title, created_by, status, status_reason, output)
VALUES ('restore', '018f0000-0000-7000-8000-000000000001', 'restored completed', 'role:postgres',
		'completed', NULL, '{"done": true}');
INSERT INTO agent_tasks_internal.runs (account, task_id, kind, status, started_at, ended_at, output)
VALUES ('restore', '018f0000-0000-7000-8000-000000000001', 'external', 'completed',
		now() - interval '1 minute', now(), '{"done": true}');
RESET row_security;
SELECT title, status, output FROM agent_tasks_internal.tasks WHERE account = 'restore';
-- (a row dumped by 0.1.0 comes without its search document, and gets one)
SELECT search @@ plainto_tsquery('english', 'restored') AS searchable
  FROM agent_tasks_internal.tasks WHERE account = 'restore';
SELECT count(*) AS activities FROM agent_tasks_internal.activities WHERE account = 'restore';
SELECT count(*) AS deliveries FROM agent_tasks_internal.webhook_deliveries WHERE account = 'restore';
SELECT count(*) AS counted FROM agent_tasks_internal.rate_counters WHERE account = 'restore';

-- Back to normal: the restored task is an ordinary task, checked and logged.
SET ROLE regress_writer;
SELECT expect_error($$SELECT agent_tasks.stop_task('018f0000-0000-7000-8000-000000000001')$$);
SELECT status FROM agent_tasks.archive_task('018f0000-0000-7000-8000-000000000001');
SELECT event FROM agent_tasks.activities WHERE task_id = '018f0000-0000-7000-8000-000000000001';
RESET ROLE;
SELECT agent_tasks.delete_task('018f0000-0000-7000-8000-000000000001');
