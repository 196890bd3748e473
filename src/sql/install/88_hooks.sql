-- Task hooks: an application's own SQL functions, called inside the
-- transaction of a task change, after it, by the transition path
-- (src/transitions.c, src/hooks.c).  An admin registers them for its
-- account; each runs as the role that registered it, which must own the
-- function, so that nobody can make a hook run someone else's code.

CREATE TABLE agent_tasks_internal.hooks (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	name		text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	events		text[] NOT NULL CHECK (cardinality(events) > 0),
	-- the function as regprocedure text, resolved at each call (no reg*
	-- column: pg_upgrade refuses tables that have one)
	function	text NOT NULL,
	run_as		name NOT NULL,
	enabled		boolean NOT NULL DEFAULT true,
	created_by	text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
);

CREATE FUNCTION agent_tasks_internal.fire_hooks(account text, task uuid, event text,
	previous_status text, extra jsonb)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_fire_hooks_sql'
	LANGUAGE C VOLATILE;

-- A session that changes hooks sees them at once (hooks.c caches, per
-- statement, whether the database has any).
CREATE FUNCTION agent_tasks_internal.hooks_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_hooks_changed'
	LANGUAGE C;
CREATE TRIGGER hooks_changed
	AFTER INSERT OR UPDATE OR DELETE ON agent_tasks_internal.hooks
	FOR EACH STATEMENT WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.hooks_changed();

CREATE FUNCTION agent_tasks_internal.hook_events()
	RETURNS text[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ARRAY['task.created', 'task.queued', 'task.started', 'task.needs_clarification',
				 'task.on_hold', 'task.completed', 'task.failed', 'task.cancelled',
				 'task.message', 'task.feedback']
$$;

CREATE FUNCTION agent_tasks_internal.check_hook_events(events text[])
	RETURNS text[]
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	unknown text[];
BEGIN
	IF events IS NULL OR cardinality(events) = 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'events must not be empty',
			format('events = %s', coalesce(events::text, 'null')),
			format('Name one or more of %s, or ''*'' for all.', array_to_string(agent_tasks_internal.hook_events(), ', ')));
	END IF;
	SELECT array_agg(e ORDER BY e) INTO unknown FROM unnest(events) e
	 WHERE e IS NULL OR NOT (e = '*' OR e = ANY (agent_tasks_internal.hook_events()));
	IF unknown IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'unknown hook event',
			format('events = %s', events::text),
			format('Name one or more of %s, or ''*'' for all.', array_to_string(agent_tasks_internal.hook_events(), ', ')));
	END IF;
	RETURN ARRAY(SELECT DISTINCT e FROM unnest(events) e ORDER BY e);
END
$$;

-- A function named by the caller, found with the caller's rights (the
-- API's functions run as agent_tasks_engine, which needs nothing on the
-- caller's schemas); NULL when there is none.
CREATE FUNCTION agent_tasks_internal.caller_regprocedure(signature text) RETURNS regprocedure
	AS 'MODULE_PATHNAME', 'at_caller_regprocedure'
	LANGUAGE C STABLE STRICT;

-- The function a hook calls, by name or full signature: it takes (event
-- text, task agent_tasks.tasks, previous_status text, data jsonb) and is
-- owned by the calling role (caller(): these functions run as the engine),
-- the role the hook will run as.
CREATE FUNCTION agent_tasks_internal.check_hook_function(function text)
	RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	fn regprocedure;
	owner name;
BEGIN
	IF function IS NULL OR function !~ '\S' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'function must not be empty',
			format('function = %s', coalesce(quote_literal(function), 'null')),
			'Pass the schema-qualified name of a function (event text, task agent_tasks.tasks, previous_status text, data jsonb).');
	END IF;
	BEGIN
		fn := agent_tasks_internal.caller_regprocedure(CASE WHEN function LIKE '%(%' THEN function
								  ELSE function || '(text, agent_tasks.tasks, text, jsonb)' END);
	EXCEPTION WHEN syntax_error OR invalid_name OR undefined_object THEN
		fn := NULL;
	END;
	IF fn IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT404', 'hook function not found',
			format('No function %s(text, agent_tasks.tasks, text, jsonb).', function),
			'CREATE FUNCTION my_hook(event text, task agent_tasks.tasks, previous_status text, data jsonb) RETURNS void ..., then pass its schema-qualified name.');
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_proc p
					WHERE p.oid = fn AND p.pronargs = 4 AND p.proargtypes[0] = 'text'::regtype
					  AND p.proargtypes[1] = 'agent_tasks.tasks'::regtype
					  AND p.proargtypes[2] = 'text'::regtype AND p.proargtypes[3] = 'jsonb'::regtype) THEN
		PERFORM agent_tasks_internal.raise('PT400', 'hook function has the wrong arguments',
			format('%s takes (%s).', fn::oid::regproc, pg_get_function_identity_arguments(fn)),
			'A hook function takes (event text, task agent_tasks.tasks, previous_status text, data jsonb).');
	END IF;
	SELECT r.rolname INTO owner FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.oid = fn;
	IF owner <> agent_tasks_internal.caller() THEN
		PERFORM agent_tasks_internal.raise('PT403', 'a hook runs only a function of its own role',
			format('%s is owned by %s; the hook would run as %s.', fn, owner, agent_tasks_internal.caller()),
			'Register the hook as the function''s owner, so that nobody can make it run someone else''s code.');
	END IF;
	RETURN fn::text;
END
$$;

CREATE VIEW agent_tasks.hooks WITH (security_invoker = true) AS
SELECT h.account, h.name, h.events, h.function, h.run_as, h.enabled, h.created_by,
	   h.created_at, h.updated_at
  FROM agent_tasks_internal.hooks h;
COMMENT ON VIEW agent_tasks.hooks IS 'Task hooks of the current account: name, events, the function called and the role it runs as, enabled. Called in name order inside the transaction of each matching task change.';

CREATE FUNCTION agent_tasks_internal.hook_row(account text, name text)
	RETURNS agent_tasks.hooks
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result agent_tasks.hooks;
BEGIN
	SELECT * INTO result FROM agent_tasks.hooks h WHERE h.account = hook_row.account AND h.name = hook_row.name;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'hook not found',
			format('No hook %s in account %s.', quote_literal(name), quote_literal(account)),
			'See agent_tasks.hooks for the hooks of this account.');
	END IF;
	RETURN result;
END
$$;

CREATE FUNCTION agent_tasks.create_hook(name text, events text[], function text)
	RETURNS agent_tasks.hooks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_account text := agent_tasks.current_account();
BEGIN
	IF name IS NULL OR name !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid hook name',
			format('name = %s', coalesce(quote_literal(name), 'null')),
			'Use 1 to 63 lowercase letters, digits, "_", "." or "-", starting with a letter or digit.');
	END IF;
	BEGIN
		INSERT INTO agent_tasks_internal.hooks (account, name, events, function, run_as, created_by)
		VALUES (caller_account, create_hook.name, agent_tasks_internal.check_hook_events(events),
				agent_tasks_internal.check_hook_function(function), agent_tasks_internal.caller(),
				agent_tasks_internal.current_actor());
	EXCEPTION WHEN unique_violation THEN
		PERFORM agent_tasks_internal.raise('PT409', 'hook already exists',
			format('Account %s has a hook %s.', quote_literal(caller_account), quote_literal(name)),
			'Change it with agent_tasks.alter_hook(), or drop it first.');
	END;
	RETURN agent_tasks_internal.hook_row(caller_account, name);
END
$$;
COMMENT ON FUNCTION agent_tasks.create_hook(text, text[], text) IS 'For agent_tasks_admin: call a function of yours on task events of this account (task.created, task.queued, task.started, task.needs_clarification, task.on_hold, task.completed, task.failed, task.cancelled, task.message, task.feedback, or *), inside the transaction of the change, as your role, which must own the function (event text, task agent_tasks.tasks, previous_status text, data jsonb). A hook that raises aborts the change.';

CREATE FUNCTION agent_tasks.alter_hook(name text, events text[] DEFAULT NULL, function text DEFAULT NULL,
	enabled boolean DEFAULT NULL)
	RETURNS agent_tasks.hooks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_account text := agent_tasks.current_account();
BEGIN
	PERFORM agent_tasks_internal.hook_row(caller_account, name);
	UPDATE agent_tasks_internal.hooks h
	   SET events = CASE WHEN alter_hook.events IS NULL THEN h.events
						 ELSE agent_tasks_internal.check_hook_events(alter_hook.events) END,
		   function = CASE WHEN alter_hook.function IS NULL THEN h.function
						   ELSE agent_tasks_internal.check_hook_function(alter_hook.function) END,
		   run_as = CASE WHEN alter_hook.function IS NULL THEN h.run_as ELSE agent_tasks_internal.caller() END,
		   enabled = coalesce(alter_hook.enabled, h.enabled),
		   updated_at = now()
	 WHERE h.account = caller_account AND h.name = alter_hook.name;
	RETURN agent_tasks_internal.hook_row(caller_account, name);
END
$$;
COMMENT ON FUNCTION agent_tasks.alter_hook(text, text[], text, boolean) IS 'For agent_tasks_admin: change a hook''s events, function (then it runs as your role, which must own it) or enabled flag; NULL keeps a value.';

CREATE FUNCTION agent_tasks.drop_hook(name text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM agent_tasks_internal.hooks h
	 WHERE h.account = agent_tasks.current_account() AND h.name = drop_hook.name;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION agent_tasks.drop_hook(text) IS 'For agent_tasks_admin: remove a hook; false when there was none of that name.';

GRANT EXECUTE ON FUNCTION
	agent_tasks.create_hook(text, text[], text),
	agent_tasks.alter_hook(text, text[], text, boolean),
	agent_tasks.drop_hook(text)
TO agent_tasks_admin;
