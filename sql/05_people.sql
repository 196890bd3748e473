--
-- 05_people: assignees (a set), followers, messages, feedback.
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'people';
SET agent_tasks.email = 'pat@example.com';

SELECT (agent_tasks.create_task('People')).id AS t \gset

-- set_assignees makes the assignees exactly the given set
SELECT assignees FROM agent_tasks.set_assignees(:'t', ARRAY['bob@example.com', ' Carol@Example.com ']);
SELECT assignees FROM agent_tasks.set_assignees(:'t', ARRAY['carol@example.com', 'dan@example.com', 'DAN@example.com']);
SELECT assignees FROM agent_tasks.set_assignees(:'t', ARRAY['carol@example.com', 'dan@example.com']);	-- no change
SELECT assignees FROM agent_tasks.set_assignees(:'t', '{}');
SELECT assignees FROM agent_tasks.set_assignees(:'t', NULL);
SELECT assignees FROM agent_tasks.set_assignees(:'t', ARRAY['pat@example.com']);
-- every addition and removal is an activity
SELECT event, data FROM agent_tasks.activities WHERE task_id = :'t' AND event LIKE 'assignee%' ORDER BY id;
-- people are provisioned once per account
SELECT email FROM agent_tasks.users ORDER BY email;
-- refusals: bad email, too many, unknown task; nothing changes
SELECT expect_error(format($$SELECT agent_tasks.set_assignees(%L, ARRAY['ok@example.com', 'not an email'])$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_assignees(%L, ARRAY['ok@example.com', NULL])$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_assignees(%L, ARRAY['@example.com'])$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_assignees(%L, ARRAY['a@example'])$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_assignees(%L, ARRAY[repeat('a', 320) || '@example.com'])$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.set_assignees(%L, ARRAY(SELECT 'u' || i || '@example.com' FROM generate_series(1, 101) i))$$, :'t'));
SELECT expect_error($$SELECT agent_tasks.set_assignees('00000000-0000-7000-8000-000000000000', ARRAY['a@example.com'])$$);
SELECT expect_error($$SELECT agent_tasks.set_assignees('nope', ARRAY['a@example.com'])$$);
SELECT assignees FROM agent_tasks.get_task(:'t');
SELECT count(*) AS not_provisioned FROM agent_tasks.users WHERE email = 'ok@example.com';
-- 100 is the limit
SELECT (agent_tasks.create_task('Crowded')).id AS crowded \gset
SELECT cardinality(assignees) FROM agent_tasks.set_assignees(:'crowded', ARRAY(SELECT 'u' || i || '@example.com' FROM generate_series(1, 100) i));
SELECT cardinality(assignees) FROM agent_tasks.set_assignees(:'crowded', ARRAY['u1@example.com']);
SELECT event, count(*) FROM agent_tasks.activities WHERE task_id = :'crowded' GROUP BY 1 ORDER BY 1;

-- followers: add (already following is fine), remove (not following is ignored)
SELECT followers FROM agent_tasks.add_followers(:'t', ARRAY['erin@example.com', 'Frank@example.com']);
SELECT followers FROM agent_tasks.add_followers(:'t', ARRAY['erin@example.com']);
SELECT followers FROM agent_tasks.remove_followers(:'t', ARRAY[' ERIN@example.com', 'nobody@example.com']);
SELECT followers FROM agent_tasks.remove_followers(:'t', NULL);
SELECT followers FROM agent_tasks.add_followers(:'t', NULL);
SELECT event, data FROM agent_tasks.activities WHERE task_id = :'t' AND event LIKE 'follower%' ORDER BY id;
SELECT expect_error(format($$SELECT agent_tasks.add_followers(%L, ARRAY['bad'])$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.add_followers(%L, ARRAY(SELECT 'f' || i || '@example.com' FROM generate_series(1, 101) i))$$, :'t'));
SELECT expect_error($$SELECT agent_tasks.add_followers('00000000-0000-7000-8000-000000000000', ARRAY['a@example.com'])$$);
SELECT expect_error($$SELECT agent_tasks.remove_followers('00000000-0000-7000-8000-000000000000', ARRAY['a@example.com'])$$);

-- "mine": owner or assignee
SELECT mine FROM agent_tasks.get_task(:'t');
SET agent_tasks.email = 'frank@example.com';		-- only a follower
SELECT mine FROM agent_tasks.get_task(:'t');
SET agent_tasks.email = 'pat@example.com';

-- messages: role user (anyone), agent / system (agent_tasks_worker)
SELECT role, author, body, data, run_id FROM agent_tasks.send_message(:'t', 'Hello');
SELECT role, author, body, data FROM agent_tasks.send_message(:'t', 'Hi, I am the agent', 'agent', '{"tokens": 12}');
SELECT role, author, body FROM agent_tasks.send_message(:'t', 'System notice', 'system');
SELECT role, body FROM agent_tasks.send_message(:'t', 'With null data', 'user', NULL);
SELECT count(*) AS messages FROM agent_tasks.messages WHERE task_id = :'t';
-- refusals: bad enum value, empty body, oversize body, data not an object
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, 'x', 'robot')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, 'x', NULL)$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, '')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, E' \n ')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, NULL)$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, repeat('m', 100001))$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, 'x', 'user', '[1]')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, 'x', 'user', jsonb_build_object('big', repeat('x', 70000)))$$, :'t'));
SELECT expect_error($$SELECT agent_tasks.send_message('00000000-0000-7000-8000-000000000000', 'x')$$);
SELECT expect_error($$SELECT agent_tasks.send_message('', 'x')$$);
SELECT length((agent_tasks.send_message(:'t', repeat('m ', 50000))).body) AS body_100000_is_fine;
SELECT count(*) AS messages FROM agent_tasks.messages WHERE task_id = :'t';

-- feedback: like, dislike, null clears; anything else is refused
SELECT feedback FROM agent_tasks.send_feedback(:'t', 'like');
SELECT feedback FROM agent_tasks.send_feedback(:'t', 'like');		-- unchanged: no activity
SELECT feedback FROM agent_tasks.send_feedback(:'t', 'dislike');
SELECT feedback FROM agent_tasks.send_feedback(:'t', NULL);
SELECT expect_error(format($$SELECT agent_tasks.send_feedback(%L, 'love')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_feedback(%L, 'LIKE')$$, :'t'));
SELECT expect_error($$SELECT agent_tasks.send_feedback('00000000-0000-7000-8000-000000000000', 'like')$$);
SELECT event, data FROM agent_tasks.activities WHERE task_id = :'t' AND event = 'feedback' ORDER BY id;

-- writers may do all of this too (user messages only)
SET ROLE regress_writer;
SELECT assignees FROM agent_tasks.set_assignees(:'t', ARRAY['pat@example.com', 'gina@example.com']);
SELECT followers FROM agent_tasks.add_followers(:'t', ARRAY['gina@example.com']);
SELECT followers FROM agent_tasks.remove_followers(:'t', ARRAY['gina@example.com']);
SELECT role FROM agent_tasks.send_message(:'t', 'from a writer');
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, 'x', 'system')$$, :'t'));
SELECT feedback FROM agent_tasks.send_feedback(:'t', 'like');
-- readers may not
SET ROLE regress_reader;
SELECT expect_error(format($$SELECT agent_tasks.set_assignees(%L, '{}')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.add_followers(%L, '{}')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.remove_followers(%L, '{}')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_message(%L, 'x')$$, :'t'));
SELECT expect_error(format($$SELECT agent_tasks.send_feedback(%L, 'like')$$, :'t'));
SELECT expect_error($$INSERT INTO agent_tasks_internal.users (account, email) VALUES ('people', 'r@example.com')$$);
SET ROLE regress_app;
SELECT * FROM trail(:'t');
RESET ROLE;
