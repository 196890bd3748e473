--
-- 03_tasks: create_task (every field, every refusal), idempotency,
-- get_task, update_task, archive / unarchive, delete_task.
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'acme';
SET agent_tasks.email = 'alice@example.com';

-- An agent to name (create_agent belongs to the engine; admins may insert).
RESET ROLE;	-- setup: the tables are private (issue 10)
INSERT INTO agent_tasks_internal.agents (account, name, kind) VALUES ('acme', 'builder', 'external');
SET ROLE regress_app;
RESET ROLE;	-- setup: the tables are private (issue 10)
INSERT INTO agent_tasks_internal.agents (account, name, kind) VALUES ('acme', 'writer', 'external');
SET ROLE regress_app;

-- The smallest task: pending, owned by the session's user, origin sql.
SELECT (agent_tasks.create_task('Minimal')).id AS minimal \gset
SELECT title, prompt, type, command, item, context, repository, agent, priority, output_schema,
	   owner, created_by, assignees, followers, skills, labels, metadata, external_id, origin,
	   idempotency_key, callback_url, run_after, status, status_reason, latest_run_id, output,
	   error, feedback, budget_tokens, budget_cost, archived_at, archived, mine,
	   parent_id IS NULL AS no_parent, created_at = updated_at AS untouched
  FROM agent_tasks.get_task(:'minimal') \gx

-- Every field of the design.
SELECT (agent_tasks.create_task(
	title => '  Add an About page  ',
	prompt => 'Add an About page with a team section',
	type => 'website',
	context => '{"site": "docs.acme.dev", "repository": "acme/site", "ref": "main"}',
	agent => 'builder',
	priority => 5,
	output_schema => '{"type": "object", "required": ["url"]}',
	owner => ' Owner@Example.COM ',
	assignees => ARRAY['bob@example.com', 'Carol@example.com', 'bob@example.com'],
	followers => ARRAY['dave@example.com'],
	skills => ARRAY['html', 'css'],
	labels => ARRAY['web'],
	metadata => '{"ticket": 42}',
	external_id => 'EXT-1',
	origin => 'api',
	idempotency_key => 'about-page',
	callback_url => 'https://hooks.example.com/tasks',
	run_after => '2030-01-01 09:00:00+00',
	budget_tokens => 10000,
	budget_cost => 2.5)).id AS full \gset
SELECT title, prompt, type, command, item, context, repository, agent, priority, output_schema,
	   owner, created_by, assignees, followers, skills, labels, metadata, external_id, origin,
	   idempotency_key, callback_url, run_after AT TIME ZONE 'UTC' AS run_after_utc, status,
	   status_reason, feedback, budget_tokens, budget_cost, archived, mine
  FROM agent_tasks.get_task(:'full') \gx
-- People were provisioned once each, lower-cased.
SELECT email FROM agent_tasks.users ORDER BY email;
-- The stored row: created_by is the actor, the request hash is kept for
-- idempotency, the search document covers title and prompt.
RESET ROLE;
SELECT created_by, request_hash IS NOT NULL AS has_hash, search
  FROM agent_tasks_internal.tasks WHERE id = :'full';
SET ROLE regress_app;

-- A child task (parent) and auto_process (queued at once).
SELECT (agent_tasks.create_task('Child', parent => :'minimal')).parent_id = :'minimal' AS child_has_parent;
SELECT status, status_reason, latest_run_id IS NOT NULL AS has_run
  FROM agent_tasks.create_task('Right away', auto_process => true);
-- An actor without an e-mail address: no owner, created_by names the role.
RESET agent_tasks.email;
SELECT owner, created_by, mine FROM agent_tasks.create_task('Anonymous');
SET agent_tasks.email = 'alice@example.com';

--
-- Refusals of create_task
--
-- bad UUIDs and unknown tasks
SELECT expect_error($$SELECT agent_tasks.get_task('not-a-uuid')$$);
SELECT expect_error($$SELECT agent_tasks.get_task('')$$);
SELECT expect_error($$SELECT agent_tasks.get_task('00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.get_task(NULL)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', parent => '00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', parent => 'nope')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', depends_on => ARRAY['00000000-0000-7000-8000-000000000000'::uuid])$$);
-- empty title
SELECT expect_error($$SELECT agent_tasks.create_task('')$$);
SELECT expect_error($$SELECT agent_tasks.create_task(E'  \t ')$$);
SELECT expect_error($$SELECT agent_tasks.create_task(NULL)$$);
-- oversize input
SELECT length((agent_tasks.create_task(repeat('t', 500))).title) AS title_500_is_fine;
SELECT expect_error($$SELECT agent_tasks.create_task(repeat('t', 501))$$);
-- limits count characters, not bytes
SELECT length(title), octet_length(title), labels = ARRAY[repeat('é', 200)] AS label_kept
  FROM agent_tasks.create_task(repeat('é', 500), labels => ARRAY[repeat('é', 200)]);
SELECT expect_error($$SELECT agent_tasks.create_task(repeat('é', 501))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', labels => ARRAY[repeat('é', 201)])$$);
SELECT length((agent_tasks.create_task('long prompt', prompt => repeat('word ', 20000))).prompt) AS prompt_100000_is_fine;
SELECT expect_error($$SELECT agent_tasks.create_task('x', prompt => repeat('p', 100001))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', type => repeat('y', 101))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', command => repeat('c', 101))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', external_id => repeat('e', 201))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', origin => repeat('o', 101))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', idempotency_key => repeat('k', 201))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', context => jsonb_build_object('big', repeat('x', 70000)))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', metadata => (SELECT jsonb_object_agg('k' || i, md5(i::text)) FROM generate_series(1, 2000) i))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', skills => ARRAY(SELECT 's' || i FROM generate_series(1, 101) i))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', labels => ARRAY[repeat('l', 201)])$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', labels => ARRAY['ok', ''])$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', skills => ARRAY['ok', NULL])$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', callback_url => 'https://example.com/' || repeat('u', 2000))$$);
-- wrong JSON shapes
SELECT expect_error($$SELECT agent_tasks.create_task('x', context => '[1, 2]')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', metadata => '"text"')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', output_schema => 'true')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', context => '{bad json')$$);
-- bad values
SELECT expect_error($$SELECT agent_tasks.create_task('x', callback_url => 'ftp://example.com/x')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', callback_url => 'not a url')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', priority => 1001)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', priority => NULL)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', budget_tokens => 0)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', budget_cost => -1)$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', run_after => 'someday')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', agent => 'nobody')$$);
-- bad email
SELECT expect_error($$SELECT agent_tasks.create_task('x', owner => 'not-an-email')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', assignees => ARRAY['ok@example.com', 'a@b'])$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', followers => ARRAY['two@@example.com'])$$);
SET agent_tasks.email = 'no email';
SELECT expect_error($$SELECT agent_tasks.create_task('x')$$);
SET agent_tasks.email = 'alice@example.com';
-- command mode refusals: items without a command, too many items, wrong items
SELECT expect_error($$SELECT agent_tasks.create_task('x', items => '["a"]')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', command => 'c', items => '{"a": 1}')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', command => 'c', items => (SELECT jsonb_agg(i) FROM generate_series(1, 11) i))$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', command => 'c', items => '["ok", 42]')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', command => 'c', items => '[{"title": ""}]')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('x', command => 'c', items => '[{"title": "a", "context": []}]')$$);
-- nothing of the refused calls was kept
SELECT count(*) AS tasks_titled_x FROM agent_tasks.tasks WHERE title = 'x';

--
-- Idempotency
--
SELECT (agent_tasks.create_task('Idempotent', prompt => 'p', idempotency_key => 'key-1', labels => ARRAY['a'])).id AS idem \gset
-- same key and same payload: the same task, not a new one
SELECT (agent_tasks.create_task('Idempotent', prompt => 'p', idempotency_key => 'key-1', labels => ARRAY['a'])).id = :'idem' AS same_task;
SELECT id = :'idem' AS same_task, status FROM agent_tasks.create_task('Idempotent', prompt => 'p', idempotency_key => 'key-1', labels => ARRAY['a']);
SELECT count(*) AS tasks_with_key FROM agent_tasks.tasks WHERE idempotency_key = 'key-1';
SELECT count(*) AS created_once FROM agent_tasks.activities WHERE task_id = :'idem' AND event = 'created';
-- same key, another payload: PT422
SELECT expect_error($$SELECT agent_tasks.create_task('Idempotent', prompt => 'other', idempotency_key => 'key-1', labels => ARRAY['a'])$$);
SELECT expect_error($$SELECT agent_tasks.create_task('Idempotent', prompt => 'p', idempotency_key => 'key-1')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('Idempotent', prompt => 'p', idempotency_key => 'key-1', labels => ARRAY['a'], priority => 1)$$);
-- the replay returns the task as it is now
SELECT (agent_tasks.update_task(:'idem', '{"priority": 7}')).priority;
SELECT priority FROM agent_tasks.create_task('Idempotent', prompt => 'p', idempotency_key => 'key-1', labels => ARRAY['a']);
-- without a key every call creates a task
SELECT (agent_tasks.create_task('no key')).id <> (agent_tasks.create_task('no key')).id AS two_tasks;

--
-- update_task
--
SELECT (agent_tasks.update_task(:'minimal', '{
	"title": "  Minimal, renamed ", "prompt": "now with a prompt", "type": "chore",
	"context": {"repository": "acme/api"}, "agent": "writer", "priority": -3,
	"output_schema": {"type": "object"}, "owner": "Bob@Example.com", "skills": ["sql"],
	"labels": ["x", "y"], "metadata": {"k": "v"}, "external_id": "EXT-2",
	"callback_url": "https://hooks.example.com/2", "run_after": "2031-02-03T04:05:06Z",
	"budget_tokens": 5, "budget_cost": 0.5}')).title;
SELECT title, prompt, type, context, repository, agent, priority, output_schema, owner, skills,
	   labels, metadata, external_id, callback_url, run_after AT TIME ZONE 'UTC' AS run_after_utc,
	   budget_tokens, budget_cost, status, updated_at > created_at AS touched, mine
  FROM agent_tasks.get_task(:'minimal') \gx
-- null clears a field; an empty patch changes nothing
SELECT owner, agent, prompt, output_schema, callback_url, run_after, budget_tokens
  FROM agent_tasks.update_task(:'minimal', '{"owner": null, "agent": null, "prompt": null,
	"output_schema": null, "callback_url": null, "run_after": null, "budget_tokens": null}');
SELECT title FROM agent_tasks.update_task(:'minimal', '{}');
SELECT title FROM agent_tasks.update_task(:'minimal', NULL);
-- refusals
SELECT expect_error($$SELECT agent_tasks.update_task('00000000-0000-7000-8000-000000000000', '{"title": "t"}')$$);
SELECT expect_error($$SELECT agent_tasks.update_task('zzz', '{"title": "t"}')$$);
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"status": "completed"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"id": "x"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '[1]')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"title": ""}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"title": null}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"title": 12}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, jsonb_build_object('title', repeat('t', 501)))$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, jsonb_build_object('prompt', repeat('p', 100001)))$$, :'minimal'));
SELECT length((agent_tasks.update_task(:'minimal', jsonb_build_object('prompt', repeat('word ', 20000)))).prompt) AS prompt_100000_is_fine;
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, jsonb_build_object('prompt', repeat('p', 1048576)))$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, jsonb_build_object('metadata', jsonb_build_object('big', repeat('x', 70000))))$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"context": "text"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"priority": 5000}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"priority": 1.5}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"priority": null}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"priority": "high"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"owner": "nobody"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"agent": "nobody"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"labels": [1, 2]}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"labels": [""]}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"callback_url": "gopher://x"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"run_after": "soon"}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"budget_tokens": -1}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"budget_tokens": 1.5}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"budget_tokens": 1e30}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"budget_cost": 0}')$$, :'minimal'));
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"budget_cost": "free"}')$$, :'minimal'));
-- a refused patch changes nothing, not even the fields before the bad one
SELECT expect_error(format($$SELECT agent_tasks.update_task(%L, '{"title": "changed", "priority": 99999}')$$, :'minimal'));
SELECT title, priority FROM agent_tasks.get_task(:'minimal');

--
-- archive / unarchive
--
SELECT archived, archived_at IS NOT NULL AS has_time FROM agent_tasks.archive_task(:'minimal');
SELECT archived FROM agent_tasks.archive_task(:'minimal');		-- again: nothing changes
SELECT count(*) AS archive_activities FROM agent_tasks.activities WHERE task_id = :'minimal' AND event = 'archived';
SELECT status FROM agent_tasks.get_task(:'minimal');			-- archiving is not a status
SELECT archived, archived_at FROM agent_tasks.unarchive_task(:'minimal');
SELECT archived FROM agent_tasks.unarchive_task(:'minimal');
SELECT event FROM agent_tasks.activities WHERE task_id = :'minimal' AND event LIKE '%archived' ORDER BY id;
SELECT expect_error($$SELECT agent_tasks.archive_task('00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.unarchive_task('00000000-0000-7000-8000-000000000000')$$);
SELECT expect_error($$SELECT agent_tasks.archive_task('x')$$);

--
-- delete_task removes the task and everything under it
--
SELECT (agent_tasks.create_task('Doomed', command => 'generate_pages', items => '["one", "two"]',
	assignees => ARRAY['bob@example.com'], followers => ARRAY['dave@example.com'])).id AS doomed \gset
SELECT (agent_tasks.create_task('Blocker of doomed')).id AS doomed_blocker \gset
SELECT (agent_tasks.create_task('Waits for doomed')).id AS waits_for_doomed \gset
SELECT (agent_tasks.add_dependency(:'waits_for_doomed', :'doomed')).status_reason;
SELECT (agent_tasks.add_dependency(:'doomed', :'doomed_blocker')).status_reason;
SELECT id AS doomed_child FROM agent_tasks.tasks WHERE parent_id = :'doomed' ORDER BY id LIMIT 1 \gset
SELECT (agent_tasks.send_message(:'doomed', 'a message')).role;
SELECT (agent_tasks.send_message(:'doomed_child', 'a message to the child')).role;
SELECT (agent_tasks.set_task_status(:'doomed_child', 'queued')).status;
RESET ROLE;
SELECT rows_of(:'doomed') AS before_delete;
SELECT rows_of(:'doomed_child') AS child_before_delete;
SET ROLE regress_app;
SELECT agent_tasks.delete_task(:'doomed');
RESET ROLE;
SELECT rows_of(:'doomed') AS after_delete;
SELECT rows_of(:'doomed_child') AS child_after_delete;
SET ROLE regress_app;
-- the blocker and the dependent remain
SELECT count(*) AS remaining FROM agent_tasks.tasks WHERE id IN (:'doomed_blocker', :'waits_for_doomed');
-- the task that waited only for the deleted one is queued
SELECT status, status_reason FROM agent_tasks.tasks WHERE id = :'waits_for_doomed';
SELECT expect_error(format('SELECT agent_tasks.get_task(%L)', :'doomed'));
SELECT expect_error(format('SELECT agent_tasks.delete_task(%L)', :'doomed'));
SELECT expect_error($$SELECT agent_tasks.delete_task('bad')$$);
-- people stay: they belong to the account, not to the task
SELECT count(*) AS people FROM agent_tasks.users WHERE email IN ('bob@example.com', 'dave@example.com');
RESET ROLE;

-- An output_schema is checked when it is set: validate_json must be able to apply it.
SELECT expect_error($$SELECT agent_tasks.create_task('bad schema', output_schema => '{"type": "objekt"}')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('bad schema', output_schema => '{"type": "object", "properties": {"n": {"type": "string", "minLength": "x"}}}')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('bad schema', output_schema => '{"required": "a"}')$$);
SELECT expect_error($$SELECT agent_tasks.create_task('bad schema', output_schema => '{"items": {"maxItems": -1}}')$$);
SELECT (agent_tasks.create_task('good schema', output_schema =>
	'{"type": "object", "required": ["a"], "title": "ignored", "properties": {"a": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1}}}}')).status;
