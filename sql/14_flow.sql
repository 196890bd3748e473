--
-- 14_flow: dependencies and command mode driven through the external claim
-- path (claim_runs / complete_run / fail_run), as workers would.
--
\set SHOW_CONTEXT never
SET ROLE regress_engine;
SET agent_tasks.account = 'eng-flow';
SET agent_tasks.email = 'flo@example.com';

CREATE FUNCTION pg_temp.st(task uuid) RETURNS text
	LANGUAGE sql
AS $$ SELECT t.status || coalesce(' (' || t.status_reason || ')', '') FROM agent_tasks.tasks t WHERE t.id = st.task $$;
-- Claim everything claimable of the agent; titles in claim order.
CREATE FUNCTION pg_temp.claim(agent text) RETURNS text
	LANGUAGE sql
AS $$
	SELECT coalesce(string_agg(c.task ->> 'title', ', ' ORDER BY c.ord), '(none)')
	  FROM agent_tasks.claim_runs('w-flow', ARRAY[agent], 100)
		   WITH ORDINALITY AS c(run_id, task_id, agent, attempt, lease_expires_at, task, messages, ord)
$$;
CREATE FUNCTION pg_temp.run_of(task uuid) RETURNS uuid
	LANGUAGE sql
AS $$ SELECT t.latest_run_id FROM agent_tasks.tasks t WHERE t.id = run_of.task $$;

SELECT name FROM agent_tasks.create_agent('pages', 'external', concurrency => 10, max_attempts => 1);

--
-- Command mode: the children are claimed and completed by a worker; the
-- parent (no run of its own) completes with their resources gathered.
--
SELECT (agent_tasks.create_task('Generate the site', command => 'generate_pages', agent => 'pages',
	items => '[{"title": "About", "external_id": "about"}, {"title": "Pricing", "external_id": "pricing"}, "Blog"]',
	auto_process => true)).id AS p \gset
SELECT pg_temp.st(:'p') AS parent, (SELECT count(*) FROM agent_tasks.runs WHERE task_id = :'p') AS parent_runs;
SELECT id AS c1 FROM agent_tasks.tasks WHERE parent_id = :'p' ORDER BY id LIMIT 1 \gset
SELECT id AS c2 FROM agent_tasks.tasks WHERE parent_id = :'p' ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT id AS c3 FROM agent_tasks.tasks WHERE parent_id = :'p' ORDER BY id OFFSET 2 LIMIT 1 \gset
-- a child's claim carries its own title, external id and parent; the first
-- child to start starts the parent
SELECT c.task ->> 'title' AS title, c.task ->> 'external_id' AS external_id, c.task ->> 'parent_id' = :'p' AS child_of_parent
  FROM agent_tasks.claim_runs('w-flow', ARRAY['pages']) c;
SELECT pg_temp.st(:'p') AS parent;
SELECT pg_temp.claim('pages') AS claimed;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'c1'), '{"created": ["/about"]}');
SELECT pg_temp.st(:'p') AS parent;
SELECT status FROM agent_tasks.report_progress(pg_temp.run_of(:'c2'), 'writing', 'half way');
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'c2'), '{"modified": ["/pricing"], "created": ["/pricing/faq"]}');
SELECT pg_temp.st(:'p') AS parent;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'c3'), '{"deleted": ["/old-blog"], "created": ["/blog"]}');
SELECT status, status_reason, output, error FROM agent_tasks.get_task(:'p');
SELECT t.title, t.status, r.worker, r.attempt FROM agent_tasks.tasks t JOIN agent_tasks.runs r ON r.id = t.latest_run_id
 WHERE t.parent_id = :'p' ORDER BY t.id;
SELECT event, from_status, to_status, reason, actor FROM trail(:'p');

-- a failed child (the agent allows one attempt) fails the parent once the others end
SELECT (agent_tasks.create_task('Two pages', command => 'generate_pages', agent => 'pages',
	items => '["One", "Two"]', auto_process => true)).id AS f \gset
SELECT id AS f1 FROM agent_tasks.tasks WHERE parent_id = :'f' ORDER BY id LIMIT 1 \gset
SELECT id AS f2 FROM agent_tasks.tasks WHERE parent_id = :'f' ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT pg_temp.claim('pages') AS claimed;
SELECT status, status_reason FROM agent_tasks.fail_run(pg_temp.run_of(:'f1'), 'page template missing');
SELECT pg_temp.st(:'f') AS parent;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'f2'), '{"created": ["/two"]}');
SELECT status, status_reason, output, error FROM agent_tasks.get_task(:'f');
-- a retryable failure of a child on its last attempt is the same
SELECT (agent_tasks.create_task('One page', command => 'generate_pages', agent => 'pages',
	items => '["Only"]', auto_process => true)).id AS g \gset
SELECT pg_temp.claim('pages') AS claimed;
SELECT status, status_reason FROM agent_tasks.fail_run(
	(SELECT pg_temp.run_of(id) FROM agent_tasks.tasks WHERE parent_id = :'g'), 'flaky', true);
SELECT status, status_reason, error FROM agent_tasks.get_task(:'g');

--
-- Dependencies: a blocked task waits (pending, blocked), is queued
-- automatically when its last blocker completes, and is cancelled when a
-- blocker fails (the reason names it).
--
SELECT (agent_tasks.create_task('fetch data', agent => 'pages', auto_process => true)).id AS b1 \gset
SELECT (agent_tasks.create_task('fetch more', agent => 'pages', auto_process => true)).id AS b2 \gset
SELECT (agent_tasks.create_task('report', agent => 'pages', depends_on => ARRAY[:'b1', :'b2']::uuid[])).id AS d \gset
SELECT pg_temp.st(:'d') AS dependent;
SELECT title FROM agent_tasks.ready_tasks ORDER BY title;
SELECT pg_temp.claim('pages') AS claimed;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'b1'), '{"rows": 10}');
SELECT pg_temp.st(:'d') AS dependent;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'b2'), '{"rows": 5}');
SELECT pg_temp.st(:'d') AS dependent;
SELECT pg_temp.claim('pages') AS claimed;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'d'), '{"report": "ok"}');
SELECT event, from_status, to_status, reason, actor FROM trail(:'d') WHERE event IN ('created', 'status_changed');

-- a blocker that fails cancels its dependents, and theirs in turn
SELECT (agent_tasks.create_task('extract', agent => 'pages', auto_process => true)).id AS x \gset
SELECT (agent_tasks.create_task('transform', agent => 'pages', depends_on => ARRAY[:'x']::uuid[])).id AS y \gset
SELECT (agent_tasks.create_task('load', agent => 'pages', depends_on => ARRAY[:'y']::uuid[])).id AS z \gset
SELECT pg_temp.claim('pages') AS claimed;
SELECT status, status_reason FROM agent_tasks.fail_run(pg_temp.run_of(:'x'), 'source down', false);
SELECT replace(pg_temp.st(:'y'), :'x', '<extract>') AS transform, replace(pg_temp.st(:'z'), :'y', '<transform>') AS load;
SELECT pg_temp.claim('pages') AS claimed;
-- a retry of the failed blocker does not revive them (they are cancelled)
SELECT (agent_tasks.retry_task(:'x')).status;
SELECT pg_temp.claim('pages') AS claimed;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'x'), '{}');
SELECT title, status FROM agent_tasks.tasks WHERE id IN (:'y', :'z') ORDER BY id;

-- a retryable failure that will be retried does not cancel the dependents
SELECT name FROM agent_tasks.create_agent('retrying', 'external', max_attempts => 2, backoff_base => '0', backoff_max => '0');
SELECT (agent_tasks.create_task('upstream', agent => 'retrying', auto_process => true)).id AS u \gset
SELECT (agent_tasks.create_task('downstream', agent => 'retrying', depends_on => ARRAY[:'u']::uuid[])).id AS v \gset
SELECT pg_temp.claim('retrying') AS claimed;
SELECT status FROM agent_tasks.fail_run(pg_temp.run_of(:'u'), 'blip');
SELECT pg_temp.st(:'u') AS upstream, pg_temp.st(:'v') AS downstream;
SELECT pg_temp.claim('retrying') AS claimed;
SELECT status FROM agent_tasks.complete_run(pg_temp.run_of(:'u'), '{}');
SELECT pg_temp.st(:'v') AS downstream;

-- The agent functions of these files go, so that DROP EXTENSION needs no CASCADE.
RESET ROLE;
DROP SCHEMA engine_fns CASCADE;
