-- Execution: agents, the claim API for workers in any language (and for the
-- extension's own executors), what an attempt's outcome means (completion,
-- clarification, retry with backoff, failure), lease recovery, budgets,
-- output validation, waiting and watching.

-- C side: commit-time wake-ups (src/wakeup.c) and the worker registry
-- (src/shared_state.c).
CREATE FUNCTION agent_tasks_internal.wake_workers(kind text) RETURNS void
	AS 'MODULE_PATHNAME', 'at_wake_workers' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION agent_tasks_internal.watch_task(task uuid) RETURNS boolean
	AS 'MODULE_PATHNAME', 'at_watch_task' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION agent_tasks_internal.await_wakeup(timeout_ms integer) RETURNS void
	AS 'MODULE_PATHNAME', 'at_await_wakeup' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION agent_tasks_internal.server_life_started_at() RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'at_server_life_started_at' LANGUAGE C STABLE STRICT;
CREATE FUNCTION agent_tasks_internal.executor_holds(worker text, claimed_at timestamptz) RETURNS boolean
	AS 'MODULE_PATHNAME', 'at_executor_holds' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION agent_tasks.worker_status(
	OUT pid integer, OUT worker text, OUT state text, OUT state_since timestamptz,
	OUT current_run uuid, OUT runs_done bigint, OUT runs_failed bigint,
	OUT last_error text, OUT last_error_at timestamptz, OUT started_at timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'at_worker_status' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION agent_tasks.worker_status() IS 'For agent_tasks_admin: the background workers, from shared memory: pid, name, state, current run, runs done and failed, last error. A caller sees a current run and a last error only when they are its own account''s run, and no counters; superusers and members of pg_monitor see everything. Empty when the library is not preloaded.';

-- Progress reports join the trail (SECURITY DEFINER: only triggers write
-- activities).
CREATE FUNCTION agent_tasks_internal.run_progressed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.task_id, 'progress',
		jsonb_strip_nulls(jsonb_build_object('phase', NEW.phase, 'message', NEW.progress)),
		run_id => NEW.id);
	RETURN NULL;
END
$$;

CREATE TRIGGER run_progressed
	AFTER UPDATE OF phase, progress ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (OLD.phase IS DISTINCT FROM NEW.phase OR OLD.progress IS DISTINCT FROM NEW.progress)
	EXECUTE FUNCTION agent_tasks_internal.run_progressed();

-- Agents -------------------------------------------------------------------

-- An sql agent's function runs as the role that created the agent or last
-- changed its target (the caller: the API functions are SECURITY DEFINER):
-- that role vouches for the function.  Nobody else sets run_as, so an admin
-- cannot borrow another role's rights (a superuser's above all) by pointing
-- an agent at a function of their own.  And the function's owner must
-- already have the rights of that role (be it, a member of it, or a
-- superuser): otherwise the owner could replace the body and have it run
-- as the agent's role (claim_sql_runs and the executor check again).
CREATE FUNCTION agent_tasks_internal.bind_agent_role() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	fn regprocedure;
	owner name;
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.run_as IS DISTINCT FROM OLD.run_as
		AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = agent_tasks_internal.caller()) THEN
		PERFORM agent_tasks_internal.raise('PT403', 'the role of an agent cannot be chosen',
			format('agent %s runs as %s', quote_literal(NEW.name), OLD.run_as),
			'Change the agent''s target: it then runs as you.');
	END IF;
	IF TG_OP = 'INSERT' OR NEW.target IS DISTINCT FROM OLD.target OR NEW.kind IS DISTINCT FROM OLD.kind THEN
		NEW.run_as := agent_tasks_internal.caller();
	END IF;
	IF NEW.kind = 'sql' THEN
		fn := to_regprocedure(NEW.target || '(agent_tasks.tasks, agent_tasks.runs)');
		SELECT r.rolname INTO owner FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.oid = fn;
		IF NOT pg_has_role(owner, NEW.run_as, 'USAGE') THEN
			PERFORM agent_tasks_internal.raise('PT403', 'the function of an sql agent must be owned by the role the agent runs as',
				format('function %s is owned by %s; agent %s would run as %s', NEW.target, owner,
					   quote_literal(NEW.name), NEW.run_as),
				format('ALTER FUNCTION %s(agent_tasks.tasks, agent_tasks.runs) OWNER TO %I, or let %I create the agent.',
					   NEW.target, NEW.run_as, owner));
		END IF;
		IF NOT has_function_privilege(NEW.run_as, fn, 'EXECUTE') THEN
			PERFORM agent_tasks_internal.raise('PT403', 'the agent''s role may not execute its function',
				format('role %s lacks EXECUTE on %s', NEW.run_as, NEW.target),
				format('GRANT EXECUTE ON FUNCTION %s(agent_tasks.tasks, agent_tasks.runs) TO %I.', NEW.target, NEW.run_as));
		END IF;
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER bind_agent_role
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.agents
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.bind_agent_role();


CREATE FUNCTION agent_tasks_internal.check_agent(a agent_tasks_internal.agents)
	RETURNS agent_tasks_internal.agents
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	fn regprocedure;
BEGIN
	IF a.name IS NULL OR a.name !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid agent name',
			format('name = %s', coalesce(quote_literal(a.name), 'null')),
			'Use 1 to 63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit.');
	END IF;
	IF a.kind IS NULL OR a.kind NOT IN ('sql', 'http', 'openai', 'external') THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid agent kind',
			format('kind = %s', coalesce(quote_literal(a.kind), 'null')),
			'Use sql, http, openai or external.');
	END IF;
	IF a.kind = 'sql' THEN
		BEGIN
			fn := to_regprocedure(a.target || '(agent_tasks.tasks, agent_tasks.runs)');
		EXCEPTION WHEN syntax_error OR invalid_name OR undefined_object THEN
			fn := NULL;			-- reported below like a missing function
		END;
		IF fn IS NULL OR (SELECT prorettype FROM pg_proc WHERE oid = fn) <> 'jsonb'::regtype THEN
			PERFORM agent_tasks_internal.raise('PT400', 'the target of an sql agent must be a function (agent_tasks.tasks, agent_tasks.runs) returning jsonb',
				format('target = %s', coalesce(quote_literal(a.target), 'null')),
				'CREATE FUNCTION my_agent(task agent_tasks.tasks, run agent_tasks.runs) RETURNS jsonb ..., then pass its schema-qualified name.');
		END IF;
		a.target := fn::regproc::text;
	ELSIF a.kind IN ('http', 'openai') THEN
		PERFORM agent_tasks_internal.check_url('target', a.target);
		IF a.target IS NULL THEN
			PERFORM agent_tasks_internal.raise('PT400', format('an %s agent needs a target URL', a.kind),
				'target is null', 'Pass target => ''https://...''.');
		END IF;
	END IF;
	PERFORM agent_tasks_internal.check_json('config', a.config, 'object');
	IF a.concurrency IS NULL OR a.max_attempts IS NULL OR a.timeout IS NULL
		OR a.backoff_base IS NULL OR a.backoff_max IS NULL
		OR a.concurrency NOT BETWEEN 1 AND 10000 OR a.max_attempts NOT BETWEEN 1 AND 100
		OR a.timeout <= '0' OR a.timeout > '1 day' OR a.backoff_base < '0' OR a.backoff_max < a.backoff_base
		OR coalesce(a.budget_tokens, 1) <= 0 OR coalesce(a.budget_cost, 1) <= 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid agent limits',
			format('concurrency = %s, max_attempts = %s, timeout = %s, backoff_base = %s, backoff_max = %s, budget_tokens = %s, budget_cost = %s',
				   a.concurrency, a.max_attempts, a.timeout, a.backoff_base, a.backoff_max, a.budget_tokens, a.budget_cost),
			'concurrency 1..10000, max_attempts 1..100, 0 < timeout <= 1 day, 0 <= backoff_base <= backoff_max, budgets positive or null.');
	END IF;
	RETURN a;
END
$$;

CREATE FUNCTION agent_tasks.create_agent(
	name text,
	kind text,
	target text DEFAULT NULL,
	config jsonb DEFAULT '{}',
	concurrency integer DEFAULT 4,
	timeout interval DEFAULT '5 minutes',
	max_attempts integer DEFAULT 3,
	backoff_base interval DEFAULT '1 second',
	backoff_max interval DEFAULT '5 minutes',
	budget_tokens bigint DEFAULT NULL,
	budget_cost numeric DEFAULT NULL)
	RETURNS agent_tasks.agents
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a agent_tasks_internal.agents;
	result agent_tasks.agents;
BEGIN
	a.account := agent_tasks.current_account();
	a.id := agent_tasks.uuid_v7();
	a.name := create_agent.name;
	a.kind := create_agent.kind;
	a.target := create_agent.target;
	a.config := coalesce(create_agent.config, '{}');
	a.concurrency := create_agent.concurrency;
	a.timeout := create_agent.timeout;
	a.max_attempts := create_agent.max_attempts;
	a.backoff_base := create_agent.backoff_base;
	a.backoff_max := create_agent.backoff_max;
	a.budget_tokens := create_agent.budget_tokens;
	a.budget_cost := create_agent.budget_cost;
	a := agent_tasks_internal.check_agent(a);
	BEGIN
		INSERT INTO agent_tasks_internal.agents
			(account, id, name, kind, target, config, concurrency, timeout, max_attempts,
			 backoff_base, backoff_max, budget_tokens, budget_cost, run_as)
		VALUES (a.account, a.id, a.name, a.kind, a.target, a.config, a.concurrency, a.timeout,
				a.max_attempts, a.backoff_base, a.backoff_max, a.budget_tokens, a.budget_cost,
				agent_tasks_internal.caller());
	EXCEPTION WHEN unique_violation THEN
		PERFORM agent_tasks_internal.raise('PT409', 'an agent with this name exists',
			format('agent %s', quote_literal(a.name)), 'Use agent_tasks.alter_agent() to change it.');
	END;
	SELECT * INTO result FROM agent_tasks.agents v WHERE v.account = a.account AND v.id = a.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.create_agent IS 'Define an agent: kind sql (target: a function (task, run) returning jsonb, run as the calling role), http or openai (target: URL), or external (workers call claim_runs); with concurrency, timeout, max_attempts, exponential backoff and budgets.';

CREATE FUNCTION agent_tasks.alter_agent(name text, patch jsonb)
	RETURNS agent_tasks.agents
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a agent_tasks_internal.agents;
	f record;
	result agent_tasks.agents;
BEGIN
	SELECT * INTO a FROM agent_tasks_internal.agents x
	 WHERE x.account = agent_tasks.current_account() AND x.name = alter_agent.name
	   FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.agent_id(agent_tasks.current_account(), alter_agent.name);
	END IF;
	PERFORM agent_tasks_internal.check_json('patch', patch, 'object');
	FOR f IN SELECT key, value, value #>> '{}' AS text_value FROM jsonb_each(coalesce(patch, '{}'))
	LOOP
		BEGIN
			CASE f.key
				WHEN 'target' THEN a.target := f.text_value;
				WHEN 'config' THEN a.config := f.value;
				WHEN 'concurrency' THEN a.concurrency := f.text_value::integer;
				WHEN 'timeout' THEN a.timeout := f.text_value::interval;
				WHEN 'max_attempts' THEN a.max_attempts := f.text_value::integer;
				WHEN 'backoff_base' THEN a.backoff_base := f.text_value::interval;
				WHEN 'backoff_max' THEN a.backoff_max := f.text_value::interval;
				WHEN 'budget_tokens' THEN a.budget_tokens := f.text_value::bigint;
				WHEN 'budget_cost' THEN a.budget_cost := f.text_value::numeric;
				ELSE
					PERFORM agent_tasks_internal.raise('PT400', format('agent field %s cannot be changed', quote_ident(f.key)),
						format('patch = %s', left(patch::text, 200)),
						'Mutable fields: target, config, concurrency, timeout, max_attempts, backoff_base, backoff_max, budget_tokens, budget_cost.');
			END CASE;
		EXCEPTION WHEN data_exception THEN
			PERFORM agent_tasks_internal.raise('PT400', format('invalid value for %s', f.key),
				format('%s = %s', f.key, left(f.value::text, 200)), NULL);
		END;
	END LOOP;
	a := agent_tasks_internal.check_agent(a);
	UPDATE agent_tasks_internal.agents x
	   SET target = a.target, config = a.config, concurrency = a.concurrency, timeout = a.timeout,
		   max_attempts = a.max_attempts, backoff_base = a.backoff_base, backoff_max = a.backoff_max,
		   budget_tokens = a.budget_tokens, budget_cost = a.budget_cost, updated_at = now()
	 WHERE x.account = a.account AND x.id = a.id;
	SELECT * INTO result FROM agent_tasks.agents v WHERE v.account = a.account AND v.id = a.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.alter_agent(text, jsonb) IS 'Change an agent: the patch names the fields (target, config, concurrency, timeout, max_attempts, backoff_base, backoff_max, budget_tokens, budget_cost).';

CREATE FUNCTION agent_tasks.drop_agent(name text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	agent uuid := agent_tasks_internal.agent_id(agent_tasks.current_account(), drop_agent.name);
	open_runs bigint;
BEGIN
	IF agent IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT404', 'agent not found', 'name is null',
			'Name the agent to drop; list them in agent_tasks.agents.');
	END IF;
	SELECT count(*) INTO open_runs FROM agent_tasks_internal.runs r
	 WHERE r.account = agent_tasks.current_account() AND r.agent_id = agent
	   AND r.status IN ('queued', 'in_progress');
	IF open_runs > 0 THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the agent has open runs',
			format('agent %s has %s queued or running run(s)', quote_literal(drop_agent.name), open_runs),
			'Cancel or finish its tasks first.');
	END IF;
	DELETE FROM agent_tasks_internal.agents a
	 WHERE a.account = agent_tasks.current_account() AND a.id = agent;
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.drop_agent(text) IS 'Remove an agent without open runs; its tasks keep their history and lose the agent.';

-- Output validation: a useful subset of JSON Schema ------------------------

CREATE FUNCTION agent_tasks.validate_json(schema jsonb, document jsonb, path text DEFAULT '$')
	RETURNS text[]
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	errors text[] := '{}';
	actual text := jsonb_typeof(document);
	types jsonb := schema -> 'type';
	key text;
	i integer;
BEGIN
	IF schema IS NULL OR jsonb_typeof(schema) <> 'object' THEN
		RETURN errors;
	END IF;
	IF document IS NULL THEN
		actual := 'null';
	END IF;
	-- nesting bounded before the stack is (54001): a level adds "." or "[" to path
	IF length(path) - length(translate(path, '.[', '')) > 128 THEN
		PERFORM agent_tasks_internal.raise('PT422', 'JSON nested too deeply to validate',
			format('%s... is deeper than 128 levels', left(path, 200)),
			'Keep documents and output schemas within 128 levels of nesting.');
	END IF;
	-- a malformed schema is refused (PT400), never a PostgreSQL error
	IF (types IS NOT NULL AND jsonb_typeof(types) NOT IN ('string', 'array'))
		OR jsonb_typeof(schema -> 'enum') <> 'array' OR jsonb_typeof(schema -> 'required') <> 'array'
		OR jsonb_typeof(schema -> 'minItems') <> 'number' OR jsonb_typeof(schema -> 'maxItems') <> 'number'
		OR jsonb_typeof(schema -> 'minLength') <> 'number' OR jsonb_typeof(schema -> 'maxLength') <> 'number'
		OR jsonb_typeof(schema -> 'minimum') <> 'number' OR jsonb_typeof(schema -> 'maximum') <> 'number' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid JSON Schema',
			format('%s: %s', path, left(schema::text, 200)),
			'"type" is a string or an array of strings, "enum" and "required" arrays, minItems, maxItems, minLength, maxLength, minimum and maximum numbers.');
	END IF;
	IF jsonb_typeof(types) = 'string' THEN
		types := jsonb_build_array(types);
	END IF;
	IF types IS NOT NULL AND NOT (
		types ? actual
		OR (actual = 'number' AND types ? 'integer' AND document::text::numeric = trunc(document::text::numeric))) THEN
		RETURN ARRAY[format('%s: expected %s, got %s', path, array_to_string(ARRAY(SELECT jsonb_array_elements_text(types)), ' or '), actual)];
	END IF;
	IF schema ? 'enum' AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(schema -> 'enum') e WHERE e = document) THEN
		errors := errors || format('%s: %s is not one of %s', path, document, schema -> 'enum');
	END IF;
	IF actual = 'object' THEN
		FOR key IN SELECT jsonb_array_elements_text(coalesce(schema -> 'required', '[]'))
		LOOP
			IF NOT document ? key THEN
				errors := errors || format('%s: required property %s is missing', path, quote_ident(key));
			END IF;
		END LOOP;
		FOR key IN SELECT jsonb_object_keys(document)
		LOOP
			IF schema -> 'properties' ? key THEN
				errors := errors || agent_tasks.validate_json(schema -> 'properties' -> key, document -> key, path || '.' || key);
			ELSIF schema -> 'additionalProperties' = 'false' THEN
				errors := errors || format('%s: property %s is not allowed', path, quote_ident(key));
			END IF;
		END LOOP;
	ELSIF actual = 'array' THEN
		IF schema ? 'items' THEN
			FOR i IN 0 .. jsonb_array_length(document) - 1
			LOOP
				errors := errors || agent_tasks.validate_json(schema -> 'items', document -> i, format('%s[%s]', path, i));
			END LOOP;
		END IF;
		IF jsonb_array_length(document) < coalesce((schema ->> 'minItems')::numeric, 0) THEN
			errors := errors || format('%s: fewer than %s items', path, schema ->> 'minItems');
		END IF;
		IF jsonb_array_length(document) > coalesce((schema ->> 'maxItems')::numeric, 2147483647) THEN
			errors := errors || format('%s: more than %s items', path, schema ->> 'maxItems');
		END IF;
	ELSIF actual = 'string' THEN
		IF length(document #>> '{}') < coalesce((schema ->> 'minLength')::numeric, 0)
			OR length(document #>> '{}') > coalesce((schema ->> 'maxLength')::numeric, 2147483647) THEN
			errors := errors || format('%s: length %s is outside %s..%s', path, length(document #>> '{}'),
									   coalesce(schema ->> 'minLength', '0'), coalesce(schema ->> 'maxLength', '∞'));
		END IF;
	ELSIF actual = 'number' THEN
		IF (document::text)::numeric < (schema ->> 'minimum')::numeric
			OR (document::text)::numeric > (schema ->> 'maximum')::numeric THEN
			errors := errors || format('%s: %s is outside %s..%s', path, document,
									   coalesce(schema ->> 'minimum', '-∞'), coalesce(schema ->> 'maximum', '∞'));
		END IF;
	END IF;
	RETURN errors;
END
$$;
COMMENT ON FUNCTION agent_tasks.validate_json(jsonb, jsonb, text) IS 'Check a JSON document against a JSON Schema subset (type, enum, properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength, minimum, maximum); returns the violations, empty when it matches.';

-- A run, locked after its task (see lock_task_in); a row of nulls when
-- there is no such run.
CREATE FUNCTION agent_tasks_internal.lock_run(account text, run uuid)
	RETURNS agent_tasks_internal.runs
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	task uuid;
	r agent_tasks_internal.runs;
BEGIN
	SELECT x.task_id INTO task FROM agent_tasks_internal.runs x
	 WHERE x.account = lock_run.account AND x.id = run;
	IF FOUND THEN
		PERFORM agent_tasks_internal.lock_task_in(account, task);
		SELECT * INTO r FROM agent_tasks_internal.runs x
		 WHERE x.account = lock_run.account AND x.id = run
		   FOR UPDATE;
	END IF;
	RETURN r;
END
$$;

-- Outcomes of an attempt, shared by the executors and external workers -----

CREATE FUNCTION agent_tasks_internal.record_usage(r agent_tasks_internal.runs, usage jsonb)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n_tokens bigint;
	n_cost numeric;
BEGIN
	IF usage IS NULL OR jsonb_typeof(usage) <> 'object' OR usage = '{}' THEN
		RETURN;
	END IF;
	BEGIN
		n_tokens := coalesce((usage ->> 'total_tokens')::bigint, (usage ->> 'tokens')::bigint,
						   (usage ->> 'prompt_tokens')::bigint + (usage ->> 'completion_tokens')::bigint, 0);
		n_cost := coalesce((usage ->> 'cost')::numeric, 0);
	EXCEPTION WHEN data_exception THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid usage',
			format('usage = %s', left(usage::text, 200)),
			'Report {"total_tokens": <integer>, "cost": <number>} (or prompt_tokens and completion_tokens).');
	END;
	UPDATE agent_tasks_internal.runs x
	   SET usage = x.usage || record_usage.usage, tokens = x.tokens + n_tokens, cost = x.cost + n_cost
	 WHERE x.account = r.account AND x.id = r.id;
	IF (n_tokens <> 0 OR n_cost <> 0) AND r.agent_id IS NOT NULL THEN
		UPDATE agent_tasks_internal.agent_usage u
		   SET tokens = u.tokens + n_tokens, cost = u.cost + n_cost
		 WHERE u.account = r.account AND u.agent_id = r.agent_id
		   AND u.shard = (SELECT x.shard FROM agent_tasks_internal.agent_usage x
						   WHERE x.account = r.account AND x.agent_id = r.agent_id
						   ORDER BY x.shard
						   LIMIT 1
							 FOR UPDATE SKIP LOCKED);
		IF NOT FOUND THEN
			INSERT INTO agent_tasks_internal.agent_usage AS u (account, agent_id, shard, tokens, cost)
			SELECT r.account, r.agent_id, coalesce(max(x.shard) + 1, 0), n_tokens, n_cost
			  FROM agent_tasks_internal.agent_usage x
			 WHERE x.account = r.account AND x.agent_id = r.agent_id
			ON CONFLICT ON CONSTRAINT agent_usage_pkey DO UPDATE
			   SET tokens = u.tokens + excluded.tokens, cost = u.cost + excluded.cost;
		END IF;
	END IF;
END
$$;

-- Is the task's or its agent's budget used up?
CREATE FUNCTION agent_tasks_internal.over_budget(account text, task uuid)
	RETURNS boolean
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(
		(SELECT (t.budget_tokens IS NOT NULL AND sum(r.tokens) >= t.budget_tokens)
			 OR (t.budget_cost IS NOT NULL AND sum(r.cost) >= t.budget_cost)
		   FROM agent_tasks_internal.tasks t
		   JOIN agent_tasks_internal.runs r ON r.account = t.account AND r.task_id = t.id
		  WHERE t.account = over_budget.account AND t.id = over_budget.task
			AND (t.budget_tokens IS NOT NULL OR t.budget_cost IS NOT NULL)
		  GROUP BY t.budget_tokens, t.budget_cost), false)
		OR EXISTS (
		SELECT 1
		  FROM agent_tasks_internal.tasks t
		  JOIN agent_tasks_internal.agents a ON a.account = t.account AND a.id = t.agent_id
		 CROSS JOIN LATERAL (SELECT sum(u.tokens) AS tokens, sum(u.cost) AS cost
							   FROM agent_tasks_internal.agent_usage u
							  WHERE u.account = a.account AND u.agent_id = a.id) used
		 WHERE t.account = over_budget.account AND t.id = over_budget.task
		   AND ((a.budget_tokens IS NOT NULL AND used.tokens >= a.budget_tokens)
				OR (a.budget_cost IS NOT NULL AND used.cost >= a.budget_cost)))
$$;

-- Fail one attempt: retry with exponential backoff and jitter while the
-- agent allows more attempts, else fail the run (and so the task).
CREATE FUNCTION agent_tasks_internal.fail_attempt(r agent_tasks_internal.runs, error jsonb,
	reason text, retryable boolean)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a agent_tasks_internal.agents;
	t agent_tasks_internal.tasks;
	delay interval;
BEGIN
	SELECT * INTO a FROM agent_tasks_internal.agents x WHERE x.account = r.account AND x.id = r.agent_id;
	SELECT * INTO t FROM agent_tasks_internal.tasks x WHERE x.account = r.account AND x.id = r.task_id FOR UPDATE;
	IF retryable AND r.attempt < coalesce(a.max_attempts, 1) AND t.latest_run_id = r.id THEN
		-- half fixed, half random: spreads retries without starving any
		delay := least(a.backoff_max, a.backoff_base * power(2, r.attempt - 1)) * (0.5 + random() / 2);
		PERFORM agent_tasks_internal.queue_run(t, r.attempt + 1, now() + delay, 'retry', r.input);
		UPDATE agent_tasks_internal.runs x
		   SET status = 'failed', status_reason = reason, error = fail_attempt.error,
			   ended_at = clock_timestamp(), lease_expires_at = NULL
		 WHERE x.account = r.account AND x.id = r.id;
	ELSE
		UPDATE agent_tasks_internal.runs x
		   SET status = 'failed',
			   status_reason = CASE WHEN retryable AND reason NOT IN ('worker_lost', 'timeout')
									THEN 'max_attempts' ELSE reason END,
			   error = fail_attempt.error, ended_at = clock_timestamp(), lease_expires_at = NULL
		 WHERE x.account = r.account AND x.id = r.id;
	END IF;
END
$$;

-- The run completes with the output, or fails with invalid_output when the
-- output does not match the task's schema; usage is recorded (src/outcomes.c).
CREATE FUNCTION agent_tasks_internal.complete_attempt(r agent_tasks_internal.runs, output jsonb, usage jsonb)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_complete_attempt'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION agent_tasks_internal.clarify_attempt(r agent_tasks_internal.runs, question text, usage jsonb)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM agent_tasks_internal.check_text('question', question, 100000, true);
	PERFORM agent_tasks_internal.record_usage(r, usage);
	INSERT INTO agent_tasks_internal.messages (account, task_id, run_id, role, author, body, data)
	VALUES (r.account, r.task_id, r.id, 'agent', agent_tasks_internal.current_actor(), question,
			'{"kind": "clarification_request"}');
	UPDATE agent_tasks_internal.runs x
	   SET status = 'needs_clarification', status_reason = 'question', lease_expires_at = NULL
	 WHERE x.account = r.account AND x.id = r.id;
END
$$;

-- The result of an sql agent function (or of an http agent answering the
-- same way), in the transaction that computed it (src/outcomes.c):
-- {"status": "completed", "output": ..., "usage": ...},
-- {"status": "needs_clarification", "question": ...},
-- {"status": "failed", "error": ..., "retryable": bool}, or any other JSON
-- value, which is the output itself.  PT409 when the run is no longer in
-- progress.
CREATE FUNCTION agent_tasks_internal.finish_sql_run(account text, run_id uuid, result jsonb)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_finish_sql_run_sql'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

-- An executor's transaction rolled back: reason is error, timeout or
-- interrupted (the run was stopped or cancelled under it).
CREATE FUNCTION agent_tasks_internal.run_errored(account text, run_id uuid, error jsonb, reason text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs;
BEGIN
	r := agent_tasks_internal.lock_run(account, run_id);
	IF r.id IS NULL OR r.status <> 'in_progress' THEN
		RETURN;					-- stopped, cancelled or deleted: nothing to record
	END IF;
	PERFORM agent_tasks_internal.fail_attempt(r, error,
		CASE reason WHEN 'interrupted' THEN 'error' ELSE reason END, true);
END
$$;

-- Claiming ------------------------------------------------------------------

-- The part of a task's conversation a run is given: its latest 50 messages,
-- fewer when their bodies pass 1 MB (the latest one always), so that a long
-- conversation neither makes a claim fail nor makes it grow without bound.
-- The whole conversation stays readable in agent_tasks.messages.
CREATE FUNCTION agent_tasks_internal.message_window(account text, task uuid)
	RETURNS SETOF uuid
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT w.id
	  FROM (SELECT m.id,
				   sum(octet_length(m.body)) OVER (ORDER BY m.id DESC) AS size,
				   row_number() OVER (ORDER BY m.id DESC) AS n
			  FROM (SELECT x.id, x.body FROM agent_tasks_internal.messages x
					 WHERE x.account = message_window.account AND x.task_id = task
					 ORDER BY x.id DESC
					 LIMIT 50) m) w
	 WHERE w.n = 1 OR w.size <= 1048576
$$;

-- Claim up to max runnable runs of agents of these kinds (of one account
-- and some of its agents, when given), in priority order, each under a
-- lease; see src/claims.c for how a claim avoids reading what it cannot
-- take and keeps concurrency limits without serializing claimers.
CREATE FUNCTION agent_tasks_internal.claim_batch(kinds text[], account text, agents uuid[],
	worker text, lease interval, max integer)
	RETURNS SETOF agent_tasks_internal.runs
	AS 'MODULE_PATHNAME', 'at_claim_batch'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

-- For the executors: up to max runs of sql agents, and how to call each
-- (the function resolved from the agent's target without ever raising;
-- a run whose function or role is gone, or whose function's owner could
-- not act as the agent's role, fails instead).
CREATE FUNCTION agent_tasks_internal.claim_sql_runs(worker text, max integer,
	OUT account text, OUT run_id uuid, OUT task_id uuid, OUT call text, OUT run_as oid,
	OUT timeout_ms integer, OUT function oid)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'at_claim_sql_runs'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION agent_tasks.claim_runs(worker text, agents text[] DEFAULT NULL,
	max_runs integer DEFAULT 1, lease interval DEFAULT NULL)
	RETURNS TABLE (run_id uuid, task_id uuid, agent text, attempt integer,
				   lease_expires_at timestamptz, task jsonb, messages jsonb)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_account text := agent_tasks.current_account();
	agent_ids uuid[];
	r agent_tasks_internal.runs;
BEGIN
	PERFORM agent_tasks_internal.check_text('worker', worker, 200, true);
	PERFORM set_config('agent_tasks.worker', worker, true);
	IF claim_runs.max_runs IS NULL OR claim_runs.max_runs NOT BETWEEN 1 AND 1000 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid claim limit',
			format('max_runs = %s', coalesce(claim_runs.max_runs::text, 'null')), 'Claim 1 to 1000 runs at a time.');
	END IF;
	IF lease IS NOT NULL AND (lease <= '0' OR lease > '7 days') THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid lease', format('lease = %s', lease),
			'Use a lease between 1 second and 7 days; heartbeat_run() extends it.');
	END IF;
	IF agents IS NOT NULL THEN
		agent_ids := ARRAY(SELECT agent_tasks_internal.agent_id(caller_account, n) FROM unnest(agents) n);
		IF EXISTS (SELECT 1 FROM agent_tasks_internal.agents a
					WHERE a.account = caller_account AND a.id = ANY (agent_ids) AND a.kind <> 'external') THEN
			PERFORM agent_tasks_internal.raise('PT400', 'only external agents can be claimed',
				format('agents = %s', agents), 'sql, http and openai agents run inside the server.');
		END IF;
	END IF;
	FOR r IN SELECT * FROM agent_tasks_internal.claim_batch('{external}', caller_account, agent_ids, worker,
			coalesce(lease, current_setting('agent_tasks.default_lease')::interval), claim_runs.max_runs)
	LOOP
		run_id := r.id;
		task_id := r.task_id;
		agent := (SELECT a.name FROM agent_tasks_internal.agents a WHERE a.account = r.account AND a.id = r.agent_id);
		attempt := r.attempt;
		lease_expires_at := r.lease_expires_at;
		task := to_jsonb(agent_tasks.get_task(r.task_id)) - 'search';
		messages := coalesce((SELECT jsonb_agg(to_jsonb(m) - 'account' ORDER BY m.id)
								FROM agent_tasks.messages m
							   WHERE m.account = r.account AND m.task_id = r.task_id
								 AND m.id IN (SELECT agent_tasks_internal.message_window(r.account, r.task_id))), '[]');
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION agent_tasks.claim_runs(text, text[], integer, interval) IS 'For external workers: claim up to max_runs queued runs of external agents (all, or those named), each under a lease (default agent_tasks.default_lease). Exclusive: a run is claimed by one worker at a time.';

-- The run an external worker reports on: its own, in progress, lease valid.
CREATE FUNCTION agent_tasks_internal.lock_claimed_run(run uuid, worker text)
	RETURNS agent_tasks_internal.runs
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs;
BEGIN
	r := agent_tasks_internal.lock_run(agent_tasks.current_account(), run);
	IF r.id IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT404', 'run not found', format('No run %s in this account.', run),
			'Check the id: runs of other accounts are never visible.');
	END IF;
	IF r.status <> 'in_progress' THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the run is not in progress',
			format('run %s is %s', run, r.status),
			'It was stopped, cancelled, finished or re-queued; claim new work with claim_runs().');
	END IF;
	IF r.kind = 'http' THEN
		-- an http agent answers with the run token it was sent (src/sql/install/83_http_agents.sql)
		IF NOT agent_tasks_internal.verify_run_token(run, worker) THEN
			PERFORM agent_tasks_internal.raise('PT403', 'a valid run token is required',
				format('run %s belongs to an http agent; worker must be the run_token of its request', run),
				'Pass the run_token the agent received (rt_...) as worker.');
		END IF;
		worker := NULL;			-- never let the token into activities
	ELSIF worker IS NOT NULL AND r.worker IS DISTINCT FROM worker THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the run is claimed by another worker',
			format('run %s is held by %s, not %s', run, r.worker, worker), NULL);
	END IF;
	IF r.lease_expires_at < now() THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the lease on this run has expired',
			format('run %s: lease expired at %s', run, r.lease_expires_at),
			'Send heartbeat_run() more often than the lease; the run will be retried by another worker.');
	END IF;
	PERFORM set_config('agent_tasks.worker', coalesce(worker, r.worker), true);
	RETURN r;
END
$$;

CREATE FUNCTION agent_tasks.heartbeat_run(run uuid, worker text DEFAULT NULL, lease interval DEFAULT NULL)
	RETURNS timestamptz
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs := agent_tasks_internal.lock_claimed_run(run, worker);
	expires timestamptz;
BEGIN
	IF lease IS NOT NULL AND (lease <= '0' OR lease > '7 days') THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid lease', format('lease = %s', lease),
			'Use a lease between 1 second and 7 days.');
	END IF;
	UPDATE agent_tasks_internal.runs x
	   SET heartbeat_at = now(),
		   lease_expires_at = now() + coalesce(lease, current_setting('agent_tasks.default_lease')::interval)
	 WHERE x.account = r.account AND x.id = r.id
	RETURNING x.lease_expires_at INTO expires;
	RETURN expires;
END
$$;
COMMENT ON FUNCTION agent_tasks.heartbeat_run(uuid, text, interval) IS 'Extend the lease of a claimed run; PT409 when the run is no longer this worker''s or its lease has expired.';

CREATE FUNCTION agent_tasks.report_progress(run uuid, phase text, message text DEFAULT NULL,
	data jsonb DEFAULT NULL, worker text DEFAULT NULL)
	RETURNS agent_tasks.runs
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs := agent_tasks_internal.lock_claimed_run(run, worker);
	result agent_tasks.runs;
BEGIN
	PERFORM agent_tasks_internal.check_text('phase', phase, 100, true);
	PERFORM agent_tasks_internal.check_text('message', message, 10000);
	PERFORM agent_tasks_internal.check_json('data', data, 'object');
	UPDATE agent_tasks_internal.runs x
	   SET phase = report_progress.phase, progress = message, progress_data = data, heartbeat_at = now(),
		   lease_expires_at = greatest(x.lease_expires_at,
			   now() + current_setting('agent_tasks.default_lease')::interval)
	 WHERE x.account = r.account AND x.id = r.id;
	IF data ? 'usage' THEN
		PERFORM agent_tasks_internal.record_usage(r, data -> 'usage');
		IF agent_tasks_internal.over_budget(r.account, r.task_id) THEN
			UPDATE agent_tasks_internal.runs x SET status = 'on_hold', status_reason = 'budget_exceeded',
				   lease_expires_at = NULL
			 WHERE x.account = r.account AND x.id = r.id;
		END IF;
	END IF;
	SELECT * INTO result FROM agent_tasks.runs v WHERE v.account = r.account AND v.id = r.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.report_progress(uuid, text, text, jsonb, text) IS 'Tell where a claimed run is (phase, message, data); also a heartbeat. data.usage counts against budgets: over budget puts the task on hold (budget_exceeded).';

CREATE FUNCTION agent_tasks.complete_run(run uuid, output jsonb, usage jsonb DEFAULT NULL, worker text DEFAULT NULL)
	RETURNS agent_tasks.runs
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs := agent_tasks_internal.lock_claimed_run(run, worker);
	result agent_tasks.runs;
BEGIN
	PERFORM agent_tasks_internal.check_json('output', output, jsonb_typeof(output), 10485760);
	PERFORM agent_tasks_internal.complete_attempt(r, output, usage);
	SELECT * INTO result FROM agent_tasks.runs v WHERE v.account = r.account AND v.id = r.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.complete_run(uuid, jsonb, jsonb, text) IS 'Finish a claimed run with its output (validated against the task''s output_schema: failed with invalid_output when it does not match) and usage {total_tokens, cost}.';

CREATE FUNCTION agent_tasks.fail_run(run uuid, error text, retryable boolean DEFAULT true, worker text DEFAULT NULL)
	RETURNS agent_tasks.runs
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs := agent_tasks_internal.lock_claimed_run(run, worker);
	result agent_tasks.runs;
BEGIN
	PERFORM agent_tasks_internal.check_text('error', error, 10000, true);
	PERFORM agent_tasks_internal.fail_attempt(r, jsonb_build_object('message', error),
		CASE WHEN retryable THEN 'error' ELSE 'rejected' END, retryable);
	SELECT * INTO result FROM agent_tasks.runs v WHERE v.account = r.account AND v.id = r.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.fail_run(uuid, text, boolean, text) IS 'Fail a claimed run: retryable failures are retried with the agent''s backoff until max_attempts, others fail the task at once.';

CREATE FUNCTION agent_tasks.request_clarification(run uuid, question text, worker text DEFAULT NULL)
	RETURNS agent_tasks.runs
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs := agent_tasks_internal.lock_claimed_run(run, worker);
	result agent_tasks.runs;
BEGIN
	PERFORM agent_tasks_internal.clarify_attempt(r, question, NULL);
	SELECT * INTO result FROM agent_tasks.runs v WHERE v.account = r.account AND v.id = r.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.request_clarification(uuid, text, text) IS 'Ask the task''s people a question: the run waits in needs_clarification with the question as an agent message; a user''s send_message re-queues it.';

-- Recovery ------------------------------------------------------------------

-- Runs whose worker is gone: the lease expired, or the run was started by
-- an in-server worker before this server life (start, crash restart or
-- promotion) and is not an http run its agent accepted (202) and works on
-- by itself.  A run an executor claimed belongs to it while that
-- executor process lives (executor_holds): a run waiting for its turn in
-- the executor's batch is not lost when its lease (the agent's timeout and
-- a minute, from the claim) runs out, and a run whose executor is gone or
-- was restarted is recovered at once.  Only then, and at a new server
-- life, can a run be lost before its lease runs out: the launcher looks at
-- every run in progress (everything) for a while after it started an
-- executor and once a minute, and at the runs whose lease has run out
-- otherwise, so that its pass every second costs what it can recover,
-- not the runs in progress (runs_leased is in lease order).
CREATE FUNCTION agent_tasks_internal.recover_runs(everything boolean DEFAULT true)
	RETURNS integer
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	candidate record;
	r agent_tasks_internal.runs;
	n integer := 0;
BEGIN
	FOR candidate IN
		SELECT x.account, x.id FROM agent_tasks_internal.runs x
		 WHERE x.status = 'in_progress'
		   AND x.lease_expires_at < CASE WHEN everything THEN 'infinity'::timestamptz ELSE now() END
		   AND CASE WHEN x.kind = 'sql' AND x.worker LIKE 'executor-%'
					THEN NOT agent_tasks_internal.executor_holds(x.worker, x.started_at)
					ELSE x.lease_expires_at < now()
						 OR (x.kind IN ('sql', 'http', 'openai') AND x.started_at < agent_tasks_internal.server_life_started_at()
							 AND NOT agent_tasks_internal.http_run_accepted(x.account, x.id)) END
		 ORDER BY x.lease_expires_at
		 LIMIT 1000
	LOOP
		r := agent_tasks_internal.lock_run(candidate.account, candidate.id);
		-- it may have been finished or heartbeated meanwhile
		CONTINUE WHEN r.status IS DISTINCT FROM 'in_progress'
			OR NOT CASE WHEN r.kind = 'sql' AND r.worker LIKE 'executor-%'
						THEN NOT agent_tasks_internal.executor_holds(r.worker, r.started_at)
						ELSE r.lease_expires_at < now()
							 OR (r.kind IN ('sql', 'http', 'openai') AND r.started_at < agent_tasks_internal.server_life_started_at()
								 AND NOT agent_tasks_internal.http_run_accepted(r.account, r.id)) END;
		PERFORM agent_tasks_internal.fail_attempt(r,
			jsonb_build_object('message', 'the worker executing this run was lost', 'worker', r.worker),
			'worker_lost', true);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;

-- Waiting and watching -------------------------------------------------------

CREATE FUNCTION agent_tasks.wait_task(task uuid, timeout interval DEFAULT '30 seconds')
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + least(greatest(timeout, '0'), '1 hour');
	watching boolean := agent_tasks_internal.watch_task(task);
	t agent_tasks.tasks;
BEGIN
	LOOP
		t := agent_tasks.get_task(task);
		EXIT WHEN agent_tasks.status_kind(t.status) IN ('terminal', 'waiting')
			OR clock_timestamp() >= deadline;
		-- woken at the commit of a change; the timeout is only a backstop
		PERFORM agent_tasks_internal.await_wakeup(least(
			CASE WHEN watching THEN 1000 ELSE 100 END,
			ceil(extract(epoch FROM deadline - clock_timestamp()) * 1000)::integer));
	END LOOP;
	RETURN t;
END
$$;
COMMENT ON FUNCTION agent_tasks.wait_task(uuid, interval) IS 'Block until the task is finished or waits for a person (needs_clarification, on_hold), or the timeout (at most 1 hour) passes; returns the task. Woken at commit, without polling (when the library is preloaded). Call it outside long transactions: it sees changes committed after each wake-up.';

-- Agents without runs show zeros; runs of tasks without an agent (which
-- only claim_runs() without a list of agents takes) show as agent NULL,
-- kind external, while any is queued, in progress or ended in the last hour.
CREATE VIEW agent_tasks.queue_stats WITH (security_invoker = true) AS
SELECT coalesce(a.account, r.account) AS account,
	   a.name AS agent,
	   coalesce(a.kind, 'external') AS kind,
	   count(r.id) FILTER (WHERE r.status = 'queued') AS queued,
	   count(r.id) FILTER (WHERE r.status = 'queued' AND r.due_at <= now()) AS runnable,
	   count(r.id) FILTER (WHERE r.status = 'in_progress') AS in_progress,
	   now() - min(r.queued_at) FILTER (WHERE r.status = 'queued') AS oldest_queued_age,
	   count(r.id) FILTER (WHERE r.status = 'completed' AND r.ended_at > now() - interval '1 hour') AS completed_last_hour,
	   count(r.id) FILTER (WHERE r.status = 'failed' AND r.ended_at > now() - interval '1 hour') AS failed_last_hour,
	   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.ended_at - r.started_at))
		   FILTER (WHERE r.ended_at > now() - interval '1 hour' AND r.started_at IS NOT NULL) AS duration_p50_seconds,
	   percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.ended_at - r.started_at))
		   FILTER (WHERE r.ended_at > now() - interval '1 hour' AND r.started_at IS NOT NULL) AS duration_p95_seconds,
	   coalesce(used.tokens, 0) AS used_tokens,
	   coalesce(used.cost, 0) AS used_cost
  FROM agent_tasks_internal.agents a
  LEFT JOIN LATERAL (SELECT sum(u.tokens)::bigint AS tokens, sum(u.cost) AS cost
					   FROM agent_tasks_internal.agent_usage u
					  WHERE u.account = a.account AND u.agent_id = a.id) used ON true
  FULL JOIN agent_tasks_internal.runs r ON r.account = a.account AND r.agent_id = a.id
 GROUP BY coalesce(a.account, r.account), a.id, a.name, a.kind, used.tokens, used.cost
HAVING a.id IS NOT NULL
	OR count(*) FILTER (WHERE r.status IN ('queued', 'in_progress') OR r.ended_at > now() - interval '1 hour') > 0;
COMMENT ON VIEW agent_tasks.queue_stats IS 'Per agent: queued and runnable runs, runs in progress, age of the oldest queued run, completed and failed in the last hour, run duration p50/p95 (seconds, last hour), tokens and cost used. Runs of tasks without an agent show as agent NULL (kind external) while any is active or ended in the last hour.';

CREATE VIEW agent_tasks.run_history WITH (security_invoker = true) AS
SELECT r.task_id, r.id AS run_id, r.attempt, r.status, r.status_reason, r.agent, r.worker,
	   r.queued_at, r.started_at, r.ended_at, r.ended_at - r.started_at AS duration,
	   r.error, r.tokens, r.cost, r.account
  FROM agent_tasks.runs r;
COMMENT ON VIEW agent_tasks.run_history IS 'Each task''s runs in order (filter on task_id, order by run_id): attempts, outcomes, durations, errors, usage.';

GRANT EXECUTE ON FUNCTION
	agent_tasks.validate_json(jsonb, jsonb, text),
	agent_tasks.wait_task(uuid, interval)
TO agent_tasks_reader;
GRANT EXECUTE ON FUNCTION
	agent_tasks.claim_runs(text, text[], integer, interval),
	agent_tasks.heartbeat_run(uuid, text, interval),
	agent_tasks.report_progress(uuid, text, text, jsonb, text),
	agent_tasks.complete_run(uuid, jsonb, jsonb, text),
	agent_tasks.fail_run(uuid, text, boolean, text),
	agent_tasks.request_clarification(uuid, text, text)
TO agent_tasks_worker;
GRANT EXECUTE ON FUNCTION
	agent_tasks.worker_status(),
	agent_tasks.create_agent(text, text, text, jsonb, integer, interval, integer, interval, interval, bigint, numeric),
	agent_tasks.alter_agent(text, jsonb),
	agent_tasks.drop_agent(text)
TO agent_tasks_admin;
