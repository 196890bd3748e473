--
-- 21_notify: every transaction that changes a task sends one compact
-- NOTIFY per task at commit (never for a rollback), on its account's own
-- channel, a random name that notify_channel() gives the account's members.  psql would print the notifying
-- backend's pid, so a second session (dblink) listens and the payloads are
-- read from it; ids are compared, not printed.
--
\set SHOW_CONTEXT never
RESET ROLE;
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('listener', format('host=%s port=%s dbname=%s user=%s',
	coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''), '127.0.0.1'),
	current_setting('port'), current_database(), current_user));

-- Everything the listener received up to the sentinel (which this session
-- sends after the changes, so that all of them arrive before it).
CREATE FUNCTION pg_temp.received() RETURNS TABLE (n integer, payload jsonb)
	LANGUAGE plpgsql
AS $$
DECLARE
	got text[] := '{}';
	r record;
	deadline timestamptz := clock_timestamp() + interval '30 seconds';
BEGIN
	LOOP
		FOR r IN SELECT * FROM dblink_get_notify('listener') LOOP
			got := got || r.extra;
		END LOOP;
		EXIT WHEN 'sentinel' = ANY (got) OR clock_timestamp() > deadline;
		PERFORM pg_sleep(0.01);
	END LOOP;
	IF NOT 'sentinel' = ANY (got) THEN
		RAISE EXCEPTION 'the listener received no sentinel within 30 seconds';
	END IF;
	RETURN QUERY SELECT o::integer, p::jsonb FROM unnest(got) WITH ORDINALITY AS u(p, o) WHERE p <> 'sentinel';
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.received() TO PUBLIC;

SET ROLE regress_reader;
SET agent_tasks.account = 'news';
SELECT agent_tasks.notify_channel() AS channel \gset
SELECT :'channel' ~ '^agent_tasks_[0-9a-f]{32}$' AS random_name, agent_tasks.notify_channel() = :'channel' AS stable;
-- another account has another channel; a role outside the API gets none
SET agent_tasks.account = 'other-news';
SELECT agent_tasks.notify_channel() <> :'channel' AS own_channel;
SET ROLE regress_nobody;
SELECT expect_error('SELECT agent_tasks.notify_channel()');
RESET ROLE;
SELECT dblink_exec('listener', format('LISTEN %I', :'channel'));
-- the channel of 0.1.0, shared by every account, says nothing any more
SELECT dblink_exec('listener', 'LISTEN agent_tasks');
SET ROLE regress_app;
SET agent_tasks.account = 'news';
SET agent_tasks.email = 'nia@example.com';
SELECT (agent_tasks.create_task('Noisy')).id AS t \gset
SELECT (agent_tasks.create_task('Other')).id AS o \gset
-- a rolled back change sends nothing
BEGIN;
SELECT (agent_tasks.process_task(:'o')).status;
ROLLBACK;
-- changes of one transaction arrive at commit, one per task: the event of
-- its first change and the status it ends with
BEGIN;
SELECT (agent_tasks.process_task(:'t')).status;
SELECT (agent_tasks.set_task_status(:'t', 'in_progress')).status;
COMMIT;
-- a change in a rolled-back savepoint sends nothing (the event is not
-- "feedback"); one in a released savepoint is sent with its transaction
BEGIN;
SAVEPOINT a;
SELECT (agent_tasks.send_feedback(:'o', 'like')).feedback;
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
SELECT (agent_tasks.update_task(:'o', '{"priority": 4}')).priority;
RELEASE SAVEPOINT b;
COMMIT;
SELECT (agent_tasks.update_task(:'t', '{"priority": 9}')).priority;
SELECT (agent_tasks.set_assignees(:'t', ARRAY['ned@example.com'])).assignees;
SELECT (agent_tasks.send_message(:'t', 'ping')).role;
SELECT (agent_tasks.send_feedback(:'t', 'like')).feedback;
SELECT (agent_tasks.archive_task(:'t')).archived;
SELECT (agent_tasks.set_task_status(:'t', 'completed')).status;
SELECT agent_tasks.delete_task(:'o');
-- the other account's changes are not on this channel
SET agent_tasks.account = 'other-news';
SELECT status FROM agent_tasks.create_task('Elsewhere', auto_process => true);
SET agent_tasks.account = 'news';
SELECT pg_notify(:'channel', 'sentinel');

RESET ROLE;
SELECT n, CASE payload ->> 'id' WHEN :'t' THEN 'Noisy' WHEN :'o' THEN 'Other' ELSE payload ->> 'id' END AS task,
	   payload ->> 'account' AS account, payload ->> 'status' AS status, payload ->> 'event' AS event,
	   (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(payload) k) AS keys,
	   octet_length(payload::text) < 200 AS compact
  FROM pg_temp.received() ORDER BY n;

-- nothing after the sentinel; the listener is closed
SELECT count(*) AS late FROM dblink_get_notify('listener');
SELECT dblink_disconnect('listener');
DROP EXTENSION dblink;
