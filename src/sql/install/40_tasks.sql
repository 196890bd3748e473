-- Tasks: creation (prompt and command mode), reading, updating, archiving
-- and deleting.  Functions run with the caller's rights; they name the
-- account explicitly so that every lookup uses the (account, id) keys, and
-- row-level security checks the same thing again.

-- Input checks shared by the API functions (src/input_checks.c): each
-- refusal is PT400 with the offending value in the detail.
CREATE FUNCTION agent_tasks_internal.check_text(field text, value text, max_length integer,
	required boolean DEFAULT false)
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_check_text'
	LANGUAGE C;

CREATE FUNCTION agent_tasks_internal.check_json(field text, value jsonb, expected text,
	max_bytes integer DEFAULT 65536)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'at_check_json'
	LANGUAGE C;

CREATE FUNCTION agent_tasks_internal.check_tags(field text, value text[])
	RETURNS text[]
	AS 'MODULE_PATHNAME', 'at_check_tags'
	LANGUAGE C;

CREATE FUNCTION agent_tasks_internal.check_url(field text, url text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_check_url'
	LANGUAGE C;

-- An output JSON Schema that agent_tasks.validate_json can apply: the
-- keywords of its subset must have values of the right kind (others, like
-- title or description, are passed over).
CREATE FUNCTION agent_tasks_internal.check_output_schema(schema jsonb, path text DEFAULT 'output_schema')
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	problem text;
	keyword text;
	sub record;
BEGIN
	IF check_output_schema.path = 'output_schema' THEN
		PERFORM agent_tasks_internal.check_json('output_schema', schema, 'object');
	END IF;
	IF schema IS NULL OR jsonb_typeof(schema) = 'null' THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(schema) <> 'object' THEN
		problem := 'a schema must be a JSON object';
	ELSIF schema ? 'type' AND NOT (
		(jsonb_typeof(schema -> 'type') = 'string'
		 AND schema ->> 'type' IN ('object', 'array', 'string', 'number', 'integer', 'boolean', 'null'))
		OR (jsonb_typeof(schema -> 'type') = 'array' AND NOT EXISTS (
			SELECT 1 FROM jsonb_array_elements(schema -> 'type') e
			 WHERE e #>> '{}' NOT IN ('object', 'array', 'string', 'number', 'integer', 'boolean', 'null')
				OR jsonb_typeof(e) <> 'string'))) THEN
		problem := 'type must be object, array, string, number, integer, boolean or null (or an array of them)';
	ELSIF schema ? 'enum' AND jsonb_typeof(schema -> 'enum') <> 'array' THEN
		problem := 'enum must be an array';
	ELSIF schema ? 'required' AND (jsonb_typeof(schema -> 'required') <> 'array' OR EXISTS (
		SELECT 1 FROM jsonb_array_elements(schema -> 'required') e WHERE jsonb_typeof(e) <> 'string')) THEN
		problem := 'required must be an array of property names';
	ELSIF schema ? 'properties' AND jsonb_typeof(schema -> 'properties') <> 'object' THEN
		problem := 'properties must be an object of schemas';
	ELSIF schema ? 'additionalProperties' AND jsonb_typeof(schema -> 'additionalProperties') NOT IN ('boolean', 'object') THEN
		problem := 'additionalProperties must be a boolean or a schema';
	END IF;
	FOREACH keyword IN ARRAY ARRAY['minItems', 'maxItems', 'minLength', 'maxLength', 'minimum', 'maximum']
	LOOP
		EXIT WHEN problem IS NOT NULL;
		IF schema ? keyword AND (jsonb_typeof(schema -> keyword) <> 'number'
			OR (keyword NOT IN ('minimum', 'maximum')
				AND ((schema ->> keyword)::numeric < 0 OR (schema ->> keyword)::numeric <> trunc((schema ->> keyword)::numeric)))) THEN
			problem := format('%s must be a %s', keyword,
							  CASE WHEN keyword IN ('minimum', 'maximum') THEN 'number' ELSE 'non-negative integer' END);
		END IF;
	END LOOP;
	IF problem IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid output_schema',
			format('%s: %s', check_output_schema.path, problem),
			'Use the JSON Schema subset that agent_tasks.validate_json applies (see README).');
	END IF;

	FOR sub IN SELECT key, value FROM jsonb_each(CASE WHEN jsonb_typeof(schema -> 'properties') = 'object'
													  THEN schema -> 'properties' ELSE '{}' END)
	LOOP
		PERFORM agent_tasks_internal.check_output_schema(sub.value, check_output_schema.path || '.properties.' || sub.key);
	END LOOP;
	IF schema ? 'items' THEN
		PERFORM agent_tasks_internal.check_output_schema(schema -> 'items', check_output_schema.path || '.items');
	END IF;
	IF jsonb_typeof(schema -> 'additionalProperties') = 'object' THEN
		PERFORM agent_tasks_internal.check_output_schema(schema -> 'additionalProperties',
														 check_output_schema.path || '.additionalProperties');
	END IF;
	RETURN schema;
END
$$;

-- The id of a person of this account, provisioned on first mention.
CREATE FUNCTION agent_tasks_internal.user_id(account text, email text)
	RETURNS uuid
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	normalized text := lower(btrim(email));
	id uuid;
BEGIN
	IF normalized IS NULL OR length(normalized) > 320
		OR normalized !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:].]+$' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid e-mail address',
			format('%s is not an e-mail address.', coalesce(quote_literal(email), 'null')),
			'Use an address like name@example.com.');
	END IF;
	INSERT INTO agent_tasks_internal.users AS u (account, email)
	VALUES (user_id.account, normalized)
	ON CONFLICT ON CONSTRAINT users_account_email_key DO NOTHING
	RETURNING u.id INTO id;
	IF id IS NULL THEN
		SELECT u.id INTO id FROM agent_tasks_internal.users u
		 WHERE u.account = user_id.account AND u.email = normalized;
	END IF;
	RETURN id;
END
$$;

CREATE FUNCTION agent_tasks_internal.agent_id(account text, name text)
	RETURNS uuid
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	id uuid;
BEGIN
	IF name IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT a.id INTO id FROM agent_tasks_internal.agents a
	 WHERE a.account = agent_id.account AND a.name = agent_id.name;
	IF id IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT404', 'agent not found',
			format('No agent named %s in this account.', quote_literal(name)),
			'Create it with agent_tasks.create_agent(), or list agent_tasks.agents.');
	END IF;
	RETURN id;
END
$$;

CREATE FUNCTION agent_tasks_internal.not_found(task uuid)
	RETURNS void
	LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT agent_tasks_internal.raise('PT404', 'task not found',
		format('No task %s in this account.', coalesce(task::text, 'null')),
		'Check the id: tasks of other accounts are never visible.')
$$;

-- Lock a task of an account, after its ancestors.  Every path that changes
-- tasks and runs takes row locks in one order -- ancestors top-down, the
-- task, then its runs -- so that a parent's change (which reaches its
-- children) and a child's change (which reaches its parent) cannot deadlock.
-- Returns a row of nulls when there is no such task.
CREATE FUNCTION agent_tasks_internal.lock_task_in(account text, task uuid)
	RETURNS agent_tasks_internal.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ancestors uuid[] := '{}';
	parent uuid;
	t agent_tasks_internal.tasks;
BEGIN
	-- Walk up by key, one row per level (a recursive query could be
	-- planned as a scan of every task): the ancestors, root first.
	SELECT x.parent_id INTO parent FROM agent_tasks_internal.tasks x
	 WHERE x.account = lock_task_in.account AND x.id = task;
	WHILE parent IS NOT NULL AND cardinality(ancestors) < 100 LOOP
		ancestors := parent || ancestors;
		SELECT x.parent_id INTO parent FROM agent_tasks_internal.tasks x
		 WHERE x.account = lock_task_in.account AND x.id = parent;
	END LOOP;
	IF cardinality(ancestors) > 0 THEN
		PERFORM 1 FROM agent_tasks_internal.tasks x
		 WHERE x.account = lock_task_in.account AND x.id = ANY (ancestors)
		 ORDER BY array_position(ancestors, x.id)
		   FOR UPDATE;
	END IF;
	SELECT * INTO t FROM agent_tasks_internal.tasks x
	 WHERE x.account = lock_task_in.account AND x.id = task
	   FOR UPDATE;
	RETURN t;
END
$$;

-- The task row of the current account, locked (with its ancestors) for the
-- rest of the transaction; PT404 when it is not this account's.
CREATE FUNCTION agent_tasks_internal.lock_task(task uuid)
	RETURNS agent_tasks_internal.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task_in(agent_tasks.current_account(), task);
BEGIN
	IF t.id IS NULL THEN
		PERFORM agent_tasks_internal.not_found(task);
	END IF;
	RETURN t;
END
$$;

CREATE FUNCTION agent_tasks.get_task(task uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result agent_tasks.tasks;
BEGIN
	SELECT * INTO result FROM agent_tasks.tasks v
	 WHERE v.account = agent_tasks.current_account() AND v.id = task;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.not_found(task);
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.get_task(uuid) IS 'One task of the current account; PT404 when it does not exist or belongs to another account.';

-- PL/pgSQL, not SQL: its INSERT keeps its plan.  A task is new and pending,
-- or new and queued when t names its first run (the transition creates it).
CREATE FUNCTION agent_tasks_internal.insert_task(t agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO agent_tasks_internal.tasks
		(account, id, parent_id, title, prompt, type, command, item, context, agent_id, priority,
		 output_schema, owner_id, created_by, skills, labels, metadata, external_id, origin,
		 idempotency_key, request_hash, callback_url, run_after, latest_run_id, status, status_reason,
		 budget_tokens, budget_cost, title_derived)
	VALUES
		(t.account, t.id, t.parent_id, t.title, t.prompt, t.type, t.command, t.item, t.context,
		 t.agent_id, t.priority, t.output_schema, t.owner_id, t.created_by, t.skills, t.labels,
		 t.metadata, t.external_id, t.origin, t.idempotency_key, t.request_hash, t.callback_url,
		 t.run_after, t.latest_run_id, CASE WHEN t.latest_run_id IS NULL THEN 'pending' ELSE 'queued' END,
		 t.status_reason, t.budget_tokens, t.budget_cost, t.title_derived);
END
$$;

-- The title of a task created without one (Flint and Mintlify create with a
-- prompt only): the first line of the prompt, else the command, cut at a
-- word boundary to at most 80 characters.
CREATE FUNCTION agent_tasks_internal.derive_title(prompt text, command text)
	RETURNS text
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN length(line) <= 80 THEN line
				ELSE coalesce(nullif(substring(left(line, 79) FROM '^(.*\S)\s'), ''), left(line, 79)) || '…' END
	  FROM (SELECT btrim(regexp_replace(
				coalesce(substring(prompt FROM '\S[^\n]*'), command), '\s+', ' ', 'g')) AS line) l
$$;

CREATE FUNCTION agent_tasks.create_task(
	title text DEFAULT NULL,
	prompt text DEFAULT NULL,
	type text DEFAULT NULL,
	command text DEFAULT NULL,
	items jsonb DEFAULT NULL,
	context jsonb DEFAULT '{}',
	agent text DEFAULT NULL,
	priority integer DEFAULT 0,
	output_schema jsonb DEFAULT NULL,
	owner text DEFAULT NULL,
	assignees text[] DEFAULT '{}',
	followers text[] DEFAULT '{}',
	skills text[] DEFAULT '{}',
	labels text[] DEFAULT '{}',
	metadata jsonb DEFAULT '{}',
	external_id text DEFAULT NULL,
	origin text DEFAULT NULL,
	idempotency_key text DEFAULT NULL,
	callback_url text DEFAULT NULL,
	parent uuid DEFAULT NULL,
	run_after timestamptz DEFAULT NULL,
	depends_on uuid[] DEFAULT '{}',
	budget_tokens bigint DEFAULT NULL,
	budget_cost numeric DEFAULT NULL,
	auto_process boolean DEFAULT false,
	description text DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks;
	child agent_tasks_internal.tasks;
	existing agent_tasks_internal.tasks;
	item jsonb;
	n integer := 0;
	max_items integer;
	blocker uuid;
	blocked boolean := false;
BEGIN
	t.id := agent_tasks.uuid_v7();		-- also loads the library, so its settings are defined
	t.account := agent_tasks.current_account();
	t.created_by := agent_tasks_internal.current_actor();
	-- description is the prompt under the name PostHog and AGNT give it
	IF create_task.description IS DISTINCT FROM create_task.prompt
		AND create_task.description IS NOT NULL AND create_task.prompt IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'prompt and description differ',
			'description is another name for prompt; both were given, with different values.',
			'Pass one of them.');
	END IF;
	t.prompt := agent_tasks_internal.check_text('prompt', coalesce(create_task.prompt, create_task.description), 100000);
	t.command := agent_tasks_internal.check_text('command', create_task.command, 100);
	t.title_derived := create_task.title IS NULL AND (t.prompt ~ '\S' OR t.command ~ '\S');
	IF t.title_derived THEN
		t.title := agent_tasks_internal.derive_title(t.prompt, t.command);
	ELSIF create_task.title IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'a title or a prompt is required',
			'title, prompt (or description) and command are all missing or blank.',
			'Pass a title, or a prompt to make the title from.');
	ELSE
		t.title := btrim(agent_tasks_internal.check_text('title', create_task.title, 500, true));
	END IF;
	t.type := agent_tasks_internal.check_text('type', create_task.type, 100);
	t.context := coalesce(agent_tasks_internal.check_json('context', create_task.context, 'object'), '{}');
	t.metadata := coalesce(agent_tasks_internal.check_json('metadata', create_task.metadata, 'object'), '{}');
	t.output_schema := agent_tasks_internal.check_output_schema(create_task.output_schema);
	t.skills := agent_tasks_internal.check_tags('skills', create_task.skills);
	t.labels := agent_tasks_internal.check_tags('labels', create_task.labels);
	t.external_id := agent_tasks_internal.check_text('external_id', create_task.external_id, 200);
	t.origin := coalesce(agent_tasks_internal.check_text('origin', create_task.origin, 100), agent_tasks_internal.request_origin());
	t.idempotency_key := agent_tasks_internal.check_text('idempotency_key', create_task.idempotency_key, 200);
	t.callback_url := agent_tasks_internal.check_url('callback_url', create_task.callback_url);
	t.run_after := create_task.run_after;
	t.budget_tokens := create_task.budget_tokens;
	t.budget_cost := create_task.budget_cost;
	IF create_task.priority IS NULL OR create_task.priority NOT BETWEEN -1000 AND 1000 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'priority is out of range',
			format('priority = %s', coalesce(create_task.priority::text, 'null')),
			'Use an integer from -1000 to 1000 (higher runs first).');
	END IF;
	t.priority := create_task.priority;
	IF coalesce(create_task.budget_tokens, 1) <= 0 OR coalesce(create_task.budget_cost, 1) <= 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'budgets must be positive',
			format('budget_tokens = %s, budget_cost = %s', coalesce(create_task.budget_tokens::text, 'null'),
				coalesce(create_task.budget_cost::text, 'null')),
			'Leave a budget null for no limit.');
	END IF;

	PERFORM agent_tasks_internal.check_json('items', create_task.items, 'array', 1048576);
	max_items := current_setting('agent_tasks.max_items')::integer;
	IF jsonb_typeof(create_task.items) = 'array' THEN
		IF t.command IS NULL THEN
			PERFORM agent_tasks_internal.raise('PT400', 'items need a command',
				format('%s items were given without a command.', jsonb_array_length(create_task.items)),
				'Pass command => ''...'' with the items (command mode), or omit items (prompt mode).');
		END IF;
		IF jsonb_array_length(create_task.items) > max_items THEN
			PERFORM agent_tasks_internal.raise('PT400', 'too many items',
				format('%s items were given; the limit is %s.', jsonb_array_length(create_task.items), max_items),
				'Split the work into several tasks, or raise agent_tasks.max_items.');
		END IF;
	END IF;

	t.agent_id := agent_tasks_internal.agent_id(t.account, create_task.agent);
	IF coalesce(create_task.owner, agent_tasks.current_user_email()) IS NOT NULL THEN
		t.owner_id := agent_tasks_internal.user_id(t.account,
			coalesce(create_task.owner, agent_tasks.current_user_email()));
	END IF;
	IF create_task.parent IS NOT NULL THEN
		PERFORM 1 FROM agent_tasks_internal.tasks p
		 WHERE p.account = t.account AND p.id = create_task.parent;
		IF NOT FOUND THEN
			PERFORM agent_tasks_internal.not_found(create_task.parent);
		END IF;
		t.parent_id := create_task.parent;
	END IF;

	-- auto_process of a task of its own (no parent, items or blockers): it
	-- is created queued with its first run, as process_task() would queue
	-- it, without being locked and checked again.
	IF create_task.auto_process AND t.parent_id IS NULL AND coalesce(create_task.items, '[]') = '[]'
		AND cardinality(coalesce(create_task.depends_on, '{}')) = 0 THEN
		t.latest_run_id := agent_tasks.uuid_v7();
		t.status_reason := 'user_request';
	END IF;

	IF t.idempotency_key IS NOT NULL THEN
		t.request_hash := md5(jsonb_build_array(t.title, t.prompt, t.type, t.command, create_task.items,
			t.context, create_task.agent, t.priority, t.output_schema, create_task.owner,
			create_task.assignees, create_task.followers, t.skills, t.labels, t.metadata,
			t.external_id, t.origin, t.callback_url, t.parent_id, t.run_after,
			create_task.depends_on, t.budget_tokens, t.budget_cost, create_task.auto_process)::text);
		-- Wait for a concurrent creator of the same key, then compare.
		SELECT * INTO existing FROM agent_tasks_internal.tasks e
		 WHERE e.account = t.account AND e.idempotency_key = t.idempotency_key;
		IF NOT FOUND THEN
			BEGIN
				PERFORM agent_tasks_internal.insert_task(t);
			EXCEPTION WHEN unique_violation THEN
				SELECT * INTO existing FROM agent_tasks_internal.tasks e
				 WHERE e.account = t.account AND e.idempotency_key = t.idempotency_key;
			END;
		END IF;
		IF existing.id IS NOT NULL THEN
			IF existing.request_hash IS DISTINCT FROM t.request_hash THEN
				PERFORM agent_tasks_internal.raise('PT422', 'idempotency key reused with a different request',
					format('Key %s already created task %s with other parameters.',
						   quote_literal(t.idempotency_key), existing.id),
					'Send the same parameters to get the same task back, or use a new idempotency key.');
			END IF;
			RETURN agent_tasks.get_task(existing.id);
		END IF;
	ELSE
		PERFORM agent_tasks_internal.insert_task(t);
	END IF;

	PERFORM agent_tasks.set_assignees(t.id, create_task.assignees)
	  WHERE cardinality(create_task.assignees) > 0;
	PERFORM agent_tasks.add_followers(t.id, create_task.followers)
	  WHERE cardinality(create_task.followers) > 0;

	FOREACH blocker IN ARRAY coalesce(create_task.depends_on, '{}')
	LOOP
		PERFORM agent_tasks.add_dependency(t.id, blocker);
	END LOOP;

	-- Command mode: one child task per item, with its own context and external id.
	FOR item IN SELECT value FROM jsonb_array_elements(coalesce(create_task.items, '[]'))
	LOOP
		n := n + 1;
		IF jsonb_typeof(item) = 'string' THEN
			item := jsonb_build_object('title', item #>> '{}');
		ELSIF jsonb_typeof(item) <> 'object' THEN
			PERFORM agent_tasks_internal.raise('PT400', 'items must be objects or strings',
				format('item %s is a JSON %s: %s', n, jsonb_typeof(item), left(item::text, 200)),
				'Use {"title": ..., "context": {...} or "...", "external_id": ...} per item.');
		END IF;
		child := t;
		child.id := agent_tasks.uuid_v7();
		child.parent_id := t.id;
		child.idempotency_key := NULL;
		child.request_hash := NULL;
		child.callback_url := NULL;
		child.item := item;
		child.title := btrim(agent_tasks_internal.check_text(format('title of item %s', n),
			coalesce(item ->> 'title', format('%s (%s/%s)', t.title, n, jsonb_array_length(create_task.items))),
			500, true));
		child.prompt := agent_tasks_internal.check_text(format('prompt of item %s', n),
			coalesce(item ->> 'prompt', t.prompt), 100000);
		child.title_derived := item ->> 'title' IS NULL;
		-- a string context (Flint's items) is the item's instructions: {"text": ...}
		child.context := t.context || coalesce(agent_tasks_internal.check_json(
			format('context of item %s', n),
			CASE jsonb_typeof(item -> 'context') WHEN 'string' THEN jsonb_build_object('text', item -> 'context')
				 ELSE item -> 'context' END, 'object'), '{}');
		IF item ->> 'external_id' IS DISTINCT FROM item ->> 'externalId'
			AND item ? 'external_id' AND item ? 'externalId' THEN
			PERFORM agent_tasks_internal.raise('PT400', format('external_id and externalId of item %s differ', n),
				format('item %s: %s', n, left(item::text, 200)), 'Pass one of them.');
		END IF;
		child.external_id := agent_tasks_internal.check_text(format('external_id of item %s', n),
			coalesce(item ->> 'external_id', item ->> 'externalId'), 200);
		PERFORM agent_tasks_internal.insert_task(child);
	END LOOP;

	IF create_task.auto_process AND t.latest_run_id IS NULL THEN
		RETURN agent_tasks.process_task(t.id);
	END IF;
	RETURN agent_tasks.get_task(t.id);
END
$$;
COMMENT ON FUNCTION agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
	text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean, text) IS 'Create a task (prompt mode), or a parent with one child task per item (command mode: command + items; an item is a title, or an object with title, prompt, context (object, or a string kept as {"text": ...}) and external_id or externalId). Without a title, the title is made from the prompt (or command) and title_derived is true; description is another name for prompt. Same idempotency_key and payload returns the same task; a different payload fails with PT422. auto_process queues it at once.';
