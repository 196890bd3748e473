--
-- 33_console: the web console's functions (issue 12): console() serves the
-- files compiled into the library with their security headers, the
-- anonymous role reaches it and nothing else, whoami(), count_tasks(), the
-- queue_throughput series, and live progress (NOTIFY with event progress
-- and the task.progress webhook event).  Ids and times are never printed.
--
\set SHOW_CONTEXT never
RESET ROLE;

--
-- The files and their headers
--
SET ROLE regress_reader;
SELECT convert_from(agent_tasks.console(), 'UTF8') ~ '^<!doctype html>' AS page_is_html,
	   current_setting('response.headers')::jsonb AS page_headers;
SELECT length(agent_tasks.console('console.js')) > 1000 AS script_served,
	   current_setting('response.headers')::jsonb -> 0 AS script_type;
SELECT current_setting('response.headers')::jsonb -> 0 AS style_type
  FROM agent_tasks.console('console.css');
-- no HTML sink in the script: database strings are only ever text
SELECT convert_from(agent_tasks.console('console.js'), 'UTF8') !~ '(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\()' AS no_html_sinks;
SELECT expect_error($$SELECT agent_tasks.console('../postgresql.conf')$$);
SELECT expect_error($$SELECT agent_tasks.console(NULL)$$) AS null_is_the_page;

--
-- The anonymous role: the console's files only, over GET and HEAD
--
RESET ROLE;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_console_anon') THEN
		CREATE ROLE regress_console_anon NOLOGIN;
	END IF;
END
$$;
SELECT agent_tasks.grant_api('regress_console_anon', 'anon');
SET ROLE regress_console_anon;
CREATE FUNCTION pg_temp.anonymous(method text, path text) RETURNS text
	LANGUAGE plpgsql
AS $$
BEGIN
	PERFORM set_config('request.method', method, true);
	PERFORM set_config('request.path', path, true);
	PERFORM set_config('request.headers', '{}', true);
	PERFORM agent_tasks.authenticate();
	RETURN 'let through';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT m, p, pg_temp.anonymous(m, p)
  FROM (VALUES ('GET', '/rpc/console'), ('HEAD', '/rpc/console'), ('POST', '/rpc/console'),
			   ('GET', '/rpc/console_x'), ('GET', '/tasks'), ('GET', '/rpc/whoami'), ('GET', '/')) v(m, p);
SELECT length(agent_tasks.console()) > 100 AS anon_gets_the_page;
SELECT error_code($$SELECT agent_tasks.whoami()$$) AS anon_whoami,
	   error_code($$SELECT count(*) FROM agent_tasks.tasks$$) AS anon_tasks;
RESET ROLE;
DROP OWNED BY regress_console_anon;
DROP ROLE regress_console_anon;

--
-- whoami
--
SET agent_tasks.account = 'console-a';
SET agent_tasks.email = 'cora@example.com';
SET ROLE regress_reader;
SELECT agent_tasks.whoami();
SET ROLE regress_app;
SELECT agent_tasks.whoami() -> 'scopes' AS admin_scopes;
SELECT set_config('request.jwt.claims', '{"account": "console-a", "key_name": "ci"}', true) IS NOT NULL AS claims,
	   agent_tasks.whoami() ->> 'key_name' AS key_name;
RESET agent_tasks.account;
SELECT expect_error($$SELECT agent_tasks.whoami()$$);
SET agent_tasks.account = 'console-a';

--
-- count_tasks: list_tasks's filters, per status
--
SELECT count(*) FROM (
	SELECT agent_tasks.create_task('Console one', labels => '{x}'),
		   agent_tasks.create_task('Console two about pages', assignees => '{dan@example.com}'),
		   agent_tasks.create_task('Console three', auto_process => true)) s;
SELECT (agent_tasks.archive_task((agent_tasks.create_task('Console archived')).id)).archived;
SELECT agent_tasks.count_tasks();
SELECT agent_tasks.count_tasks(archived => 'all') -> 'pending' AS all_pending,
	   agent_tasks.count_tasks(assignee => 'dan@example.com') -> 'pending' AS assigned,
	   agent_tasks.count_tasks(search => 'pages') -> 'pending' AS searched,
	   (agent_tasks.list_tasks(status => 'queued') ->> 'count')::int = (agent_tasks.count_tasks() ->> 'queued')::int AS agrees;
SELECT expect_error($$SELECT agent_tasks.count_tasks(archived => 'maybe')$$);

--
-- queue_throughput and live progress
--
SELECT name FROM agent_tasks.create_agent('console-ext', 'external');
SELECT agent_tasks.create_webhook('https://hooks.example.com/console', '{task.progress}') ->> 'events' AS subscribed;
SELECT (agent_tasks.create_task('Console progress', agent => 'console-ext', auto_process => true)).status;
SELECT run_id AS run FROM agent_tasks.claim_runs('console-worker', '{console-ext}') \gset

-- a second session listens on the account's channel, as in 21_notify
SELECT agent_tasks.notify_channel() AS channel \gset
RESET ROLE;
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('listener', format('host=%s port=%s dbname=%s user=%s',
	coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), '127.0.0.1'),
	current_setting('port'), current_database(), current_user)) AS connected;
SELECT dblink_exec('listener', format('LISTEN %I', :'channel'));
-- What the listener received up to the sentinel, which this session sends
-- after the reports, so that all of them arrive before it.
CREATE FUNCTION pg_temp.received() RETURNS SETOF jsonb
	LANGUAGE plpgsql
AS $$
DECLARE
	got text[] := '{}';
	r record;
	deadline timestamptz := clock_timestamp() + interval '30 seconds';
BEGIN
	WHILE NOT 'sentinel' = ANY (got) AND clock_timestamp() < deadline LOOP
		FOR r IN SELECT * FROM dblink_get_notify('listener') LOOP
			got := got || r.extra;
		END LOOP;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN QUERY SELECT p::jsonb FROM unnest(got) p WHERE p <> 'sentinel';
END
$$;
SET ROLE regress_app;
SELECT phase, progress FROM agent_tasks.report_progress(:'run', 'build', 'compiling', '{"percent": 40}', 'console-worker');
-- the same report again changes nothing and announces nothing
SELECT phase FROM agent_tasks.report_progress(:'run', 'build', 'compiling', '{"percent": 40}', 'console-worker');
SELECT phase FROM agent_tasks.report_progress(:'run', 'deploy', repeat('x', 500), NULL, 'console-worker');
SELECT agent_tasks.heartbeat_run(:'run', 'console-worker') IS NOT NULL AS heartbeat_is_no_progress;
SELECT pg_notify(:'channel', 'sentinel') AS sentinel;
RESET ROLE;
SELECT p - 'id' - 'run' - 'progress' AS payload, length(p ->> 'progress') AS progress_length,
	   p ->> 'id' = (SELECT task_id::text FROM agent_tasks.runs WHERE id = :'run') AS task_id,
	   p ->> 'run' = :'run' AS run_id
  FROM pg_temp.received() p;
SELECT dblink_disconnect('listener');
DROP EXTENSION dblink;
SET ROLE regress_app;
SELECT event, payload -> 'type' AS type, payload -> 'data' -> 'phase' AS phase, payload -> 'data' -> 'percent' AS percent,
	   payload -> 'data' -> 'status' AS status, payload -> 'data' ->> 'run_id' = :'run' AS run_id
  FROM agent_tasks.webhook_deliveries WHERE event = 'task.progress' ORDER BY id;
-- task.progress is one of the events an endpoint may subscribe to
SELECT expect_error($$SELECT agent_tasks.create_webhook('https://hooks.example.com/c2', '{task.progressing}')$$);

SELECT (agent_tasks.complete_run(:'run', '{"done": true}', worker => 'console-worker')).status;
SELECT count(*) FILTER (WHERE agent = 'console-ext') AS minutes, sum(completed) AS completed, sum(failed) AS failed,
	   count(DISTINCT minute) AS distinct_minutes, max(minute) = date_trunc('minute', now()) AS ends_now
  FROM agent_tasks.queue_throughput WHERE agent = 'console-ext';
-- another account sees none of it
SET agent_tasks.account = 'console-b';
SELECT count(*) AS other_account FROM agent_tasks.queue_throughput;
SELECT agent_tasks.count_tasks() -> 'pending' AS other_account_pending;
RESET ROLE;
RESET agent_tasks.account;
RESET agent_tasks.email;
