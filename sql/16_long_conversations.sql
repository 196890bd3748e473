--
-- 16_long_conversations: a run gets the latest part of its task's
-- conversation (50 messages, at most 1 MB of bodies, the latest always),
-- so that a task with thousands of large messages is still claimed and
-- executed; the whole conversation stays readable.
--
\set SHOW_CONTEXT never
RESET ROLE;
SET agent_tasks.account = 'talk';
SET agent_tasks.email = 'tess@example.com';
SELECT name FROM agent_tasks.create_agent('talker', 'external');
SELECT id AS task FROM agent_tasks.create_task('Long talk', agent => 'talker') \gset

-- 3,000 messages of 100 kB (300 MB of text, more than one jsonb value can
-- hold), loaded in bulk with the triggers off.
CREATE FUNCTION pg_temp.talk(task uuid) RETURNS void
	LANGUAGE plpgsql
AS $$
BEGIN
	SET LOCAL session_replication_role = replica;
	INSERT INTO agent_tasks_internal.messages (account, task_id, role, author, body)
	SELECT 'talk', task, 'user', 'tess@example.com', lpad(i::text, 100000, 'x')
	  FROM generate_series(1, 3000) AS i;
END
$$;
SELECT pg_temp.talk(:'task');

SET ROLE regress_app;
SELECT status FROM agent_tasks.process_task(:'task');
SELECT jsonb_array_length(messages) AS messages_given,
	   right(messages -> -1 ->> 'body', 4) AS latest,
	   right(messages -> 0 ->> 'body', 4) AS earliest_given,
	   (SELECT sum(octet_length(m ->> 'body')) FROM jsonb_array_elements(messages) m) <= 1048576 AS within_1mb
  FROM agent_tasks.claim_runs('talk-w', '{talker}', 1);
SELECT count(*) AS whole_conversation FROM agent_tasks.messages WHERE task_id = :'task';
RESET ROLE;
SELECT length(agent_tasks_internal.task_messages('talk', :'task')::text) < 2000000 AS http_request_bounded;
DELETE FROM agent_tasks_internal.messages WHERE account = 'talk';
