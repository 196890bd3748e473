--
-- 21_schedules: cron expressions, schedules without pg_cron (clear PT409),
-- then with a stand-in for pg_cron's API (pg_cron itself lives only in
-- cron.database_name, not in this database): the job's command creates the
-- task.  The maintenance job and run_maintenance().
--
\set SHOW_CONTEXT never
RESET ROLE;

--
-- Cron expressions (evaluated in GMT, as pg_cron 1.4 does)
--
SET TIME ZONE 'UTC';
SELECT e AS expression, agent_tasks_internal.cron_next(e, a) AS next_after, a AS after
  FROM (VALUES ('* * * * *', '2024-01-01 10:02:30+00'::timestamptz),
			   ('*/5 * * * *', '2024-01-01 10:02:30+00'),
			   ('*/5 * * * *', '2024-01-01 10:55:00+00'),
			   ('0 9 * * mon-fri', '2024-01-05 10:00+00'),
			   ('0 9 * * 1-5', '2024-01-06 08:00+00'),
			   ('30 2 1,15 * *', '2024-01-02 00:00+00'),
			   ('0 0 1 1 *', '2024-06-01 00:00+00'),
			   ('0 0 29 feb *', '2024-03-01 00:00+00'),
			   ('0 12 13 * fri', '2024-01-01 00:00+00'),
			   ('15 14 * * sun', '2024-01-01 00:00+00'),
			   ('0 0 * * 7', '2024-01-01 00:00+00'),
			   ('10-20/5 3 * * *', '2024-01-01 03:11+00'),
			   ('@hourly', '2024-01-01 10:00+00'),
			   ('@daily', '2024-12-31 23:59+00'),
			   ('@weekly', '2024-01-01 00:00+00'),
			   ('@monthly', '2024-01-31 00:00+00'),
			   ('@yearly', '2024-01-01 00:00+00'),
			   ('0 0 31 2 *', '2024-01-01 00:00+00')) v(e, a);
SELECT expect_error(format('SELECT agent_tasks_internal.cron_next(%L)', e)) AS refused
  FROM (VALUES ('* * * *'), ('61 * * * *'), ('* 24 * * *'), ('* * 0 * *'), ('* * * 13 *'),
			   ('* * * * 8'), ('5-1 * * * *'), ('*/0 * * * *'), ('x * * * *'), ('@reboot'), ('')) v(e);
RESET TIME ZONE;

--
-- Without pg_cron: a clear PT409 with the fix, and nothing else breaks
--
SELECT to_regnamespace('cron') IS NULL AS no_pg_cron_here;
SET ROLE regress_writer;
SET agent_tasks.account = 'sched-a';
SET agent_tasks.email = 'sam@a.example';
SELECT expect_error($$SELECT agent_tasks.schedule_task('nightly', '0 2 * * *', '{"title": "Nightly report"}')$$);
SELECT expect_error($$SELECT agent_tasks.unschedule_task('nightly')$$);
SELECT count(*) AS schedules FROM agent_tasks.schedules;
SELECT (agent_tasks.create_task('Still works')).status;
RESET ROLE;
SELECT expect_error($$SELECT agent_tasks.install_maintenance()$$);
SELECT expect_error($$SELECT agent_tasks.uninstall_maintenance()$$);
-- bad input is refused before pg_cron is looked for
SET ROLE regress_writer;
SELECT expect_error($$SELECT agent_tasks.schedule_task('x', '0 2 * *', '{"title": "t"}')$$);
SELECT expect_error($$SELECT agent_tasks.schedule_task('x', '0 2 * * *', '["t"]')$$);
SELECT expect_error($$SELECT agent_tasks.schedule_task('x', '0 2 * * *', '{"title": "t", "colour": "red"}')$$);
SELECT expect_error($$SELECT agent_tasks.schedule_task('x', '0 2 * * *', '{"title": "t", "priority": "high"}')$$);
SELECT expect_error($$SELECT agent_tasks.schedule_task('', '0 2 * * *', '{"title": "t"}')$$);
-- readers may not schedule
SET ROLE regress_reader;
SELECT error_code($$SELECT agent_tasks.schedule_task('x', '0 2 * * *', '{"title": "t"}')$$) AS reader_schedules;

--
-- A stand-in for pg_cron's API: the functions and tables agent_tasks uses.
--
RESET ROLE;
CREATE SCHEMA cron;
CREATE TABLE cron.job (
	jobid bigserial PRIMARY KEY,
	schedule text NOT NULL,
	command text NOT NULL,
	database text NOT NULL DEFAULT current_database(),
	username text NOT NULL DEFAULT current_user,
	active boolean NOT NULL DEFAULT true,
	jobname text,
	UNIQUE (jobname, username)
);
CREATE TABLE cron.job_run_details (
	jobid bigint, runid bigserial PRIMARY KEY, job_pid integer, database text, username text,
	command text, status text, return_message text, start_time timestamptz, end_time timestamptz
);
CREATE FUNCTION cron.schedule(job_name text, schedule text, command text) RETURNS bigint
	LANGUAGE sql
AS $$
	INSERT INTO cron.job (jobname, schedule, command) VALUES (job_name, schedule, command)
	ON CONFLICT (jobname, username) DO UPDATE SET schedule = excluded.schedule, command = excluded.command
	RETURNING jobid
$$;
CREATE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean
	LANGUAGE sql
AS $$
	DELETE FROM cron.job WHERE jobid = job_id RETURNING true
$$;
-- what pg_cron does on a tick: run the command as the job's owner
CREATE FUNCTION pg_temp.tick(name text) RETURNS void
	LANGUAGE plpgsql
AS $$
DECLARE
	j cron.job;
BEGIN
	SELECT * INTO j FROM cron.job WHERE jobname = (SELECT job_name FROM agent_tasks_internal.schedules s WHERE s.name = tick.name);
	EXECUTE j.command;
	INSERT INTO cron.job_run_details (jobid, command, status, return_message, start_time, end_time)
	VALUES (j.jobid, j.command, 'succeeded', 'SELECT 1', now(), now());
END
$$;

SET ROLE regress_writer;
SELECT name, cron, template, email, created_by, job_name = 'agent_tasks:' || id AS job_named_by_id, jobid IS NOT NULL AS has_job,
	   active, next_run_at > now() AS has_next_run, last_run_at, last_status, fire_count
  FROM agent_tasks.schedule_task('nightly', '0 2 * * *',
	'{"title": "Nightly report", "prompt": "Summarise the day", "labels": ["report"], "auto_process": true}');
-- a template that cannot make a task fails now, not at every tick
SELECT expect_error($$SELECT agent_tasks.schedule_task('broken', '0 2 * * *', '{"title": "t", "agent": "no-such-agent"}')$$);
SELECT expect_error($$SELECT agent_tasks.schedule_task('broken', '0 2 * * *', '{"labels": ["no title"]}')$$);
SELECT count(*) AS schedules FROM agent_tasks.schedules;
-- the job: its command names the account and the schedule, never the template
RESET ROLE;
SELECT public.mask(command) AS command, username = current_user AS owned_by_extension_owner
  FROM cron.job ORDER BY jobid;
-- a tick creates the task as the schedule's user, in its account, queued (auto_process)
SELECT pg_temp.tick('nightly');
SELECT pg_temp.tick('nightly');
SET ROLE regress_writer;
SELECT title, prompt, labels, origin, owner, created_by, status FROM agent_tasks.tasks WHERE origin = 'schedule';
SELECT name, fire_count, last_task_id = (SELECT id FROM agent_tasks.tasks WHERE origin = 'schedule' ORDER BY id DESC LIMIT 1) AS last_task,
	   last_status, last_run_at IS NOT NULL AS ran
  FROM agent_tasks.schedules;
-- scheduling the same name again replaces the schedule (one job)
SELECT name, cron, template FROM agent_tasks.schedule_task('nightly', '30 3 * * *', '{"title": "Nightly report v2"}');
RESET ROLE;
SELECT count(*) AS jobs, min(schedule) AS schedule FROM cron.job;
-- a rate limit set for the account applies to scheduled tasks too (the
-- default one is for REST requests only)
SET ROLE regress_app;
SELECT max_count FROM agent_tasks.set_rate_limit(1);
RESET ROLE;
SELECT pg_temp.tick('nightly');
SELECT regexp_replace(expect_error($$SELECT pg_temp.tick('nightly')$$), '\d+ seconds', 'N seconds', 'g') AS limited;
SET ROLE regress_app;
SELECT max_count FROM agent_tasks.set_rate_limit(NULL);
-- other accounts see nothing, and cannot fire or remove it
SET agent_tasks.account = 'sched-b';
SELECT count(*) AS other_accounts_schedules FROM agent_tasks.schedules;
SELECT expect_error($$SELECT agent_tasks.unschedule_task('nightly')$$);
SET agent_tasks.account = 'sched-a';
-- unscheduling removes the job; the tasks stay
SET ROLE regress_writer;
SELECT agent_tasks.unschedule_task('nightly');
SELECT count(*) AS schedules FROM agent_tasks.schedules;
SELECT count(*) AS scheduled_tasks FROM agent_tasks.tasks WHERE origin = 'schedule';
RESET ROLE;
SELECT count(*) AS jobs FROM cron.job;
-- a job that outlived its schedule fails clearly
SELECT expect_error($$SELECT agent_tasks_internal.fire_schedule('sched-a', '00000000-0000-7000-8000-000000000000')$$);

--
-- The maintenance job, installed on request only
--
SELECT agent_tasks.install_maintenance() > 0 AS installed;
SELECT agent_tasks.install_maintenance('0 4 * * *') > 0 AS rescheduled;
SELECT jobname, schedule, command FROM cron.job ORDER BY jobid;
SELECT expect_error($$SELECT agent_tasks.install_maintenance('every night')$$);
SELECT agent_tasks.uninstall_maintenance() AS removed, agent_tasks.uninstall_maintenance() AS again;
-- API roles may not touch it
SET ROLE regress_app;
SELECT error_code($$SELECT agent_tasks.install_maintenance()$$) AS admin_installs,
	   error_code($$SELECT agent_tasks.run_maintenance()$$) AS admin_runs;
RESET ROLE;
DROP SCHEMA cron CASCADE;

--
-- run_maintenance(): retention of archived tasks, presence, rate windows
--
SET ROLE regress_writer;
SELECT (agent_tasks.create_task('Old and archived')).id AS old \gset
SELECT (agent_tasks.create_task('Recently archived')).id AS recent \gset
SELECT (agent_tasks.create_task('Old, not archived')).id AS kept \gset
SELECT (agent_tasks.archive_task(:'old')).archived, (agent_tasks.archive_task(:'recent')).archived;
SELECT count(*) AS watchers FROM agent_tasks.touch_presence(:'kept', 'phone');
RESET ROLE;
UPDATE agent_tasks_internal.tasks SET archived_at = now() - interval '31 days' WHERE id = :'old';
UPDATE agent_tasks_internal.presence SET expires_at = now() - interval '1 second' WHERE task_id = :'kept';
UPDATE agent_tasks_internal.rate_counters SET window_end = now() - interval '1 second' WHERE account = 'sched-a';
SHOW agent_tasks.retention_archived;
SELECT r -> 'archived_tasks_deleted' AS archived_tasks_deleted, r -> 'presence_expired' AS presence_expired,
	   (r ->> 'rate_counters_deleted')::integer >= 1 AS rate_windows_deleted, r -> 'reindexed' AS reindexed
  FROM agent_tasks.run_maintenance() r;
SELECT id = :'old' AS is_old, title FROM agent_tasks_internal.tasks WHERE id IN (:'old', :'recent', :'kept') ORDER BY id;
-- a negative retention keeps archived tasks forever
SET agent_tasks.retention_archived = -1;
UPDATE agent_tasks_internal.tasks SET archived_at = now() - interval '400 days' WHERE id = :'recent';
SELECT agent_tasks.run_maintenance() ? 'archived_tasks_deleted' AS purged_archived;
RESET agent_tasks.retention_archived;
SELECT agent_tasks.run_maintenance() ->> 'archived_tasks_deleted' AS deleted_now;
