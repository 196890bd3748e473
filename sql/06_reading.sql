--
-- 06_reading: the views and list_tasks with every filter, pagination with
-- a total, full-text search and "mine".
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'reading';
SET agent_tasks.email = 'alice@example.com';

-- One page as: count | titles of the page, in page order.
CREATE FUNCTION pg_temp.page(r jsonb) RETURNS text
	LANGUAGE sql
AS $$
	SELECT format('%s | %s', r ->> 'count',
		coalesce((SELECT string_agg(x ->> 'title', ', ' ORDER BY n)
					FROM jsonb_array_elements(r -> 'results') WITH ORDINALITY AS e(x, n)), '-'))
$$;

RESET ROLE;	-- setup: the tables are private (issue 10)
INSERT INTO agent_tasks_internal.agents (account, name, kind) VALUES ('reading', 'builder', 'external');
SET ROLE regress_app;
SELECT (agent_tasks.create_task('Add an About page', prompt => 'with a team section', type => 'website',
	agent => 'builder', assignees => ARRAY['bob@example.com'], context => '{"repository": "acme/site"}',
	origin => 'api', external_id => 'E1', auto_process => true)).id AS t1 \gset
SET agent_tasks.email = 'bob@example.com';
SELECT (agent_tasks.create_task('Fix the login bug', prompt => 'Users cannot log in', type => 'bugfix',
	assignees => ARRAY['alice@example.com'], context => '{"repository": "acme/api"}',
	external_id => 'E2', auto_process => true)).id AS t2 \gset
SELECT (agent_tasks.set_task_status(:'t2', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'t2', 'completed')).status;
RESET agent_tasks.email;
SELECT (agent_tasks.create_task('Write the release notes', type => 'docs', origin => 'cron')).id AS t3 \gset
SELECT (agent_tasks.archive_task(:'t3')).archived;
SET agent_tasks.email = 'alice@example.com';
SELECT (agent_tasks.create_task('Schedule the Q2 planning meeting', prompt => 'with the whole team',
	type => 'meeting')).id AS t4 \gset
SELECT (agent_tasks.create_task('Invite the team', parent => :'t4', type => 'meeting')).id AS t5 \gset

-- the tasks view
SELECT title, type, agent, owner, created_by, assignees, repository, origin, external_id, status,
	   archived, mine
  FROM agent_tasks.tasks ORDER BY id;

-- list_tasks: defaults hide archived tasks, newest first, with the total
SELECT pg_temp.page(agent_tasks.list_tasks());
SELECT r - 'results' AS envelope FROM agent_tasks.list_tasks() r;
-- the result objects carry the view's columns, minus account and search
SELECT string_agg(k, ', ' ORDER BY k) AS result_keys
  FROM jsonb_object_keys(agent_tasks.list_tasks(page_size => 1) -> 'results' -> 0) k;
-- every filter
SELECT pg_temp.page(agent_tasks.list_tasks(status => 'queued'));
SELECT pg_temp.page(agent_tasks.list_tasks(status => 'completed'));
SELECT pg_temp.page(agent_tasks.list_tasks(status => 'failed'));
SELECT pg_temp.page(agent_tasks.list_tasks(type => 'meeting'));
SELECT pg_temp.page(agent_tasks.list_tasks(agent => 'builder'));
SELECT pg_temp.page(agent_tasks.list_tasks(agent => 'nobody'));
SELECT pg_temp.page(agent_tasks.list_tasks(owner => 'BOB@example.com'));
SELECT pg_temp.page(agent_tasks.list_tasks(mine => true));
SELECT pg_temp.page(agent_tasks.list_tasks(mine => false));
SET agent_tasks.email = 'bob@example.com';
SELECT pg_temp.page(agent_tasks.list_tasks(mine => true));
RESET agent_tasks.email;			-- nobody: nothing is mine
SELECT pg_temp.page(agent_tasks.list_tasks(mine => true));
SET agent_tasks.email = 'alice@example.com';
SELECT pg_temp.page(agent_tasks.list_tasks(assignee => 'Bob@Example.com'));
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'true'));
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'all'));
SELECT pg_temp.page(agent_tasks.list_tasks(created_by => 'bob@example.com'));
SELECT pg_temp.page(agent_tasks.list_tasks(created_by => 'role:postgres', archived => 'all'));
SELECT pg_temp.page(agent_tasks.list_tasks(repository => 'acme/site'));
SELECT pg_temp.page(agent_tasks.list_tasks(origin => 'api'));
SELECT pg_temp.page(agent_tasks.list_tasks(origin => 'cron', archived => 'all'));
SELECT pg_temp.page(agent_tasks.list_tasks(external_id => 'E2'));
SELECT pg_temp.page(agent_tasks.list_tasks(parent => :'t4'));
-- filters combine
SELECT pg_temp.page(agent_tasks.list_tasks(type => 'meeting', mine => true, search => 'team'));
SELECT pg_temp.page(agent_tasks.list_tasks(status => 'pending', type => 'website'));
-- full-text search over title and prompt (english stemming, web search syntax)
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'team'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'pages'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'log'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'team -section'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => '"planning meeting"'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'release or login'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'release or login', archived => 'all'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'nothing-like-this'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => '&|!:*()'));
SELECT pg_temp.page(agent_tasks.list_tasks(search => ''));
SELECT pg_temp.page(agent_tasks.list_tasks(search => 'the'));
-- pagination: the count is the total, whatever the page
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'all', page_size => 2));
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'all', page_size => 2, page_offset => 2));
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'all', page_size => 2, page_offset => 4));
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'all', page_size => 2, page_offset => 6));
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'all', page_size => 1000));
-- refusals: bad enum values, bad pages
SELECT expect_error($$SELECT agent_tasks.list_tasks(status => 'done')$$);
SELECT expect_error($$SELECT agent_tasks.list_tasks(archived => 'maybe')$$);
SELECT expect_error($$SELECT agent_tasks.list_tasks(archived => NULL)$$);
SELECT expect_error($$SELECT agent_tasks.list_tasks(page_size => 0)$$);
SELECT expect_error($$SELECT agent_tasks.list_tasks(page_size => 1001)$$);
SELECT expect_error($$SELECT agent_tasks.list_tasks(page_size => NULL)$$);
SELECT expect_error($$SELECT agent_tasks.list_tasks(page_offset => -1)$$);
SELECT expect_error($$SELECT agent_tasks.list_tasks(parent => 'not-a-uuid')$$);

-- The views filter the same way (PostgREST reads them directly).
SELECT title FROM agent_tasks.tasks WHERE search @@ websearch_to_tsquery('english', 'team') ORDER BY id;
SELECT title FROM agent_tasks.tasks WHERE 'alice@example.com' = ANY (assignees) ORDER BY id;
SELECT title FROM agent_tasks.tasks WHERE mine AND NOT archived ORDER BY id;
-- the search document is indexed
SELECT count(*) AS gin_index FROM pg_indexes
 WHERE schemaname = 'agent_tasks_internal' AND tablename = 'tasks' AND indexdef LIKE '%USING gin (search)%';
-- runs, activities, messages, users, agents, status_transitions
SELECT t.title, r.agent, r.kind, r.attempt, r.status FROM agent_tasks.runs r
  JOIN agent_tasks.tasks t ON t.id = r.task_id ORDER BY r.id;
SELECT t.title, a.event, a.from_status, a.to_status, a.reason, a.actor
  FROM agent_tasks.activities a JOIN agent_tasks.tasks t ON t.id = a.task_id
 ORDER BY a.id;
SELECT (agent_tasks.send_message(:'t1', 'Looks good')).body;
SELECT t.title, m.role, m.author, m.body FROM agent_tasks.messages m
  JOIN agent_tasks.tasks t ON t.id = m.task_id ORDER BY m.id;
SELECT email FROM agent_tasks.users ORDER BY email;
SELECT name, kind, concurrency, max_attempts FROM agent_tasks.agents;
SELECT count(*) AS transitions FROM agent_tasks.status_transitions;
-- readers can read all of it
SET ROLE regress_reader;
SELECT pg_temp.page(agent_tasks.list_tasks(archived => 'all'));
SELECT count(*) AS tasks, count(DISTINCT account) AS accounts FROM agent_tasks.tasks;
SELECT count(*) > 0 AS activities FROM agent_tasks.activities;
SELECT count(*) AS messages FROM agent_tasks.messages;
SELECT count(*) AS runs FROM agent_tasks.runs;
SELECT title FROM agent_tasks.get_task(:'t1');
RESET ROLE;
