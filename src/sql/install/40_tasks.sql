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

-- In C (src/tasks.c): every task is created here.
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
	AS 'MODULE_PATHNAME', 'at_create_task'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
	text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean, text) IS 'Create a task (prompt mode), or a parent with one child task per item (command mode: command + items; an item is a title, or an object with title, prompt, context (object, or a string kept as {"text": ...}) and external_id or externalId). Without a title, the title is made from the prompt (or command) and title_derived is true; description is another name for prompt. Same idempotency_key and payload returns the same task; a different payload fails with PT422. auto_process queues it at once.';
