-- Trust boundaries: accounts bound to the roles that call (issue 10).
--
-- Who may choose an account (README, Security):
-- - a role bound to an account has that account, and no other: its
--   sessions cannot name another one with agent_tasks.account or a JWT
--   claim (PT403 at use);
-- - an unbound role chooses by setting while agent_tasks.account_choice is
--   on, the default (0.1.0's behaviour); the DBA turns it off for a
--   database (ALTER DATABASE app SET agent_tasks.account_choice = off) and
--   back on for the trusted application roles that serve many accounts
--   (allow_account_choice: PostgREST's authenticator, a job runner);
-- - superusers choose freely, as they bypass row-level security anyway.
--
-- A binding is a setting of the role in this database
-- (ALTER ROLE ... IN DATABASE ... SET agent_tasks.bound_account /
-- agent_tasks.account_choice): PostgreSQL applies it when the role logs in,
-- current_account() (C, src/accounts.c) reads it without a lookup, and only
-- a superuser, or a role granted SET on the parameter, can set it.  So no
-- table: the bindings live, and are dumped (pg_dumpall, pg_dump --create),
-- with the roles.  They take effect at the role's next login.

-- Binding needs what ALTER ROLE ... SET of a superuser-only parameter
-- needs: superuser, or SET granted on the parameters by the DBA (with
-- CREATEROLE for the ALTER ROLE itself).  PT403 otherwise, PT404 for an
-- unknown role.
CREATE FUNCTION agent_tasks_internal.check_binding(role name)
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	target pg_roles;
	me pg_roles;
BEGIN
	PERFORM agent_tasks.uuid_v7();	-- loads the library: its parameters are known
	IF role IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'role must not be null', 'role is null',
			'Pass the name of a database role.');
	END IF;
	SELECT * INTO target FROM pg_roles r WHERE r.rolname = check_binding.role;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'role not found',
			format('No role %s.', quote_ident(role)), 'Name an existing database role.');
	END IF;
	SELECT * INTO me FROM pg_roles r WHERE r.rolname = current_user;
	IF NOT (me.rolsuper
			OR (me.rolcreaterole AND NOT target.rolsuper
				AND has_parameter_privilege('agent_tasks.bound_account', 'SET')
				AND has_parameter_privilege('agent_tasks.account_choice', 'SET'))) THEN
		PERFORM agent_tasks_internal.raise('PT403', 'only the DBA binds roles to accounts',
			format('role %s may not change the settings of role %s', quote_ident(current_user), quote_ident(role)),
			'Run it as a superuser, or as a CREATEROLE role granted SET ON PARAMETER agent_tasks.bound_account, agent_tasks.account_choice.');
	END IF;
END
$$;

CREATE VIEW agent_tasks.account_bindings WITH (security_invoker = true) AS
SELECT r.rolname AS role,
	   max(substr(c.setting, length('agent_tasks.bound_account=') + 1))
		   FILTER (WHERE c.setting LIKE 'agent\_tasks.bound\_account=%') AS account,
	   bool_or(substr(c.setting, length('agent_tasks.account_choice=') + 1)::boolean)
		   FILTER (WHERE c.setting LIKE 'agent\_tasks.account\_choice=%') AS account_choice
  FROM pg_catalog.pg_db_role_setting s
  JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase AND d.datname = current_database()
  JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
 CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
 WHERE c.setting LIKE 'agent\_tasks.bound\_account=%' OR c.setting LIKE 'agent\_tasks.account\_choice=%'
 GROUP BY r.rolname;
COMMENT ON VIEW agent_tasks.account_bindings IS 'Roles of this database bound to an account (bind_account) or allowed to choose theirs (allow_account_choice): role, account, account_choice. Taken from the roles'' settings (pg_db_role_setting), which every role can read.';

CREATE FUNCTION agent_tasks.bind_account(role name, account text)
	RETURNS agent_tasks.account_bindings
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result agent_tasks.account_bindings;
BEGIN
	PERFORM agent_tasks_internal.check_binding(role);
	IF account IS NULL OR account = '' OR length(account) > 200 OR account ~ '[[:cntrl:]]' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid account',
			format('account = %s', coalesce(quote_literal(left(account, 100)), 'null')),
			'Pass the account (1 to 200 characters, no control characters); unbind_account() removes a binding.');
	END IF;
	EXECUTE format('ALTER ROLE %I IN DATABASE %I SET agent_tasks.bound_account = %L',
				   role, current_database(), account);
	SELECT * INTO result FROM agent_tasks.account_bindings b WHERE b.role = bind_account.role;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.bind_account(name, text) IS 'For the DBA: bind a role to an account in this database. Its sessions (from its next login) have that account whatever agent_tasks.account or a JWT claim say; naming another is refused with PT403.';

CREATE FUNCTION agent_tasks.unbind_account(role name)
	RETURNS agent_tasks.account_bindings
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result agent_tasks.account_bindings;
BEGIN
	PERFORM agent_tasks_internal.check_binding(role);
	SELECT * INTO result FROM agent_tasks.account_bindings b WHERE b.role = unbind_account.role;
	IF result.role IS NULL OR result.account IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT404', 'role is not bound to an account',
			format('role %s has no binding in database %s', quote_ident(role), quote_ident(current_database())),
			'List the bindings in agent_tasks.account_bindings.');
	END IF;
	EXECUTE format('ALTER ROLE %I IN DATABASE %I RESET agent_tasks.bound_account', role, current_database());
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.unbind_account(name) IS 'For the DBA: remove the binding of a role in this database (from its next login); returns the binding it had.';

CREATE FUNCTION agent_tasks.allow_account_choice(role name, allowed boolean DEFAULT true)
	RETURNS agent_tasks.account_bindings
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result agent_tasks.account_bindings;
BEGIN
	PERFORM agent_tasks_internal.check_binding(role);
	IF allowed IS NULL THEN
		EXECUTE format('ALTER ROLE %I IN DATABASE %I RESET agent_tasks.account_choice', role, current_database());
	ELSE
		EXECUTE format('ALTER ROLE %I IN DATABASE %I SET agent_tasks.account_choice = %L',
					   role, current_database(), CASE WHEN allowed THEN 'on' ELSE 'off' END);
	END IF;
	SELECT * INTO result FROM agent_tasks.account_bindings b WHERE b.role = allow_account_choice.role;
	IF NOT FOUND THEN
		result.role := role;	-- no setting left
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.allow_account_choice(name, boolean) IS 'For the DBA: whether a role may choose its account by setting (agent_tasks.account, JWT claims) where agent_tasks.account_choice is off for the database: the trusted application roles (PostgREST''s authenticator, job runners). null removes the role''s own setting. From its next login.';

GRANT EXECUTE ON FUNCTION
	agent_tasks.bind_account(name, text),
	agent_tasks.unbind_account(name),
	agent_tasks.allow_account_choice(name, boolean)
TO agent_tasks_admin;
