-- The README's demo: an application's AI-agent tasks inside its own
-- database.  Run by test/demo.sh on a throwaway cluster with the library
-- preloaded, so the extension's executors run the `sql` agent below.
\set ON_ERROR_STOP on
\pset footer off
\set SHOW_CONTEXT never
\echo
\echo '== 1. An application role, an account (tenant) and a person =='
CREATE ROLE demo_app LOGIN IN ROLE agent_tasks_admin;
-- A toy agent: asks which colour when it is not told, fails twice on a
-- flaky task before succeeding, and reports the page it "created".
CREATE FUNCTION public.site_agent(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF task.title ILIKE '%theme%' AND NOT EXISTS (
		SELECT 1 FROM agent_tasks.messages m WHERE m.task_id = task.id AND m.role = 'user') THEN
		RETURN jsonb_build_object('status', 'needs_clarification',
								  'question', 'Which colour should the theme use?');
	END IF;
	IF task.labels @> ARRAY['flaky'] AND run.attempt < 3 THEN
		RAISE EXCEPTION 'upstream timeout on attempt %', run.attempt;
	END IF;
	RETURN jsonb_build_object('created', jsonb_build_array(coalesce(task.context ->> 'page', lower(task.title))),
							  'commit', left(md5(task.id::text), 7));
END $$;
GRANT EXECUTE ON FUNCTION public.site_agent(agent_tasks.tasks, agent_tasks.runs) TO demo_app;

SET ROLE demo_app;
SET agent_tasks.account = 'acme';
SET agent_tasks.email = 'alice@acme.test';
SELECT name, kind, target, max_attempts, backoff_base
  FROM agent_tasks.create_agent('site', 'sql', 'public.site_agent',
								max_attempts => 3, backoff_base => '200 milliseconds');

\echo
\echo '== 2. Tasks: one driven by hand, then three run by the agent =='
SELECT id AS manual FROM agent_tasks.create_task('Schedule the Q2 planning meeting',
	prompt => 'Find a slot for the whole team in the first week of April',
	type => 'calendar', assignees => ARRAY['bob@acme.test'], labels => ARRAY['planning']) \gset
SELECT title, status, owner, assignees FROM agent_tasks.get_task(:'manual');
SELECT status, status_reason FROM agent_tasks.process_task(:'manual');
SELECT status, status_reason FROM agent_tasks.stop_task(:'manual');
SELECT status, status_reason FROM agent_tasks.process_task(:'manual', 'Thursdays do not work for Bob');
SELECT status, status_reason FROM agent_tasks.cancel_task(:'manual');
SELECT status, status_reason FROM agent_tasks.cancel_task(:'manual');	-- cancel is idempotent
\echo 'A forbidden move is refused by the state machine:'
\set ON_ERROR_STOP off
SELECT agent_tasks.set_task_status(:'manual', 'completed');
\set ON_ERROR_STOP on

SELECT id AS about FROM agent_tasks.create_task('Add an About page',
	prompt => 'With a team section', agent => 'site', context => '{"repository": "acme/site", "page": "about"}',
	auto_process => true) \gset
SELECT id AS theme FROM agent_tasks.create_task('Refresh the theme', agent => 'site',
	context => '{"repository": "acme/site"}', auto_process => true) \gset
SELECT id AS flaky FROM agent_tasks.create_task('Sync the pricing page', agent => 'site',
	labels => ARRAY['flaky'], context => '{"repository": "acme/site", "page": "pricing"}', auto_process => true) \gset

\echo 'wait_task() blocks until a task is finished or waits for a person:'
SELECT title, status, output ->> 'created' AS created FROM agent_tasks.wait_task(:'about', '10 seconds');
SELECT title, status, status_reason FROM agent_tasks.wait_task(:'theme', '10 seconds');
SELECT role, body FROM agent_tasks.messages WHERE task_id = :'theme' ORDER BY id;
\echo 'Answering the question re-queues the run:'
SELECT role, body FROM agent_tasks.send_message(:'theme', 'Use our brand blue, #1e40af');
SELECT title, status, output ->> 'created' AS created FROM agent_tasks.wait_task(:'theme', '10 seconds');
SELECT title, status, output ->> 'created' AS created FROM agent_tasks.wait_task(:'flaky', '20 seconds');
SELECT attempt, status, status_reason, error ->> 'message' AS error
  FROM agent_tasks.runs WHERE task_id = :'flaky' ORDER BY attempt;

\echo
\echo '== 3. Command mode: one parent, a child task per item =='
SELECT id AS pages FROM agent_tasks.create_task('Generate the docs pages', command => 'generate_pages',
	agent => 'site', context => '{"repository": "acme/docs"}',
	items => '[{"title": "Install", "external_id": "install", "context": {"page": "install"}},
			   {"title": "Quickstart", "external_id": "quickstart", "context": {"page": "quickstart"}},
			   {"title": "FAQ", "external_id": "faq", "context": {"page": "faq"}}]',
	auto_process => true) \gset
SELECT title, status, output FROM agent_tasks.wait_task(:'pages', '20 seconds');
SELECT title, external_id, status FROM agent_tasks.tasks WHERE parent_id = :'pages' ORDER BY id;

\echo
\echo '== 4. Reading: filters, full-text search, one page with the total =='
SELECT status, count(*) FROM agent_tasks.tasks GROUP BY status ORDER BY status;
SELECT title, status FROM agent_tasks.tasks WHERE repository = 'acme/site' AND status = 'completed' ORDER BY id;
SELECT title FROM agent_tasks.tasks WHERE search @@ websearch_to_tsquery('english', 'planning meeting');
SELECT r ->> 'title' AS title, r ->> 'status' AS status, page ->> 'count' AS total
  FROM agent_tasks.list_tasks(agent => 'site', page_size => 2) AS page,
	   jsonb_array_elements(page -> 'results') AS r;
SELECT agent, queued, in_progress, completed_last_hour, failed_last_hour FROM agent_tasks.queue_stats;

\echo
\echo '== 5. Another account sees nothing of acme =='
SET agent_tasks.account = 'globex';
SELECT count(*) AS visible_tasks FROM agent_tasks.tasks;
\set ON_ERROR_STOP off
SELECT agent_tasks.get_task(:'about');
\set ON_ERROR_STOP on
SET agent_tasks.account = 'acme';

\echo
\echo '== 6. Activity trails: every change, checked and logged by the extension =='
SELECT t.title, a.event, a.from_status, a.to_status, a.reason, a.actor
  FROM agent_tasks.activities a JOIN agent_tasks.tasks t ON t.id = a.task_id
 WHERE a.task_id IN (:'manual', :'theme', :'flaky')
 ORDER BY a.task_id, a.id;

\echo
\echo '== 7. Reacting to task changes: hooks run in the transaction of the change =='
-- The application's own table and functions, owned by its role.
RESET ROLE;
CREATE SCHEMA app AUTHORIZATION demo_app;
SET ROLE demo_app;
CREATE TABLE app.published_pages (page text PRIMARY KEY, commit text, task uuid);
CREATE FUNCTION app.publish(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE sql
	BEGIN ATOMIC
		INSERT INTO app.published_pages (page, commit, task)
		SELECT p, task.output ->> 'commit', task.id
		  FROM jsonb_array_elements_text(task.output -> 'created') AS p
		ON CONFLICT (page) DO UPDATE SET commit = excluded.commit, task = excluded.task;
	END;
CREATE FUNCTION app.keep_legal_pages(event text, task agent_tasks.tasks, previous_status text, data jsonb)
	RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
	IF task.labels @> ARRAY['legal'] THEN
		RAISE EXCEPTION USING ERRCODE = 'PT409', MESSAGE = 'legal pages are never cancelled',
			HINT = 'Ask the legal team.';
	END IF;
END $$;
SELECT name, events, function FROM agent_tasks.create_hook('publish', '{task.completed}', 'app.publish');
SELECT name, events, function FROM agent_tasks.create_hook('keep-legal', '{task.cancelled}', 'app.keep_legal_pages');
SELECT id AS terms FROM agent_tasks.create_task('Write the terms page', agent => 'site', labels => ARRAY['legal'],
	context => '{"repository": "acme/site", "page": "terms"}', auto_process => true) \gset
SELECT title, status FROM agent_tasks.wait_task(:'terms', '10 seconds');
\echo 'The completion wrote the application row in the same transaction:'
SELECT page, commit = (SELECT output ->> 'commit' FROM agent_tasks.tasks WHERE id = :'terms') AS same_commit
  FROM app.published_pages WHERE task = :'terms';
\echo 'A hook that raises refuses the change (the task stays as it was):'
SELECT id AS draft FROM agent_tasks.create_task('Draft the privacy page', labels => ARRAY['legal']) \gset
\set ON_ERROR_STOP off
SELECT agent_tasks.cancel_task(:'draft');
\set ON_ERROR_STOP on
SELECT title, status FROM agent_tasks.get_task(:'draft');

RESET ROLE;
