--
-- 08_command_mode: a command with items becomes one child task per item;
-- the parent follows its children (set_task_status drives them, as external
-- agents would).
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'cmd';
SET agent_tasks.email = 'cora@example.com';

CREATE FUNCTION pg_temp.st(task uuid) RETURNS text
	LANGUAGE sql
AS $$
	SELECT t.status || coalesce(' (' || t.status_reason || ')', '') FROM agent_tasks.tasks t WHERE t.id = st.task
$$;
-- The children of a parent, in item order.
CREATE FUNCTION pg_temp.children(parent uuid)
	RETURNS TABLE (title text, status text, status_reason text)
	LANGUAGE sql
AS $$
	SELECT t.title, t.status, t.status_reason FROM agent_tasks.tasks t WHERE t.parent_id = children.parent ORDER BY t.id
$$;

RESET ROLE;	-- setup: the tables are private (issue 10)
INSERT INTO agent_tasks_internal.agents (account, name, kind) VALUES ('cmd', 'pages', 'external');
SET ROLE regress_app;
SELECT (agent_tasks.create_task('Generate the site', prompt => 'Write each page',
	command => 'generate_pages', agent => 'pages', labels => ARRAY['site'], priority => 3,
	context => '{"site": "acme.dev", "ref": "main"}', idempotency_key => 'site-1',
	callback_url => 'https://hooks.example.com/site',
	items => '[{"title": "About", "context": {"page": "/about"}, "external_id": "page-about"},
			   "Contact",
			   {"prompt": "Write the pricing page", "context": {"page": "/pricing", "ref": "pricing-branch"}, "external_id": "page-pricing"}]'
	)).id AS p \gset
SELECT title, command, item, status, parent_id FROM agent_tasks.get_task(:'p');
-- each child has its own title, context (merged over the parent's), external id and item;
-- it inherits prompt, agent, type, labels and priority, not the idempotency key or callback
SELECT title, prompt, command, item, context, external_id, agent, labels, priority,
	   idempotency_key, callback_url, status, owner, created_by
  FROM agent_tasks.tasks WHERE parent_id = :'p' ORDER BY id \gx
SELECT count(*) AS children FROM agent_tasks.tasks WHERE parent_id = :'p';
-- the idempotent replay returns the parent and makes no new children
SELECT (agent_tasks.create_task('Generate the site', prompt => 'Write each page',
	command => 'generate_pages', agent => 'pages', labels => ARRAY['site'], priority => 3,
	context => '{"site": "acme.dev", "ref": "main"}', idempotency_key => 'site-1',
	callback_url => 'https://hooks.example.com/site',
	items => '[{"title": "About", "context": {"page": "/about"}, "external_id": "page-about"},
			   "Contact",
			   {"prompt": "Write the pricing page", "context": {"page": "/pricing", "ref": "pricing-branch"}, "external_id": "page-pricing"}]'
	)).id = :'p' AS same_parent;
SELECT count(*) AS children FROM agent_tasks.tasks WHERE parent_id = :'p';
SELECT external_id FROM agent_tasks.tasks WHERE parent_id = :'p' AND external_id IS NOT NULL ORDER BY 1;

-- processing the parent queues every child; the parent has no run of its own
SELECT status, status_reason, latest_run_id FROM agent_tasks.process_task(:'p');
SELECT * FROM pg_temp.children(:'p');
SELECT count(*) AS parent_runs FROM agent_tasks.runs WHERE task_id = :'p';
SELECT id AS c1 FROM agent_tasks.tasks WHERE parent_id = :'p' ORDER BY id LIMIT 1 \gset
SELECT id AS c2 FROM agent_tasks.tasks WHERE parent_id = :'p' ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT id AS c3 FROM agent_tasks.tasks WHERE parent_id = :'p' ORDER BY id OFFSET 2 LIMIT 1 \gset
-- the first child to start starts the parent
SELECT (agent_tasks.set_task_status(:'c1', 'in_progress')).status;
SELECT pg_temp.st(:'p') AS parent;
SELECT (agent_tasks.set_task_status(:'c1', 'completed', output => '{"created": ["/about"]}')).status;
SELECT pg_temp.st(:'p') AS parent;
SELECT (agent_tasks.set_task_status(:'c2', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'c2', 'completed', output => '{"modified": ["/contact"], "note": "x"}')).status;
SELECT pg_temp.st(:'p') AS parent;
-- the last child to finish completes the parent, whose output gathers theirs
SELECT (agent_tasks.set_task_status(:'c3', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'c3', 'completed', output => '{"created": ["/pricing"], "deleted": ["/old-pricing"]}')).status;
SELECT status, status_reason, output, error FROM agent_tasks.get_task(:'p');
SELECT * FROM trail(:'p');

-- a failed child fails the parent
SELECT (agent_tasks.create_task('Two pages', command => 'generate_pages', items => '["One", "Two"]',
	auto_process => true)).id AS f \gset
SELECT pg_temp.st(:'f') AS parent;
SELECT id AS f1 FROM agent_tasks.tasks WHERE parent_id = :'f' ORDER BY id LIMIT 1 \gset
SELECT id AS f2 FROM agent_tasks.tasks WHERE parent_id = :'f' ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT * FROM pg_temp.children(:'f');
SELECT (agent_tasks.set_task_status(:'f1', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'f1', 'failed', 'agent_error', error => '{"message": "no"}')).status;
SELECT pg_temp.st(:'f') AS parent;			-- still running: Two is open
SELECT (agent_tasks.set_task_status(:'f2', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'f2', 'completed', output => '{"created": ["/two"]}')).status;
SELECT status, status_reason, output, error FROM agent_tasks.get_task(:'f');
-- retrying the parent retries the children that did not complete
SELECT status, status_reason, output, error FROM agent_tasks.retry_task(:'f');
SELECT * FROM pg_temp.children(:'f');
SELECT (agent_tasks.set_task_status(:'f1', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'f1', 'completed', output => '{"created": ["/one"]}')).status;
SELECT status, status_reason, output FROM agent_tasks.get_task(:'f');

-- stopping the parent stops its children; processing it resumes them
SELECT (agent_tasks.create_task('Three pages', command => 'generate_pages', items => '["A", "B", "C"]',
	auto_process => true)).id AS s \gset
SELECT id AS s1 FROM agent_tasks.tasks WHERE parent_id = :'s' ORDER BY id LIMIT 1 \gset
SELECT (agent_tasks.set_task_status(:'s1', 'in_progress')).status;
SELECT status, status_reason FROM agent_tasks.stop_task(:'s');
SELECT * FROM pg_temp.children(:'s');
SELECT status, status_reason FROM agent_tasks.process_task(:'s');
SELECT * FROM pg_temp.children(:'s');
-- cancelling the parent cancels its open children (reason parent_cancelled)
SELECT (agent_tasks.set_task_status(:'s1', 'in_progress')).status;
SELECT (agent_tasks.set_task_status(:'s1', 'completed')).status;
SELECT status, status_reason FROM agent_tasks.cancel_task(:'s');
SELECT * FROM pg_temp.children(:'s');
SELECT status, status_reason FROM agent_tasks.cancel_task(:'s');		-- idempotent

-- all children cancelled one by one: the parent is cancelled
SELECT (agent_tasks.create_task('Two more', command => 'generate_pages', items => '["X", "Y"]',
	auto_process => true)).id AS x \gset
SELECT (agent_tasks.cancel_task(id)).status FROM agent_tasks.tasks WHERE parent_id = :'x' ORDER BY id;
SELECT status, status_reason, output FROM agent_tasks.get_task(:'x');

-- deleting the parent deletes the children
SELECT agent_tasks.delete_task(:'x');
SELECT count(*) AS orphans FROM agent_tasks.tasks WHERE parent_id = :'x';

-- items: at most agent_tasks.max_items (default 10; a superuser setting)
SELECT current_setting('agent_tasks.max_items') AS max_items;
SELECT (agent_tasks.create_task('Ten', command => 'c', items => (SELECT jsonb_agg('item ' || i) FROM generate_series(1, 10) i))).id AS ten \gset
SELECT count(*) AS ten_children FROM agent_tasks.tasks WHERE parent_id = :'ten';
SELECT expect_error($$SELECT agent_tasks.create_task('Eleven', command => 'c', items => (SELECT jsonb_agg('item ' || i) FROM generate_series(1, 11) i))$$);
SELECT expect_error($$SET agent_tasks.max_items = 2$$);
RESET ROLE;
SET agent_tasks.max_items = 2;
SET ROLE regress_app;
SELECT expect_error($$SELECT agent_tasks.create_task('Three', command => 'c', items => '["a", "b", "c"]')$$);
RESET ROLE;
RESET agent_tasks.max_items;
SET ROLE regress_app;
-- a child title defaults to "parent (n/N)"; a child may be refused on its own
SELECT (agent_tasks.create_task('Untitled items', command => 'c', items => '[{"external_id": "u1"}, {}]')).id AS untitled \gset
SELECT title, external_id, item FROM agent_tasks.tasks WHERE parent_id = :'untitled' ORDER BY id;
SELECT expect_error($$SELECT agent_tasks.create_task('Bad item', command => 'c', items => jsonb_build_array(jsonb_build_object('title', repeat('t', 501))))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('Bad item', command => 'c', items => ('[{"title": "ok", "external_id": "' || repeat('e', 201) || '"}]')::jsonb)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('Bad item', command => 'c', items => '["ok", {"prompt": ""}, {"title": "   "}]')$$);
SELECT count(*) AS bad_items_kept FROM agent_tasks.tasks WHERE title = 'Bad item';
-- a command without items is a plain task with a command
SELECT status, command, (SELECT count(*) FROM agent_tasks.tasks c WHERE c.parent_id = t.id) AS children
  FROM agent_tasks.create_task('Command only', command => 'deploy', auto_process => true) t;
RESET ROLE;
