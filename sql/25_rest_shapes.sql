--
-- 25_rest_shapes: the shapes of issue 11 on the SQL side -- a title made
-- from the prompt, description for prompt, Flint's items, a follow-up that
-- starts a run, the views' verbs (INSTEAD OF triggers), names without
-- quoting and create_webhook's default events.
--
\set SHOW_CONTEXT never
SET ROLE regress_writer;
SET agent_tasks.account = 'shapes';
SET agent_tasks.email = 'sam@example.com';

-- Without a title: the first line of the prompt (or the command), at most
-- 80 characters cut at a word, and title_derived says so.
SELECT title, title_derived, prompt FROM agent_tasks.create_task(prompt => E'  Add a new About page\nwith a team section');
SELECT title, length(title) AS len, title_derived
  FROM agent_tasks.create_task(prompt => repeat('word ', 30));
-- characters, not bytes; a line without a space is cut where it reaches 79
SELECT title, length(title) AS len, octet_length(title) AS bytes
  FROM agent_tasks.create_task(prompt => E'\t' || repeat('été ', 25) || E'\r\nsecond line');
SELECT length(title) AS len, right(title, 3) AS ends_with FROM agent_tasks.create_task(prompt => repeat('x', 90));
SELECT title, title_derived FROM agent_tasks.create_task(command => 'generate_pages', items => '["one"]');
SELECT title, title_derived FROM agent_tasks.create_task('Given', 'a prompt');
SELECT expect_error($$SELECT agent_tasks.create_task()$$);
SELECT expect_error($$SELECT agent_tasks.create_task(prompt => '   ')$$);
SELECT expect_error($$SELECT agent_tasks.create_task(title => '')$$);
-- description is the prompt under PostHog's and AGNT's name
SELECT title, prompt FROM agent_tasks.create_task('Draft OKRs', description => 'From the strategy memo');
SELECT prompt FROM agent_tasks.create_task('Same', prompt => 'p', description => 'p');
SELECT expect_error($$SELECT agent_tasks.create_task('Both', prompt => 'p', description => 'q')$$);
-- a title set later is no longer derived; description patches the prompt
SELECT (agent_tasks.create_task(prompt => 'Fix the footer')).id AS derived \gset
SELECT title, title_derived, prompt FROM agent_tasks.update_task(:'derived', '{"description": "Fix the footer links"}');
SELECT title, title_derived FROM agent_tasks.update_task(:'derived', '{"title": "Footer links"}');
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"prompt": "a", "description": "b"}')$$, :'derived'));

-- PostgREST calls create_task(jsonb) with a body that matches no argument list:
-- PT400 naming the unknown keys, and the argument a camelCase key means
SELECT expect_error($$SELECT agent_tasks.create_task('{"prompt": "p", "callbackUrl": "https://a.example", "siteId": "s"}'::jsonb)$$);
-- (from SQL it is create_task with its arguments in one object)
SELECT title, labels, priority, title_derived FROM agent_tasks.create_task('{"title": "From JSON", "labels": ["a"]}'::jsonb);
SELECT title, priority, title_derived FROM agent_tasks.create_task('{"prompt": "Prompt in JSON", "priority": 3}'::jsonb);
SELECT expect_error($$SELECT agent_tasks.create_task('{"title": "t", "priority": null}'::jsonb)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('[1]'::jsonb)$$);

-- Flint's command-mode items: a string context, externalId
SELECT (agent_tasks.create_task(command => 'generate_pages', context => '{"site": "s1"}', items => '[
	{"targetPageSlug": "/case-studies/acme", "context": "Acme grew 40%", "externalId": "cs-001"},
	{"targetPageSlug": "/case-studies/globex", "context": {"text": "Globex"}, "external_id": "cs-002"},
	{"targetPageSlug": "/case-studies/initech", "title": "Initech case study", "context": "Initech"}]')).id AS flint \gset
SELECT title, title_derived, context, external_id, item ->> 'targetPageSlug' AS slug
  FROM agent_tasks.tasks WHERE parent_id = :'flint' ORDER BY id;
SELECT expect_error($$SELECT agent_tasks.create_task(command => 'c', items => '[{"external_id": "a", "externalId": "b"}]')$$);
SELECT expect_error($$SELECT agent_tasks.create_task(command => 'c', items => '[{"external_id": null, "externalId": "b"}]')$$);
-- the same id under both names is one id; an item's numbers and objects are text as ->> gives them
SELECT (agent_tasks.create_task(command => 'c', prompt => 'Parent prompt',
	items => '[{"external_id": "same", "externalId": "same", "title": 42, "prompt": {"a": 1}}, "  Spaced  "]')).id AS items_parent \gset
SELECT title, external_id, prompt, title_derived FROM agent_tasks.tasks WHERE parent_id = :'items_parent' ORDER BY id;
SELECT agent_tasks.delete_task(:'items_parent');
SELECT expect_error($$SELECT agent_tasks.create_task(command => 'c', items => '[{"context": 3}]')$$);

-- A follow-up message on a completed or failed task starts a run with it;
-- on other statuses it joins the conversation only.
RESET ROLE;
SELECT (agent_tasks.create_task('Follow me', auto_process => true)).id AS f \gset
SELECT status FROM agent_tasks.set_task_status(:'f', 'in_progress');
SELECT status FROM agent_tasks.set_task_status(:'f', 'completed', output => '{"pr": 1}');
SET ROLE regress_writer;
SELECT role, body FROM agent_tasks.send_message(:'f', 'Also update the changelog');
SELECT status, status_reason, output FROM agent_tasks.get_task(:'f');
SELECT attempt, status, status_reason, input FROM agent_tasks.runs WHERE task_id = :'f' ORDER BY id;
SELECT event, from_status, to_status FROM agent_tasks.activities WHERE task_id = :'f' ORDER BY id;
-- failed: the same
RESET ROLE;
SELECT status FROM agent_tasks.set_task_status(:'f', 'failed', error => '{"message": "broke"}');
SET ROLE regress_writer;
SELECT body FROM agent_tasks.send_message(:'f', 'Try again with tests');
SELECT status, (SELECT count(*) FROM agent_tasks.runs r WHERE r.task_id = :'f') AS runs FROM agent_tasks.get_task(:'f');
-- process_task with a message on a finished task starts one run, not two
RESET ROLE;
SELECT status FROM agent_tasks.set_task_status(:'f', 'in_progress');
SELECT status FROM agent_tasks.set_task_status(:'f', 'completed');
SET ROLE regress_writer;
SELECT status FROM agent_tasks.process_task(:'f', 'One more', '[{"url": "https://files.example/a.png"}]');
SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'queued') AS queued,
	   (array_agg(input ORDER BY id DESC))[1] -> 'message' AS last_message
  FROM agent_tasks.runs WHERE task_id = :'f';
-- cancelled, pending, queued: no new run
SELECT status FROM agent_tasks.cancel_task(:'f');
SELECT body FROM agent_tasks.send_message(:'f', 'Never mind');
SELECT status, (SELECT count(*) FROM agent_tasks.runs r WHERE r.task_id = :'f') AS runs FROM agent_tasks.get_task(:'f');
SELECT (agent_tasks.create_task('Not started')).id AS p \gset
SELECT body FROM agent_tasks.send_message(:'p', 'Some context first');
SELECT status, (SELECT count(*) FROM agent_tasks.runs r WHERE r.task_id = :'p') AS runs FROM agent_tasks.get_task(:'p');

-- The views' verbs: INSERT, UPDATE, DELETE on agent_tasks.tasks go through
-- create_task, update_task and friends, delete_task.
INSERT INTO agent_tasks.tasks (title, prompt, labels, assignees, priority)
VALUES ('Made by INSERT', 'through the view', '{rest}', '{ann@example.com}', 3)
RETURNING title, prompt, labels, assignees, priority, status, owner, title_derived, origin \gset ins_
SELECT :'ins_title' AS title, :'ins_status' AS status, :'ins_owner' AS owner, :'ins_assignees' AS assignees, :'ins_title_derived' AS derived;
INSERT INTO agent_tasks.tasks (prompt) VALUES ('Only a prompt') RETURNING title, title_derived, priority, context;
SELECT expect_error($$INSERT INTO agent_tasks.tasks (title, status) VALUES ('x', 'completed')$$);
SELECT expect_error($$INSERT INTO agent_tasks.tasks (title, id, created_at) VALUES ('x', agent_tasks.uuid_v7(), now())$$);
SELECT expect_error($$INSERT INTO agent_tasks.tasks (title, priority) VALUES ('x', 5000)$$);
SELECT id AS v FROM agent_tasks.tasks WHERE title = 'Made by INSERT' \gset
UPDATE agent_tasks.tasks SET priority = 7, labels = '{rest,patched}', prompt = 'changed', metadata = '{"k": 1}'
 WHERE id = :'v' RETURNING priority, labels, prompt, metadata;
UPDATE agent_tasks.tasks SET archived = true, feedback = 'like', followers = '{fay@example.com}',
	   assignees = '{bo@example.com,ann@example.com}'
 WHERE id = :'v' RETURNING archived, feedback, followers, assignees;
UPDATE agent_tasks.tasks SET archived = false, followers = '{}' WHERE id = :'v' RETURNING archived, followers;
SELECT event FROM agent_tasks.activities WHERE task_id = :'v' ORDER BY id;
-- unchanged values are no change; immutable columns are refused by name
UPDATE agent_tasks.tasks SET id = id, title = title WHERE id = :'v';
SELECT expect_error(format($$UPDATE agent_tasks.tasks SET created_at = '2020-01-01 00:00:00+00' WHERE id = %L$$, :'v'));
SELECT expect_error(format($$UPDATE agent_tasks.tasks SET repository = 'x/y' WHERE id = %L$$, :'v'));
SELECT expect_error(format($$UPDATE agent_tasks.tasks SET priority = 1, output = '{}' WHERE id = %L$$, :'v'));
SELECT priority FROM agent_tasks.tasks WHERE id = :'v';
-- status goes to set_task_status, which is for workers
SELECT expect_error(format($$UPDATE agent_tasks.tasks SET status = 'completed' WHERE id = %L$$, :'v'));
-- DELETE: a parent with its children in one statement
SELECT count(*) AS flint_tasks FROM agent_tasks.tasks WHERE id = :'flint' OR parent_id = :'flint';
DELETE FROM agent_tasks.tasks WHERE id = :'flint' OR parent_id = :'flint';
SELECT count(*) AS flint_tasks FROM agent_tasks.tasks WHERE id = :'flint' OR parent_id = :'flint';
DELETE FROM agent_tasks.tasks WHERE id = :'derived' RETURNING title;

-- messages, assignees, followers
INSERT INTO agent_tasks.messages (task_id, body) VALUES (:'v', 'Posted to /messages') RETURNING role, author, body;
SELECT expect_error(format($$INSERT INTO agent_tasks.messages (task_id, body, author) VALUES (%L, 'x', 'mallory')$$, :'v'));
SELECT expect_error(format($$INSERT INTO agent_tasks.messages (task_id, body, role) VALUES (%L, 'x', 'agent')$$, :'v'));
INSERT INTO agent_tasks.task_assignees (task_id, email) VALUES (:'v', 'Cy@Example.com') RETURNING email;
SELECT email FROM agent_tasks.task_assignees WHERE task_id = :'v' ORDER BY email;
DELETE FROM agent_tasks.task_assignees WHERE task_id = :'v' AND email = 'ann@example.com';
SELECT assignees FROM agent_tasks.get_task(:'v');
INSERT INTO agent_tasks.task_followers (task_id, email) VALUES (:'v', 'dee@example.com');
SELECT email FROM agent_tasks.task_followers WHERE task_id = :'v';
DELETE FROM agent_tasks.task_followers WHERE task_id = :'v';
SELECT followers FROM agent_tasks.get_task(:'v');
SELECT expect_error($$INSERT INTO agent_tasks.task_assignees (task_id, email) VALUES ('00000000-0000-7000-8000-000000000000', 'a@example.com')$$);
-- messages are never changed
SELECT expect_error(format($$UPDATE agent_tasks.messages SET body = 'rewritten' WHERE task_id = %L$$, :'v'));

-- readers may not use the verbs; another account sees nothing to change
SET ROLE regress_reader;
SELECT expect_error($$INSERT INTO agent_tasks.tasks (title) VALUES ('reader')$$);
SELECT expect_error(format($$DELETE FROM agent_tasks.tasks WHERE id = %L$$, :'v'));
SET ROLE regress_writer;
SET agent_tasks.account = 'shapes-other';
UPDATE agent_tasks.tasks SET priority = 9 WHERE id = :'v';
DELETE FROM agent_tasks.tasks WHERE id = :'v';
SET agent_tasks.account = 'shapes';
SELECT priority FROM agent_tasks.tasks WHERE id = :'v';

-- webhooks: events default to all; PATCH and DELETE on the view (admins)
SET ROLE regress_app;
SELECT (agent_tasks.create_webhook('https://hooks.example.com/all')) ->> 'events' AS events;
SELECT id AS w FROM agent_tasks.webhook_endpoints WHERE url = 'https://hooks.example.com/all' \gset
UPDATE agent_tasks.webhook_endpoints SET events = '{task.completed,task.failed}', description = 'CI', timeout = '5 seconds'
 WHERE id = :'w' RETURNING events, description, timeout, enabled;
UPDATE agent_tasks.webhook_endpoints SET enabled = false WHERE id = :'w' RETURNING enabled, disabled_reason;
UPDATE agent_tasks.webhook_endpoints SET enabled = true WHERE id = :'w' RETURNING enabled;
SELECT expect_error(format($$UPDATE agent_tasks.webhook_endpoints SET created_by = 'x' WHERE id = %L$$, :'w'));
SELECT expect_error(format($$UPDATE agent_tasks.webhook_endpoints SET url = 'http://10.0.0.1/' WHERE id = %L$$, :'w'));
SET ROLE regress_writer;
SELECT expect_error(format($$DELETE FROM agent_tasks.webhook_endpoints WHERE id = %L$$, :'w'));
SET ROLE regress_app;
DELETE FROM agent_tasks.webhook_endpoints WHERE id = :'w';
SELECT count(*) AS endpoints FROM agent_tasks.webhook_endpoints WHERE id = :'w';

-- Names without quoting: no parameter of an API function is an SQL keyword
-- that needs quotes or a word PostgREST reserves in a query string,
RESET ROLE;
SELECT p.proname, a.name
  FROM pg_proc p, unnest(p.proargnames) a(name)
 WHERE p.pronamespace = 'agent_tasks'::regnamespace
   AND (a.name IN ('select', 'order', 'limit', 'offset', 'columns', 'on_conflict', 'and', 'or', 'not')
		OR quote_ident(a.name) <> a.name)
 ORDER BY 1, 2;
-- nor a column of a view (or of a function's result type)
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
   AND (a.attname IN ('select', 'order', 'limit', 'offset', 'columns', 'on_conflict', 'and', 'or', 'not')
		OR quote_ident(a.attname) <> a.attname)
 ORDER BY 1, 2;
SELECT agent_tasks.list_tasks(page_size => 2, page_offset => 1) - 'results' AS page;
