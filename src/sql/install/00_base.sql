-- agent_tasks 0.2.0: schemas, roles, identity and the C primitives.
-- The install script is the concatenation of src/sql/install/*.sql in name order.

\echo Use "CREATE EXTENSION agent_tasks" to load this file. \quit

-- Roles are cluster-wide, so they cannot belong to the extension: create the
-- ones that are missing and leave them in place on DROP EXTENSION.
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['agent_tasks_reader', 'agent_tasks_writer',
							 'agent_tasks_worker', 'agent_tasks_admin']
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$$;
-- agent_tasks_engine owns the views and the API functions (SECURITY
-- DEFINER) and alone holds privileges on the private tables; it logs in
-- never, is a member of no API role and bypasses no row-level security, so
-- that every read and write still sees only the caller's account.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_tasks_engine') THEN
		CREATE ROLE agent_tasks_engine NOLOGIN NOINHERIT;
	END IF;
END
$$;
GRANT agent_tasks_reader TO agent_tasks_writer;
GRANT agent_tasks_writer TO agent_tasks_worker;
GRANT agent_tasks_worker TO agent_tasks_admin;

CREATE SCHEMA agent_tasks;
CREATE SCHEMA agent_tasks_internal;
COMMENT ON SCHEMA agent_tasks_internal IS 'Storage of agent_tasks: tables, reached through the views and functions of schema agent_tasks.';
COMMENT ON SCHEMA agent_tasks IS 'agent_tasks: AI-agent tasks with a checked state machine, audit trail, background execution and webhooks.';

GRANT USAGE ON SCHEMA agent_tasks TO agent_tasks_reader;
GRANT USAGE ON SCHEMA agent_tasks_internal TO agent_tasks_reader;
GRANT USAGE ON SCHEMA agent_tasks, agent_tasks_internal TO agent_tasks_engine;

-- Functions are not executable by PUBLIC: each is granted to a role below.
ALTER DEFAULT PRIVILEGES IN SCHEMA agent_tasks REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA agent_tasks_internal REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

CREATE FUNCTION agent_tasks.uuid_v7() RETURNS uuid
	AS 'MODULE_PATHNAME', 'at_uuid_v7'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks.uuid_v7() IS 'A new time-ordered UUID (version 7), strictly increasing within a session.';

CREATE FUNCTION agent_tasks.uuid_v7_time(id uuid) RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'at_uuid_v7_time'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks.uuid_v7_time(uuid) IS 'The creation time embedded in a version 7 UUID (NULL for other versions).';

CREATE FUNCTION agent_tasks.status_kind(status text) RETURNS text
	AS 'MODULE_PATHNAME', 'at_status_kind'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks.status_kind(text) IS 'Kind of a status: idle (pending), active (queued, in_progress), waiting (needs_clarification, on_hold) or terminal.';

CREATE FUNCTION agent_tasks_internal.status_transitions(
	OUT from_status text, OUT to_status text, OUT for_task boolean, OUT for_run boolean)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'at_status_transitions'
	LANGUAGE C IMMUTABLE STRICT;

-- True in a session restoring a dump (src/restore.c): the triggers that
-- would treat restored rows as new changes step aside.
CREATE FUNCTION agent_tasks_internal.restoring() RETURNS boolean
	AS 'MODULE_PATHNAME', 'at_restoring'
	LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION agent_tasks_internal.enforce_status_transition() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_enforce_status_transition'
	LANGUAGE C;

-- Identity.  PostgREST puts the verified JWT claims in request.jwt.claims;
-- SQL callers set agent_tasks.account and agent_tasks.email.  A role the DBA
-- bound to an account (bind_account, 87_trust.sql) has that account and no
-- other.  In C (src/accounts.c): it is on the path of every call.
CREATE FUNCTION agent_tasks.current_account() RETURNS text
	AS 'MODULE_PATHNAME', 'at_current_account'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks.current_account() IS 'The account (tenant) of this session: the account its role is bound to (bind_account), else the JWT claim "account", else the setting agent_tasks.account; PT403 when none is set, when a bound role names another account, or when the session may not choose (agent_tasks.account_choice = off).';

-- The role on whose behalf the API is called (src/accounts.c): inside the
-- API's SECURITY DEFINER functions current_user is their owner.
CREATE FUNCTION agent_tasks_internal.caller() RETURNS name
	AS 'MODULE_PATHNAME', 'at_caller'
	LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION agent_tasks.current_user_email() RETURNS text
	AS 'MODULE_PATHNAME', 'at_current_user_email'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks.current_user_email() IS 'The person acting in this session: JWT claim "email" (or "sub"), else the setting agent_tasks.email (else its former name agent_tasks.user); NULL when unknown.';

-- Who an activity names as its actor: a worker, else the person, else the
-- database role.
CREATE FUNCTION agent_tasks_internal.current_actor() RETURNS text
	AS 'MODULE_PATHNAME', 'at_current_actor'
	LANGUAGE C STABLE PARALLEL SAFE;

-- Errors of the public catalogue, raised from SQL.  The C side uses
-- ereport() with the same SQLSTATEs (src/agent_tasks.h).
CREATE FUNCTION agent_tasks_internal.raise(code text, message text, detail text, hint text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF hint IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail;
	END IF;
	RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, DETAIL = detail, HINT = hint;
END
$$;
