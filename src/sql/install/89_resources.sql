-- Resources with the usual verbs (issue 11).  Through PostgREST, POST /tasks
-- creates, PATCH /tasks?id=eq.X changes and DELETE /tasks?id=eq.X deletes;
-- the same for a task's messages (POST), assignees and followers (POST,
-- DELETE) and webhook endpoints (PATCH, DELETE).  An unknown argument of
-- create_task gets a 400 naming it, from an overload PostgREST falls back to.  INSTEAD OF triggers on
-- the views turn each row into a call of the API function that does the
-- same thing, so the same checks apply: the trigger functions keep the
-- caller's rights, the caller needs EXECUTE on that function (a reader has
-- no INSERT on the views either), and its errors are the function's.
-- A column the view does not have is PostgREST's 400 (PGRST204) naming it.

-- The assignees and followers of each task, one row per person.
CREATE VIEW agent_tasks.task_assignees WITH (security_invoker = true) AS
SELECT ta.account, ta.task_id, u.email, ta.created_at
  FROM agent_tasks_internal.task_assignees ta
  JOIN agent_tasks_internal.users u ON u.account = ta.account AND u.id = ta.user_id;
COMMENT ON VIEW agent_tasks.task_assignees IS 'Assignees of the tasks of the current account, one row per task and person. POST {task_id, email} assigns, DELETE ?task_id=eq.X&email=eq.Y unassigns (task:write).';
COMMENT ON COLUMN agent_tasks.task_assignees.email IS 'The assigned person (lower case).';
COMMENT ON COLUMN agent_tasks.task_assignees.account IS 'The account (tenant) of the task.';
COMMENT ON COLUMN agent_tasks.task_assignees.task_id IS 'The task the person is assigned to.';
COMMENT ON COLUMN agent_tasks.task_assignees.created_at IS 'When the person was assigned.';

CREATE VIEW agent_tasks.task_followers WITH (security_invoker = true) AS
SELECT tf.account, tf.task_id, u.email, tf.created_at
  FROM agent_tasks_internal.task_followers tf
  JOIN agent_tasks_internal.users u ON u.account = tf.account AND u.id = tf.user_id;
COMMENT ON VIEW agent_tasks.task_followers IS 'Followers of the tasks of the current account, one row per task and person. POST {task_id, email} adds, DELETE ?task_id=eq.X&email=eq.Y removes (task:write).';
COMMENT ON COLUMN agent_tasks.task_followers.email IS 'The following person (lower case).';
COMMENT ON COLUMN agent_tasks.task_followers.account IS 'The account (tenant) of the task.';
COMMENT ON COLUMN agent_tasks.task_followers.task_id IS 'The task the person follows.';
COMMENT ON COLUMN agent_tasks.task_followers.created_at IS 'When the person started following.';

-- PT400 naming the columns of a new row that the server sets: a client
-- may leave them out or send null, nothing else.
CREATE FUNCTION agent_tasks_internal.refuse_server_columns(resource text, new_row jsonb, writable text[])
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	given text[] := ARRAY(SELECT c.key FROM jsonb_each(new_row) c
						   WHERE jsonb_typeof(c.value) <> 'null' AND c.key <> ALL (writable)
						   ORDER BY c.key);
BEGIN
	IF cardinality(given) > 0 THEN
		PERFORM agent_tasks_internal.raise('PT400',
			format('%s set by the server: %s', CASE WHEN cardinality(given) = 1 THEN 'column' ELSE 'columns' END,
				   array_to_string(given, ', ')),
			format('A new row of %s cannot give %s.', resource, array_to_string(given, ', ')),
			format('Columns a new row of %s may give: %s.', resource, array_to_string(writable, ', ')));
	END IF;
END
$$;

-- POST /tasks: create_task() with the row's columns.
CREATE FUNCTION agent_tasks_internal.tasks_insert() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM agent_tasks_internal.refuse_server_columns('tasks', to_jsonb(NEW),
		ARRAY['title', 'prompt', 'description', 'type', 'command', 'context', 'agent', 'priority', 'output_schema', 'owner',
			  'assignees', 'followers', 'skills', 'labels', 'metadata', 'external_id', 'origin',
			  'idempotency_key', 'callback_url', 'parent_id', 'run_after', 'budget_tokens', 'budget_cost']);
	NEW := agent_tasks.create_task(
		title => NEW.title, prompt => NEW.prompt, description => NEW.description, type => NEW.type,
		command => NEW.command,
		context => NEW.context, agent => NEW.agent, priority => coalesce(NEW.priority, 0),
		output_schema => NEW.output_schema, owner => NEW.owner, assignees => NEW.assignees,
		followers => NEW.followers, skills => NEW.skills, labels => NEW.labels, metadata => NEW.metadata,
		external_id => NEW.external_id, origin => NEW.origin, idempotency_key => NEW.idempotency_key,
		callback_url => NEW.callback_url, parent => NEW.parent_id, run_after => NEW.run_after,
		budget_tokens => NEW.budget_tokens, budget_cost => NEW.budget_cost);
	RETURN NEW;
END
$$;

-- PATCH /tasks: each changed column goes where the functions change it:
-- archived, feedback, assignees, followers and status to their own
-- functions, everything else to update_task(), which refuses what cannot
-- change (naming the field).
CREATE FUNCTION agent_tasks_internal.tasks_update() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed jsonb := (SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}')
						FROM jsonb_each(to_jsonb(NEW)) n
					   WHERE n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key);
	patch jsonb := changed - ARRAY['archived', 'feedback', 'assignees', 'followers', 'status'];
BEGIN
	IF patch <> '{}' THEN
		PERFORM agent_tasks.update_task(OLD.id, patch);
	END IF;
	IF changed ? 'assignees' THEN
		PERFORM agent_tasks.set_assignees(OLD.id, coalesce(NEW.assignees, '{}'));
	END IF;
	IF changed ? 'followers' THEN
		PERFORM agent_tasks.add_followers(OLD.id, ARRAY(SELECT unnest(NEW.followers) EXCEPT SELECT unnest(OLD.followers)));
		PERFORM agent_tasks.remove_followers(OLD.id, ARRAY(SELECT unnest(OLD.followers) EXCEPT SELECT unnest(NEW.followers)));
	END IF;
	IF changed ? 'feedback' THEN
		PERFORM agent_tasks.send_feedback(OLD.id, NEW.feedback);
	END IF;
	IF changed ? 'archived' AND NEW.archived THEN
		PERFORM agent_tasks.archive_task(OLD.id);
	ELSIF changed ? 'archived' THEN
		PERFORM agent_tasks.unarchive_task(OLD.id);
	END IF;
	IF changed ? 'status' THEN
		-- (PT403 naming the scope: PostgREST answers a key request's 42501 with 401)
		IF NOT has_function_privilege('agent_tasks.set_task_status(uuid, text, text, jsonb, jsonb)', 'EXECUTE') THEN
			PERFORM agent_tasks_internal.raise('PT403', 'only workers set a status',
				format('role %s may not execute agent_tasks.set_task_status()', current_user),
				'Drive the task with process_task, stop_task, cancel_task or retry_task; a status is set with the worker scope.');
		END IF;
		PERFORM agent_tasks.set_task_status(OLD.id, NEW.status);
	END IF;
	NEW := agent_tasks.get_task(OLD.id);
	RETURN NEW;
END
$$;

-- DELETE /tasks: delete_task().  A child deleted with its parent earlier in
-- the same statement is gone already: no row for it.
CREATE FUNCTION agent_tasks_internal.tasks_delete() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM 1 FROM agent_tasks.tasks v WHERE v.account = OLD.account AND v.id = OLD.id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM agent_tasks.delete_task(OLD.id);
	RETURN OLD;
END
$$;

CREATE TRIGGER tasks_insert INSTEAD OF INSERT ON agent_tasks.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.tasks_insert();
CREATE TRIGGER tasks_update INSTEAD OF UPDATE ON agent_tasks.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.tasks_update();
CREATE TRIGGER tasks_delete INSTEAD OF DELETE ON agent_tasks.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.tasks_delete();

-- POST /messages: send_message() (a follow-up, or the answer to a
-- clarification question).  A conversation is append-only, like the
-- activity trail: PATCH and DELETE are refused with its PT403.
CREATE FUNCTION agent_tasks_internal.messages_change() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		PERFORM agent_tasks_internal.raise('PT403', 'messages cannot be changed',
			format('message %s of task %s', OLD.id, OLD.task_id),
			'A conversation is append-only; it disappears only with its task (agent_tasks.delete_task).');
	END IF;
	PERFORM agent_tasks_internal.refuse_server_columns('messages', to_jsonb(NEW),
		ARRAY['task_id', 'body', 'role', 'data']);
	NEW := agent_tasks.send_message(NEW.task_id, NEW.body, coalesce(NEW.role, 'user'), coalesce(NEW.data, '{}'));
	RETURN NEW;
END
$$;

CREATE TRIGGER messages_change INSTEAD OF INSERT OR UPDATE OR DELETE ON agent_tasks.messages
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.messages_change();

-- POST and DELETE /task_assignees and /task_followers: one person at a time.
CREATE FUNCTION agent_tasks_internal.task_people_change() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks.tasks;
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM agent_tasks_internal.refuse_server_columns(TG_TABLE_NAME, to_jsonb(NEW), ARRAY['task_id', 'email']);
		IF TG_TABLE_NAME = 'task_assignees' THEN
			t := agent_tasks.get_task(NEW.task_id);
			t := agent_tasks.set_assignees(NEW.task_id, t.assignees || NEW.email);
		ELSE
			t := agent_tasks.add_followers(NEW.task_id, ARRAY[NEW.email]);
		END IF;
		NEW.account := t.account;
		NEW.email := lower(btrim(NEW.email));
		NEW.created_at := now();
		RETURN NEW;
	END IF;
	IF TG_TABLE_NAME = 'task_assignees' THEN
		t := agent_tasks.get_task(OLD.task_id);
		PERFORM agent_tasks.set_assignees(OLD.task_id, array_remove(t.assignees, OLD.email));
	ELSE
		PERFORM agent_tasks.remove_followers(OLD.task_id, ARRAY[OLD.email]);
	END IF;
	RETURN OLD;
END
$$;

CREATE TRIGGER task_assignees_change INSTEAD OF INSERT OR DELETE ON agent_tasks.task_assignees
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_people_change();
CREATE TRIGGER task_followers_change INSTEAD OF INSERT OR DELETE ON agent_tasks.task_followers
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_people_change();

-- PATCH and DELETE /webhook_endpoints (admins).  POST is refused: the
-- secret of a new endpoint is shown once, in the answer of
-- create_webhook(), and the view has no place for it.
CREATE FUNCTION agent_tasks_internal.webhook_endpoints_change() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed jsonb;
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM agent_tasks_internal.raise('PT403', 'endpoints are created with create_webhook()',
			'Its answer carries the endpoint''s secret, shown only that once.',
			'POST /rpc/create_webhook {"url": ..., "events": [...]} (events default to all).');
	END IF;
	IF TG_OP = 'DELETE' THEN
		PERFORM agent_tasks.delete_webhook(OLD.id);
		RETURN OLD;
	END IF;
	changed := (SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}')
				  FROM jsonb_each(to_jsonb(NEW)) n
				 WHERE n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key);
	IF changed - 'enabled' <> '{}' THEN
		PERFORM agent_tasks.update_webhook(OLD.id, changed - 'enabled');
	END IF;
	IF changed ? 'enabled' AND NEW.enabled THEN
		PERFORM agent_tasks.enable_webhook(OLD.id);
	ELSIF changed ? 'enabled' THEN
		PERFORM agent_tasks.disable_webhook(OLD.id);
	END IF;
	SELECT * INTO NEW FROM agent_tasks.webhook_endpoints e WHERE e.account = OLD.account AND e.id = OLD.id;
	RETURN NEW;
END
$$;

CREATE TRIGGER webhook_endpoints_change INSTEAD OF INSERT OR UPDATE OR DELETE ON agent_tasks.webhook_endpoints
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.webhook_endpoints_change();

-- PostgREST 12 calls an RPC's overload that takes a single unnamed jsonb
-- with the whole body when the body's keys match no other signature of the
-- function (otherwise it answers 404 PGRST202, naming no field).  Such an
-- overload names the keys that are no argument of the function, and the
-- argument a camelCase key stands for (callbackUrl: callback_url).
CREATE FUNCTION agent_tasks_internal.refuse_unknown_arguments(function_name name, body jsonb)
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	known text[] := ARRAY(SELECT DISTINCT a.name FROM pg_proc p, unnest(p.proargnames) a(name)
						   WHERE p.pronamespace = 'agent_tasks'::regnamespace AND p.proname = function_name
							 AND a.name <> '' ORDER BY 1);
	unknown text[];
	meant text[];
BEGIN
	IF jsonb_typeof(body) IS DISTINCT FROM 'object' THEN
		PERFORM agent_tasks_internal.raise('PT400', format('the arguments of %s must be a JSON object', function_name),
			format('got a JSON %s', coalesce(jsonb_typeof(body), 'null')), NULL);
	END IF;
	unknown := ARRAY(SELECT k FROM jsonb_object_keys(body) k WHERE k <> ALL (known) ORDER BY k);
	meant := ARRAY(SELECT format('%s is %s', k, lower(regexp_replace(k, '([a-z0-9])([A-Z])', '\1_\2', 'g')))
					 FROM unnest(unknown) k
					WHERE lower(regexp_replace(k, '([a-z0-9])([A-Z])', '\1_\2', 'g')) = ANY (known));
	IF cardinality(unknown) > 0 THEN
		PERFORM agent_tasks_internal.raise('PT400',
			format('unknown argument%s of %s: %s', CASE WHEN cardinality(unknown) > 1 THEN 's' ELSE '' END,
				   function_name, array_to_string(unknown, ', ')),
			format('%s takes %s.', function_name, array_to_string(known, ', ')),
			CASE WHEN cardinality(meant) > 0 THEN array_to_string(meant, '; ') || '.' END);
	END IF;
END
$$;

-- (From SQL it is create_task with its arguments in one JSON object.)
CREATE FUNCTION agent_tasks.create_task(jsonb)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a record;
BEGIN
	PERFORM agent_tasks_internal.refuse_unknown_arguments('create_task', $1);
	SELECT * INTO a FROM jsonb_to_record($1) AS x(title text, prompt text, type text, command text, items jsonb,
		context jsonb, agent text, priority integer, output_schema jsonb, owner text, assignees text[],
		followers text[], skills text[], labels text[], metadata jsonb, external_id text, origin text,
		idempotency_key text, callback_url text, parent uuid, run_after timestamptz, depends_on uuid[],
		budget_tokens bigint, budget_cost numeric, auto_process boolean, description text);
	RETURN agent_tasks.create_task(title => a.title, prompt => a.prompt, type => a.type, command => a.command,
		items => a.items, context => a.context, agent => a.agent,
		priority => CASE WHEN $1 ? 'priority' THEN a.priority ELSE 0 END, output_schema => a.output_schema,
		owner => a.owner, assignees => a.assignees, followers => a.followers, skills => a.skills,
		labels => a.labels, metadata => a.metadata, external_id => a.external_id, origin => a.origin,
		idempotency_key => a.idempotency_key, callback_url => a.callback_url, parent => a.parent,
		run_after => a.run_after, depends_on => a.depends_on, budget_tokens => a.budget_tokens,
		budget_cost => a.budget_cost, auto_process => a.auto_process, description => a.description);
END
$$;
COMMENT ON FUNCTION agent_tasks.create_task(jsonb) IS 'create_task with its arguments in one JSON object. PostgREST calls it when the keys of a POST /rpc/create_task body match no argument list: it answers PT400 naming the unknown keys (and the argument a camelCase key stands for).';

-- Who may use which verb: the roles that may call the functions behind it.
GRANT INSERT, UPDATE, DELETE ON agent_tasks.tasks TO agent_tasks_writer;
GRANT INSERT, UPDATE, DELETE ON agent_tasks.messages TO agent_tasks_writer;
GRANT INSERT, DELETE ON agent_tasks.task_assignees, agent_tasks.task_followers TO agent_tasks_writer;
GRANT INSERT, UPDATE, DELETE ON agent_tasks.webhook_endpoints TO agent_tasks_admin;
