-- People and conversation: assignees, followers, messages and feedback;
-- and the plain edits of a task: update, archive, delete.

CREATE FUNCTION agent_tasks.set_assignees(task uuid, emails text[])
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	ids uuid[];
BEGIN
	IF cardinality(emails) > 100 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'too many assignees',
			format('%s e-mail addresses were given; the limit is 100.', cardinality(emails)), NULL);
	END IF;
	ids := ARRAY(SELECT DISTINCT agent_tasks_internal.user_id(t.account, e)
				   FROM unnest(coalesce(emails, '{}')) e);
	DELETE FROM agent_tasks_internal.task_assignees a
	 WHERE a.account = t.account AND a.task_id = t.id AND a.user_id <> ALL (ids);
	INSERT INTO agent_tasks_internal.task_assignees (account, task_id, user_id)
	SELECT t.account, t.id, u FROM unnest(ids) u ORDER BY u
	ON CONFLICT DO NOTHING;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.set_assignees(uuid, text[]) IS 'Make the assignees exactly this set of e-mail addresses (people are provisioned on first mention; an empty set unassigns everyone). Each addition and removal is an activity.';

CREATE FUNCTION agent_tasks.add_followers(task uuid, emails text[])
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	IF cardinality(emails) > 100 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'too many followers',
			format('%s e-mail addresses were given; the limit is 100.', cardinality(emails)), NULL);
	END IF;
	INSERT INTO agent_tasks_internal.task_followers (account, task_id, user_id)
	SELECT DISTINCT t.account, t.id, agent_tasks_internal.user_id(t.account, e)
	  FROM unnest(coalesce(emails, '{}')) e
	ON CONFLICT DO NOTHING;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.add_followers(uuid, text[]) IS 'Add followers by e-mail address (already following is fine).';

CREATE FUNCTION agent_tasks.remove_followers(task uuid, emails text[])
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	DELETE FROM agent_tasks_internal.task_followers f
	 USING agent_tasks_internal.users u
	 WHERE f.account = t.account AND f.task_id = t.id
	   AND u.account = f.account AND u.id = f.user_id
	   AND u.email = ANY (ARRAY(SELECT lower(btrim(e)) FROM unnest(emails) e));
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.remove_followers(uuid, text[]) IS 'Remove followers by e-mail address (addresses that do not follow are ignored).';

CREATE FUNCTION agent_tasks.send_message(task uuid, body text, role text DEFAULT 'user',
	data jsonb DEFAULT '{}')
	RETURNS agent_tasks.messages
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	message_id uuid := agent_tasks.uuid_v7();
	result agent_tasks.messages;
BEGIN
	IF role IS NULL OR role NOT IN ('user', 'agent', 'system') THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid message role',
			format('role = %s', coalesce(quote_literal(role), 'null')),
			'Use user, agent or system.');
	END IF;
	IF role <> 'user' AND NOT pg_has_role(agent_tasks_internal.caller(), 'agent_tasks_worker', 'MEMBER') THEN
		PERFORM agent_tasks_internal.raise('PT403', format('only agents may send %s messages', role),
			format('role %s is not a member of agent_tasks_worker', agent_tasks_internal.caller()),
			'Send the message with role => ''user''.');
	END IF;
	PERFORM agent_tasks_internal.check_text('body', body, 100000, true);
	INSERT INTO agent_tasks_internal.messages (account, id, task_id, run_id, role, author, body, data)
	VALUES (t.account, message_id, t.id, t.latest_run_id, role, agent_tasks_internal.current_actor(), body,
			coalesce(agent_tasks_internal.check_json('data', data, 'object'), '{}'));

	-- A person's answer to a clarification question re-queues the run; a
	-- follow-up on a completed or failed task in prompt mode starts a new
	-- run with it, as Mintlify and Flapjack do (a command-mode parent runs
	-- through its children: process_task() restarts those).
	IF role = 'user' AND t.status = 'needs_clarification' THEN
		PERFORM agent_tasks_internal.move_task(t, 'queued', 'clarified');
	ELSIF role = 'user' AND t.status IN ('completed', 'failed') AND t.command IS NULL THEN
		-- (the input process_task(task, message, files) would give the run)
		PERFORM agent_tasks_internal.queue_run(agent_tasks_internal.lock_task(task), 1, t.run_after, 'follow_up',
			jsonb_strip_nulls(jsonb_build_object('message', body, 'files', data -> 'files')));
	END IF;

	SELECT * INTO result FROM agent_tasks.messages m WHERE m.account = t.account AND m.id = message_id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.send_message(uuid, text, text, jsonb) IS 'Add a message to the task''s conversation (role user; agent and system for agent_tasks_worker). A user message answers a clarification question and re-queues the run; on a completed or failed task (prompt mode) it starts a follow-up run. On other statuses it only joins the conversation.';

CREATE FUNCTION agent_tasks.send_feedback(task uuid, feedback text)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	IF feedback IS NOT NULL AND feedback NOT IN ('like', 'dislike') THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid feedback',
			format('feedback = %s', quote_literal(feedback)),
			'Use like, dislike, or null to clear it.');
	END IF;
	UPDATE agent_tasks_internal.tasks SET feedback = send_feedback.feedback, updated_at = now()
	 WHERE account = t.account AND id = t.id;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.send_feedback(uuid, text) IS 'Rate the task''s result: like, dislike, or null to clear.';

CREATE FUNCTION agent_tasks.update_task(task uuid, patch jsonb)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	field_types constant jsonb := '{"title": "string", "prompt": "string", "description": "string", "type": "string",
		"context": "object", "agent": "string", "priority": "number", "output_schema": "object",
		"owner": "string", "skills": "array", "labels": "array", "metadata": "object",
		"external_id": "string", "callback_url": "string", "run_after": "string",
		"budget_tokens": "number", "budget_cost": "number"}';
	f record;
	text_array text[];
BEGIN
	-- room for a prompt of 100000 characters; context and metadata are checked on their own
	PERFORM agent_tasks_internal.check_json('patch', patch, 'object', 1048576);
	IF patch ? 'prompt' AND patch ? 'description' AND patch -> 'prompt' IS DISTINCT FROM patch -> 'description' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'prompt and description differ',
			'description is another name for prompt; both were given, with different values.',
			'Pass one of them.');
	END IF;
	FOR f IN SELECT key, value FROM jsonb_each(coalesce(patch, '{}'))
	LOOP
		IF NOT field_types ? f.key THEN
			PERFORM agent_tasks_internal.raise('PT400', format('field %s cannot be changed', quote_ident(f.key)),
				format('patch = %s', left(patch::text, 200)),
				'Mutable fields: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(field_types) k) || '.');
		END IF;
		IF jsonb_typeof(f.value) NOT IN ('null', field_types ->> f.key) THEN
			PERFORM agent_tasks_internal.raise('PT400', format('%s must be a JSON %s', f.key, field_types ->> f.key),
				format('%s = %s', f.key, left(f.value::text, 200)), NULL);
		END IF;
		IF f.key IN ('skills', 'labels') AND jsonb_typeof(f.value) = 'array' THEN
			IF EXISTS (SELECT 1 FROM jsonb_array_elements(f.value) e WHERE jsonb_typeof(e) <> 'string') THEN
				PERFORM agent_tasks_internal.raise('PT400', format('%s must be an array of strings', f.key),
					format('%s = %s', f.key, left(f.value::text, 200)), NULL);
			END IF;
			text_array := agent_tasks_internal.check_tags(f.key,
				ARRAY(SELECT jsonb_array_elements_text(f.value)));
		END IF;
		CASE f.key
			WHEN 'title' THEN
				t.title := btrim(agent_tasks_internal.check_text('title', f.value #>> '{}', 500, true));
				t.title_derived := false;
			WHEN 'prompt', 'description' THEN
				t.prompt := agent_tasks_internal.check_text('prompt', f.value #>> '{}', 100000);
			WHEN 'type' THEN t.type := agent_tasks_internal.check_text('type', f.value #>> '{}', 100);
			WHEN 'context' THEN t.context := coalesce(agent_tasks_internal.check_json('context', f.value, 'object'), '{}');
			WHEN 'agent' THEN t.agent_id := agent_tasks_internal.agent_id(t.account, f.value #>> '{}');
			WHEN 'priority' THEN
				IF (f.value #>> '{}')::numeric NOT BETWEEN -1000 AND 1000 OR f.value IS NULL
					OR jsonb_typeof(f.value) = 'null' OR (f.value #>> '{}')::numeric <> trunc((f.value #>> '{}')::numeric) THEN
					PERFORM agent_tasks_internal.raise('PT400', 'priority is out of range',
						format('priority = %s', f.value), 'Use an integer from -1000 to 1000 (higher runs first).');
				END IF;
				t.priority := (f.value #>> '{}')::integer;
			WHEN 'output_schema' THEN t.output_schema := agent_tasks_internal.check_output_schema(f.value);
			WHEN 'owner' THEN
				t.owner_id := CASE WHEN jsonb_typeof(f.value) = 'null' THEN NULL
								   ELSE agent_tasks_internal.user_id(t.account, f.value #>> '{}') END;
			WHEN 'skills' THEN t.skills := coalesce(text_array, '{}');
			WHEN 'labels' THEN t.labels := coalesce(text_array, '{}');
			WHEN 'metadata' THEN t.metadata := coalesce(agent_tasks_internal.check_json('metadata', f.value, 'object'), '{}');
			WHEN 'external_id' THEN t.external_id := agent_tasks_internal.check_text('external_id', f.value #>> '{}', 200);
			WHEN 'callback_url' THEN t.callback_url := agent_tasks_internal.check_url('callback_url', f.value #>> '{}');
			WHEN 'run_after' THEN
				BEGIN
					t.run_after := (f.value #>> '{}')::timestamptz;
				EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
					PERFORM agent_tasks_internal.raise('PT400', 'run_after is not a timestamp',
						format('run_after = %s', f.value), 'Use ISO 8601, e.g. 2030-01-01T09:00:00Z.');
				END;
			WHEN 'budget_tokens' THEN
				IF jsonb_typeof(f.value) = 'number' AND ((f.value #>> '{}')::numeric <> trunc((f.value #>> '{}')::numeric)
					OR (f.value #>> '{}')::numeric NOT BETWEEN 1 AND 9223372036854775807) THEN
					PERFORM agent_tasks_internal.raise('PT400', 'budget_tokens must be a positive integer',
						format('budget_tokens = %s', f.value), 'Use null for no limit.');
				END IF;
				t.budget_tokens := (f.value #>> '{}')::bigint;
			WHEN 'budget_cost' THEN t.budget_cost := (f.value #>> '{}')::numeric;
		END CASE;
		text_array := NULL;
	END LOOP;
	IF coalesce(t.budget_tokens, 1) <= 0 OR coalesce(t.budget_cost, 1) <= 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'budgets must be positive',
			format('budget_tokens = %s, budget_cost = %s', coalesce(t.budget_tokens::text, 'null'),
				coalesce(t.budget_cost::text, 'null')),
			'Use null for no limit.');
	END IF;

	UPDATE agent_tasks_internal.tasks
	   SET title = t.title, title_derived = t.title_derived, prompt = t.prompt, type = t.type, context = t.context,
		   agent_id = t.agent_id, priority = t.priority, output_schema = t.output_schema,
		   owner_id = t.owner_id, skills = t.skills, labels = t.labels, metadata = t.metadata,
		   external_id = t.external_id, callback_url = t.callback_url, run_after = t.run_after,
		   budget_tokens = t.budget_tokens, budget_cost = t.budget_cost, updated_at = now()
	 WHERE account = t.account AND id = t.id;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.update_task(uuid, jsonb) IS 'Change mutable fields of a task: the patch object names them (null clears; description is another name for prompt; a title makes title_derived false). Status, ids and history cannot be patched.';

CREATE FUNCTION agent_tasks.archive_task(task uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	UPDATE agent_tasks_internal.tasks SET archived_at = now(), updated_at = now()
	 WHERE account = t.account AND id = t.id AND archived_at IS NULL;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.archive_task(uuid) IS 'Archive the task (hidden from default listings; not a status). Archiving an archived task does nothing.';

CREATE FUNCTION agent_tasks.unarchive_task(task uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	UPDATE agent_tasks_internal.tasks SET archived_at = NULL, updated_at = now()
	 WHERE account = t.account AND id = t.id AND archived_at IS NOT NULL;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.unarchive_task(uuid) IS 'Bring an archived task back into default listings.';

CREATE FUNCTION agent_tasks.delete_task(task uuid)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	dependents uuid[];
	dependent agent_tasks_internal.tasks;
BEGIN
	-- Tasks waiting for this task or one of its descendants: once these are
	-- gone, the ones that waited for nothing else are queued (as with
	-- remove_dependency) instead of staying blocked forever.
	dependents := ARRAY(
		WITH RECURSIVE doomed(id) AS (
			SELECT t.id
			UNION ALL
			SELECT c.id FROM agent_tasks_internal.tasks c
			  JOIN doomed ON c.account = t.account AND c.parent_id = doomed.id)
		SELECT DISTINCT d.task_id FROM agent_tasks_internal.task_dependencies d
		 WHERE d.account = t.account AND d.depends_on IN (SELECT id FROM doomed));
	DELETE FROM agent_tasks_internal.tasks WHERE account = t.account AND id = t.id;
	FOR dependent IN SELECT * FROM agent_tasks_internal.tasks x
					  WHERE x.account = t.account AND x.id = ANY (dependents)
					  ORDER BY x.id FOR UPDATE
	LOOP
		PERFORM agent_tasks_internal.release_if_ready(dependent);
	END LOOP;
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.delete_task(uuid) IS 'Delete the task with everything under it: child tasks, runs, messages, activities, people links and dependencies.';

CREATE FUNCTION agent_tasks.list_tasks(
	status text DEFAULT NULL,
	type text DEFAULT NULL,
	agent text DEFAULT NULL,
	owner text DEFAULT NULL,
	mine boolean DEFAULT false,
	assignee text DEFAULT NULL,
	archived text DEFAULT 'false',
	created_by text DEFAULT NULL,
	repository text DEFAULT NULL,
	origin text DEFAULT NULL,
	external_id text DEFAULT NULL,
	search text DEFAULT NULL,
	parent uuid DEFAULT NULL,
	page_size integer DEFAULT 50,
	page_offset integer DEFAULT 0)
	RETURNS jsonb
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_account text := agent_tasks.current_account();
	query tsquery;
	result jsonb;
BEGIN
	IF list_tasks.status IS NOT NULL THEN
		PERFORM agent_tasks.status_kind(list_tasks.status);
	END IF;
	IF list_tasks.archived IS NULL OR list_tasks.archived NOT IN ('true', 'false', 'all') THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid archived filter',
			format('archived = %s', coalesce(quote_literal(list_tasks.archived), 'null')),
			'Use true, false or all.');
	END IF;
	IF list_tasks.page_size IS NULL OR list_tasks.page_size NOT BETWEEN 1 AND 1000
		OR list_tasks.page_offset IS NULL OR list_tasks.page_offset < 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid page',
			format('page_size = %s, page_offset = %s', coalesce(list_tasks.page_size::text, 'null'),
				coalesce(list_tasks.page_offset::text, 'null')),
			'page_size is 1 to 1000, page_offset 0 or more.');
	END IF;
	-- A blank search (or one of stop words only) filters nothing, like an empty search box.
	IF list_tasks.search ~ '\S' THEN
		query := websearch_to_tsquery('english', list_tasks.search);
		IF numnode(query) = 0 THEN
			query := NULL;
		END IF;
	END IF;

	WITH matching AS (
		SELECT v.*
		  FROM agent_tasks.tasks v
		 WHERE v.account = caller_account
		   AND (list_tasks.status IS NULL OR v.status = list_tasks.status)
		   AND (list_tasks.type IS NULL OR v.type = list_tasks.type)
		   AND (list_tasks.agent IS NULL OR v.agent = list_tasks.agent)
		   AND (list_tasks.owner IS NULL OR v.owner = lower(list_tasks.owner))
		   AND (NOT list_tasks.mine OR v.mine)
		   AND (list_tasks.assignee IS NULL OR lower(list_tasks.assignee) = ANY (v.assignees))
		   AND (list_tasks.archived = 'all' OR v.archived = (list_tasks.archived = 'true'))
		   AND (list_tasks.created_by IS NULL OR v.created_by = list_tasks.created_by)
		   AND (list_tasks.repository IS NULL OR v.repository = list_tasks.repository)
		   AND (list_tasks.origin IS NULL OR v.origin = list_tasks.origin)
		   AND (list_tasks.external_id IS NULL OR v.external_id = list_tasks.external_id)
		   AND (query IS NULL OR v.search @@ query)
		   AND (list_tasks.parent IS NULL OR v.parent_id = list_tasks.parent)
	), page AS (
		SELECT m.* FROM matching m
		 ORDER BY m.id DESC
		 LIMIT list_tasks.page_size OFFSET list_tasks.page_offset
	)
	SELECT jsonb_build_object(
			'count', (SELECT count(*) FROM matching),
			'limit', list_tasks.page_size,
			'offset', list_tasks.page_offset,
			'results', coalesce((SELECT jsonb_agg(to_jsonb(p) - 'search' - 'account' ORDER BY p.id DESC) FROM page p), '[]'))
	  INTO result;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.list_tasks IS 'One page of tasks, newest first, with the total: {"count", "limit", "offset", "results"}; page_size (1 to 1000, default 50) and page_offset choose the page (over REST, ?limit= and ?offset= are PostgREST''s own and do not reach the function). Filters: status, type, agent, owner, mine, assignee, archived (true / false / all), created_by, repository, origin, external_id, search (full text), parent.';
