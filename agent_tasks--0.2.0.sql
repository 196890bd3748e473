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
GRANT agent_tasks_reader TO agent_tasks_writer;
GRANT agent_tasks_writer TO agent_tasks_worker;
GRANT agent_tasks_worker TO agent_tasks_admin;

CREATE SCHEMA agent_tasks;
CREATE SCHEMA agent_tasks_internal;
COMMENT ON SCHEMA agent_tasks_internal IS 'Storage of agent_tasks: tables, reached through the views and functions of schema agent_tasks.';
COMMENT ON SCHEMA agent_tasks IS 'agent_tasks: AI-agent tasks with a checked state machine, audit trail, background execution and webhooks.';

GRANT USAGE ON SCHEMA agent_tasks TO agent_tasks_reader;
GRANT USAGE ON SCHEMA agent_tasks_internal TO agent_tasks_reader;

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

CREATE FUNCTION agent_tasks_internal.enforce_status_transition() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_enforce_status_transition'
	LANGUAGE C;

-- Identity.  PostgREST puts the verified JWT claims in request.jwt.claims;
-- SQL callers set agent_tasks.account and agent_tasks.user.
CREATE FUNCTION agent_tasks.current_account() RETURNS text
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	claims text := current_setting('request.jwt.claims', true);
	account text;
BEGIN
	IF claims IS NOT NULL AND claims <> '' THEN
		account := claims::jsonb ->> 'account';
	END IF;
	account := coalesce(nullif(account, ''), nullif(current_setting('agent_tasks.account', true), ''));
	IF account IS NULL THEN
		RAISE EXCEPTION USING
			ERRCODE = 'PT403',
			MESSAGE = 'no account is set for this session',
			DETAIL = 'Neither the JWT claim "account" nor the setting agent_tasks.account names an account.',
			HINT = 'SQL callers: SET agent_tasks.account = ''my-account''. PostgREST callers: use a key or JWT that carries an account.';
	END IF;
	RETURN account;
END
$$;
COMMENT ON FUNCTION agent_tasks.current_account() IS 'The account (tenant) of this session: JWT claim "account", else the setting agent_tasks.account; PT403 when neither is set.';

CREATE FUNCTION agent_tasks.current_user_email() RETURNS text
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	claims text := current_setting('request.jwt.claims', true);
	email text;
BEGIN
	IF claims IS NOT NULL AND claims <> '' THEN
		email := coalesce(claims::jsonb ->> 'email', claims::jsonb ->> 'sub');
	END IF;
	RETURN lower(coalesce(nullif(email, ''), nullif(current_setting('agent_tasks.user', true), '')));
END
$$;
COMMENT ON FUNCTION agent_tasks.current_user_email() IS 'The person acting in this session: JWT claim "email" (or "sub"), else the setting agent_tasks.user; NULL when unknown.';

-- Who an activity names as its actor: a worker, else the person, else the
-- database role.
CREATE FUNCTION agent_tasks_internal.current_actor() RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce('worker:' || nullif(current_setting('agent_tasks.worker', true), ''),
					agent_tasks.current_user_email(), 'role:' || session_user)
$$;

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
-- Storage.  Every key leads with "account" so that tables can be
-- distributed and co-located by account (e.g. with Citus); row-level
-- security keeps accounts apart.

CREATE TABLE agent_tasks_internal.users (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	email		text NOT NULL CHECK (email = lower(email) AND length(email) <= 320),
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	UNIQUE (account, email)
);

CREATE TABLE agent_tasks_internal.agents (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	name			text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	kind			text NOT NULL CHECK (kind IN ('sql', 'http', 'openai', 'external')),
	target			text,
	config			jsonb NOT NULL DEFAULT '{}',
	concurrency		integer NOT NULL DEFAULT 4 CHECK (concurrency BETWEEN 1 AND 10000),
	timeout			interval NOT NULL DEFAULT '5 minutes' CHECK (timeout > '0' AND timeout <= '1 day'),
	max_attempts	integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
	backoff_base	interval NOT NULL DEFAULT '1 second' CHECK (backoff_base >= '0'),
	backoff_max		interval NOT NULL DEFAULT '5 minutes' CHECK (backoff_max >= backoff_base),
	budget_tokens	bigint CHECK (budget_tokens > 0),
	budget_cost		numeric CHECK (budget_cost > 0),
	used_tokens		bigint NOT NULL DEFAULT 0,
	used_cost		numeric NOT NULL DEFAULT 0,
	run_as			name NOT NULL DEFAULT current_user,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
);

CREATE TABLE agent_tasks_internal.tasks (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	parent_id		uuid,
	title			text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
	prompt			text CHECK (length(prompt) <= 100000),
	type			text CHECK (length(type) <= 100),
	command			text CHECK (length(command) <= 100),
	item			jsonb,
	context			jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
	agent_id		uuid,
	priority		integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
	output_schema	jsonb CHECK (jsonb_typeof(output_schema) = 'object'),
	owner_id		uuid,
	created_by		text NOT NULL,
	skills			text[] NOT NULL DEFAULT '{}',
	labels			text[] NOT NULL DEFAULT '{}',
	metadata		jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
	external_id		text CHECK (length(external_id) <= 200),
	origin			text NOT NULL DEFAULT 'sql' CHECK (length(origin) <= 100),
	idempotency_key	text CHECK (length(idempotency_key) <= 200),
	request_hash	text,
	callback_url	text CHECK (length(callback_url) <= 2000),
	run_after		timestamptz,
	latest_run_id	uuid,
	status			text NOT NULL DEFAULT 'pending',
	status_reason	text,
	output			jsonb,
	error			jsonb,
	feedback		text CHECK (feedback IN ('like', 'dislike')),
	budget_tokens	bigint CHECK (budget_tokens > 0),
	budget_cost		numeric CHECK (budget_cost > 0),
	archived_at		timestamptz,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	search			tsvector GENERATED ALWAYS AS
		(to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || coalesce(prompt, ''))) STORED,
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, parent_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, agent_id) REFERENCES agent_tasks_internal.agents (account, id) ON DELETE SET NULL (agent_id),
	FOREIGN KEY (account, owner_id) REFERENCES agent_tasks_internal.users (account, id),
	UNIQUE (account, idempotency_key)
);
CREATE INDEX ON agent_tasks_internal.tasks (account, status);
CREATE INDEX ON agent_tasks_internal.tasks (account, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX ON agent_tasks_internal.tasks (account, agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX ON agent_tasks_internal.tasks (account, owner_id);
CREATE INDEX ON agent_tasks_internal.tasks (account, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX ON agent_tasks_internal.tasks USING gin (search);

CREATE TABLE agent_tasks_internal.task_assignees (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	user_id		uuid NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, task_id, user_id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, user_id) REFERENCES agent_tasks_internal.users (account, id)
);
CREATE INDEX ON agent_tasks_internal.task_assignees (account, user_id);

CREATE TABLE agent_tasks_internal.task_followers (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	user_id		uuid NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, task_id, user_id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, user_id) REFERENCES agent_tasks_internal.users (account, id)
);
CREATE INDEX ON agent_tasks_internal.task_followers (account, user_id);

CREATE TABLE agent_tasks_internal.task_dependencies (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	depends_on	uuid NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, task_id, depends_on),
	CHECK (task_id <> depends_on),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, depends_on) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.task_dependencies (account, depends_on);

-- One run per attempt at a task.  "kind" is the agent's kind when the run
-- was queued, so that each worker type claims from its own part of the
-- runnable index.
CREATE TABLE agent_tasks_internal.runs (
	account				text NOT NULL,
	id					uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id				uuid NOT NULL,
	agent_id			uuid,
	kind				text NOT NULL DEFAULT 'external' CHECK (kind IN ('sql', 'http', 'openai', 'external')),
	attempt				integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
	status				text NOT NULL DEFAULT 'queued',
	status_reason		text,
	priority			integer NOT NULL DEFAULT 0,
	due_at				timestamptz NOT NULL DEFAULT now(),
	phase				text,
	progress			text,
	progress_data		jsonb,
	worker				text,
	lease_expires_at	timestamptz,
	heartbeat_at		timestamptz,
	queued_at			timestamptz NOT NULL DEFAULT now(),
	started_at			timestamptz,
	ended_at			timestamptz,
	input				jsonb,
	output				jsonb,
	error				jsonb,
	usage				jsonb NOT NULL DEFAULT '{}',
	tokens				bigint NOT NULL DEFAULT 0,
	cost				numeric NOT NULL DEFAULT 0,
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, agent_id) REFERENCES agent_tasks_internal.agents (account, id) ON DELETE SET NULL (agent_id)
);
CREATE INDEX ON agent_tasks_internal.runs (account, task_id, id);
-- The runnable queue: small (queued runs only), in claim order.
CREATE INDEX runs_runnable ON agent_tasks_internal.runs (kind, priority DESC, due_at, id)
	WHERE status = 'queued';
-- Leases to recover, and each agent's runs in progress (its concurrency).
CREATE INDEX runs_leased ON agent_tasks_internal.runs (lease_expires_at)
	WHERE status = 'in_progress';
CREATE INDEX runs_in_progress ON agent_tasks_internal.runs (account, agent_id)
	WHERE status = 'in_progress';

CREATE TABLE agent_tasks_internal.messages (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id		uuid NOT NULL,
	run_id		uuid,
	role		text NOT NULL CHECK (role IN ('user', 'agent', 'system')),
	author		text NOT NULL,
	body		text NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
	data		jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.messages (account, task_id, id);

-- The audit trail: written only by the extension's triggers.
CREATE TABLE agent_tasks_internal.activities (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id		uuid NOT NULL,
	run_id		uuid,
	event		text NOT NULL,
	actor		text NOT NULL,
	from_status	text,
	to_status	text,
	reason		text,
	data		jsonb NOT NULL DEFAULT '{}',
	created_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.activities (account, task_id, id);

-- Readers see their account's rows through the views; writers change them
-- through the functions (which run with the caller's rights, so RLS holds).
-- Activities have no write grant at all: only the SECURITY DEFINER trigger
-- functions add to them.
GRANT SELECT ON ALL TABLES IN SCHEMA agent_tasks_internal TO agent_tasks_reader;
GRANT INSERT, UPDATE, DELETE ON agent_tasks_internal.tasks, agent_tasks_internal.task_assignees,
	agent_tasks_internal.task_followers, agent_tasks_internal.task_dependencies,
	agent_tasks_internal.messages TO agent_tasks_writer;
-- Writers move runs through the lifecycle; what a run did (usage, progress,
-- lease renewals) is reported by workers only.
GRANT INSERT, DELETE ON agent_tasks_internal.runs TO agent_tasks_writer;
GRANT UPDATE (status, status_reason, error, output, due_at, started_at, worker, ended_at, lease_expires_at)
	ON agent_tasks_internal.runs TO agent_tasks_writer;
GRANT UPDATE ON agent_tasks_internal.runs TO agent_tasks_worker;
GRANT INSERT ON agent_tasks_internal.users TO agent_tasks_writer;
GRANT INSERT, UPDATE, DELETE ON agent_tasks_internal.agents TO agent_tasks_admin;
-- The audit trail and realtime notifications, written by the extension
-- itself.  The trigger functions are SECURITY DEFINER because no API role
-- may write activities; firing a trigger needs no EXECUTE grant, so they are
-- granted to nobody.  Status changes are checked by the C state machine
-- (enforce_status_transition) before they happen and logged here after.

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE OF status ON agent_tasks_internal.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('task');

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.runs
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('run');

-- A compact message on channel "agent_tasks"; delivered at commit, never
-- for a transaction that rolls back; not at all with agent_tasks.notify off.
CREATE FUNCTION agent_tasks_internal.notify_change(account text, task_id uuid, status text, event text)
	RETURNS void
	LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_notify('agent_tasks', json_build_object(
		'id', task_id, 'account', account, 'status', status, 'event', event)::text)
	 WHERE current_setting('agent_tasks.notify', true) IS DISTINCT FROM 'off'
$$;

CREATE FUNCTION agent_tasks_internal.log_activity(account text, task_id uuid, event text,
	data jsonb DEFAULT '{}', from_status text DEFAULT NULL, to_status text DEFAULT NULL,
	reason text DEFAULT NULL, run_id uuid DEFAULT NULL)
	RETURNS void
	LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO agent_tasks_internal.activities
		(account, task_id, run_id, event, actor, from_status, to_status, reason, data)
	VALUES (account, task_id, run_id, event, agent_tasks_internal.current_actor(),
			from_status, to_status, reason, data)
$$;

-- The fields whose change is logged as an "updated" activity, as JSON.
CREATE FUNCTION agent_tasks_internal.tracked_values(t agent_tasks_internal.tasks) RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_build_object('title', t.title, 'prompt', t.prompt, 'type', t.type,
		'context', t.context, 'agent_id', t.agent_id, 'priority', t.priority,
		'output_schema', t.output_schema, 'owner_id', t.owner_id, 'skills', t.skills,
		'labels', t.labels, 'metadata', t.metadata, 'external_id', t.external_id,
		'callback_url', t.callback_url, 'run_after', t.run_after,
		'budget_tokens', t.budget_tokens, 'budget_cost', t.budget_cost)
$$;

CREATE FUNCTION agent_tasks_internal.task_changed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changes jsonb;
	new_values jsonb;
	old_values jsonb;
	event text;
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM agent_tasks_internal.notify_change(OLD.account, OLD.id, OLD.status, 'deleted');
		RETURN NULL;
	END IF;

	IF TG_OP = 'INSERT' THEN
		PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.id, 'created',
			jsonb_strip_nulls(jsonb_build_object('title', NEW.title, 'parent_id', NEW.parent_id,
												 'origin', NEW.origin)),
			to_status => NEW.status, reason => NEW.status_reason);
		PERFORM agent_tasks_internal.notify_change(NEW.account, NEW.id, NEW.status, 'created');
		RETURN NULL;
	END IF;

	IF NEW.status IS DISTINCT FROM OLD.status THEN
		PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.id, 'status_changed',
			jsonb_strip_nulls(jsonb_build_object('error', NEW.error)),
			OLD.status, NEW.status, NEW.status_reason, NEW.latest_run_id);
		event := 'status_changed';
	END IF;

	IF NEW.archived_at IS DISTINCT FROM OLD.archived_at THEN
		PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.id,
			CASE WHEN NEW.archived_at IS NULL THEN 'unarchived' ELSE 'archived' END);
		event := coalesce(event, CASE WHEN NEW.archived_at IS NULL THEN 'unarchived' ELSE 'archived' END);
	END IF;

	IF NEW.feedback IS DISTINCT FROM OLD.feedback THEN
		PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.id, 'feedback',
			jsonb_build_object('feedback', NEW.feedback, 'previous', OLD.feedback));
		event := coalesce(event, 'feedback');
	END IF;

	new_values := agent_tasks_internal.tracked_values(NEW);
	old_values := agent_tasks_internal.tracked_values(OLD);
	IF new_values IS DISTINCT FROM old_values THEN
		SELECT jsonb_object_agg(n.key, n.value) INTO changes
		  FROM jsonb_each(new_values) AS n
		 WHERE n.value IS DISTINCT FROM old_values -> n.key;
		PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.id, 'updated',
			jsonb_build_object('changes', changes));
		event := coalesce(event, 'updated');
	END IF;

	IF event IS NOT NULL THEN
		PERFORM agent_tasks_internal.notify_change(NEW.account, NEW.id, NEW.status, event);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER task_changed
	AFTER INSERT OR UPDATE OR DELETE ON agent_tasks_internal.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_changed();

-- Assignees, followers and dependencies (TG_ARGV[0] names which).
CREATE FUNCTION agent_tasks_internal.task_link_changed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	link record;
	data jsonb;
	event text;
	task_status text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		link := NEW;
	ELSE
		link := OLD;
	END IF;

	-- A cascade from a deleted task has no trail left to write to.
	SELECT t.status INTO task_status FROM agent_tasks_internal.tasks t
	 WHERE t.account = link.account AND t.id = link.task_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;

	IF TG_ARGV[0] = 'dependency' THEN
		data := jsonb_build_object('depends_on', link.depends_on);
	ELSE
		SELECT jsonb_build_object('email', u.email) INTO data
		  FROM agent_tasks_internal.users u
		 WHERE u.account = link.account AND u.id = link.user_id;
	END IF;
	event := TG_ARGV[0] || CASE WHEN TG_OP = 'INSERT' THEN '_added' ELSE '_removed' END;

	PERFORM agent_tasks_internal.log_activity(link.account, link.task_id, event, data);
	PERFORM agent_tasks_internal.notify_change(link.account, link.task_id, task_status, event);
	RETURN NULL;
END
$$;

CREATE TRIGGER assignee_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_assignees
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_link_changed('assignee');
CREATE TRIGGER follower_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_followers
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_link_changed('follower');
CREATE TRIGGER dependency_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_dependencies
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_link_changed('dependency');

CREATE FUNCTION agent_tasks_internal.message_added() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.task_id, 'message',
		jsonb_build_object('message_id', NEW.id, 'role', NEW.role, 'author', NEW.author),
		run_id => NEW.run_id);
	-- every payload carries the task's current status
	PERFORM agent_tasks_internal.notify_change(NEW.account, NEW.task_id,
		(SELECT t.status FROM agent_tasks_internal.tasks t WHERE t.account = NEW.account AND t.id = NEW.task_id),
		'message');
	RETURN NULL;
END
$$;

CREATE TRIGGER message_added
	AFTER INSERT ON agent_tasks_internal.messages
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.message_added();

-- The trail is append-only, whoever asks.
CREATE FUNCTION agent_tasks_internal.activities_are_append_only() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION USING
		ERRCODE = 'PT403',
		MESSAGE = 'activities cannot be changed',
		DETAIL = format('activity %s of task %s', OLD.id, OLD.task_id),
		HINT = 'The activity trail is append-only; it disappears only with its task (agent_tasks.delete_task).';
END
$$;

CREATE TRIGGER activities_are_append_only
	BEFORE UPDATE ON agent_tasks_internal.activities
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.activities_are_append_only();
-- The read side of the public API.  Views run with the caller's rights
-- (security_invoker), so row-level security applies to every read.

CREATE VIEW agent_tasks.tasks WITH (security_invoker = true) AS
SELECT t.id,
	   t.account,
	   t.parent_id,
	   t.title,
	   t.prompt,
	   t.type,
	   t.command,
	   t.item,
	   t.context,
	   t.context ->> 'repository' AS repository,
	   a.name AS agent,
	   t.priority,
	   t.output_schema,
	   o.email AS owner,
	   t.created_by,
	   ARRAY(SELECT u.email
			   FROM agent_tasks_internal.task_assignees ta
			   JOIN agent_tasks_internal.users u ON u.account = ta.account AND u.id = ta.user_id
			  WHERE ta.account = t.account AND ta.task_id = t.id
			  ORDER BY u.email) AS assignees,
	   ARRAY(SELECT u.email
			   FROM agent_tasks_internal.task_followers tf
			   JOIN agent_tasks_internal.users u ON u.account = tf.account AND u.id = tf.user_id
			  WHERE tf.account = t.account AND tf.task_id = t.id
			  ORDER BY u.email) AS followers,
	   t.skills,
	   t.labels,
	   t.metadata,
	   t.external_id,
	   t.origin,
	   t.idempotency_key,
	   t.callback_url,
	   t.run_after,
	   t.status,
	   t.status_reason,
	   t.latest_run_id,
	   t.output,
	   t.error,
	   t.feedback,
	   t.budget_tokens,
	   t.budget_cost,
	   t.archived_at,
	   t.archived_at IS NOT NULL AS archived,
	   coalesce(o.email = (SELECT agent_tasks.current_user_email()), false) OR EXISTS (
			SELECT 1
			  FROM agent_tasks_internal.task_assignees ta
			  JOIN agent_tasks_internal.users u ON u.account = ta.account AND u.id = ta.user_id
			 WHERE ta.account = t.account AND ta.task_id = t.id
			   AND u.email = (SELECT agent_tasks.current_user_email())) AS mine,
	   t.created_at,
	   t.updated_at,
	   t.search
  FROM agent_tasks_internal.tasks t
  LEFT JOIN agent_tasks_internal.agents a ON a.account = t.account AND a.id = t.agent_id
  LEFT JOIN agent_tasks_internal.users o ON o.account = t.account AND o.id = t.owner_id;
COMMENT ON VIEW agent_tasks.tasks IS 'Tasks of the current account, with agent, owner, assignees and followers by name. Filter on status, type, agent, owner, mine, assignees, archived, created_by, repository, origin, external_id, or full-text "search".';
COMMENT ON COLUMN agent_tasks.tasks.prompt IS 'What the agent is asked to do (the description).';
COMMENT ON COLUMN agent_tasks.tasks.status IS 'pending, then the status of the latest run: queued, in_progress, needs_clarification, on_hold, completed, failed or cancelled.';
COMMENT ON COLUMN agent_tasks.tasks.status_reason IS 'Why the task has its status (user_request, blocked, timeout, max_attempts, worker_lost, invalid_output, budget_exceeded, ...).';
COMMENT ON COLUMN agent_tasks.tasks.mine IS 'True when the current user owns the task or is one of its assignees.';
COMMENT ON COLUMN agent_tasks.tasks.search IS 'Full-text document of title and prompt (english), for @@ / PostgREST fts filters.';
COMMENT ON COLUMN agent_tasks.tasks.archived IS 'True once archived (archiving is not a status).';

CREATE VIEW agent_tasks.runs WITH (security_invoker = true) AS
SELECT r.id, r.account, r.task_id, a.name AS agent, r.kind, r.attempt, r.status, r.status_reason,
	   r.priority, r.due_at, r.phase, r.progress, r.progress_data, r.worker, r.lease_expires_at,
	   r.heartbeat_at, r.queued_at, r.started_at, r.ended_at, r.input, r.output, r.error,
	   r.usage, r.tokens, r.cost
  FROM agent_tasks_internal.runs r
  LEFT JOIN agent_tasks_internal.agents a ON a.account = r.account AND a.id = r.agent_id;
COMMENT ON VIEW agent_tasks.runs IS 'Runs (one per attempt at a task) of the current account; terminal runs never change.';

CREATE VIEW agent_tasks.activities WITH (security_invoker = true) AS
SELECT id, account, task_id, run_id, event, actor, from_status, to_status, reason, data, created_at
  FROM agent_tasks_internal.activities;
COMMENT ON VIEW agent_tasks.activities IS 'Append-only audit trail of every task: creation, status changes (from, to, actor, reason), updates, people, messages, feedback, archiving.';

CREATE VIEW agent_tasks.messages WITH (security_invoker = true) AS
SELECT id, account, task_id, run_id, role, author, body, data, created_at
  FROM agent_tasks_internal.messages;
COMMENT ON VIEW agent_tasks.messages IS 'The conversation of each task: user follow-ups, agent replies, clarification questions and answers.';

CREATE VIEW agent_tasks.agents WITH (security_invoker = true) AS
SELECT id, account, name, kind, target, config, concurrency, timeout, max_attempts,
	   backoff_base, backoff_max, budget_tokens, budget_cost, created_at, updated_at
  FROM agent_tasks_internal.agents;
COMMENT ON VIEW agent_tasks.agents IS 'Agents of the current account: who executes runs, with their kind, target and limits.';

CREATE VIEW agent_tasks.users WITH (security_invoker = true) AS
SELECT id, account, email, created_at
  FROM agent_tasks_internal.users;
COMMENT ON VIEW agent_tasks.users IS 'People of the current account, provisioned on first mention (owner, assignee, follower).';

CREATE VIEW agent_tasks.status_transitions AS
SELECT from_status, to_status, for_task, for_run
  FROM agent_tasks_internal.status_transitions();
COMMENT ON VIEW agent_tasks.status_transitions IS 'The state machine: every allowed status change, for tasks and for runs. Anything else fails with PT409.';
-- Tasks: creation (prompt and command mode), reading, updating, archiving
-- and deleting.  Functions run with the caller's rights; they name the
-- account explicitly so that every lookup uses the (account, id) keys, and
-- row-level security checks the same thing again.

-- Input checks shared by the API functions: each refusal is PT400 with the
-- offending value in the detail.
CREATE FUNCTION agent_tasks_internal.check_text(field text, value text, max_length integer,
	required boolean DEFAULT false)
	RETURNS text
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF required AND (value IS NULL OR value !~ '\S') THEN		-- blank: only white space
		PERFORM agent_tasks_internal.raise('PT400', format('%s must not be empty', field),
			format('%s is %s.', field, coalesce(quote_literal(value), 'null')),
			format('Pass a non-empty %s.', field));
	END IF;
	IF length(value) > max_length THEN
		PERFORM agent_tasks_internal.raise('PT400', format('%s is too long', field),
			format('%s has %s characters; the limit is %s.', field, length(value), max_length),
			format('Shorten %s.', field));
	END IF;
	RETURN value;
END
$$;

CREATE FUNCTION agent_tasks_internal.check_json(field text, value jsonb, expected text,
	max_bytes integer DEFAULT 65536)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL OR jsonb_typeof(value) = 'null' THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(value) <> expected THEN
		PERFORM agent_tasks_internal.raise('PT400', format('%s must be a JSON %s', field, expected),
			format('%s is a JSON %s: %s', field, jsonb_typeof(value), left(value::text, 200)), NULL);
	END IF;
	IF pg_column_size(value) > max_bytes THEN
		PERFORM agent_tasks_internal.raise('PT400', format('%s is too large', field),
			format('%s takes %s bytes; the limit is %s.', field, pg_column_size(value), max_bytes),
			format('Make %s smaller.', field));
	END IF;
	RETURN value;
END
$$;

CREATE FUNCTION agent_tasks_internal.check_tags(field text, value text[])
	RETURNS text[]
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF cardinality(value) > 100 THEN
		PERFORM agent_tasks_internal.raise('PT400', format('too many %s', field),
			format('%s has %s entries; the limit is 100.', field, cardinality(value)), NULL);
	END IF;
	IF EXISTS (SELECT 1 FROM unnest(value) v WHERE v IS NULL OR v = '' OR length(v) > 200) THEN
		PERFORM agent_tasks_internal.raise('PT400', format('invalid entry in %s', field),
			format('%s = %s', field, value::text),
			'Entries must be non-empty strings of at most 200 characters.');
	END IF;
	RETURN coalesce(value, '{}');
END
$$;

CREATE FUNCTION agent_tasks_internal.check_url(field text, url text)
	RETURNS text
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	reason text;
BEGIN
	IF url IS NULL THEN
		RETURN NULL;
	END IF;
	IF url !~ '^https?://[^\s/]+' OR length(url) > 2000 THEN
		PERFORM agent_tasks_internal.raise('PT400', format('%s is not a valid URL', field),
			format('%s = %s', field, quote_literal(left(url, 200))),
			'Use an absolute https:// URL of at most 2000 characters.');
	END IF;
	-- the outbound URL policy (SSRF protection), src/url_policy.c
	reason := agent_tasks_internal.url_policy_violation(url);
	IF reason IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', format('%s is not allowed: %s', field, reason),
			format('%s = %s', field, quote_literal(left(url, 200))),
			'Use a public https:// URL without user information. For local development a superuser can '
			'set agent_tasks.allow_insecure_loopback; private ranges can be allowed with agent_tasks.http_allowed_cidrs.');
	END IF;
	RETURN url;
END
$$;

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
	ancestors uuid[];
	t agent_tasks_internal.tasks;
BEGIN
	WITH RECURSIVE up(id, parent_id, depth) AS (
		SELECT x.id, x.parent_id, 0 FROM agent_tasks_internal.tasks x
		 WHERE x.account = lock_task_in.account AND x.id = task
		UNION ALL
		SELECT p.id, p.parent_id, up.depth + 1
		  FROM up JOIN agent_tasks_internal.tasks p ON p.account = lock_task_in.account AND p.id = up.parent_id
		 WHERE up.depth < 100
	)
	SELECT array_agg(up.id ORDER BY up.depth DESC) INTO ancestors FROM up WHERE up.depth > 0;
	IF ancestors IS NOT NULL THEN
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

CREATE FUNCTION agent_tasks_internal.insert_task(t agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
	INSERT INTO agent_tasks_internal.tasks
		(account, id, parent_id, title, prompt, type, command, item, context, agent_id, priority,
		 output_schema, owner_id, created_by, skills, labels, metadata, external_id, origin,
		 idempotency_key, request_hash, callback_url, run_after, status, status_reason,
		 budget_tokens, budget_cost)
	VALUES
		(t.account, t.id, t.parent_id, t.title, t.prompt, t.type, t.command, t.item, t.context,
		 t.agent_id, t.priority, t.output_schema, t.owner_id, t.created_by, t.skills, t.labels,
		 t.metadata, t.external_id, t.origin, t.idempotency_key, t.request_hash, t.callback_url,
		 t.run_after, 'pending', t.status_reason, t.budget_tokens, t.budget_cost)
$$;

CREATE FUNCTION agent_tasks.create_task(
	title text,
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
	origin text DEFAULT 'sql',
	idempotency_key text DEFAULT NULL,
	callback_url text DEFAULT NULL,
	parent uuid DEFAULT NULL,
	run_after timestamptz DEFAULT NULL,
	depends_on uuid[] DEFAULT '{}',
	budget_tokens bigint DEFAULT NULL,
	budget_cost numeric DEFAULT NULL,
	auto_process boolean DEFAULT false)
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
	t.title := btrim(agent_tasks_internal.check_text('title', create_task.title, 500, true));
	t.prompt := agent_tasks_internal.check_text('prompt', create_task.prompt, 100000);
	t.type := agent_tasks_internal.check_text('type', create_task.type, 100);
	t.command := agent_tasks_internal.check_text('command', create_task.command, 100);
	t.context := coalesce(agent_tasks_internal.check_json('context', create_task.context, 'object'), '{}');
	t.metadata := coalesce(agent_tasks_internal.check_json('metadata', create_task.metadata, 'object'), '{}');
	t.output_schema := agent_tasks_internal.check_output_schema(create_task.output_schema);
	t.skills := agent_tasks_internal.check_tags('skills', create_task.skills);
	t.labels := agent_tasks_internal.check_tags('labels', create_task.labels);
	t.external_id := agent_tasks_internal.check_text('external_id', create_task.external_id, 200);
	t.origin := coalesce(agent_tasks_internal.check_text('origin', create_task.origin, 100), 'sql');
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
				'Use {"title": ..., "context": {...}, "external_id": ...} per item.');
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
		child.context := t.context || coalesce(agent_tasks_internal.check_json(
			format('context of item %s', n), item -> 'context', 'object'), '{}');
		child.external_id := agent_tasks_internal.check_text(format('external_id of item %s', n),
			item ->> 'external_id', 200);
		PERFORM agent_tasks_internal.insert_task(child);
	END LOOP;

	IF create_task.auto_process THEN
		RETURN agent_tasks.process_task(t.id);
	END IF;
	RETURN agent_tasks.get_task(t.id);
END
$$;
COMMENT ON FUNCTION agent_tasks.create_task IS 'Create a task (prompt mode), or a parent with one child task per item (command mode: command + items). Same idempotency_key and payload returns the same task; a different payload fails with PT422. auto_process queues it at once.';
-- The lifecycle a user drives: process, stop, cancel, retry, and the
-- privileged set_task_status.  A task's status follows its latest run; each
-- function changes the run (or, when there is none, the task), and the C
-- state machine checks the move.

-- Queue a new run of a task; run_changed makes it the task's latest.
CREATE FUNCTION agent_tasks_internal.queue_run(t agent_tasks_internal.tasks, attempt integer,
	due_at timestamptz, reason text, input jsonb DEFAULT NULL)
	RETURNS uuid
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	run_id uuid := agent_tasks.uuid_v7();
	kind text;
BEGIN
	SELECT a.kind INTO kind FROM agent_tasks_internal.agents a
	 WHERE a.account = t.account AND a.id = t.agent_id;
	INSERT INTO agent_tasks_internal.runs
		(account, id, task_id, agent_id, kind, attempt, status_reason, priority, due_at, input)
	VALUES (t.account, run_id, t.id, t.agent_id, coalesce(kind, 'external'), attempt, reason,
			t.priority, greatest(coalesce(due_at, now()), now()), input);
	RETURN run_id;
END
$$;

-- A task follows its latest run: a new run becomes the latest.  Earlier
-- runs that end later (an attempt that failed after its retry was queued)
-- are logged on their own.
CREATE FUNCTION agent_tasks_internal.run_changed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
		RETURN NULL;
	END IF;

	UPDATE agent_tasks_internal.tasks t
	   SET latest_run_id = NEW.id,
		   status = NEW.status,
		   status_reason = NEW.status_reason,
		   output = CASE WHEN TG_OP = 'INSERT' THEN NULL
						 WHEN NEW.status = 'completed' THEN NEW.output ELSE t.output END,
		   error = CASE WHEN TG_OP = 'INSERT' THEN NULL
						WHEN NEW.status IN ('failed', 'cancelled') THEN NEW.error ELSE t.error END,
		   updated_at = now()
	 WHERE t.account = NEW.account AND t.id = NEW.task_id
	   AND (TG_OP = 'INSERT' OR t.latest_run_id = NEW.id);

	IF NOT FOUND AND TG_OP = 'UPDATE' THEN
		PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.task_id, 'run_' || NEW.status,
			jsonb_strip_nulls(jsonb_build_object('attempt', NEW.attempt, 'error', NEW.error)),
			OLD.status, NEW.status, NEW.status_reason, NEW.id);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER run_changed
	AFTER INSERT OR UPDATE OF status ON agent_tasks_internal.runs
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.run_changed();

-- Move the task's latest run when it is still open, else the task itself.
CREATE FUNCTION agent_tasks_internal.move_task(t agent_tasks_internal.tasks, status text,
	reason text, error jsonb DEFAULT NULL, output jsonb DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	is_final boolean := agent_tasks.status_kind(move_task.status) = 'terminal';
BEGIN
	UPDATE agent_tasks_internal.runs r
	   SET status = move_task.status,
		   status_reason = reason,
		   error = coalesce(move_task.error, r.error),
		   output = coalesce(move_task.output, r.output),
		   due_at = CASE WHEN move_task.status = 'queued' THEN now() ELSE r.due_at END,
		   started_at = CASE WHEN move_task.status = 'in_progress' THEN now() ELSE r.started_at END,
		   worker = CASE WHEN move_task.status = 'in_progress' THEN 'role:' || session_user ELSE r.worker END,
		   ended_at = CASE WHEN is_final THEN now() END,
		   lease_expires_at = NULL
	 WHERE r.account = t.account AND r.id = t.latest_run_id
	   AND r.status = t.status AND agent_tasks.status_kind(r.status) <> 'terminal';
	IF NOT FOUND THEN
		UPDATE agent_tasks_internal.tasks
		   SET status = move_task.status, status_reason = reason,
			   error = coalesce(move_task.error, tasks.error),
			   output = coalesce(move_task.output, tasks.output), updated_at = now()
		 WHERE account = t.account AND id = t.id;
	END IF;
END
$$;

CREATE FUNCTION agent_tasks_internal.unfinished_blockers(account text, task uuid)
	RETURNS uuid[]
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(array_agg(d.depends_on ORDER BY d.depends_on), '{}')
	  FROM agent_tasks_internal.task_dependencies d
	  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
	 WHERE d.account = unfinished_blockers.account AND d.task_id = unfinished_blockers.task
	   AND b.status <> 'completed'
$$;

CREATE FUNCTION agent_tasks.process_task(task uuid, message text DEFAULT NULL, files jsonb DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	blockers uuid[];
	child uuid;
	input jsonb;
BEGIN
	-- Files with content or a url become artifacts; the run keeps references (86_artifacts.sql).
	files := agent_tasks_internal.store_files(t, files);
	PERFORM agent_tasks_internal.check_json('files', files, 'array', 1048576);
	input := jsonb_strip_nulls(jsonb_build_object('message', message, 'files', files));
	IF message IS NOT NULL THEN
		PERFORM agent_tasks.send_message(task, message, 'user', jsonb_strip_nulls(jsonb_build_object('files', files)));
		t := agent_tasks_internal.lock_task(task);
	END IF;

	-- Command mode: the parent runs through its children.
	IF EXISTS (SELECT 1 FROM agent_tasks_internal.tasks c WHERE c.account = t.account AND c.parent_id = t.id)
		AND t.command IS NOT NULL THEN
		FOR child IN SELECT c.id FROM agent_tasks_internal.tasks c
					  WHERE c.account = t.account AND c.parent_id = t.id
						AND c.status IN ('pending', 'on_hold', 'failed', 'cancelled')
					  ORDER BY c.id
		LOOP
			PERFORM agent_tasks.process_task(child);
		END LOOP;
		IF t.status <> 'queued' AND t.status <> 'in_progress' THEN
			UPDATE agent_tasks_internal.tasks
			   SET status = 'queued', status_reason = 'user_request', output = NULL, error = NULL,
				   updated_at = now()
			 WHERE account = t.account AND id = t.id;
		END IF;
		RETURN agent_tasks.get_task(task);
	END IF;

	CASE t.status
		WHEN 'queued', 'in_progress' THEN
			NULL;				-- already running: the message (if any) is its follow-up
		WHEN 'on_hold', 'needs_clarification' THEN
			IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.runs r
							WHERE r.account = t.account AND r.id = t.latest_run_id AND r.status = t.status) THEN
				PERFORM agent_tasks_internal.queue_run(t, 1, t.run_after, 'user_request', input);
			ELSE
				PERFORM agent_tasks_internal.move_task(t, 'queued',
					CASE t.status WHEN 'on_hold' THEN 'resumed' ELSE 'clarified' END);
			END IF;
		ELSE
			blockers := agent_tasks_internal.unfinished_blockers(t.account, t.id);
			IF cardinality(blockers) > 0 THEN
				PERFORM agent_tasks_internal.raise('PT409', 'task is blocked by unfinished dependencies',
					format('task %s waits for %s', t.id, array_to_string(blockers, ', ')),
					'It is queued automatically when they complete; or remove them with agent_tasks.remove_dependency().');
			END IF;
			PERFORM agent_tasks_internal.queue_run(t, 1, t.run_after,
				CASE WHEN t.status = 'pending' THEN 'user_request' ELSE 'follow_up' END, input);
	END CASE;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.process_task(uuid, text, jsonb) IS 'Queue a run of the task; resumes it from on_hold or needs_clarification, or starts a follow-up run after a finished one. The message (if any) joins the conversation; files are passed to the run.';

CREATE FUNCTION agent_tasks.stop_task(task uuid, reason text DEFAULT 'user_request')
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	child uuid;
BEGIN
	PERFORM agent_tasks_internal.check_text('reason', reason, 200, true);
	IF t.status <> 'on_hold' THEN
		FOR child IN SELECT c.id FROM agent_tasks_internal.tasks c
					  WHERE c.account = t.account AND c.parent_id = t.id
						AND c.status IN ('pending', 'queued', 'in_progress', 'needs_clarification')
					  ORDER BY c.id
		LOOP
			PERFORM agent_tasks.stop_task(child, reason);
		END LOOP;
		PERFORM agent_tasks_internal.move_task(t, 'on_hold', reason);
	END IF;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.stop_task(uuid, text) IS 'Put the task on hold (its queued or running run stops); process_task resumes it. Stopping a task on hold does nothing; a finished task cannot be stopped (PT409).';

CREATE FUNCTION agent_tasks.cancel_task(task uuid, reason text DEFAULT 'user_request')
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	child uuid;
BEGIN
	PERFORM agent_tasks_internal.check_text('reason', reason, 200, true);
	IF t.status = 'cancelled' THEN
		RETURN agent_tasks.get_task(task);		-- idempotent
	END IF;
	-- The parent first, so that its children's endings do not complete it.
	PERFORM agent_tasks_internal.move_task(t, 'cancelled', reason);
	FOR child IN SELECT c.id FROM agent_tasks_internal.tasks c
				  WHERE c.account = t.account AND c.parent_id = t.id
					AND agent_tasks.status_kind(c.status) <> 'terminal'
				  ORDER BY c.id
	LOOP
		PERFORM agent_tasks.cancel_task(child, 'parent_cancelled');
	END LOOP;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.cancel_task(uuid, text) IS 'Cancel the task, its running run and its open children. Idempotent: cancelling a cancelled task returns it unchanged; a completed or failed task cannot be cancelled (PT409).';

CREATE FUNCTION agent_tasks.retry_task(task uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	IF agent_tasks.status_kind(t.status) <> 'terminal' THEN
		PERFORM agent_tasks_internal.raise('PT409', 'only a finished task can be retried',
			format('task %s is %s', t.id, t.status),
			'Wait for it to finish, or stop_task / cancel_task it first.');
	END IF;
	RETURN agent_tasks.process_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.retry_task(uuid) IS 'Start a new run of a completed, failed or cancelled task (PT409 for a task that is not finished).';

-- For external agents and tests: drive the state machine directly.
CREATE FUNCTION agent_tasks.set_task_status(task uuid, status text, reason text DEFAULT NULL,
	output jsonb DEFAULT NULL, error jsonb DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	IF set_task_status.status = 'queued' AND agent_tasks.status_kind(t.status) IN ('idle', 'terminal') THEN
		PERFORM agent_tasks_internal.queue_run(t, 1, now(), coalesce(reason, 'user_request'));
	ELSE
		PERFORM agent_tasks_internal.move_task(t, set_task_status.status, reason, error, output);
	END IF;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.set_task_status(uuid, text, text, jsonb, jsonb) IS 'Privileged (agent_tasks_worker): move a task (its latest run) to a status, checked by the state machine like every other change.';
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
	IF role <> 'user' AND NOT pg_has_role(current_user, 'agent_tasks_worker', 'MEMBER') THEN
		PERFORM agent_tasks_internal.raise('PT403', format('only agents may send %s messages', role),
			format('role %s is not a member of agent_tasks_worker', current_user),
			'Send the message with role => ''user''.');
	END IF;
	PERFORM agent_tasks_internal.check_text('body', body, 100000, true);
	INSERT INTO agent_tasks_internal.messages (account, id, task_id, run_id, role, author, body, data)
	VALUES (t.account, message_id, t.id, t.latest_run_id, role, agent_tasks_internal.current_actor(), body,
			coalesce(agent_tasks_internal.check_json('data', data, 'object'), '{}'));

	-- A person's answer to a clarification question re-queues the run.
	IF role = 'user' AND t.status = 'needs_clarification' THEN
		PERFORM agent_tasks_internal.move_task(t, 'queued', 'clarified');
	END IF;

	SELECT * INTO result FROM agent_tasks.messages m WHERE m.account = t.account AND m.id = message_id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.send_message(uuid, text, text, jsonb) IS 'Add a message to the task''s conversation (role user; agent and system for agent_tasks_worker). A user message answers a clarification question and re-queues the run.';

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
	field_types constant jsonb := '{"title": "string", "prompt": "string", "type": "string",
		"context": "object", "agent": "string", "priority": "number", "output_schema": "object",
		"owner": "string", "skills": "array", "labels": "array", "metadata": "object",
		"external_id": "string", "callback_url": "string", "run_after": "string",
		"budget_tokens": "number", "budget_cost": "number"}';
	f record;
	text_array text[];
BEGIN
	-- room for a prompt of 100000 characters; context and metadata are checked on their own
	PERFORM agent_tasks_internal.check_json('patch', patch, 'object', 1048576);
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
			WHEN 'title' THEN t.title := btrim(agent_tasks_internal.check_text('title', f.value #>> '{}', 500, true));
			WHEN 'prompt' THEN t.prompt := agent_tasks_internal.check_text('prompt', f.value #>> '{}', 100000);
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
	   SET title = t.title, prompt = t.prompt, type = t.type, context = t.context,
		   agent_id = t.agent_id, priority = t.priority, output_schema = t.output_schema,
		   owner_id = t.owner_id, skills = t.skills, labels = t.labels, metadata = t.metadata,
		   external_id = t.external_id, callback_url = t.callback_url, run_after = t.run_after,
		   budget_tokens = t.budget_tokens, budget_cost = t.budget_cost, updated_at = now()
	 WHERE account = t.account AND id = t.id;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.update_task(uuid, jsonb) IS 'Change mutable fields of a task: the patch object names them (null clears). Status, ids and history cannot be patched.';

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
	"limit" integer DEFAULT 50,
	"offset" integer DEFAULT 0)
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
	IF list_tasks."limit" IS NULL OR list_tasks."limit" NOT BETWEEN 1 AND 1000
		OR list_tasks."offset" IS NULL OR list_tasks."offset" < 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid page',
			format('limit = %s, offset = %s', coalesce(list_tasks."limit"::text, 'null'),
				coalesce(list_tasks."offset"::text, 'null')),
			'limit is 1 to 1000, offset 0 or more.');
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
		 LIMIT list_tasks."limit" OFFSET list_tasks."offset"
	)
	SELECT jsonb_build_object(
			'count', (SELECT count(*) FROM matching),
			'limit', list_tasks."limit",
			'offset', list_tasks."offset",
			'results', coalesce((SELECT jsonb_agg(to_jsonb(p) - 'search' - 'account' ORDER BY p.id DESC) FROM page p), '[]'))
	  INTO result;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.list_tasks IS 'One page of tasks, newest first, with the total: {"count", "limit", "offset", "results"}. Filters: status, type, agent, owner, mine, assignee, archived (true / false / all), created_by, repository, origin, external_id, search (full text), parent.';
-- How tasks wait for each other: dependencies (a task is queued when its
-- last blocker completes; a failed or cancelled blocker cancels it) and
-- command mode (a parent follows its children).

CREATE FUNCTION agent_tasks.add_dependency(task uuid, depends_on uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks;
	blocker agent_tasks_internal.tasks;
	cycle uuid[];
BEGIN
	-- One writer of the dependency graph per account at a time, so that two
	-- concurrent additions cannot close a cycle that neither of them sees.
	PERFORM pg_advisory_xact_lock(hashtextextended('agent_tasks.dependencies:' || agent_tasks.current_account(), 0));
	-- the blocker first: a finishing blocker locks its dependents after itself
	blocker := agent_tasks_internal.lock_task(depends_on);
	t := agent_tasks_internal.lock_task(task);
	IF t.id = blocker.id THEN
		PERFORM agent_tasks_internal.raise('PT409', 'a task cannot depend on itself',
			format('task %s', t.id), NULL);
	END IF;
	IF t.status <> 'pending' THEN
		PERFORM agent_tasks_internal.raise('PT409', 'dependencies can be added only to pending tasks',
			format('task %s is %s', t.id, t.status),
			'Add dependencies before processing the task.');
	END IF;
	IF blocker.status IN ('failed', 'cancelled') THEN
		PERFORM agent_tasks_internal.raise('PT409', 'a task cannot depend on a failed or cancelled task',
			format('task %s is %s', blocker.id, blocker.status),
			'Retry the blocker first.');
	END IF;

	WITH RECURSIVE reach(id, path) AS (
		SELECT blocker.id, ARRAY[t.id, blocker.id]
		UNION ALL
		SELECT d.depends_on, r.path || d.depends_on
		  FROM reach r
		  JOIN agent_tasks_internal.task_dependencies d ON d.account = t.account AND d.task_id = r.id
		 WHERE d.depends_on <> ALL (r.path[2:])
	)
	SELECT r.path || t.id INTO cycle FROM reach r
	  JOIN agent_tasks_internal.task_dependencies d
		ON d.account = t.account AND d.task_id = r.id AND d.depends_on = t.id
	 LIMIT 1;
	IF cycle IS NOT NULL OR EXISTS (
		SELECT 1 FROM agent_tasks_internal.task_dependencies d
		 WHERE d.account = t.account AND d.task_id = blocker.id AND d.depends_on = t.id) THEN
		PERFORM agent_tasks_internal.raise('PT409', 'dependency would create a cycle',
			format('cycle: %s', array_to_string(coalesce(cycle, ARRAY[t.id, blocker.id, t.id]), ' -> ')),
			'Remove one of the dependencies on that path first.');
	END IF;

	INSERT INTO agent_tasks_internal.task_dependencies (account, task_id, depends_on)
	VALUES (t.account, t.id, blocker.id)
	ON CONFLICT DO NOTHING;
	IF blocker.status <> 'completed' AND t.status_reason IS DISTINCT FROM 'blocked' THEN
		UPDATE agent_tasks_internal.tasks SET status_reason = 'blocked', updated_at = now()
		 WHERE account = t.account AND id = t.id;
	END IF;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.add_dependency(uuid, uuid) IS 'Make a pending task wait for another (PT409 for a cycle). It stays pending with reason blocked and is queued when its last blocker completes; a failed or cancelled blocker cancels it.';

CREATE FUNCTION agent_tasks.remove_dependency(task uuid, depends_on uuid)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
BEGIN
	DELETE FROM agent_tasks_internal.task_dependencies d
	 WHERE d.account = t.account AND d.task_id = t.id AND d.depends_on = remove_dependency.depends_on;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'dependency not found',
			format('task %s does not depend on %s', t.id, remove_dependency.depends_on), NULL);
	END IF;
	PERFORM agent_tasks_internal.release_if_ready(t);
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.remove_dependency(uuid, uuid) IS 'Stop a task from waiting for another; a blocked task whose last blocker goes is queued.';

-- Queue a blocked task once nothing blocks it any more.
CREATE FUNCTION agent_tasks_internal.release_if_ready(t agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF t.status = 'pending' AND t.status_reason = 'blocked'
		AND cardinality(agent_tasks_internal.unfinished_blockers(t.account, t.id)) = 0 THEN
		PERFORM agent_tasks_internal.queue_run(t, 1, t.run_after, 'dependencies_met');
	END IF;
END
$$;

CREATE VIEW agent_tasks.ready_tasks WITH (security_invoker = true) AS
SELECT v.*
  FROM agent_tasks.tasks v
 WHERE v.status = 'pending'
   AND NOT v.archived
   AND NOT EXISTS (
		SELECT 1
		  FROM agent_tasks_internal.task_dependencies d
		  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
		 WHERE d.account = v.account AND d.task_id = v.id AND b.status <> 'completed');
COMMENT ON VIEW agent_tasks.ready_tasks IS 'Pending tasks whose dependencies are all completed: ready to process.';

CREATE VIEW agent_tasks.dependencies WITH (security_invoker = true) AS
SELECT d.account, d.task_id, d.depends_on, b.status AS depends_on_status, d.created_at
  FROM agent_tasks_internal.task_dependencies d
  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on;
COMMENT ON VIEW agent_tasks.dependencies IS 'Which task waits for which, with the blocker''s status.';

-- When a task finishes: release or cancel its dependents, and move its
-- command-mode parent.
CREATE FUNCTION agent_tasks_internal.task_finished() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	dependent agent_tasks_internal.tasks;
	parent agent_tasks_internal.tasks;
	children record;
BEGIN
	IF agent_tasks.status_kind(NEW.status) = 'terminal' THEN
		FOR dependent IN
			SELECT t.* FROM agent_tasks_internal.task_dependencies d
			  JOIN agent_tasks_internal.tasks t ON t.account = d.account AND t.id = d.task_id
			 WHERE d.account = NEW.account AND d.depends_on = NEW.id
			   AND agent_tasks.status_kind(t.status) <> 'terminal'
			 ORDER BY t.id
			   FOR UPDATE OF t
		LOOP
			IF NEW.status = 'completed' THEN
				PERFORM agent_tasks_internal.release_if_ready(dependent);
			ELSE
				PERFORM agent_tasks_internal.move_task(dependent, 'cancelled',
					format('dependency_%s:%s', NEW.status, NEW.id));
			END IF;
		END LOOP;
	END IF;

	IF NEW.parent_id IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT * INTO parent FROM agent_tasks_internal.tasks p
	 WHERE p.account = NEW.account AND p.id = NEW.parent_id AND p.command IS NOT NULL
	   FOR UPDATE;
	IF NOT FOUND OR agent_tasks.status_kind(parent.status) = 'terminal' THEN
		RETURN NULL;
	END IF;

	-- One row per child, kind and resource: count children once each, and
	-- gather resources in item order.
	SELECT count(DISTINCT c.id) FILTER (WHERE agent_tasks.status_kind(c.status) <> 'terminal') AS open,
		   count(DISTINCT c.id) FILTER (WHERE c.status = 'failed') AS failed,
		   count(DISTINCT c.id) FILTER (WHERE c.status = 'completed') AS completed,
		   jsonb_build_object(
			   'created', coalesce(jsonb_agg(e.value ORDER BY c.id, e.n) FILTER (WHERE e.value IS NOT NULL AND k = 'created'), '[]'),
			   'modified', coalesce(jsonb_agg(e.value ORDER BY c.id, e.n) FILTER (WHERE e.value IS NOT NULL AND k = 'modified'), '[]'),
			   'deleted', coalesce(jsonb_agg(e.value ORDER BY c.id, e.n) FILTER (WHERE e.value IS NOT NULL AND k = 'deleted'), '[]')) AS resources
	  INTO children
	  FROM agent_tasks_internal.tasks c
	  LEFT JOIN LATERAL (VALUES ('created'), ('modified'), ('deleted')) AS kinds(k) ON true
	  LEFT JOIN LATERAL jsonb_array_elements(
			CASE WHEN jsonb_typeof(c.output -> k) = 'array' THEN c.output -> k END) WITH ORDINALITY AS e(value, n) ON true
	 WHERE c.account = NEW.account AND c.parent_id = NEW.parent_id;

	-- The parent has no run of its own: it starts with its first child and
	-- ends with its last one.
	IF parent.status NOT IN ('queued', 'in_progress') THEN
		RETURN NULL;
	END IF;
	IF parent.status = 'queued' AND (NEW.status = 'in_progress' OR children.open = 0) THEN
		UPDATE agent_tasks_internal.tasks p SET status = 'in_progress', status_reason = NULL, updated_at = now()
		 WHERE p.account = parent.account AND p.id = parent.id;
	END IF;
	IF children.open = 0 THEN
		UPDATE agent_tasks_internal.tasks p
		   SET status = CASE WHEN children.failed > 0 THEN 'failed'
							 WHEN children.completed = 0 THEN 'cancelled' ELSE 'completed' END,
			   status_reason = CASE WHEN children.failed > 0 THEN 'child_failed'
									WHEN children.completed = 0 THEN 'children_cancelled' END,
			   output = children.resources,
			   error = CASE WHEN children.failed > 0
							THEN jsonb_build_object('message', format('%s child task(s) failed', children.failed)) END,
			   updated_at = now()
		 WHERE p.account = parent.account AND p.id = parent.id;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER task_finished
	AFTER UPDATE OF status ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
					   AND (NEW.status IN ('completed', 'failed', 'cancelled') OR NEW.parent_id IS NOT NULL))
	EXECUTE FUNCTION agent_tasks_internal.task_finished();
-- Execution: agents, the claim API for workers in any language (and for the
-- extension's own executors), what an attempt's outcome means (completion,
-- clarification, retry with backoff, failure), lease recovery, budgets,
-- output validation, waiting and watching.

-- C side: commit-time wake-ups (src/wakeup.c) and the worker registry
-- (src/shared_state.c).
CREATE FUNCTION agent_tasks_internal.wake_workers(kind text) RETURNS void
	AS 'MODULE_PATHNAME', 'at_wake_workers' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION agent_tasks_internal.run_signals() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_run_signals' LANGUAGE C;
CREATE FUNCTION agent_tasks_internal.task_signals() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_task_signals' LANGUAGE C;
CREATE FUNCTION agent_tasks_internal.watch_task(task uuid) RETURNS boolean
	AS 'MODULE_PATHNAME', 'at_watch_task' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION agent_tasks_internal.await_wakeup(timeout_ms integer) RETURNS void
	AS 'MODULE_PATHNAME', 'at_await_wakeup' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION agent_tasks_internal.server_life_started_at() RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'at_server_life_started_at' LANGUAGE C STABLE STRICT;

CREATE FUNCTION agent_tasks.worker_status(
	OUT pid integer, OUT worker text, OUT state text, OUT state_since timestamptz,
	OUT current_run uuid, OUT runs_done bigint, OUT runs_failed bigint,
	OUT last_error text, OUT last_error_at timestamptz, OUT started_at timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'at_worker_status' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION agent_tasks.worker_status() IS 'For agent_tasks_admin: the background workers, from shared memory: pid, name, state, current run, runs done and failed, last error. Empty when the library is not preloaded.';

-- Signals at commit: queued runs wake a worker, a run stopped under its
-- worker is interrupted, and wait_task() callers see task changes.
CREATE TRIGGER run_signals
	AFTER INSERT OR UPDATE OF status ON agent_tasks_internal.runs
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.run_signals();
CREATE TRIGGER task_signals
	AFTER UPDATE OF status ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
	EXECUTE FUNCTION agent_tasks_internal.task_signals();

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
-- changed its target: that role vouches for the function.  Nobody else sets
-- run_as, so an admin cannot borrow another role's rights (a superuser's
-- above all) by pointing an agent at a function of their own.
CREATE FUNCTION agent_tasks_internal.bind_agent_role() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.run_as IS DISTINCT FROM OLD.run_as
		AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
		PERFORM agent_tasks_internal.raise('PT403', 'the role of an agent cannot be chosen',
			format('agent %s runs as %s', quote_literal(NEW.name), OLD.run_as),
			'Change the agent''s target: it then runs as you.');
	END IF;
	IF TG_OP = 'INSERT' OR NEW.target IS DISTINCT FROM OLD.target OR NEW.kind IS DISTINCT FROM OLD.kind THEN
		NEW.run_as := current_user;
	END IF;
	IF NEW.kind = 'sql'
		AND NOT has_function_privilege(NEW.run_as, to_regprocedure(NEW.target || '(agent_tasks.tasks, agent_tasks.runs)'), 'EXECUTE') THEN
		PERFORM agent_tasks_internal.raise('PT403', 'the agent''s role may not execute its function',
			format('role %s lacks EXECUTE on %s', NEW.run_as, NEW.target),
			format('GRANT EXECUTE ON FUNCTION %s(agent_tasks.tasks, agent_tasks.runs) TO %I.', NEW.target, NEW.run_as));
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER bind_agent_role
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.agents
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.bind_agent_role();


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
				a.max_attempts, a.backoff_base, a.backoff_max, a.budget_tokens, a.budget_cost, current_user);
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
		IF jsonb_array_length(document) < coalesce((schema ->> 'minItems')::integer, 0) THEN
			errors := errors || format('%s: fewer than %s items', path, schema ->> 'minItems');
		END IF;
		IF jsonb_array_length(document) > coalesce((schema ->> 'maxItems')::integer, 2147483647) THEN
			errors := errors || format('%s: more than %s items', path, schema ->> 'maxItems');
		END IF;
	ELSIF actual = 'string' THEN
		IF length(document #>> '{}') < coalesce((schema ->> 'minLength')::integer, 0)
			OR length(document #>> '{}') > coalesce((schema ->> 'maxLength')::integer, 2147483647) THEN
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
	IF n_tokens <> 0 OR n_cost <> 0 THEN
		UPDATE agent_tasks_internal.agents a
		   SET used_tokens = a.used_tokens + n_tokens, used_cost = a.used_cost + n_cost
		 WHERE a.account = r.account AND a.id = r.agent_id;
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
		 WHERE t.account = over_budget.account AND t.id = over_budget.task
		   AND ((a.budget_tokens IS NOT NULL AND a.used_tokens >= a.budget_tokens)
				OR (a.budget_cost IS NOT NULL AND a.used_cost >= a.budget_cost)))
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

CREATE FUNCTION agent_tasks_internal.complete_attempt(r agent_tasks_internal.runs, output jsonb, usage jsonb)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	schema jsonb;
	errors text[];
BEGIN
	PERFORM agent_tasks_internal.record_usage(r, usage);
	SELECT t.output_schema INTO schema FROM agent_tasks_internal.tasks t
	 WHERE t.account = r.account AND t.id = r.task_id;
	errors := agent_tasks.validate_json(schema, output);
	IF cardinality(errors) > 0 THEN
		PERFORM agent_tasks_internal.fail_attempt(r,
			jsonb_build_object('message', 'the output does not match the task''s JSON Schema',
							   'errors', to_jsonb(errors), 'output', output),
			'invalid_output', false);
		RETURN;
	END IF;
	UPDATE agent_tasks_internal.runs x
	   SET status = 'completed', status_reason = NULL, output = complete_attempt.output,
		   ended_at = clock_timestamp(), lease_expires_at = NULL
	 WHERE x.account = r.account AND x.id = r.id;
END
$$;

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

-- The result of an sql agent function, in the transaction that ran it:
-- {"status": "completed", "output": ..., "usage": ...},
-- {"status": "needs_clarification", "question": ...},
-- {"status": "failed", "error": ..., "retryable": bool}, or any other JSON
-- value, which is the output itself.
CREATE FUNCTION agent_tasks_internal.finish_sql_run(account text, run_id uuid, result jsonb)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs;
	declared text := CASE WHEN jsonb_typeof(result) = 'object' THEN result ->> 'status' END;
BEGIN
	r := agent_tasks_internal.lock_run(account, run_id);
	IF r.id IS NULL OR r.status <> 'in_progress' THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the run is no longer in progress',
			format('run %s is %s', run_id, coalesce(r.status, 'gone')),
			'It was stopped or cancelled while the agent worked; its changes are rolled back.');
	END IF;
	CASE coalesce(declared, 'completed')
		WHEN 'completed' THEN
			PERFORM agent_tasks_internal.complete_attempt(r,
				CASE WHEN declared IS NULL THEN result ELSE result -> 'output' END, result -> 'usage');
		WHEN 'needs_clarification' THEN
			PERFORM agent_tasks_internal.clarify_attempt(r, result ->> 'question', result -> 'usage');
		WHEN 'failed' THEN
			PERFORM agent_tasks_internal.record_usage(r, result -> 'usage');
			PERFORM agent_tasks_internal.fail_attempt(r,
				CASE WHEN jsonb_typeof(result -> 'error') = 'object' THEN result -> 'error'
					 ELSE jsonb_build_object('message', coalesce(result ->> 'error', 'the agent reported a failure')) END,
				'rejected', coalesce((result ->> 'retryable')::boolean, false));
		ELSE
			PERFORM agent_tasks_internal.fail_attempt(r,
				jsonb_build_object('message', format('the agent returned an unknown status %s', quote_literal(declared))),
				'invalid_output', false);
	END CASE;
END
$$;

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

-- Take the next runnable run of this kind, or NULL.  Claims of one kind are
-- serialized (they are short) so that agents' concurrency limits hold
-- exactly.  A claim never waits for a row lock: it takes the run, its task
-- and the task's ancestors with SKIP LOCKED, passing over runs that a stop
-- or cancel is changing (which lock in the opposite order).
CREATE FUNCTION agent_tasks_internal.claim_next(kind text, account text, agents uuid[],
	worker text, lease interval)
	RETURNS agent_tasks_internal.runs
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs;
	t agent_tasks_internal.tasks;
	agent agent_tasks_internal.agents;
	passed uuid[] := '{}';
	ancestors uuid[];
	locked integer;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('agent_tasks.claim:' || kind || ':' || coalesce(account, ''), 0));
	LOOP
		SELECT x.* INTO r
		  FROM agent_tasks_internal.runs x
		  JOIN agent_tasks_internal.tasks tx ON tx.account = x.account AND tx.id = x.task_id
		  LEFT JOIN agent_tasks_internal.agents a ON a.account = x.account AND a.id = x.agent_id
		 WHERE x.kind = claim_next.kind AND x.status = 'queued' AND x.due_at <= now()
		   AND x.id <> ALL (passed)
		   AND (claim_next.account IS NULL OR x.account = claim_next.account)
		   AND (claim_next.agents IS NULL OR x.agent_id = ANY (claim_next.agents))
		   AND (a.id IS NULL OR (SELECT count(*) FROM agent_tasks_internal.runs y
								  WHERE y.account = x.account AND y.agent_id = x.agent_id
									AND y.status = 'in_progress') < a.concurrency)
		 ORDER BY x.priority DESC, x.due_at, x.id
		 LIMIT 1
		   FOR UPDATE OF x, tx SKIP LOCKED;
		IF NOT FOUND THEN
			RETURN NULL;
		END IF;
		passed := passed || r.id;

		SELECT * INTO t FROM agent_tasks_internal.tasks x WHERE x.account = r.account AND x.id = r.task_id;
		IF t.parent_id IS NOT NULL THEN
			WITH RECURSIVE up(id) AS (
				SELECT t.parent_id
				UNION ALL
				SELECT p.parent_id FROM up JOIN agent_tasks_internal.tasks p
				  ON p.account = r.account AND p.id = up.id
				 WHERE p.parent_id IS NOT NULL
			)
			SELECT array_agg(up.id) INTO ancestors FROM up;
			SELECT count(*) INTO locked
			  FROM (SELECT 1 FROM agent_tasks_internal.tasks x
					 WHERE x.account = r.account AND x.id = ANY (ancestors)
					   FOR UPDATE SKIP LOCKED) l;
			CONTINUE WHEN locked <> cardinality(ancestors);
		END IF;

		SELECT * INTO agent FROM agent_tasks_internal.agents a WHERE a.account = r.account AND a.id = r.agent_id;
		-- a run resumed by a person goes ahead even over budget
		IF r.status_reason IS DISTINCT FROM 'resumed'
			AND num_nonnulls(t.budget_tokens, t.budget_cost, agent.budget_tokens, agent.budget_cost) > 0
			AND agent_tasks_internal.over_budget(r.account, r.task_id) THEN
			UPDATE agent_tasks_internal.runs x SET status = 'on_hold', status_reason = 'budget_exceeded'
			 WHERE x.account = r.account AND x.id = r.id;
			CONTINUE;
		END IF;
		UPDATE agent_tasks_internal.runs x
		   SET status = 'in_progress', status_reason = NULL, worker = claim_next.worker,
			   started_at = now(), heartbeat_at = now(),
			   lease_expires_at = now() + coalesce(claim_next.lease, agent.timeout + interval '1 minute')
		 WHERE x.account = r.account AND x.id = r.id
		RETURNING * INTO r;
		RETURN r;
	END LOOP;
END
$$;

-- For the executors: up to max runs of sql agents, and how to call each.
CREATE FUNCTION agent_tasks_internal.claim_sql_runs(worker text, max integer,
	OUT account text, OUT run_id uuid, OUT call text, OUT run_as oid, OUT timeout_ms integer)
	RETURNS SETOF record
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs;
	a agent_tasks_internal.agents;
	fn text;
	claimed integer := 0;
	ahead interval := '0';		-- the longest the runs before this one can take
BEGIN
	WHILE claimed < max
	LOOP
		r := agent_tasks_internal.claim_next('sql', NULL, NULL, worker, NULL);
		EXIT WHEN r.id IS NULL;
		SELECT * INTO a FROM agent_tasks_internal.agents x WHERE x.account = r.account AND x.id = r.agent_id;
		-- the executor runs its batch one by one: the lease covers the wait
		UPDATE agent_tasks_internal.runs x SET lease_expires_at = x.lease_expires_at + ahead
		 WHERE x.account = r.account AND x.id = r.id;
		ahead := ahead + a.timeout;
		SELECT format('%I.%I', n.nspname, p.proname) INTO fn
		  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		 WHERE p.oid = to_regprocedure(a.target || '(agent_tasks.tasks, agent_tasks.runs)');
		run_as := (SELECT oid FROM pg_roles WHERE rolname = a.run_as);
		IF fn IS NULL OR run_as IS NULL THEN
			PERFORM agent_tasks_internal.fail_attempt(r, jsonb_build_object('message',
				CASE WHEN fn IS NULL THEN format('agent function %s does not exist', a.target)
					 ELSE format('role %s of the agent does not exist', a.run_as) END), 'error', false);
			CONTINUE;
		END IF;
		account := r.account;
		run_id := r.id;
		call := format('SELECT %s(t, r) FROM agent_tasks.tasks t JOIN agent_tasks.runs r'
					   ' ON r.account = t.account AND r.task_id = t.id WHERE r.account = $1 AND r.id = $2', fn);
		timeout_ms := (extract(epoch FROM a.timeout) * 1000)::integer;
		claimed := claimed + 1;
		RETURN NEXT;
	END LOOP;
END
$$;

CREATE FUNCTION agent_tasks.claim_runs(worker text, agents text[] DEFAULT NULL,
	"limit" integer DEFAULT 1, lease interval DEFAULT NULL)
	RETURNS TABLE (run_id uuid, task_id uuid, agent text, attempt integer,
				   lease_expires_at timestamptz, task jsonb, messages jsonb)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller_account text := agent_tasks.current_account();
	agent_ids uuid[];
	r agent_tasks_internal.runs;
	i integer;
BEGIN
	PERFORM agent_tasks_internal.check_text('worker', worker, 200, true);
	PERFORM set_config('agent_tasks.worker', worker, true);
	IF claim_runs."limit" IS NULL OR claim_runs."limit" NOT BETWEEN 1 AND 1000 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid claim limit',
			format('limit = %s', coalesce(claim_runs."limit"::text, 'null')), 'Claim 1 to 1000 runs at a time.');
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
	FOR i IN 1 .. claim_runs."limit"
	LOOP
		r := agent_tasks_internal.claim_next('external', caller_account, agent_ids, worker,
			coalesce(lease, current_setting('agent_tasks.default_lease')::interval));
		EXIT WHEN r.id IS NULL;
		run_id := r.id;
		task_id := r.task_id;
		agent := (SELECT a.name FROM agent_tasks_internal.agents a WHERE a.account = r.account AND a.id = r.agent_id);
		attempt := r.attempt;
		lease_expires_at := r.lease_expires_at;
		task := to_jsonb(agent_tasks.get_task(r.task_id)) - 'search';
		messages := coalesce((SELECT jsonb_agg(to_jsonb(m) - 'account' ORDER BY m.id)
								FROM agent_tasks.messages m
							   WHERE m.account = r.account AND m.task_id = r.task_id), '[]');
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION agent_tasks.claim_runs(text, text[], integer, interval) IS 'For external workers: claim up to limit queued runs of external agents (all, or those named), each under a lease (default agent_tasks.default_lease). Exclusive: a run is claimed by one worker at a time.';

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
-- an in-server worker before this server life (start or crash restart) and
-- is not an http run its agent accepted (202) and works on by itself.
CREATE FUNCTION agent_tasks_internal.recover_runs()
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
		   AND (x.lease_expires_at < now()
				OR (x.kind IN ('sql', 'http', 'openai') AND x.started_at < agent_tasks_internal.server_life_started_at()
					AND NOT agent_tasks_internal.http_run_accepted(x.account, x.id)))
		 ORDER BY x.lease_expires_at
		 LIMIT 1000
	LOOP
		r := agent_tasks_internal.lock_run(candidate.account, candidate.id);
		-- it may have been finished or heartbeated meanwhile
		CONTINUE WHEN r.status IS DISTINCT FROM 'in_progress'
			OR NOT (r.lease_expires_at < now()
					OR (r.kind IN ('sql', 'http', 'openai') AND r.started_at < agent_tasks_internal.server_life_started_at()
						AND NOT agent_tasks_internal.http_run_accepted(r.account, r.id)));
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

CREATE VIEW agent_tasks.queue_stats WITH (security_invoker = true) AS
SELECT a.account,
	   a.name AS agent,
	   a.kind,
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
	   a.used_tokens,
	   a.used_cost
  FROM agent_tasks_internal.agents a
  LEFT JOIN agent_tasks_internal.runs r ON r.account = a.account AND r.agent_id = a.id
 GROUP BY a.account, a.id, a.name, a.kind, a.used_tokens, a.used_cost;
COMMENT ON VIEW agent_tasks.queue_stats IS 'Per agent: queued and runnable runs, runs in progress, age of the oldest queued run, completed and failed in the last hour, run duration p50/p95 (seconds, last hour), tokens and cost used.';

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
-- REST access: API keys with scopes, authenticate() for PostgREST's
-- db-pre-request, grant_api() for the roles PostgREST logs in with, and rate
-- limits on task creation.
--
-- How a REST request is authenticated (PostgREST 12):
--   * PostgREST verifies a JWT itself (Authorization: Bearer <jwt>), switches
--     to the JWT's "role" and publishes its claims in request.jwt.claims;
--     authenticate() lets such a request through unchanged.
--   * An API key travels in the header "X-Api-Key: at_..." (or "apikey").
--     PostgREST parses every "Authorization: Bearer" token as a JWT and
--     answers 401 (PGRST301) before db-pre-request runs when it is not one,
--     so a key cannot use that header (a proxy may move it to X-Api-Key).
--     authenticate() finds the key by its SHA-256, checks revocation, expiry
--     and the scope the request needs, then switches to the key's role
--     (SET LOCAL ROLE) and sets the claims (account, email, key_id), so that
--     row-level security sees the key's account exactly as with a JWT.
--   * Anything else (the anonymous role) is refused with PT401 -> HTTP 401.
--
-- Scopes map onto the extension's roles: task:read -> agent_tasks_reader,
-- task:write -> agent_tasks_writer, worker -> agent_tasks_worker, admin ->
-- agent_tasks_admin; each implies the ones before it.  The scope a request
-- needs is derived from the grants: the least of those roles that may execute
-- the called function (POST/GET /rpc/name) or read the view (GET /name);
-- writes on views need task:write at least.  So keys, agents and webhooks
-- (granted to agent_tasks_admin) need the admin scope without a list here.

CREATE FUNCTION agent_tasks_internal.random_bytes(n integer) RETURNS bytea
	AS 'MODULE_PATHNAME', 'at_random_bytes'
	LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

-- Settings of the C module, read from SQL with their built-in defaults when
-- the library is not loaded in this backend yet.
CREATE FUNCTION agent_tasks_internal.setting_seconds(name text, fallback integer)
	RETURNS interval
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(nullif(current_setting(name, true), '')::interval, make_interval(secs => fallback))
$$;

CREATE FUNCTION agent_tasks_internal.setting_int(name text, fallback bigint)
	RETURNS bigint
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(pg_size_bytes(regexp_replace(nullif(current_setting(name, true), ''), '^(-?\d+)B$', '\1')), fallback)
$$;

-- A duration in words for messages: "1 hour", "90 seconds", "2 days".
CREATE FUNCTION agent_tasks_internal.duration_text(d interval)
	RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN s % 86400 = 0 THEN (s / 86400) || CASE WHEN s = 86400 THEN ' day' ELSE ' days' END
				WHEN s % 3600 = 0 THEN (s / 3600) || CASE WHEN s = 3600 THEN ' hour' ELSE ' hours' END
				WHEN s % 60 = 0 THEN (s / 60) || CASE WHEN s = 60 THEN ' minute' ELSE ' minutes' END
				ELSE s || CASE WHEN s = 1 THEN ' second' ELSE ' seconds' END END
	  FROM (SELECT extract(epoch FROM d)::bigint AS s) x
$$;

-- A time for messages, the same whatever the session's DateStyle: ISO 8601, UTC.
CREATE FUNCTION agent_tasks_internal.time_text(t timestamptz)
	RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- ---------------------------------------------------------------------------
-- API keys

CREATE TABLE agent_tasks_internal.api_keys (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	name			text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	prefix			text NOT NULL,
	key_hash		bytea NOT NULL CHECK (length(key_hash) = 32),
	scopes			text[] NOT NULL,
	user_email		text CHECK (user_email = lower(user_email)),
	created_by		text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	expires_at		timestamptz,
	revoked_at		timestamptz,
	last_used_at	timestamptz,
	PRIMARY KEY (account, id)
);
-- The one key that does not lead with the account: a request is matched to
-- its key (and so to its account) by the token's hash alone.
CREATE UNIQUE INDEX api_keys_key_hash ON agent_tasks_internal.api_keys (key_hash);
COMMENT ON TABLE agent_tasks_internal.api_keys IS 'API keys: only the SHA-256 of each token is stored, and no role may read it.';

-- Admins manage keys; nobody but the SECURITY DEFINER check reads key_hash.
GRANT SELECT (account, id, name, prefix, scopes, user_email, created_by, created_at, expires_at,
			  revoked_at, last_used_at) ON agent_tasks_internal.api_keys TO agent_tasks_admin;
GRANT INSERT (account, id, name, prefix, key_hash, scopes, user_email, created_by, expires_at)
	ON agent_tasks_internal.api_keys TO agent_tasks_admin;
GRANT UPDATE (revoked_at) ON agent_tasks_internal.api_keys TO agent_tasks_admin;

-- Scope names by level; level n is the n-th of the extension's roles.
CREATE FUNCTION agent_tasks_internal.scope_level(scope text)
	RETURNS integer
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT array_position(ARRAY['task:read', 'task:write', 'worker', 'admin'], scope)
$$;

CREATE FUNCTION agent_tasks_internal.level_scope(level integer)
	RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT (ARRAY['task:read', 'task:write', 'worker', 'admin'])[level]
$$;

CREATE FUNCTION agent_tasks_internal.level_role(level integer)
	RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT (ARRAY['agent_tasks_reader', 'agent_tasks_writer', 'agent_tasks_worker', 'agent_tasks_admin'])[level]
$$;

CREATE VIEW agent_tasks.api_keys WITH (security_invoker = true) AS
SELECT id, account, name, prefix, scopes, user_email AS "user", created_by, created_at, expires_at,
	   revoked_at, last_used_at,
	   CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
			WHEN expires_at <= now() THEN 'expired'
			ELSE 'active' END AS status
  FROM agent_tasks_internal.api_keys;
COMMENT ON VIEW agent_tasks.api_keys IS 'API keys of the current account (admin scope). The token itself is shown once, by create_api_key; only its SHA-256 is stored and it is never readable.';
COMMENT ON COLUMN agent_tasks.api_keys.prefix IS 'The first characters of the token, to recognise a key.';
COMMENT ON COLUMN agent_tasks.api_keys.scopes IS 'What the key may do: task:read, task:write, worker, admin (each implies the ones before it).';
COMMENT ON COLUMN agent_tasks.api_keys."user" IS 'The person the key acts as (owner and actor of what it creates), if any.';
COMMENT ON COLUMN agent_tasks.api_keys.last_used_at IS 'Last request that changed data (minute precision). PostgREST runs reads in read-only transactions, which cannot record it.';
COMMENT ON COLUMN agent_tasks.api_keys.status IS 'active, revoked or expired.';

CREATE FUNCTION agent_tasks.create_api_key(name text, scopes text[] DEFAULT '{task:read,task:write}',
	expires_at timestamptz DEFAULT NULL, "user" text DEFAULT NULL)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key agent_tasks_internal.api_keys;
	token text;
	level integer;
	bad text;
BEGIN
	key.id := agent_tasks.uuid_v7();
	key.account := agent_tasks.current_account();
	key.name := btrim(agent_tasks_internal.check_text('name', create_api_key.name, 200, true));
	SELECT s INTO bad FROM unnest(create_api_key.scopes) s
	 WHERE agent_tasks_internal.scope_level(s) IS NULL LIMIT 1;
	IF create_api_key.scopes IS NULL OR cardinality(create_api_key.scopes) = 0 OR bad IS NOT NULL
		OR array_position(create_api_key.scopes, NULL) IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid scopes',
			format('scopes = %s', coalesce(create_api_key.scopes::text, 'null')),
			'Use one or more of task:read, task:write, worker, admin.');
	END IF;
	-- Store the effective scopes: each implies the ones before it.
	SELECT max(agent_tasks_internal.scope_level(s)) INTO level FROM unnest(create_api_key.scopes) s;
	key.scopes := ARRAY(SELECT agent_tasks_internal.level_scope(i) FROM generate_series(1, level) i);
	IF create_api_key.expires_at IS NOT NULL AND create_api_key.expires_at <= now() THEN
		PERFORM agent_tasks_internal.raise('PT400', 'expires_at is in the past',
			format('expires_at = %s', agent_tasks_internal.time_text(create_api_key.expires_at)),
			'Pass a future time, or null for a key that does not expire.');
	END IF;
	key.expires_at := create_api_key.expires_at;
	key.user_email := lower(btrim(coalesce(create_api_key."user", agent_tasks.current_user_email())));
	IF key.user_email IS NOT NULL THEN
		PERFORM agent_tasks_internal.user_id(key.account, key.user_email);	-- validates, provisions
	END IF;
	key.created_by := agent_tasks_internal.current_actor();

	token := 'at_' || rtrim(translate(encode(agent_tasks_internal.random_bytes(32), 'base64'), '+/', '-_'), '=');
	key.prefix := left(token, 11);
	key.key_hash := sha256(convert_to(token, 'UTF8'));
	INSERT INTO agent_tasks_internal.api_keys
		(account, id, name, prefix, key_hash, scopes, user_email, created_by, expires_at)
	VALUES (key.account, key.id, key.name, key.prefix, key.key_hash, key.scopes, key.user_email,
			key.created_by, key.expires_at);
	RETURN jsonb_build_object('id', key.id, 'name', key.name, 'token', token, 'prefix', key.prefix,
							  'scopes', key.scopes, 'user', key.user_email, 'expires_at', key.expires_at);
END
$$;
COMMENT ON FUNCTION agent_tasks.create_api_key(text, text[], timestamptz, text) IS 'Create an API key (admin scope): returns {id, name, token, prefix, scopes, user, expires_at}. The token (at_...) is shown only this once; send it as the header X-Api-Key. Scopes: task:read, task:write, worker, admin (each implies the ones before it). The key acts as "user" (default: you).';

CREATE FUNCTION agent_tasks.revoke_api_key(key uuid)
	RETURNS agent_tasks.api_keys
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result agent_tasks.api_keys;
BEGIN
	UPDATE agent_tasks_internal.api_keys k SET revoked_at = coalesce(k.revoked_at, now())
	 WHERE k.account = agent_tasks.current_account() AND k.id = revoke_api_key.key;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'API key not found',
			format('No API key %s in this account.', revoke_api_key.key),
			'List the keys in agent_tasks.api_keys.');
	END IF;
	SELECT * INTO result FROM agent_tasks.api_keys v
	 WHERE v.account = agent_tasks.current_account() AND v.id = revoke_api_key.key;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.revoke_api_key(uuid) IS 'Revoke an API key (admin scope); its next request is refused with 401. Revoking a revoked key does nothing.';

-- The scope a PostgREST request needs, from the method and path PostgREST
-- publishes: the least extension role that may execute the function or read
-- the view and the tables behind it (1 = task:read ... 4 = admin).  Functions no extension role may
-- execute (grant_api, install_maintenance) need admin, and fail anyway.
CREATE FUNCTION agent_tasks_internal.required_level(method text, path text)
	RETURNS integer
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	object text := btrim(coalesce(path, '/'), '/');
	level integer;
	is_read boolean := upper(coalesce(method, 'GET')) IN ('GET', 'HEAD', 'OPTIONS');
BEGIN
	IF object = '' THEN
		RETURN 1;			-- the OpenAPI document
	END IF;
	IF object LIKE 'rpc/%' THEN
		SELECT min(CASE WHEN has_function_privilege('agent_tasks_reader', p.oid, 'EXECUTE') THEN 1
						WHEN has_function_privilege('agent_tasks_writer', p.oid, 'EXECUTE') THEN 2
						WHEN has_function_privilege('agent_tasks_worker', p.oid, 'EXECUTE') THEN 3
						ELSE 4 END)
		  INTO level
		  FROM pg_proc p
		 WHERE p.pronamespace = 'agent_tasks'::regnamespace AND p.proname = substr(object, 5);
		RETURN coalesce(level, 1);		-- no such function: PostgREST answers 404
	END IF;
	-- A view: the least role that may read it and what it reads (the
	-- tables behind api_keys are for admins only, for instance).
	SELECT coalesce(min(l), 4) INTO level
	  FROM pg_class c, generate_series(1, 4) l
	 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relname = object
	   AND has_table_privilege(agent_tasks_internal.level_role(l), c.oid, 'SELECT')
	   AND NOT EXISTS (
			SELECT 1 FROM pg_rewrite rw
			  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
							  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid
			 WHERE rw.ev_class = c.oid
			   AND NOT has_any_column_privilege(agent_tasks_internal.level_role(l), d.refobjid, 'SELECT'));
	IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relname = object) THEN
		level := NULL;
	END IF;
	level := coalesce(level, 1);
	RETURN CASE WHEN is_read THEN level ELSE greatest(level, 2) END;
END
$$;

-- The key behind a token, checked for this request.  SECURITY DEFINER: the
-- caller is PostgREST's anonymous role, which may read no key; knowing the
-- token is the authorization.  Returns the role and the claims to set.
CREATE FUNCTION agent_tasks_internal.check_api_key(token text, method text, path text,
	OUT role text, OUT claims jsonb)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key agent_tasks_internal.api_keys;
	needed integer;
	has integer;
BEGIN
	IF token IS NULL OR token !~ '^at_[A-Za-z0-9_-]{20,100}$' THEN
		PERFORM agent_tasks_internal.raise('PT401', 'invalid API key',
			'The X-Api-Key header does not hold an agent_tasks API key (at_...).',
			'Create a key with agent_tasks.create_api_key() and send it as X-Api-Key.');
	END IF;
	SELECT * INTO key FROM agent_tasks_internal.api_keys k
	 WHERE k.key_hash = sha256(convert_to(token, 'UTF8'));
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT401', 'invalid API key',
			format('No API key matches the token %s...', left(token, 11)),
			'Check the token; it is shown only once, by agent_tasks.create_api_key().');
	END IF;
	IF key.revoked_at IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT401', 'API key revoked',
			format('Key %s (%s) was revoked at %s.', key.prefix, key.name, agent_tasks_internal.time_text(key.revoked_at)),
			'Create a new key with agent_tasks.create_api_key().');
	END IF;
	IF key.expires_at <= now() THEN
		PERFORM agent_tasks_internal.raise('PT401', 'API key expired',
			format('Key %s (%s) expired at %s.', key.prefix, key.name, agent_tasks_internal.time_text(key.expires_at)),
			'Create a new key with agent_tasks.create_api_key().');
	END IF;

	needed := agent_tasks_internal.required_level(method, path);
	SELECT max(agent_tasks_internal.scope_level(s)) INTO has FROM unnest(key.scopes) s;
	IF coalesce(has, 0) < needed THEN
		PERFORM agent_tasks_internal.raise('PT403', 'API key lacks the scope for this request',
			format('%s %s needs scope %s; key %s (%s) has %s.', upper(method), path,
				   agent_tasks_internal.level_scope(needed), key.prefix, key.name,
				   array_to_string(key.scopes, ', ')),
			format('Use a key with scope %s.', agent_tasks_internal.level_scope(needed)));
	END IF;

	-- PostgREST runs reads in READ ONLY transactions, which cannot record
	-- the use.  Minute precision, and never wait for a concurrent request of
	-- the same key.
	IF current_setting('transaction_read_only') = 'off' THEN
		UPDATE agent_tasks_internal.api_keys k SET last_used_at = now()
		 WHERE k.account = key.account AND k.id = key.id
		   AND k.id IN (SELECT l.id FROM agent_tasks_internal.api_keys l
						 WHERE l.account = key.account AND l.id = key.id
						   AND (l.last_used_at IS NULL OR l.last_used_at < now() - interval '1 minute')
						   FOR UPDATE SKIP LOCKED);
	END IF;

	role := agent_tasks_internal.level_role(has);
	claims := jsonb_strip_nulls(jsonb_build_object(
		'role', role, 'account', key.account, 'email', key.user_email,
		'key_id', key.id, 'key_name', key.name, 'scopes', to_jsonb(key.scopes)));
END
$$;

CREATE FUNCTION agent_tasks.authenticate()
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	headers jsonb := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
	token text := coalesce(headers ->> 'x-api-key', headers ->> 'apikey');
	key record;
BEGIN
	-- PostgREST 12 refuses a non-JWT bearer token before calling us; a
	-- future version or a proxy may pass it on.
	IF token IS NULL AND headers ->> 'authorization' ~* '^bearer\s+at_' THEN
		token := regexp_replace(headers ->> 'authorization', '^\S+\s+', '');
	END IF;

	IF token IS NULL THEN
		-- A JWT that PostgREST has verified (its role and claims are set), or
		-- a role granted API access directly.
		IF pg_has_role(current_user, 'agent_tasks_reader', 'USAGE') THEN
			RETURN;
		END IF;
		PERFORM agent_tasks_internal.raise('PT401', 'authentication required',
			'The request carries neither an API key nor a JWT.',
			'Send the header "X-Api-Key: at_..." (agent_tasks.create_api_key) or "Authorization: Bearer <jwt>".');
	END IF;

	key := agent_tasks_internal.check_api_key(token, current_setting('request.method', true),
											  current_setting('request.path', true));
	-- Not SECURITY DEFINER: "role" cannot be set inside one.
	PERFORM set_config('role', key.role, true);
	PERFORM set_config('request.jwt.claims', key.claims::text, true);
END
$$;
COMMENT ON FUNCTION agent_tasks.authenticate() IS 'PostgREST db-pre-request: accepts a verified JWT, or an API key in the header X-Api-Key (checks revocation, expiry and the scope the request needs, then switches to the key''s role and account); anything else is refused with 401.';

-- ---------------------------------------------------------------------------
-- Rate limits: fixed windows counted in a table with one row per
-- (account, subject), incremented by an UPSERT that holds the row until
-- commit, so concurrent creators of one account are counted exactly.

CREATE TABLE agent_tasks_internal.rate_limits (
	account		text NOT NULL,
	subject		text NOT NULL,		-- 'account', or the id of an API key
	max_count	integer NOT NULL CHECK (max_count >= 0),
	period		interval NOT NULL CHECK (period >= '1 second' AND period <= '366 days'),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, subject)
);

CREATE TABLE agent_tasks_internal.rate_counters (
	account			text NOT NULL,
	subject			text NOT NULL,
	window_start	timestamptz NOT NULL,
	window_end		timestamptz NOT NULL,
	count			bigint NOT NULL,
	PRIMARY KEY (account, subject)
);

GRANT SELECT ON agent_tasks_internal.rate_limits, agent_tasks_internal.rate_counters TO agent_tasks_reader;
GRANT INSERT, UPDATE, DELETE ON agent_tasks_internal.rate_limits TO agent_tasks_admin;

-- The limit of a subject: its own row, else (for the account) the settings.
CREATE FUNCTION agent_tasks_internal.rate_limit_of(account text, subject text,
	OUT max_count integer, OUT period interval)
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(l.max_count, CASE WHEN rate_limit_of.subject = 'account'
				THEN agent_tasks_internal.setting_int('agent_tasks.task_rate_limit', 100)::integer END),
		   coalesce(l.period, agent_tasks_internal.setting_seconds('agent_tasks.task_rate_window', 3600))
	  FROM (SELECT 1) one
	  LEFT JOIN agent_tasks_internal.rate_limits l
		ON l.account = rate_limit_of.account AND l.subject = rate_limit_of.subject
$$;

-- Count one event against a subject; PT429 over the limit.
CREATE FUNCTION agent_tasks_internal.rate_limit_hit(account text, subject text, what text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	lim record := agent_tasks_internal.rate_limit_of(account, subject);
	secs double precision := extract(epoch FROM lim.period);
	start timestamptz;
	n bigint;
	ends timestamptz;
	retry integer;
	detail text;
BEGIN
	IF lim.max_count IS NULL OR lim.max_count = 0 THEN
		RETURN;			-- no limit
	END IF;
	start := to_timestamp(floor(extract(epoch FROM now()) / secs) * secs);
	INSERT INTO agent_tasks_internal.rate_counters AS c (account, subject, window_start, window_end, count)
	VALUES (rate_limit_hit.account, rate_limit_hit.subject, start, start + lim.period, 1)
	ON CONFLICT ON CONSTRAINT rate_counters_pkey DO UPDATE
	   SET count = CASE WHEN c.window_start = excluded.window_start THEN c.count + 1 ELSE 1 END,
		   window_start = excluded.window_start,
		   window_end = excluded.window_end
	RETURNING c.count, c.window_end INTO n, ends;
	IF n > lim.max_count THEN
		retry := greatest(1, ceil(extract(epoch FROM ends - now())))::integer;
		detail := format('%s allows %s task creations per %s. Retry after %s seconds.',
						 what, lim.max_count, agent_tasks_internal.duration_text(lim.period), retry);
		IF nullif(current_setting('request.method', true), '') IS NOT NULL THEN
			-- Through PostgREST: the same error body, plus a Retry-After header.
			RAISE EXCEPTION USING ERRCODE = 'PGRST',
				MESSAGE = jsonb_build_object('code', 'PT429', 'message', 'rate limit exceeded',
					'details', detail, 'hint', format('Retry after %s seconds.', retry))::text,
				DETAIL = jsonb_build_object('status', 429,
					'headers', jsonb_build_object('Retry-After', retry::text))::text;
		END IF;
		PERFORM agent_tasks_internal.raise('PT429', 'rate limit exceeded', detail,
			format('Retry after %s seconds.', retry));
	END IF;
END
$$;

-- Count a task creation against its account and, for a request made with an
-- API key, against the key.  SECURITY DEFINER: no API role may write the
-- counters.  It counts for the current account only, so calling it directly
-- can harm nobody else.
CREATE FUNCTION agent_tasks_internal.count_task_creation()
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	claims text := nullif(current_setting('request.jwt.claims', true), '');
	key_id text;
BEGIN
	PERFORM agent_tasks_internal.rate_limit_hit(acct, 'account', format('Account %s', quote_literal(acct)));
	IF claims IS NOT NULL THEN
		key_id := claims::jsonb ->> 'key_id';
		IF key_id IS NOT NULL AND EXISTS (SELECT 1 FROM agent_tasks_internal.rate_limits l
										   WHERE l.account = acct AND l.subject = key_id) THEN
			PERFORM agent_tasks_internal.rate_limit_hit(acct, key_id,
				format('API key %s', (SELECT k.prefix FROM agent_tasks_internal.api_keys k
									  WHERE k.account = acct AND k.id::text = key_id)));
		END IF;
	END IF;
END
$$;

-- Root tasks count (a command-mode parent is one job; its children do not).
-- Roles that bypass row-level security (superusers, BYPASSRLS) bypass the
-- limit as well: maintenance, benchmarks and the extension's own jobs.
CREATE FUNCTION agent_tasks_internal.task_rate_limit() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user) THEN
		PERFORM agent_tasks_internal.count_task_creation();
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER task_rate_limit
	BEFORE INSERT ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NEW.parent_id IS NULL)
	EXECUTE FUNCTION agent_tasks_internal.task_rate_limit();

CREATE VIEW agent_tasks.rate_limits WITH (security_invoker = true) AS
SELECT s.account, s.subject, lim.max_count, lim.period,
	   coalesce(CASE WHEN c.window_end > now() THEN c.count END, 0) AS used,
	   CASE WHEN c.window_end > now() THEN c.window_end END AS resets_at,
	   l.account IS NOT NULL AS custom
  FROM (SELECT agent_tasks.current_account() AS account, 'account'::text AS subject
		UNION
		SELECT r.account, r.subject FROM agent_tasks_internal.rate_limits r) s
 CROSS JOIN LATERAL agent_tasks_internal.rate_limit_of(s.account, s.subject) lim
  LEFT JOIN agent_tasks_internal.rate_limits l ON l.account = s.account AND l.subject = s.subject
  LEFT JOIN agent_tasks_internal.rate_counters c ON c.account = s.account AND c.subject = s.subject;
COMMENT ON VIEW agent_tasks.rate_limits IS 'Task-creation limits of the current account (subject "account") and of its API keys that have one (subject = key id), with the use of the current window. Over a limit create_task fails with PT429 (HTTP 429) and says when to retry.';
COMMENT ON COLUMN agent_tasks.rate_limits.max_count IS 'Task creations allowed per period (0 = no limit). Without a custom limit the account has agent_tasks.task_rate_limit per agent_tasks.task_rate_window (default 100 per hour).';
COMMENT ON COLUMN agent_tasks.rate_limits.used IS 'Creations counted in the current fixed window.';
COMMENT ON COLUMN agent_tasks.rate_limits.resets_at IS 'End of the current window (null when nothing was counted in it).';
COMMENT ON COLUMN agent_tasks.rate_limits.custom IS 'True when set by agent_tasks.set_rate_limit rather than the server settings.';

CREATE FUNCTION agent_tasks.set_rate_limit(max_count integer, period interval DEFAULT NULL,
	key uuid DEFAULT NULL)
	RETURNS SETOF agent_tasks.rate_limits
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	ROWS 2
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	subj text := coalesce(set_rate_limit.key::text, 'account');
BEGIN
	IF set_rate_limit.key IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM agent_tasks_internal.api_keys k
			 WHERE k.account = acct AND k.id = set_rate_limit.key) THEN
		PERFORM agent_tasks_internal.raise('PT404', 'API key not found',
			format('No API key %s in this account.', set_rate_limit.key), 'List the keys in agent_tasks.api_keys.');
	END IF;
	IF set_rate_limit.max_count < 0 OR set_rate_limit.period < interval '1 second'
		OR set_rate_limit.period > interval '366 days' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid rate limit',
			format('max_count = %s, period = %s', set_rate_limit.max_count,
				   coalesce(agent_tasks_internal.duration_text(set_rate_limit.period), 'null')),
			'max_count is 0 (no limit) or more; period is 1 second to 366 days.');
	END IF;
	IF set_rate_limit.max_count IS NULL THEN
		DELETE FROM agent_tasks_internal.rate_limits l
		 WHERE l.account = acct AND l.subject = subj;
	ELSE
		INSERT INTO agent_tasks_internal.rate_limits AS l (account, subject, max_count, period)
		VALUES (acct, subj, set_rate_limit.max_count,
				coalesce(set_rate_limit.period, agent_tasks_internal.setting_seconds('agent_tasks.task_rate_window', 3600)))
		ON CONFLICT ON CONSTRAINT rate_limits_pkey DO UPDATE
		   SET max_count = excluded.max_count, period = excluded.period, updated_at = now();
	END IF;
	RETURN QUERY SELECT * FROM agent_tasks.rate_limits r WHERE r.account = acct;
END
$$;
COMMENT ON FUNCTION agent_tasks.set_rate_limit(integer, interval, uuid) IS 'Set the task-creation limit of the current account (key null) or of one API key (admin scope): max_count per period (fixed windows; 0 = no limit; null removes the custom limit). Returns the account''s limits.';

-- ---------------------------------------------------------------------------
-- Roles for PostgREST.

CREATE FUNCTION agent_tasks.grant_api(role name, mode text)
	RETURNS text
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	granted text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = grant_api.role) THEN
		PERFORM agent_tasks_internal.raise('PT404', 'role not found',
			format('There is no role %s.', quote_ident(grant_api.role)),
			format('CREATE ROLE %s first.', quote_ident(grant_api.role)));
	END IF;
	CASE mode
		WHEN 'anon' THEN
			EXECUTE format('GRANT USAGE ON SCHEMA agent_tasks, agent_tasks_internal TO %I', grant_api.role);
			EXECUTE format('GRANT EXECUTE ON FUNCTION agent_tasks.authenticate(), '
						   'agent_tasks_internal.check_api_key(text, text, text), '
						   'agent_tasks_internal.raise(text, text, text, text) TO %I', grant_api.role);
			granted := 'what an unauthenticated request needs to reach agent_tasks.authenticate(), and no data';
		WHEN 'read', 'write', 'worker', 'admin' THEN
			granted := CASE mode WHEN 'read' THEN 'agent_tasks_reader' WHEN 'write' THEN 'agent_tasks_writer'
								 WHEN 'worker' THEN 'agent_tasks_worker' ELSE 'agent_tasks_admin' END;
			EXECUTE format('GRANT %I TO %I', granted, grant_api.role);
		ELSE
			PERFORM agent_tasks_internal.raise('PT400', 'invalid mode',
				format('mode = %s', coalesce(quote_literal(mode), 'null')),
				'Use anon, read, write, worker or admin.');
	END CASE;
	RETURN format('granted %s to %s', granted, quote_ident(grant_api.role));
END
$$;
COMMENT ON FUNCTION agent_tasks.grant_api(name, text) IS 'For the database administrator: give a role API access. mode anon: only what PostgREST''s anonymous role needs to call authenticate(); read, write, worker, admin: membership in agent_tasks_reader, _writer, _worker or _admin (grant admin to PostgREST''s authenticator so that it may switch to the role of any key or JWT).';

GRANT EXECUTE ON FUNCTION agent_tasks.authenticate() TO agent_tasks_reader;
GRANT EXECUTE ON FUNCTION
	agent_tasks.create_api_key(text, text[], timestamptz, text),
	agent_tasks.revoke_api_key(uuid),
	agent_tasks.set_rate_limit(integer, interval, uuid)
TO agent_tasks_admin;

-- PostgREST reloads its schema cache when told so; the notification is sent
-- when CREATE EXTENSION (or ALTER EXTENSION UPDATE: every upgrade script ends
-- with the same line) commits, so its place in the script does not matter.
NOTIFY pgrst, 'reload schema';
-- http and openai agents: what the HTTP dispatcher (src/http_dispatcher.c)
-- sends and what an answer means.  The URL policy (SSRF protection,
-- src/url_policy.c), agent secrets (never readable through the API),
-- per-run tokens for agents that answer asynchronously, the request
-- builders, and claim_http_runs / finish_http_run, which the dispatcher
-- calls in short transactions of their own around each request.

CREATE FUNCTION agent_tasks_internal.url_policy_violation(url text) RETURNS text
	AS 'MODULE_PATHNAME', 'at_url_policy_violation' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION agent_tasks_internal.url_policy_violation(text) IS 'NULL when the dispatcher may call the URL, else why not: https only, no user information, no literal address in a blocked range (any spelling), no localhost; agent_tasks.allow_insecure_loopback and agent_tasks.http_allowed_cidrs make exceptions.';

-- Secrets -------------------------------------------------------------------

-- One secret per agent (a bearer token, an API key).  No role has any
-- privilege on this table: only the SECURITY DEFINER functions below and
-- the dispatcher (superuser) touch it, and nothing ever returns a secret.
CREATE TABLE agent_tasks_internal.agent_secrets (
	account		text NOT NULL,
	agent_id	uuid NOT NULL,
	secret		text NOT NULL CHECK (length(secret) BETWEEN 1 AND 10000),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, agent_id),
	FOREIGN KEY (account, agent_id) REFERENCES agent_tasks_internal.agents (account, id) ON DELETE CASCADE
);
REVOKE ALL ON agent_tasks_internal.agent_secrets FROM PUBLIC;
COMMENT ON TABLE agent_tasks_internal.agent_secrets IS 'The secret of each http or openai agent (bearer token, API key). Not readable by any API role.';

-- A secret belongs to the endpoint it was set for: pointing the agent at
-- another target drops it, so that nobody can send it to a host of their
-- choosing.  SECURITY DEFINER: the table has no privileges for the caller.
CREATE FUNCTION agent_tasks_internal.forget_agent_secret() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM agent_tasks_internal.agent_secrets s
	 WHERE s.account = NEW.account AND s.agent_id = NEW.id;
	RETURN NULL;
END
$$;

CREATE TRIGGER forget_agent_secret
	AFTER UPDATE OF target, kind ON agent_tasks_internal.agents
	FOR EACH ROW WHEN (OLD.target IS DISTINCT FROM NEW.target OR OLD.kind IS DISTINCT FROM NEW.kind)
	EXECUTE FUNCTION agent_tasks_internal.forget_agent_secret();

-- SECURITY DEFINER: the table has no privileges for the caller, by design;
-- the agent is looked up in the caller's account only.
CREATE FUNCTION agent_tasks.set_agent_secret(agent text, secret text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	target_agent uuid;
	kind text;
BEGIN
	SELECT a.id, a.kind INTO target_agent, kind FROM agent_tasks_internal.agents a
	 WHERE a.account = acct AND a.name = set_agent_secret.agent
	   FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'agent not found',
			format('No agent %s in this account.', coalesce(quote_literal(set_agent_secret.agent), 'null')),
			'Create it with agent_tasks.create_agent().');
	END IF;
	IF kind NOT IN ('http', 'openai') THEN
		PERFORM agent_tasks_internal.raise('PT400', 'only http and openai agents have a secret',
			format('agent %s is of kind %s', quote_literal(set_agent_secret.agent), kind), NULL);
	END IF;
	IF secret IS NULL THEN
		DELETE FROM agent_tasks_internal.agent_secrets s
		 WHERE s.account = acct AND s.agent_id = target_agent;
		RETURN false;
	END IF;
	IF length(secret) NOT BETWEEN 1 AND 10000 OR secret ~ '[\r\n]' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid secret',
			format('the secret has %s characters', length(secret)),
			'Use 1 to 10000 characters without line breaks.');
	END IF;
	INSERT INTO agent_tasks_internal.agent_secrets AS s (account, agent_id, secret)
	VALUES (acct, target_agent, set_agent_secret.secret)
	ON CONFLICT (account, agent_id) DO UPDATE SET secret = excluded.secret, updated_at = now();
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.set_agent_secret(text, text) IS 'Store the secret of an http or openai agent (sent as "Authorization: Bearer <secret>", or in the header named by config.secret_header); null removes it. Write-only: no API returns a secret.';

CREATE FUNCTION agent_tasks.agent_has_secret(agent text)
	RETURNS boolean
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (
		SELECT 1 FROM agent_tasks_internal.agent_secrets s
		  JOIN agent_tasks_internal.agents a ON a.account = s.account AND a.id = s.agent_id
		 WHERE a.account = agent_tasks.current_account() AND a.name = agent_has_secret.agent)
$$;
COMMENT ON FUNCTION agent_tasks.agent_has_secret(text) IS 'Whether the agent has a secret (set_agent_secret); never the secret itself.';

-- Per-run tokens --------------------------------------------------------------

-- The token an http agent receives with each run ("rt_..."); it answers
-- asynchronously with it (complete_run(run, output, worker => token), ...).
-- Only the SHA-256 is stored; no role can read the table.
CREATE TABLE agent_tasks_internal.run_tokens (
	account		text NOT NULL,
	run_id		uuid NOT NULL,
	token_hash	bytea NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	accepted_at	timestamptz,		-- the agent answered 202: it works asynchronously
	PRIMARY KEY (account, run_id),
	FOREIGN KEY (account, run_id) REFERENCES agent_tasks_internal.runs (account, id) ON DELETE CASCADE
);
REVOKE ALL ON agent_tasks_internal.run_tokens FROM PUBLIC;
COMMENT ON TABLE agent_tasks_internal.run_tokens IS 'SHA-256 of the token each run of an http agent was sent. Not readable by any API role.';

-- SECURITY DEFINER: the caller cannot read run_tokens; it learns only
-- whether its token is the run's.
CREATE FUNCTION agent_tasks_internal.verify_run_token(run uuid, token text)
	RETURNS boolean
	LANGUAGE sql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT token IS NOT NULL AND EXISTS (
		SELECT 1 FROM agent_tasks_internal.run_tokens t
		 WHERE t.account = agent_tasks.current_account() AND t.run_id = run
		   AND t.token_hash = sha256(convert_to(token, 'UTF8')))
$$;

-- Did the agent of this run answer 202 (it will report by itself)?
-- (For the dispatcher and the launcher, which run as superuser.)
CREATE FUNCTION agent_tasks_internal.http_run_accepted(account text, run uuid)
	RETURNS boolean
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (
		SELECT 1 FROM agent_tasks_internal.run_tokens t
		 WHERE t.account = http_run_accepted.account AND t.run_id = run AND t.accepted_at IS NOT NULL)
$$;

-- Request builders ------------------------------------------------------------

-- config.headers: {"Name": "value"}; names must be tokens and values
-- single lines, anything else is dropped (no header injection).
CREATE FUNCTION agent_tasks_internal.agent_headers(a agent_tasks_internal.agents)
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_object_agg(h.key, h.value), '{}')
	  FROM jsonb_each(CASE WHEN jsonb_typeof(a.config -> 'headers') = 'object'
						   THEN a.config -> 'headers' ELSE '{}' END) h
	 WHERE h.key ~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]{1,100}$'
	   AND jsonb_typeof(h.value) = 'string'
	   AND h.value #>> '{}' !~ '[\r\n\x00]'
	   AND length(h.value #>> '{}') <= 8000
$$;

-- The secret header, when the agent has a secret.
CREATE FUNCTION agent_tasks_internal.secret_header(a agent_tasks_internal.agents)
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((
		SELECT CASE WHEN a.config ->> 'secret_header' ~ '^[A-Za-z0-9!#$%&''*+.^_`|~-]{1,100}$'
					THEN jsonb_build_object(a.config ->> 'secret_header', s.secret)
					ELSE jsonb_build_object('Authorization', 'Bearer ' || s.secret) END
		  FROM agent_tasks_internal.agent_secrets s
		 WHERE s.account = a.account AND s.agent_id = a.id), '{}')
$$;

-- The task's conversation, oldest first.
CREATE FUNCTION agent_tasks_internal.task_messages(account text, task uuid)
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'run_id', m.run_id, 'role', m.role,
			'author', m.author, 'body', m.body, 'data', m.data, 'created_at', m.created_at) ORDER BY m.id), '[]')
	  FROM agent_tasks_internal.messages m
	 WHERE m.account = task_messages.account AND m.task_id = task
$$;

-- openai agent: a chat-completions request built from the task.
CREATE FUNCTION agent_tasks_internal.openai_request(r agent_tasks_internal.runs,
	a agent_tasks_internal.agents,
	OUT url text, OUT headers jsonb, OUT body text)
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks;
	msgs jsonb := '[]';
	request jsonb;
	base text := rtrim(a.target, '/');
BEGIN
	SELECT * INTO t FROM agent_tasks_internal.tasks x WHERE x.account = r.account AND x.id = r.task_id;
	url := CASE WHEN base ~ '/chat/completions$' THEN base ELSE base || '/chat/completions' END;
	headers := jsonb_build_object('Content-Type', 'application/json', 'Accept', 'application/json')
		|| agent_tasks_internal.agent_headers(a) || agent_tasks_internal.secret_header(a);
	IF coalesce(a.config ->> 'system_prompt', '') <> '' THEN
		msgs := msgs || jsonb_build_object('role', 'system', 'content', a.config ->> 'system_prompt');
	END IF;
	msgs := msgs || jsonb_build_object('role', 'user', 'content',
		concat_ws(E'\n\n', t.title, nullif(t.prompt, ''),
			CASE WHEN t.item IS NOT NULL THEN 'Item: ' || t.item::text END,
			CASE WHEN t.context <> '{}' THEN 'Context: ' || t.context::text END));
	msgs := msgs || coalesce((
		SELECT jsonb_agg(jsonb_build_object('role',
					CASE m.role WHEN 'agent' THEN 'assistant' ELSE m.role END, 'content', m.body)
				ORDER BY m.id)
		  FROM agent_tasks_internal.messages m
		 WHERE m.account = r.account AND m.task_id = r.task_id), '[]');
	request := jsonb_build_object('model', coalesce(a.config ->> 'model', 'gpt-4o-mini'), 'messages', msgs);
	IF t.output_schema IS NOT NULL THEN
		request := request || jsonb_build_object('response_format', jsonb_build_object(
			'type', 'json_schema',
			'json_schema', jsonb_build_object(
				'name', coalesce(a.config ->> 'schema_name', 'output'),
				'schema', t.output_schema,
				'strict', coalesce((a.config ->> 'strict')::boolean, false))));
	END IF;
	IF jsonb_typeof(a.config -> 'params') = 'object' THEN
		-- temperature, max_tokens, ...: never model, messages or response_format
		request := (a.config -> 'params') - 'model' - 'messages' - 'response_format' || request;
	END IF;
	body := request::text;
END
$$;

-- Dispatcher side -----------------------------------------------------------

CREATE FUNCTION agent_tasks_internal.require_superuser(what text)
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user), false) THEN
		PERFORM agent_tasks_internal.raise('PT403', format('%s is for the dispatcher', what),
			format('role %s is not a superuser', current_user), NULL);
	END IF;
END
$$;

-- What the dispatcher sends (claim_http_runs, claim_webhook_deliveries):
-- one POST.
CREATE TYPE agent_tasks_internal.http_request AS (
	account text, id uuid, url text, headers jsonb, body text, timeout_ms integer, max_response_bytes integer);
COMMENT ON TYPE agent_tasks_internal.http_request IS 'One request of the HTTP dispatcher: POST body with headers to url, within timeout_ms, reading at most max_response_bytes.';

-- A new run token ("rt_" + 32 random bytes, base64url).
CREATE FUNCTION agent_tasks_internal.new_run_token()
	RETURNS text
	LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'rt_' || rtrim(translate(encode(agent_tasks_internal.random_bytes(32), 'base64'), '+/', '-_'), '=')
$$;

-- The requests of many claimed runs at once: the tasks (as agent_tasks.tasks
-- shows them), conversations and agents' headers are read in one statement
-- for all of them, not run by run.  http agent: POST {task, run, messages,
-- run_token, callback} to the target, the run's token being tokens[i] for
-- runs[i]; openai agent: openai_request.
CREATE FUNCTION agent_tasks_internal.http_run_requests(runs agent_tasks_internal.runs[], tokens text[])
	RETURNS SETOF agent_tasks_internal.http_request
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	WITH r AS (
		SELECT runs[i] AS run, tokens[i] AS token, i
		  FROM generate_subscripts(runs, 1) i
	), agent AS (
		-- each agent once: its headers and secret
		SELECT a, jsonb_build_object('Content-Type', 'application/json', 'Accept', 'application/json')
				|| agent_tasks_internal.agent_headers(a) || agent_tasks_internal.secret_header(a) AS headers
		  FROM agent_tasks_internal.agents a
		 WHERE (a.account, a.id) IN (SELECT (r.run).account, (r.run).agent_id FROM r)
	), messages AS (
		SELECT m.account, m.task_id,
			   jsonb_agg(jsonb_build_object('id', m.id, 'run_id', m.run_id, 'role', m.role,
					'author', m.author, 'body', m.body, 'data', m.data, 'created_at', m.created_at) ORDER BY m.id) AS list
		  FROM agent_tasks_internal.messages m
		 WHERE (m.account, m.task_id) IN (SELECT (r.run).account, (r.run).task_id FROM r WHERE (r.run).kind = 'http')
		 GROUP BY m.account, m.task_id
	)
	SELECT (r.run).account, (r.run).id,
		   CASE (r.run).kind WHEN 'http' THEN (g.a).target ELSE o.url END,
		   CASE (r.run).kind WHEN 'http' THEN g.headers ELSE o.headers END,
		   CASE (r.run).kind WHEN 'http' THEN jsonb_build_object(
				'task', to_jsonb(v) - 'search',
				'run', jsonb_build_object('id', (r.run).id, 'attempt', (r.run).attempt, 'agent', (g.a).name,
										  'started_at', (r.run).started_at, 'lease_expires_at', (r.run).lease_expires_at,
										  'input', (r.run).input),
				'messages', coalesce(ms.list, '[]'),
				'run_token', r.token,
				'callback', jsonb_strip_nulls(jsonb_build_object(
					'run', (r.run).id,
					'worker', r.token,
					'expires_at', (r.run).lease_expires_at,
					'base_url', (g.a).config ->> 'callback_base_url',
					'functions', '["complete_run", "fail_run", "request_clarification", "report_progress", "heartbeat_run"]'::jsonb,
					'usage', 'Answer 2xx with a JSON body to finish now, or 202 and later call these functions (SQL or POST /rpc/<name>) with run and worker = the run token.'))
			)::text ELSE o.body END,
		   least(extract(epoch FROM (g.a).timeout) * 1000, 2147483647)::integer,
		   least(greatest(coalesce(((g.a).config ->> 'max_response_bytes')::bigint, 1048576), 1024), 67108864)::integer
	  FROM r
	  JOIN agent g ON (g.a).account = (r.run).account AND (g.a).id = (r.run).agent_id
	  LEFT JOIN agent_tasks.tasks v ON (r.run).kind = 'http' AND v.account = (r.run).account AND v.id = (r.run).task_id
	  LEFT JOIN messages ms ON ms.account = (r.run).account AND ms.task_id = (r.run).task_id
	  LEFT JOIN LATERAL (SELECT q.* FROM agent_tasks_internal.openai_request(r.run, g.a) q
						  WHERE (r.run).kind = 'openai') o ON true
	 ORDER BY r.i
$$;

-- Claim up to max runnable runs of http and openai agents and return the
-- request for each (method POST).  Called by the dispatcher, which commits
-- before sending.  Runs are claimed one at a time by claim_next (exact
-- concurrency, SKIP LOCKED), then their requests are built together
-- (http_run_requests); if that fails, run by run, and a run whose request
-- cannot be built fails at once.
CREATE FUNCTION agent_tasks_internal.claim_http_runs(worker text, max integer)
	RETURNS TABLE (account text, id uuid, url text, headers jsonb, body text,
				   timeout_ms integer, max_response_bytes integer)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs;
	a agent_tasks_internal.agents;
	kinds text[] := ARRAY['http', 'openai'];
	k integer := 0;
	n integer := 0;
	claimed agent_tasks_internal.runs[] := '{}';
	sendable agent_tasks_internal.runs[] := '{}';
	tokens text[] := '{}';
	requests agent_tasks_internal.http_request[];
	q agent_tasks_internal.http_request;
	c record;
	sort_setting text := current_setting('enable_sort');
	reason text;
	i integer;
BEGIN
	PERFORM agent_tasks_internal.require_superuser('claim_http_runs');
	-- (a run can be claimed only if no other claim of its kind is running:
	-- claim_next serializes them; nothing below waits for a row lock)
	-- enable_sort = off while claiming: claim_next must walk the
	-- runs_runnable index in priority order and stop at the first run it can
	-- take; on tables without statistics yet (just after CREATE EXTENSION)
	-- the planner would rather sort every queued run and count each one's
	-- agent's runs in progress: about 7 ms per claimed run instead of < 1 ms.
	PERFORM set_config('enable_sort', 'off', true);
	WHILE n < coalesce(max, 0) AND cardinality(kinds) > 0
	LOOP
		k := k % cardinality(kinds) + 1;
		r := agent_tasks_internal.claim_next(kinds[k], NULL, NULL, worker, NULL);
		IF r.id IS NULL THEN
			kinds := array_remove(kinds, kinds[k]);
			k := k - 1;
			CONTINUE;
		END IF;
		n := n + 1;
		claimed := claimed || r;
	END LOOP;
	PERFORM set_config('enable_sort', sort_setting, true);
	IF n = 0 THEN
		RETURN;
	END IF;

	-- Runs that cannot be sent fail now; the others get a token (http).
	FOR c IN
		SELECT claimed[j] AS run, y AS agent FROM generate_subscripts(claimed, 1) j
		  LEFT JOIN agent_tasks_internal.agents y ON y.account = (claimed[j]).account AND y.id = (claimed[j]).agent_id
		 ORDER BY j
	LOOP
		r := c.run;
		a := c.agent;
		reason := CASE WHEN a.id IS NULL THEN 'the agent of this run no longer exists'
					   WHEN a.target IS NULL THEN 'the agent has no target URL'
					   ELSE agent_tasks_internal.url_policy_violation(a.target) END;
		IF reason IS NULL THEN
			sendable := sendable || r;
			tokens := tokens || CASE WHEN r.kind = 'http' THEN agent_tasks_internal.new_run_token() END;
		ELSE
			PERFORM set_config('agent_tasks.account', r.account, true);
			PERFORM agent_tasks_internal.fail_attempt(r, jsonb_build_object('message', reason), 'error', false);
		END IF;
	END LOOP;
	IF cardinality(sendable) = 0 THEN
		RETURN;
	END IF;

	BEGIN
		INSERT INTO agent_tasks_internal.run_tokens AS t (account, run_id, token_hash)
		SELECT (sendable[j]).account, (sendable[j]).id, sha256(convert_to(tokens[j], 'UTF8'))
		  FROM generate_subscripts(sendable, 1) j
		 WHERE tokens[j] IS NOT NULL
		ON CONFLICT ON CONSTRAINT run_tokens_pkey DO UPDATE	-- a run resumed after a clarification
			SET token_hash = excluded.token_hash, created_at = now(), accepted_at = NULL;
		requests := ARRAY(SELECT x FROM agent_tasks_internal.http_run_requests(sendable, tokens) x);
	EXCEPTION WHEN OTHERS THEN
		requests := NULL;		-- one by one below
	END;
	IF requests IS NOT NULL AND cardinality(requests) = cardinality(sendable) THEN
		RETURN QUERY SELECT x.* FROM unnest(requests) x;
		RETURN;
	END IF;

	FOR i IN 1 .. cardinality(sendable)
	LOOP
		r := sendable[i];
		PERFORM set_config('agent_tasks.account', r.account, true);
		BEGIN
			IF r.kind = 'http' THEN
				INSERT INTO agent_tasks_internal.run_tokens (account, run_id, token_hash)
				VALUES (r.account, r.id, sha256(convert_to(tokens[i], 'UTF8')))
				ON CONFLICT ON CONSTRAINT run_tokens_pkey DO UPDATE
					SET token_hash = excluded.token_hash, created_at = now(), accepted_at = NULL;
			END IF;
			q := NULL;
			SELECT x.* INTO q FROM agent_tasks_internal.http_run_requests(ARRAY[r], ARRAY[tokens[i]]) x;
			IF q.id IS NULL THEN
				RAISE EXCEPTION 'the agent of this run no longer exists';
			END IF;
			account := q.account;
			id := q.id;
			url := q.url;
			headers := q.headers;
			body := q.body;
			timeout_ms := q.timeout_ms;
			max_response_bytes := q.max_response_bytes;
			RETURN NEXT;
			CONTINUE;
		EXCEPTION WHEN OTHERS THEN
			reason := 'the request could not be built: ' || SQLERRM;
		END;
		PERFORM agent_tasks_internal.fail_attempt(r, jsonb_build_object('message', reason), 'error', false);
	END LOOP;
END
$$;

-- Runs a previous dispatcher process had in flight when it stopped: their
-- answer is lost, retry them.  Runs whose agent answered 202 keep waiting
-- for the agent.
CREATE FUNCTION agent_tasks_internal.recover_http_runs(worker text)
	RETURNS integer
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	candidate record;
	r agent_tasks_internal.runs;
	n integer := 0;
BEGIN
	PERFORM agent_tasks_internal.require_superuser('recover_http_runs');
	FOR candidate IN
		SELECT x.account, x.id FROM agent_tasks_internal.runs x
		 WHERE x.status = 'in_progress' AND x.kind IN ('http', 'openai')
		   AND x.worker = recover_http_runs.worker
	LOOP
		-- the task first, then the run (lock_task_in); then look again
		r := agent_tasks_internal.lock_run(candidate.account, candidate.id);
		CONTINUE WHEN r.status IS DISTINCT FROM 'in_progress' OR r.worker IS DISTINCT FROM recover_http_runs.worker
			OR agent_tasks_internal.http_run_accepted(r.account, r.id);
		PERFORM set_config('agent_tasks.account', r.account, true);
		PERFORM agent_tasks_internal.fail_attempt(r,
			jsonb_build_object('message', 'the dispatcher stopped while the request was in flight', 'worker', r.worker),
			'worker_lost', true);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;

-- The error object of a failed request.
CREATE FUNCTION agent_tasks_internal.http_error(message text, status_code integer,
	response_body text, latency_ms integer)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object('message', message, 'status_code', status_code,
		'body', left(response_body, 1000), 'latency_ms', latency_ms))
$$;

-- An openai agent's answer.
CREATE FUNCTION agent_tasks_internal.finish_openai_run(r agent_tasks_internal.runs,
	a agent_tasks_internal.agents, reply jsonb)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	schema jsonb;
	content text := reply #>> '{choices,0,message,content}';
	refusal text := reply #>> '{choices,0,message,refusal}';
	used jsonb;
	output jsonb;
BEGIN
	IF jsonb_typeof(reply -> 'usage') = 'object' THEN
		used := jsonb_strip_nulls(jsonb_build_object(
			'prompt_tokens', reply -> 'usage' -> 'prompt_tokens',
			'completion_tokens', reply -> 'usage' -> 'completion_tokens',
			'total_tokens', reply -> 'usage' -> 'total_tokens'));
	END IF;
	IF refusal IS NOT NULL OR content IS NULL THEN
		PERFORM agent_tasks_internal.record_usage(r, used);
		PERFORM agent_tasks_internal.fail_attempt(r, jsonb_build_object('message',
			CASE WHEN refusal IS NOT NULL THEN 'the model refused: ' || left(refusal, 1000)
				 ELSE 'the reply has no choices[0].message.content' END,
			'finish_reason', reply #>> '{choices,0,finish_reason}'),
			CASE WHEN refusal IS NOT NULL THEN 'rejected' ELSE 'invalid_output' END, false);
		RETURN;
	END IF;
	IF content <> '' THEN
		INSERT INTO agent_tasks_internal.messages (account, task_id, run_id, role, author, body, data)
		VALUES (r.account, r.task_id, r.id, 'agent', 'agent:' || coalesce(a.name, 'openai'), left(content, 100000),
				jsonb_strip_nulls(jsonb_build_object('kind', 'reply', 'model', reply ->> 'model',
													 'finish_reason', reply #>> '{choices,0,finish_reason}')));
	END IF;
	SELECT t.output_schema INTO schema FROM agent_tasks_internal.tasks t
	 WHERE t.account = r.account AND t.id = r.task_id;
	IF schema IS NULL THEN
		output := jsonb_build_object('content', content);
	ELSE
		BEGIN
			output := content::jsonb;
		EXCEPTION WHEN data_exception THEN
			PERFORM agent_tasks_internal.record_usage(r, used);
			PERFORM agent_tasks_internal.fail_attempt(r, jsonb_build_object(
				'message', 'the reply is not JSON, as the task''s JSON Schema requires',
				'errors', jsonb_build_array(SQLERRM), 'reply', left(content, 1000)),
				'invalid_output', false);
			RETURN;
		END;
	END IF;
	-- validated against the schema there: invalid_output when it does not match
	PERFORM agent_tasks_internal.complete_attempt(r, output, used);
END
$$;

-- Record how a request ended (status_code and response, or error when no
-- response came).  Never raises for a bad answer: it becomes the run's
-- outcome.  Runs that are no longer in progress (stopped, cancelled) are
-- left alone.
CREATE FUNCTION agent_tasks_internal.finish_http_run(account text, id uuid, status_code integer,
	response_headers jsonb, response_body text, error text, latency_ms integer)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.runs;
	a agent_tasks_internal.agents;
	reply jsonb;
	max_bytes bigint;
	message text;
BEGIN
	PERFORM agent_tasks_internal.require_superuser('finish_http_run');
	PERFORM set_config('agent_tasks.account', finish_http_run.account, true);
	-- the task first, then the run: the order every path takes (lock_task_in)
	r := agent_tasks_internal.lock_run(finish_http_run.account, finish_http_run.id);
	IF r.id IS NULL OR r.status <> 'in_progress' OR r.kind NOT IN ('http', 'openai')
		OR agent_tasks_internal.http_run_accepted(r.account, r.id) THEN
		RETURN;
	END IF;
	SELECT * INTO a FROM agent_tasks_internal.agents x WHERE x.account = r.account AND x.id = r.agent_id;

	IF error IS NOT NULL OR status_code IS NULL THEN
		PERFORM agent_tasks_internal.fail_attempt(r,
			agent_tasks_internal.http_error(coalesce(error, 'no response'), NULL, NULL, latency_ms),
			CASE WHEN error ~* 'timed out|timeout' THEN 'timeout' ELSE 'error' END, true);
		RETURN;
	END IF;

	IF status_code = 202 AND r.kind = 'http' THEN
		-- the agent works asynchronously and reports with its run token
		UPDATE agent_tasks_internal.run_tokens t SET accepted_at = now()
		 WHERE t.account = r.account AND t.run_id = r.id;
		UPDATE agent_tasks_internal.runs x SET phase = 'accepted', heartbeat_at = now()
		 WHERE x.account = r.account AND x.id = r.id;
		RETURN;
	END IF;

	IF status_code NOT BETWEEN 200 AND 299 THEN
		message := format('the agent answered HTTP %s', status_code);
		IF r.kind = 'openai' THEN
			BEGIN
				message := message || coalesce(': ' || left(response_body::jsonb #>> '{error,message}', 500), '');
			EXCEPTION WHEN data_exception THEN
				NULL;
			END;
		END IF;
		PERFORM agent_tasks_internal.fail_attempt(r,
			agent_tasks_internal.http_error(message, status_code, response_body, latency_ms), 'error', true);
		RETURN;
	END IF;

	max_bytes := least(greatest(coalesce((a.config ->> 'max_response_bytes')::bigint, 1048576), 1024), 67108864);
	BEGIN
		reply := response_body::jsonb;
	EXCEPTION WHEN data_exception THEN
		reply := NULL;
	END;
	IF reply IS NULL THEN
		PERFORM agent_tasks_internal.fail_attempt(r, agent_tasks_internal.http_error(
			CASE WHEN octet_length(response_body) >= max_bytes
				 THEN format('the response is larger than %s bytes (config.max_response_bytes)', max_bytes)
				 ELSE format('the agent answered HTTP %s without a JSON body', status_code) END,
			status_code, response_body, latency_ms), 'invalid_output', false);
		RETURN;
	END IF;

	BEGIN
		IF r.kind = 'openai' THEN
			PERFORM agent_tasks_internal.finish_openai_run(r, a, reply);
		ELSE
			-- the same answers as an sql agent's: completed, needs_clarification, failed, or the output
			PERFORM agent_tasks_internal.finish_sql_run(r.account, r.id, reply);
		END IF;
	EXCEPTION WHEN OTHERS THEN
		PERFORM agent_tasks_internal.fail_attempt(r, agent_tasks_internal.http_error(
			'the agent''s answer could not be used: ' || SQLERRM, status_code, response_body, latency_ms),
			'invalid_output', false);
	END;
END
$$;

GRANT EXECUTE ON FUNCTION
	agent_tasks.set_agent_secret(text, text),
	agent_tasks.agent_has_secret(text)
TO agent_tasks_admin;
-- Schedules (recurring tasks, run by pg_cron) and the maintenance job.
--
-- agent_tasks does not require pg_cron: these functions look for pg_cron's
-- API when they are called, and fail with PT409 and the hint
-- "CREATE EXTENSION pg_cron" when it is missing.  Everything else works
-- without it, and so does run_maintenance() when called by hand.
--
-- A schedule is a row here plus one pg_cron job named "agent_tasks:<id>"
-- whose command is
--     SELECT agent_tasks_internal.fire_schedule('<account>', '<id>')
-- The job belongs to the extension's owner (a superuser): pg_cron runs a
-- job as the role that scheduled it, by logging in as that role, and the API
-- roles cannot log in.  fire_schedule() therefore switches to the role
-- agent_tasks_writer and to the schedule's account and user before it
-- creates the task, so that row-level security and the account's rate
-- limit apply to scheduled tasks as to any other.  The template is stored
-- here and never becomes part of the command.
--
-- pg_cron must run in this database (cron.database_name); pg_cron 1.4
-- evaluates schedules in GMT (later versions: the setting cron.timezone, which
-- next_run_at follows when it exists).

-- ---------------------------------------------------------------------------
-- Cron expressions: parsed here to refuse bad ones early (PT400) and to
-- compute the next run (pg_cron has no function for it).

-- One field: '*', 'n', 'a-b', with '/step', comma lists; names for months
-- and days of week.  Returns the sorted values.
CREATE FUNCTION agent_tasks_internal.cron_field(expr text, field text, lo integer, hi integer,
	names text[] DEFAULT NULL)
	RETURNS integer[]
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	item text;
	m text[];
	a integer;
	b integer;
	step integer;
	result integer[] := '{}';
	v text := lower(field);
	i integer;
BEGIN
	IF names IS NOT NULL THEN
		FOR i IN 1 .. cardinality(names) LOOP
			v := regexp_replace(v, '\m' || names[i] || '\M', (lo + i - 1)::text, 'g');
		END LOOP;
	END IF;
	FOREACH item IN ARRAY string_to_array(v, ',') LOOP
		m := regexp_match(item, '^(\*|(\d{1,2})(?:-(\d{1,2}))?)(?:/(\d{1,2}))?$');
		IF m IS NULL THEN
			PERFORM agent_tasks_internal.raise('PT400', 'invalid cron expression',
				format('%s: cannot read %s', quote_literal(expr), quote_literal(item)),
				'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *'', or @hourly, @daily, @weekly, @monthly, @yearly.');
		END IF;
		IF m[1] = '*' THEN
			a := lo; b := hi;
		ELSE
			a := m[2]::integer;
			b := coalesce(m[3]::integer, CASE WHEN m[4] IS NOT NULL THEN hi ELSE a END);
		END IF;
		step := coalesce(m[4]::integer, 1);
		IF a < lo OR b > hi OR a > b OR step < 1 THEN
			PERFORM agent_tasks_internal.raise('PT400', 'invalid cron expression',
				format('%s: %s is out of range %s-%s', quote_literal(expr), quote_literal(item), lo, hi),
				'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *''.');
		END IF;
		result := result || ARRAY(SELECT generate_series(a, b, step));
	END LOOP;
	RETURN ARRAY(SELECT DISTINCT x FROM unnest(result) x ORDER BY x);
END
$$;

-- The parsed schedule: minutes, hours, days of month, months, days of week
-- (0 = Sunday), and whether day-of-month / day-of-week were '*' (cron
-- matches either day field when both are restricted).
CREATE FUNCTION agent_tasks_internal.cron_parse(expr text,
	OUT minutes integer[], OUT hours integer[], OUT days integer[], OUT months integer[],
	OUT weekdays integer[], OUT any_day boolean, OUT any_weekday boolean)
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e text := lower(btrim(coalesce(expr, '')));
	f text[];
BEGIN
	e := CASE e WHEN '@yearly' THEN '0 0 1 1 *' WHEN '@annually' THEN '0 0 1 1 *'
				WHEN '@monthly' THEN '0 0 1 * *' WHEN '@weekly' THEN '0 0 * * 0'
				WHEN '@daily' THEN '0 0 * * *' WHEN '@midnight' THEN '0 0 * * *'
				WHEN '@hourly' THEN '0 * * * *' ELSE e END;
	f := regexp_split_to_array(e, '\s+');
	IF cardinality(f) <> 5 OR length(e) > 200 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid cron expression',
			format('%s has %s fields; cron needs 5.', quote_literal(left(expr, 200)), cardinality(f)),
			'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *'', or @hourly, @daily, @weekly, @monthly, @yearly.');
	END IF;
	minutes := agent_tasks_internal.cron_field(expr, f[1], 0, 59);
	hours := agent_tasks_internal.cron_field(expr, f[2], 0, 23);
	days := agent_tasks_internal.cron_field(expr, f[3], 1, 31);
	months := agent_tasks_internal.cron_field(expr, f[4], 1, 12,
		'{jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec}');
	weekdays := agent_tasks_internal.cron_field(expr, f[5], 0, 7, '{sun,mon,tue,wed,thu,fri,sat}');
	IF 7 = ANY (weekdays) THEN
		weekdays := ARRAY(SELECT DISTINCT x % 7 FROM unnest(weekdays) x ORDER BY 1);
	END IF;
	any_day := f[3] LIKE '*%';
	any_weekday := f[5] LIKE '*%';
END
$$;

-- The first time after "after" that the expression fires, in the time zone
-- pg_cron uses (NULL when none within five years, e.g. '0 0 31 2 *').
CREATE FUNCTION agent_tasks_internal.cron_next(expr text, after timestamptz DEFAULT now())
	RETURNS timestamptz
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c record := agent_tasks_internal.cron_parse(expr);
	tz text := coalesce(nullif(current_setting('cron.timezone', true), ''), 'GMT');
	t timestamp := date_trunc('minute', after AT TIME ZONE tz) + interval '1 minute';
	d date := t::date;
	first_minute integer;
	h integer;
	m integer;
	day_ok boolean;
BEGIN
	FOR i IN 1 .. 5 * 366 LOOP
		IF extract(month FROM d)::integer = ANY (c.months) THEN
			day_ok := CASE WHEN c.any_day OR c.any_weekday
						   THEN extract(day FROM d)::integer = ANY (c.days)
								AND extract(dow FROM d)::integer = ANY (c.weekdays)
						   ELSE extract(day FROM d)::integer = ANY (c.days)
								OR extract(dow FROM d)::integer = ANY (c.weekdays) END;
			IF day_ok THEN
				first_minute := CASE WHEN d = t::date THEN extract(hour FROM t) * 60 + extract(minute FROM t) ELSE 0 END;
				FOREACH h IN ARRAY c.hours LOOP
					CONTINUE WHEN h * 60 + 59 < first_minute;
					FOREACH m IN ARRAY c.minutes LOOP
						IF h * 60 + m >= first_minute THEN
							RETURN (d + make_time(h, m, 0)) AT TIME ZONE tz;
						END IF;
					END LOOP;
				END LOOP;
			END IF;
			d := d + 1;
		ELSE
			d := (date_trunc('month', d) + interval '1 month')::date;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;

-- pg_cron's API, or PT409 with the fix.
CREATE FUNCTION agent_tasks_internal.require_pg_cron()
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF to_regprocedure('cron.schedule(text,text,text)') IS NULL
		OR to_regprocedure('cron.unschedule(bigint)') IS NULL OR to_regclass('cron.job') IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT409', 'pg_cron is not installed in this database',
			format('Schedules and the maintenance job run as pg_cron jobs; database %s has no pg_cron.',
				   quote_ident(current_database())),
			'CREATE EXTENSION pg_cron (it must be in shared_preload_libraries, with cron.database_name naming this database).');
	END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Schedules

CREATE TABLE agent_tasks_internal.schedules (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	name			text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	cron			text NOT NULL,
	template		jsonb NOT NULL CHECK (jsonb_typeof(template) = 'object'),
	user_email		text,
	job_name		text NOT NULL,
	created_by		text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	last_fired_at	timestamptz,
	last_task_id	uuid,
	fire_count		bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
);
-- Written by the SECURITY DEFINER functions below; read through the view.
GRANT SELECT ON agent_tasks_internal.schedules TO agent_tasks_reader;

-- What a template may hold: the parameters of create_task that make sense
-- for a recurring task.
CREATE TYPE agent_tasks_internal.task_template AS (
	title			text,
	prompt			text,
	type			text,
	command			text,
	items			jsonb,
	context			jsonb,
	agent			text,
	priority		integer,
	output_schema	jsonb,
	owner			text,
	assignees		text[],
	followers		text[],
	skills			text[],
	labels			text[],
	metadata		jsonb,
	external_id		text,
	origin			text,
	callback_url	text,
	budget_tokens	bigint,
	budget_cost		numeric,
	auto_process	boolean
);

CREATE FUNCTION agent_tasks_internal.read_template(template jsonb)
	RETURNS agent_tasks_internal.task_template
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	unknown text;
	r agent_tasks_internal.task_template;
BEGIN
	IF template IS NULL OR jsonb_typeof(template) <> 'object' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'template must be a JSON object',
			format('template = %s', left(coalesce(template::text, 'null'), 200)),
			'Pass the parameters of create_task, e.g. {"title": "Weekly report", "auto_process": true}.');
	END IF;
	SELECT string_agg(k, ', ' ORDER BY k) INTO unknown
	  FROM jsonb_object_keys(template) k
	 WHERE k NOT IN (SELECT a.attname FROM pg_attribute a
					  WHERE a.attrelid = 'agent_tasks_internal.task_template'::regclass AND a.attnum > 0);
	IF unknown IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'unknown template fields',
			format('template has %s', unknown),
			'Use title, prompt, type, command, items, context, agent, priority, output_schema, owner, assignees, followers, skills, labels, metadata, external_id, origin, callback_url, budget_tokens, budget_cost, auto_process.');
	END IF;
	BEGIN
		r := jsonb_populate_record(NULL::agent_tasks_internal.task_template, template);
	EXCEPTION WHEN data_exception OR invalid_text_representation OR datatype_mismatch THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid template',
			format('%s (template %s)', SQLERRM, left(template::text, 200)),
			'Give each field the type create_task takes (text, integer, boolean, arrays of text, JSON objects).');
	END;
	RETURN r;
END
$$;

-- Create a task from a template, as the current account and user.
CREATE FUNCTION agent_tasks_internal.create_from_template(template jsonb, auto_process boolean DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r agent_tasks_internal.task_template := agent_tasks_internal.read_template(template);
BEGIN
	RETURN agent_tasks.create_task(
		title => r.title, prompt => r.prompt, type => r.type, command => r.command, items => r.items,
		context => coalesce(r.context, '{}'), agent => r.agent, priority => coalesce(r.priority, 0),
		output_schema => r.output_schema, owner => r.owner, assignees => coalesce(r.assignees, '{}'),
		followers => coalesce(r.followers, '{}'), skills => coalesce(r.skills, '{}'),
		labels => coalesce(r.labels, '{}'), metadata => coalesce(r.metadata, '{}'),
		external_id => r.external_id, origin => coalesce(r.origin, 'schedule'),
		callback_url => r.callback_url, budget_tokens => r.budget_tokens, budget_cost => r.budget_cost,
		auto_process => coalesce(create_from_template.auto_process, r.auto_process, false));
END
$$;

-- The pg_cron job of a schedule, for the view.  SECURITY DEFINER: pg_cron's
-- tables show each role its own jobs only, and the jobs belong to the
-- extension's owner.  Answers for the current account's schedules only.
CREATE FUNCTION agent_tasks_internal.schedule_job(account text, job_name text,
	OUT jobid bigint, OUT active boolean, OUT last_run_at timestamptz, OUT last_status text,
	OUT last_message text)
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- only the jobs of this account's schedules: pg_cron shows others to their owners alone
	IF to_regclass('cron.job') IS NULL OR schedule_job.account IS DISTINCT FROM agent_tasks.current_account()
		OR NOT EXISTS (SELECT 1 FROM agent_tasks_internal.schedules s
						WHERE s.account = schedule_job.account AND s.job_name = schedule_job.job_name) THEN
		RETURN;
	END IF;
	EXECUTE 'SELECT j.jobid, j.active FROM cron.job j WHERE j.jobname = $1 ORDER BY j.jobid LIMIT 1'
	   INTO jobid, active USING schedule_job.job_name;
	IF jobid IS NOT NULL AND to_regclass('cron.job_run_details') IS NOT NULL THEN
		EXECUTE 'SELECT d.start_time, d.status, d.return_message FROM cron.job_run_details d
				  WHERE d.jobid = $1 ORDER BY d.runid DESC LIMIT 1'
		   INTO last_run_at, last_status, last_message USING jobid;
	END IF;
END
$$;

CREATE VIEW agent_tasks.schedules WITH (security_invoker = true) AS
SELECT s.id, s.account, s.name, s.cron, s.template, s.user_email AS "user", s.created_by,
	   s.created_at, s.updated_at, s.job_name, j.jobid, coalesce(j.active, false) AS active,
	   CASE WHEN j.active THEN agent_tasks_internal.cron_next(s.cron) END AS next_run_at,
	   coalesce(j.last_run_at, s.last_fired_at) AS last_run_at, j.last_status, j.last_message,
	   s.last_fired_at, s.last_task_id, s.fire_count
  FROM agent_tasks_internal.schedules s
  LEFT JOIN LATERAL agent_tasks_internal.schedule_job(s.account, s.job_name) j ON true;
COMMENT ON VIEW agent_tasks.schedules IS 'Recurring tasks of the current account: each is a pg_cron job that creates (and, with auto_process, queues) a task from its template.';
COMMENT ON COLUMN agent_tasks.schedules.cron IS 'Five-field cron expression (or @hourly, @daily, @weekly, @monthly, @yearly), evaluated by pg_cron in GMT (pg_cron 1.4; cron.timezone in later versions).';
COMMENT ON COLUMN agent_tasks.schedules.template IS 'The parameters of create_task for each new task (title, prompt, type, context, agent, labels, ..., auto_process).';
COMMENT ON COLUMN agent_tasks.schedules."user" IS 'The person the tasks are created as (owner and actor), if any.';
COMMENT ON COLUMN agent_tasks.schedules.job_name IS 'Name of the pg_cron job (cron.job.jobname).';
COMMENT ON COLUMN agent_tasks.schedules.active IS 'True while the pg_cron job exists and is active.';
COMMENT ON COLUMN agent_tasks.schedules.next_run_at IS 'Next time the job fires, computed from the cron expression (pg_cron has no function for it).';
COMMENT ON COLUMN agent_tasks.schedules.last_run_at IS 'Start of the last run of the job (pg_cron''s cron.job_run_details), else the last time it created a task.';
COMMENT ON COLUMN agent_tasks.schedules.last_status IS 'Status of the last run according to pg_cron: starting, running, sending, connecting, succeeded or failed.';
COMMENT ON COLUMN agent_tasks.schedules.last_message IS 'What the last run returned, or its error.';
COMMENT ON COLUMN agent_tasks.schedules.last_task_id IS 'The task the last successful run created.';
COMMENT ON COLUMN agent_tasks.schedules.fire_count IS 'How many tasks the schedule has created.';

-- The job's command.  Runs as the job's owner (the extension's owner);
-- switches to agent_tasks_writer and to the schedule's account and user for
-- the task itself.
CREATE FUNCTION agent_tasks_internal.fire_schedule(account text, schedule uuid)
	RETURNS uuid
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s agent_tasks_internal.schedules;
	t agent_tasks.tasks;
BEGIN
	SELECT * INTO s FROM agent_tasks_internal.schedules x
	 WHERE x.account = fire_schedule.account AND x.id = fire_schedule.schedule;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'schedule not found',
			format('No schedule %s in account %s; its pg_cron job outlived it.', schedule, quote_literal(account)),
			format('SELECT cron.unschedule(%L);', 'agent_tasks:' || schedule));
	END IF;
	PERFORM set_config('request.jwt.claims', '', true);
	PERFORM set_config('agent_tasks.account', s.account, true);
	PERFORM set_config('agent_tasks.user', coalesce(s.user_email, ''), true);
	PERFORM set_config('role', 'agent_tasks_writer', true);
	t := agent_tasks_internal.create_from_template(s.template);
	PERFORM set_config('role', 'none', true);
	UPDATE agent_tasks_internal.schedules x
	   SET last_fired_at = now(), last_task_id = t.id, fire_count = x.fire_count + 1
	 WHERE x.account = s.account AND x.id = s.id;
	RETURN t.id;
END
$$;

CREATE FUNCTION agent_tasks.schedule_task(name text, cron text, template jsonb)
	RETURNS agent_tasks.schedules
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	s agent_tasks_internal.schedules;
	result agent_tasks.schedules;
BEGIN
	s.name := btrim(agent_tasks_internal.check_text('name', schedule_task.name, 200, true));
	PERFORM agent_tasks_internal.cron_parse(schedule_task.cron);
	PERFORM agent_tasks_internal.read_template(schedule_task.template);
	PERFORM agent_tasks_internal.check_json('template', schedule_task.template, 'object', 65536);
	PERFORM agent_tasks_internal.require_pg_cron();

	-- Try the template once (rolled back, not queued) so that a bad agent,
	-- owner or field fails now rather than at every tick.
	BEGIN
		PERFORM agent_tasks_internal.create_from_template(schedule_task.template, false);
		RAISE EXCEPTION USING ERRCODE = 'PTDRY', MESSAGE = 'dry run';
	EXCEPTION WHEN SQLSTATE 'PTDRY' THEN
		NULL;
	END;

	INSERT INTO agent_tasks_internal.schedules AS x
		(account, id, name, cron, template, user_email, job_name, created_by)
	VALUES (acct, agent_tasks.uuid_v7(), s.name, btrim(schedule_task.cron), schedule_task.template,
			agent_tasks.current_user_email(), '', agent_tasks_internal.current_actor())
	ON CONFLICT ON CONSTRAINT schedules_account_name_key DO UPDATE
	   SET cron = excluded.cron, template = excluded.template, user_email = excluded.user_email,
		   updated_at = now()
	RETURNING * INTO s;
	IF s.job_name = '' THEN
		s.job_name := 'agent_tasks:' || s.id;
		UPDATE agent_tasks_internal.schedules x SET job_name = s.job_name
		 WHERE x.account = s.account AND x.id = s.id;
	END IF;
	BEGIN
		EXECUTE 'SELECT cron.schedule($1, $2, $3)'
		  USING s.job_name, s.cron,
				format('SELECT agent_tasks_internal.fire_schedule(%L, %L)', s.account, s.id);
	EXCEPTION WHEN OTHERS THEN
		PERFORM agent_tasks_internal.raise('PT400', 'pg_cron refused the schedule',
			format('%s (cron %s)', SQLERRM, quote_literal(s.cron)),
			'Use five fields "minute hour day-of-month month day-of-week", e.g. ''*/5 * * * *''.');
	END;
	SELECT * INTO result FROM agent_tasks.schedules v WHERE v.account = s.account AND v.id = s.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.schedule_task(text, text, jsonb) IS 'Create or replace the schedule "name": a pg_cron job that creates a task from the template (the parameters of create_task; auto_process queues it) at every tick of the cron expression, as you and in your account. Needs pg_cron (PT409 otherwise).';

CREATE FUNCTION agent_tasks.unschedule_task(name text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s agent_tasks_internal.schedules;
BEGIN
	PERFORM agent_tasks_internal.require_pg_cron();
	DELETE FROM agent_tasks_internal.schedules x
	 WHERE x.account = agent_tasks.current_account() AND x.name = unschedule_task.name
	RETURNING * INTO s;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'schedule not found',
			format('No schedule named %s in this account.', coalesce(quote_literal(unschedule_task.name), 'null')),
			'List them in agent_tasks.schedules.');
	END IF;
	IF agent_tasks_internal.schedule_job_exists(s.job_name) THEN
		EXECUTE 'SELECT cron.unschedule(j.jobid) FROM cron.job j WHERE j.jobname = $1' USING s.job_name;
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.unschedule_task(text) IS 'Delete the schedule "name" and its pg_cron job; tasks it created stay. PT404 when there is no such schedule.';

CREATE FUNCTION agent_tasks_internal.schedule_job_exists(job_name text)
	RETURNS boolean
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found boolean;
BEGIN
	IF to_regclass('cron.job') IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname = $1)' INTO found USING job_name;
	RETURN found;
END
$$;

-- ---------------------------------------------------------------------------
-- Maintenance: retention and the queue's indexes.  For the database
-- administrator: granted to no API role (it spans every account).

CREATE FUNCTION agent_tasks.run_maintenance()
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	archived interval := agent_tasks_internal.setting_seconds('agent_tasks.retention_archived', 30 * 86400);
	deliveries interval := agent_tasks_internal.setting_seconds('agent_tasks.retention_deliveries', 30 * 86400);
	result jsonb := '{}';
	n bigint;
	t text;
	status_filter text;
	idx regclass;
	tbl regclass;
	time_column name;
	live bigint;
	pred text;
	old_lock_timeout text := current_setting('lock_timeout');
BEGIN
	IF archived >= interval '0' THEN
		DELETE FROM agent_tasks_internal.tasks t WHERE t.archived_at < now() - archived;
		GET DIAGNOSTICS n = ROW_COUNT;
		result := result || jsonb_build_object('archived_tasks_deleted', n);
	END IF;

	-- Webhook attempts and deliveries (85_webhooks.sql), found at run time:
	-- finished ones only, by their creation (or start) time.
	IF deliveries >= interval '0' THEN
		FOREACH t IN ARRAY ARRAY['webhook_attempts', 'webhook_deliveries'] LOOP
			tbl := to_regclass('agent_tasks_internal.' || t);
			CONTINUE WHEN tbl IS NULL;
			SELECT a.attname INTO time_column FROM pg_attribute a
			 WHERE a.attrelid = tbl AND a.attname IN ('created_at', 'started_at') AND NOT a.attisdropped
			 ORDER BY a.attname = 'created_at' DESC LIMIT 1;
			CONTINUE WHEN time_column IS NULL;
			status_filter := CASE WHEN EXISTS (
					SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'status' AND NOT a.attisdropped)
				THEN ' AND status NOT IN (''pending'', ''queued'', ''in_progress'', ''in_flight'', ''sending'', ''retrying'')'
				ELSE '' END;
			EXECUTE format('DELETE FROM %s WHERE %I < $1%s', tbl, time_column, status_filter)
			  USING now() - deliveries;
			GET DIAGNOSTICS n = ROW_COUNT;
			result := result || jsonb_build_object(t || '_deleted', n);
		END LOOP;
	END IF;

	DELETE FROM agent_tasks_internal.presence p WHERE p.expires_at < now();
	GET DIAGNOSTICS n = ROW_COUNT;
	result := result || jsonb_build_object('presence_expired', n);

	DELETE FROM agent_tasks_internal.rate_counters c WHERE c.window_end < now();
	GET DIAGNOSTICS n = ROW_COUNT;
	result := result || jsonb_build_object('rate_counters_deleted', n);

	-- pg_cron keeps a row per run: keep a week of the extension's jobs.
	IF to_regclass('cron.job_run_details') IS NOT NULL THEN
		EXECUTE 'DELETE FROM cron.job_run_details d
				  WHERE d.end_time < now() - interval ''7 days''
					AND d.jobid IN (SELECT j.jobid FROM cron.job j WHERE j.jobname LIKE ''agent\_tasks:%'')';
		GET DIAGNOSTICS n = ROW_COUNT;
		result := result || jsonb_build_object('cron_run_details_deleted', n);
	END IF;

	-- The queue's partial indexes hold few live entries but churn: rebuild
	-- one when it is four times larger than its live entries need (and over
	-- 1 MB).  A plain REINDEX of a small index is quick; it waits at most
	-- a second for its lock and is skipped otherwise.
	result := result || jsonb_build_object('reindexed', '[]'::jsonb);
	FOR idx IN SELECT i.indexrelid::regclass FROM pg_index i
				WHERE i.indrelid = 'agent_tasks_internal.runs'::regclass AND i.indpred IS NOT NULL
	LOOP
		CONTINUE WHEN pg_relation_size(idx) < 1024 * 1024;
		pred := pg_get_expr((SELECT i.indpred FROM pg_index i WHERE i.indexrelid = idx), 'agent_tasks_internal.runs'::regclass);
		EXECUTE format('SELECT count(*) FROM agent_tasks_internal.runs WHERE %s', pred) INTO live;
		CONTINUE WHEN pg_relation_size(idx) < 4 * greatest(live * 64, 8192);
		BEGIN
			PERFORM set_config('lock_timeout', '1s', true);
			EXECUTE format('REINDEX INDEX %s', idx);
			result := jsonb_set(result, '{reindexed}', (result -> 'reindexed') || to_jsonb(idx::text));
		EXCEPTION WHEN lock_not_available THEN
			RAISE NOTICE 'agent_tasks maintenance: % is busy, not reindexed', idx;
		END;
		PERFORM set_config('lock_timeout', old_lock_timeout, true);
	END LOOP;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.run_maintenance() IS 'For the database administrator (all accounts): delete archived tasks older than agent_tasks.retention_archived, finished webhook deliveries and attempts older than agent_tasks.retention_deliveries, expired presence, old rate-limit windows and a week''s pg_cron run details of the extension''s jobs, and rebuild bloated queue indexes. Returns what it did.';

CREATE FUNCTION agent_tasks.install_maintenance(schedule text DEFAULT '17 3 * * *')
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	jobid bigint;
BEGIN
	PERFORM agent_tasks_internal.cron_parse(schedule);
	PERFORM agent_tasks_internal.require_pg_cron();
	EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid
	  USING 'agent_tasks:maintenance', btrim(schedule), 'SELECT agent_tasks.run_maintenance()';
	RETURN jobid;
END
$$;
COMMENT ON FUNCTION agent_tasks.install_maintenance(text) IS 'For the database administrator: schedule agent_tasks.run_maintenance() with pg_cron (job "agent_tasks:maintenance", default daily at 03:17 GMT; calling it again changes the schedule). Returns the job id. Needs pg_cron (PT409 otherwise).';

CREATE FUNCTION agent_tasks.uninstall_maintenance()
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM agent_tasks_internal.require_pg_cron();
	IF NOT agent_tasks_internal.schedule_job_exists('agent_tasks:maintenance') THEN
		RETURN false;
	END IF;
	EXECUTE 'SELECT cron.unschedule(j.jobid) FROM cron.job j WHERE j.jobname = $1' USING 'agent_tasks:maintenance';
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.uninstall_maintenance() IS 'For the database administrator: remove the maintenance job; false when it was not installed.';

GRANT EXECUTE ON FUNCTION
	agent_tasks.schedule_task(text, text, jsonb),
	agent_tasks.unschedule_task(text)
TO agent_tasks_writer;
-- Webhooks and per-task callbacks (DESIGN §6): endpoints with event filters
-- and rotating secrets, an outbox of deliveries written by triggers in the
-- same transaction as the change, the claim/finish pair the HTTP dispatcher
-- calls (src/http_dispatcher.c), the retry schedule, Retry-After and 410
-- handling, and the views of deliveries and attempts.  Signing is in C
-- (src/webhook_signing.c, Standard Webhooks 1.0).
--
-- Events (an endpoint subscribes to a list of them, or '*'):
--   task.created               a task was created
--   task.queued                a run was queued (processing, retry, resume)
--   task.started               a run started (in_progress)
--   task.needs_clarification   the agent asks a question
--   task.on_hold               the task was stopped / put on hold
--   task.completed, task.failed, task.cancelled   the task ended
--   task.message               a message joined the conversation
--   task.feedback              feedback (like / dislike) was given or cleared
-- Payload: {"type": event, "timestamp": ISO-8601 UTC, "data": {task fields,
-- "previous_status" for status events, "message" for task.message}}.
--
-- Delivery: at least once.  Each delivery is one event for one endpoint (or
-- one callback); "webhook-id" is "msg_" + the delivery id on every attempt;
-- "webhook-timestamp" and "webhook-signature" are made per attempt.  Only 2xx
-- is success.  Retries follow the endpoint's schedule (default: immediately,
-- then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each delay +-10 % jitter);
-- a receiver's Retry-After (seconds or HTTP date, at most a day) replaces the
-- scheduled delay; 410 Gone disables the endpoint.  agent_tasks.webhook_retry_scale
-- (superuser, 0..1) multiplies scheduled delays, for tests.
--
-- Callbacks (a task's callback_url, Flint style): one POST when the task
-- completes or fails; retried 3 times, 5 s then 10 s then 20 s; not signed
-- (there is no shared secret); they carry webhook-id and webhook-timestamp.
--
-- Secrets: stored in webhook_secrets, which no API role can read; the
-- dispatcher (a superuser connection) signs with every secret still valid,
-- so during a rotation webhook-signature holds two signatures.

CREATE FUNCTION agent_tasks_internal.sign_webhook(secret text, msg_id text, ts bigint, body text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_sign_webhook'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks_internal.sign_webhook(text, text, bigint, text) IS 'Standard Webhooks signature "v1,<base64 HMAC-SHA256(key, msg_id.ts.body)>", key = base64-decoded secret after "whsec_"; PT400 for a malformed secret.';

CREATE FUNCTION agent_tasks_internal.new_webhook_secret()
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_new_webhook_secret'
	LANGUAGE C VOLATILE STRICT;

-- Storage -------------------------------------------------------------------

CREATE TABLE agent_tasks_internal.webhook_endpoints (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	url				text NOT NULL CHECK (length(url) <= 2000),
	events			text[] NOT NULL,
	description		text CHECK (length(description) <= 1000),
	retry_schedule	interval[],			-- delays before retry 1, 2, ...; NULL: the default
	timeout_ms		integer NOT NULL DEFAULT 15000 CHECK (timeout_ms BETWEEN 1000 AND 30000),
	enabled			boolean NOT NULL DEFAULT true,
	disabled_reason	text,
	disabled_at		timestamptz,
	created_by		text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id)
);
-- The triggers look up an account's endpoints on every task event.
CREATE INDEX webhook_endpoints_enabled ON agent_tasks_internal.webhook_endpoints (account) WHERE enabled;

-- A current secret has no expiry; a rotated one signs for 24 more hours.
CREATE TABLE agent_tasks_internal.webhook_secrets (
	account		text NOT NULL,
	id			uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	endpoint_id	uuid NOT NULL,
	secret		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz,
	PRIMARY KEY (account, id),
	FOREIGN KEY (account, endpoint_id) REFERENCES agent_tasks_internal.webhook_endpoints (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.webhook_secrets (account, endpoint_id);

-- The outbox.  body is the exact text sent and signed, the same on every
-- attempt.  While an attempt is in flight, leased_at is set and
-- next_attempt_at is the end of its lease, so a delivery whose dispatcher
-- died comes due again by itself.
CREATE TABLE agent_tasks_internal.webhook_deliveries (
	account				text NOT NULL,
	id					uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	kind				text NOT NULL CHECK (kind IN ('webhook', 'callback')),
	endpoint_id			uuid,
	task_id				uuid,
	event				text NOT NULL,
	url					text NOT NULL,
	body				text NOT NULL,
	status				text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
	attempts			integer NOT NULL DEFAULT 0,
	schedule_start		integer NOT NULL DEFAULT 0,		-- attempts before the last redeliver()
	next_attempt_at		timestamptz NOT NULL DEFAULT now(),
	leased_at			timestamptz,
	current_attempt_id	uuid,
	last_status_code	integer,
	last_error			text,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now(),
	delivered_at		timestamptz,
	PRIMARY KEY (account, id),
	CHECK ((kind = 'webhook') = (endpoint_id IS NOT NULL))
);
-- What the dispatcher claims: small (pending deliveries only), in due order.
CREATE INDEX webhook_deliveries_due ON agent_tasks_internal.webhook_deliveries (next_attempt_at)
	WHERE status = 'pending';
-- Attempts in flight, to find those of a previous server life.
CREATE INDEX webhook_deliveries_leased ON agent_tasks_internal.webhook_deliveries (leased_at)
	WHERE leased_at IS NOT NULL;
CREATE INDEX ON agent_tasks_internal.webhook_deliveries (account, task_id) WHERE task_id IS NOT NULL;

CREATE TABLE agent_tasks_internal.webhook_attempts (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),		-- the claim sets it
	delivery_id		uuid NOT NULL,
	attempt			integer NOT NULL,
	status			text NOT NULL DEFAULT 'in_flight'
		CHECK (status IN ('in_flight', 'succeeded', 'failed', 'lost')),
	status_code		integer,
	error			text,
	response_body	text,
	latency_ms		integer,
	worker			text,
	started_at		timestamptz NOT NULL DEFAULT now(),
	ended_at		timestamptz,
	PRIMARY KEY (account, id)
	-- no foreign key to webhook_deliveries: its check would cost every claim
	-- a lookup; attempts are written and purged with their delivery only
) WITH (fillfactor = 80);			-- room for the outcome to be a HOT update
CREATE INDEX ON agent_tasks_internal.webhook_attempts (account, delivery_id, id);

-- Admins manage endpoints and redeliver; nobody but the dispatcher (a
-- superuser connection) reads a secret, claims or records an attempt.
GRANT SELECT, INSERT, DELETE ON agent_tasks_internal.webhook_endpoints TO agent_tasks_admin;
GRANT UPDATE (url, events, description, retry_schedule, timeout_ms, enabled, disabled_reason, disabled_at, updated_at)
	ON agent_tasks_internal.webhook_endpoints TO agent_tasks_admin;
GRANT SELECT (account, id, endpoint_id, created_at, expires_at) ON agent_tasks_internal.webhook_secrets TO agent_tasks_admin;
GRANT INSERT (account, id, endpoint_id, secret, created_at, expires_at) ON agent_tasks_internal.webhook_secrets TO agent_tasks_admin;
GRANT UPDATE (expires_at) ON agent_tasks_internal.webhook_secrets TO agent_tasks_admin;
GRANT SELECT ON agent_tasks_internal.webhook_deliveries, agent_tasks_internal.webhook_attempts TO agent_tasks_admin;
GRANT UPDATE (url, status, schedule_start, next_attempt_at, last_error, updated_at)
	ON agent_tasks_internal.webhook_deliveries TO agent_tasks_admin;

-- Helpers ---------------------------------------------------------------------

CREATE FUNCTION agent_tasks_internal.webhook_events()
	RETURNS text[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ARRAY['task.created', 'task.queued', 'task.started', 'task.needs_clarification',
				 'task.on_hold', 'task.completed', 'task.failed', 'task.cancelled',
				 'task.message', 'task.feedback']
$$;

CREATE FUNCTION agent_tasks_internal.default_webhook_schedule()
	RETURNS interval[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT '{5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours, 10 hours}'::interval[]
$$;

CREATE FUNCTION agent_tasks_internal.callback_schedule()
	RETURNS interval[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT '{5 seconds, 10 seconds, 20 seconds}'::interval[]
$$;

CREATE FUNCTION agent_tasks_internal.iso8601(ts timestamptz)
	RETURNS text
	LANGUAGE sql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- What a webhook says about a task (no internal columns).
CREATE FUNCTION agent_tasks_internal.webhook_task_data(t agent_tasks_internal.tasks)
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_build_object(
		'id', t.id, 'account', t.account, 'parent_id', t.parent_id, 'title', t.title,
		'type', t.type, 'command', t.command,
		'agent', (SELECT a.name FROM agent_tasks_internal.agents a WHERE a.account = t.account AND a.id = t.agent_id),
		'status', t.status, 'status_reason', t.status_reason, 'latest_run_id', t.latest_run_id,
		'external_id', t.external_id, 'origin', t.origin, 'labels', to_jsonb(t.labels),
		'metadata', t.metadata, 'context', t.context, 'output', t.output, 'error', t.error,
		'feedback', t.feedback, 'created_by', t.created_by,
		'created_at', agent_tasks_internal.iso8601(t.created_at),
		'updated_at', agent_tasks_internal.iso8601(t.updated_at))
$$;

-- Queue one delivery of this event per subscribed endpoint of the task's account.
CREATE FUNCTION agent_tasks_internal.enqueue_webhook_event(t agent_tasks_internal.tasks, event text,
	extra jsonb DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	body text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.webhook_endpoints e
					WHERE e.account = t.account AND e.enabled AND e.events && ARRAY[event, '*']) THEN
		RETURN;
	END IF;
	body := jsonb_build_object(
		'type', event,
		'timestamp', agent_tasks_internal.iso8601(clock_timestamp()),
		'data', agent_tasks_internal.webhook_task_data(t) || coalesce(extra, '{}'))::text;
	INSERT INTO agent_tasks_internal.webhook_deliveries (account, kind, endpoint_id, task_id, event, url, body)
	SELECT t.account, 'webhook', e.id, t.id, event, e.url, body
	  FROM agent_tasks_internal.webhook_endpoints e
	 WHERE e.account = t.account AND e.enabled AND e.events && ARRAY[event, '*'];
	PERFORM agent_tasks_internal.wake_workers('http');
END
$$;

-- Resources of one kind named by an output: output.<kind> or output.resources.<kind>, as an array.
CREATE FUNCTION agent_tasks_internal.output_resources(output jsonb, kind text)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE
		WHEN jsonb_typeof(output) <> 'object' THEN '[]'::jsonb
		WHEN jsonb_typeof(output -> kind) = 'array' THEN output -> kind
		WHEN jsonb_typeof(output -> 'resources' -> kind) = 'array' THEN output -> 'resources' -> kind
		ELSE '[]'::jsonb END
$$;

-- The Flint-style callback of a task that completed or failed.
CREATE FUNCTION agent_tasks_internal.callback_body(t agent_tasks_internal.tasks)
	RETURNS text
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object(
		'type', 'task.' || t.status,
		'timestamp', agent_tasks_internal.iso8601(clock_timestamp()),
		'task_id', t.id,
		'external_id', t.external_id,
		'status', CASE t.status WHEN 'completed' THEN 'succeeded' ELSE 'failed' END,
		'created', CASE WHEN t.status = 'completed' THEN agent_tasks_internal.output_resources(t.output, 'created') END,
		'modified', CASE WHEN t.status = 'completed' THEN agent_tasks_internal.output_resources(t.output, 'modified') END,
		'deleted', CASE WHEN t.status = 'completed' THEN agent_tasks_internal.output_resources(t.output, 'deleted') END,
		'commit', CASE WHEN t.status = 'completed' AND jsonb_typeof(t.output) = 'object' THEN
			coalesce(t.output ->> 'commit', t.output ->> 'commit_sha', t.output ->> 'sha', t.output ->> 'revision') END,
		'output', CASE WHEN t.status = 'completed' THEN t.output END,
		'error', CASE WHEN t.status = 'failed' THEN coalesce(t.error, jsonb_build_object('message', t.status_reason)) END,
		'reason', CASE WHEN t.status = 'failed' THEN t.status_reason END))::text
$$;

-- Outbox triggers -------------------------------------------------------------
-- SECURITY DEFINER: API roles may not write deliveries; firing a trigger
-- needs no EXECUTE grant, so these are granted to nobody.

CREATE FUNCTION agent_tasks_internal.webhook_task_changed() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	event text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM agent_tasks_internal.enqueue_webhook_event(NEW, 'task.created');
		RETURN NULL;
	END IF;

	IF NEW.status IS DISTINCT FROM OLD.status THEN
		event := CASE NEW.status
			WHEN 'queued' THEN 'task.queued'
			WHEN 'in_progress' THEN 'task.started'
			WHEN 'needs_clarification' THEN 'task.needs_clarification'
			WHEN 'on_hold' THEN 'task.on_hold'
			WHEN 'completed' THEN 'task.completed'
			WHEN 'failed' THEN 'task.failed'
			WHEN 'cancelled' THEN 'task.cancelled' END;
		IF event IS NOT NULL THEN
			PERFORM agent_tasks_internal.enqueue_webhook_event(NEW, event,
				jsonb_build_object('previous_status', OLD.status));
		END IF;
		IF NEW.callback_url IS NOT NULL AND NEW.status IN ('completed', 'failed') THEN
			INSERT INTO agent_tasks_internal.webhook_deliveries (account, kind, task_id, event, url, body)
			VALUES (NEW.account, 'callback', NEW.id, 'task.' || NEW.status, NEW.callback_url,
					agent_tasks_internal.callback_body(NEW));
			PERFORM agent_tasks_internal.wake_workers('http');
		END IF;
	END IF;

	IF NEW.feedback IS DISTINCT FROM OLD.feedback THEN
		PERFORM agent_tasks_internal.enqueue_webhook_event(NEW, 'task.feedback',
			jsonb_build_object('previous_feedback', OLD.feedback));
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER webhook_task_changed
	AFTER INSERT OR UPDATE OF status, feedback ON agent_tasks_internal.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.webhook_task_changed();

CREATE FUNCTION agent_tasks_internal.webhook_message_added() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.webhook_endpoints e
					WHERE e.account = NEW.account AND e.enabled) THEN
		RETURN NULL;
	END IF;
	SELECT * INTO t FROM agent_tasks_internal.tasks x WHERE x.account = NEW.account AND x.id = NEW.task_id;
	IF FOUND THEN
		PERFORM agent_tasks_internal.enqueue_webhook_event(t, 'task.message',
			jsonb_build_object('message', jsonb_build_object(
				'id', NEW.id, 'run_id', NEW.run_id, 'role', NEW.role, 'author', NEW.author,
				'body', NEW.body, 'data', NEW.data, 'created_at', agent_tasks_internal.iso8601(NEW.created_at))));
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER webhook_message_added
	AFTER INSERT ON agent_tasks_internal.messages
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.webhook_message_added();

-- The dispatcher's side (see /tmp HTTP interface: same shape as claim_http_runs) ----

-- Claim up to max due deliveries: each gets a new attempt (in flight, under
-- a lease of its timeout + 15 s) and the signed request to send.  Deliveries
-- of a disabled or deleted endpoint are cancelled instead.  Attempts in
-- flight when the server last stopped are due again at once; their attempt
-- rows are marked lost when the delivery is claimed again.
-- (enable_seqscan = off: every row is reached by key; the dispatcher keeps
-- these plans for its whole life, and one made while a table was still
-- small must not scan it whole once it has grown)
CREATE FUNCTION agent_tasks_internal.claim_webhook_deliveries(worker text, max integer)
	RETURNS TABLE (account text, id uuid, url text, headers jsonb, body text,
				   timeout_ms integer, max_response_bytes integer)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	SET enable_seqscan = off
AS $$
DECLARE
	ts bigint := floor(extract(epoch FROM now()))::bigint;
	due_accounts text[];
	due_ids uuid[];
	due_kinds text[];
	due_endpoints uuid[];
	due_previous uuid[];
BEGIN
	PERFORM agent_tasks_internal.require_superuser('claim_webhook_deliveries');
	-- (only the small index of leased deliveries is searched: "+ interval '0'"
	-- keeps the planner from also scanning the due index)
	UPDATE agent_tasks_internal.webhook_deliveries d
	   SET next_attempt_at = now()
	 WHERE d.leased_at < agent_tasks_internal.server_life_started_at()
	   AND d.status = 'pending' AND d.next_attempt_at + interval '0' > now();

	-- Lock the due deliveries first, in a small statement: it needs a plan
	-- for its LIMIT each time; the big one below keeps its generic plan.
	SELECT array_agg(d.account), array_agg(d.id), array_agg(d.kind), array_agg(d.endpoint_id),
		   array_agg(d.current_attempt_id)
	  INTO due_accounts, due_ids, due_kinds, due_endpoints, due_previous
	  FROM (SELECT d.account, d.id, d.kind, d.endpoint_id, d.current_attempt_id
			  FROM agent_tasks_internal.webhook_deliveries d
			 WHERE d.status = 'pending' AND d.next_attempt_at <= now()
			 ORDER BY d.next_attempt_at
			 LIMIT greatest(least(claim_webhook_deliveries.max, 1000), 0)
			   FOR UPDATE OF d SKIP LOCKED) d;
	IF due_ids IS NULL THEN
		RETURN;
	END IF;

	RETURN QUERY
	WITH due AS (
		SELECT u.account, u.id, u.kind, u.endpoint_id, u.previous_attempt
		  FROM unnest(due_accounts, due_ids, due_kinds, due_endpoints, due_previous)
			AS u(account, id, kind, endpoint_id, previous_attempt)
	), target AS (
		SELECT due.account, due.id, due.previous_attempt,
			   (due.kind = 'callback' OR coalesce(e.enabled, false)) AS sendable,
			   coalesce(e.timeout_ms, 15000) AS timeout_ms
		  FROM due
		  LEFT JOIN agent_tasks_internal.webhook_endpoints e
			ON e.account = due.account AND e.id = due.endpoint_id
	), claimed AS (
		UPDATE agent_tasks_internal.webhook_deliveries d
		   SET status = CASE WHEN target.sendable THEN 'pending' ELSE 'cancelled' END,
			   last_error = CASE WHEN target.sendable THEN d.last_error
								 ELSE 'the webhook endpoint is disabled or gone' END,
			   attempts = d.attempts + CASE WHEN target.sendable THEN 1 ELSE 0 END,
			   current_attempt_id = CASE WHEN target.sendable THEN agent_tasks.uuid_v7() END,
			   leased_at = CASE WHEN target.sendable THEN now() END,
			   next_attempt_at = now() + make_interval(secs => (target.timeout_ms + 15000) / 1000.0),
			   updated_at = now()
		  FROM target
		 WHERE d.account = target.account AND d.id = target.id
		RETURNING d.account, d.id, d.kind, d.endpoint_id, d.url, d.body, d.attempts,
				  d.current_attempt_id, target.sendable, target.timeout_ms
	), lost AS (
		UPDATE agent_tasks_internal.webhook_attempts a
		   SET status = 'lost', ended_at = now(),
			   error = 'no outcome was recorded: the dispatcher stopped or its lease ran out during this attempt'
		  FROM due
		 WHERE a.account = due.account AND a.id = due.previous_attempt AND a.status = 'in_flight'
	), attempt AS (
		INSERT INTO agent_tasks_internal.webhook_attempts (account, id, delivery_id, attempt, worker)
		SELECT c.account, c.current_attempt_id, c.id, c.attempts, claim_webhook_deliveries.worker
		  FROM claimed c
		 WHERE c.sendable
	)
	SELECT c.account, c.current_attempt_id, c.url,
		   jsonb_strip_nulls(jsonb_build_object(
			   'content-type', 'application/json',
			   'user-agent', 'agent_tasks-webhooks/0.1',
			   'webhook-id', 'msg_' || c.id,
			   'webhook-timestamp', ts::text,
			   'webhook-signature',
				   (SELECT string_agg(agent_tasks_internal.sign_webhook(s.secret, 'msg_' || c.id, ts, c.body),
									  ' ' ORDER BY s.id DESC)
					  FROM agent_tasks_internal.webhook_secrets s
					 WHERE c.kind = 'webhook' AND s.account = c.account AND s.endpoint_id = c.endpoint_id
					   AND (s.expires_at IS NULL OR s.expires_at > now())))),
		   c.body, c.timeout_ms, 65536
	  FROM claimed c
	 WHERE c.sendable;
END
$$;

-- A receiver's Retry-After (delay-seconds or HTTP-date), at most a day; NULL
-- when absent or unreadable.
CREATE FUNCTION agent_tasks_internal.retry_after(headers jsonb)
	RETURNS interval
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v text;
	at timestamptz;
BEGIN
	IF jsonb_typeof(headers) IS DISTINCT FROM 'object' THEN
		RETURN NULL;
	END IF;
	SELECT btrim(CASE jsonb_typeof(h.value) WHEN 'array' THEN h.value ->> 0 ELSE h.value #>> '{}' END)
	  INTO v
	  FROM jsonb_each(headers) h
	 WHERE lower(h.key) = 'retry-after'
	 LIMIT 1;
	IF v ~ '^[0-9]{1,12}$' THEN
		RETURN make_interval(secs => least(v::bigint, 86400));
	END IF;
	IF v ~* '^[a-z]{3}, [0-9]{1,2} [a-z]{3} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$' THEN
		BEGIN
			at := v::timestamptz;
		EXCEPTION WHEN OTHERS THEN
			RETURN NULL;
		END;
		RETURN least(greatest(at - now(), interval '0'), interval '1 day');
	END IF;
	RETURN NULL;
END
$$;

-- A delivery that will not be retried: its task's trail says so.
CREATE FUNCTION agent_tasks_internal.log_delivery(d agent_tasks_internal.webhook_deliveries, event text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF d.task_id IS NOT NULL AND EXISTS (SELECT 1 FROM agent_tasks_internal.tasks t
										  WHERE t.account = d.account AND t.id = d.task_id) THEN
		PERFORM agent_tasks_internal.log_activity(d.account, d.task_id, log_delivery.event,
			jsonb_strip_nulls(jsonb_build_object(
				'delivery_id', d.id, 'webhook_id', 'msg_' || d.id, 'webhook', d.endpoint_id,
				'event', d.event, 'url', d.url, 'attempts', d.attempts,
				'status_code', d.last_status_code, 'error', d.last_error)));
	END IF;
END
$$;

-- The outcome of one attempt (id = the attempt id from the claim).  Never
-- raises for what the network sent: unknown or finished attempts are
-- ignored, long texts are cut.  2xx delivers; 410 disables the endpoint and
-- fails the delivery; anything else retries on the schedule (Retry-After
-- replaces the scheduled delay) until it is exhausted.
CREATE FUNCTION agent_tasks_internal.finish_webhook_delivery(account text, id uuid, status_code integer,
	response_headers jsonb, response_body text, error text, latency_ms integer)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a agent_tasks_internal.webhook_attempts;
	d agent_tasks_internal.webhook_deliveries;
	ok boolean := coalesce(status_code BETWEEN 200 AND 299, false);
	message text;
	schedule interval[];
	step integer;
	delay interval;
BEGIN
	message := left(coalesce(error, CASE WHEN NOT ok THEN
		CASE WHEN status_code IS NULL THEN 'no response' ELSE format('HTTP %s', status_code) END END), 1000);
	-- only an attempt still open (in flight, or lost while it was) takes an outcome
	UPDATE agent_tasks_internal.webhook_attempts x
	   SET status = CASE WHEN ok THEN 'succeeded' ELSE 'failed' END,
		   status_code = finish_webhook_delivery.status_code,
		   error = message,
		   response_body = left(finish_webhook_delivery.response_body, 1024),
		   latency_ms = greatest(finish_webhook_delivery.latency_ms, 0),
		   ended_at = now()
	 WHERE x.account = finish_webhook_delivery.account AND x.id = finish_webhook_delivery.id
	   AND x.status IN ('in_flight', 'lost')
	RETURNING * INTO a;
	IF NOT FOUND THEN
		RETURN;
	END IF;

	IF ok THEN
		UPDATE agent_tasks_internal.webhook_deliveries x
		   SET status = 'delivered', delivered_at = now(), leased_at = NULL,
			   last_status_code = finish_webhook_delivery.status_code, last_error = NULL, updated_at = now()
		 WHERE x.account = a.account AND x.id = a.delivery_id AND x.status <> 'delivered'
		RETURNING * INTO d;
		IF FOUND AND d.kind = 'callback' THEN
			PERFORM agent_tasks_internal.log_delivery(d, 'callback_delivered');
		END IF;
		RETURN;
	END IF;

	SELECT * INTO d FROM agent_tasks_internal.webhook_deliveries x
	 WHERE x.account = a.account AND x.id = a.delivery_id
	   FOR UPDATE;
	IF NOT FOUND OR d.status = 'delivered' THEN
		RETURN;
	END IF;

	-- An older attempt (its lease ran out and another one is in charge), or
	-- a delivery no longer pending: record the attempt only.
	IF d.current_attempt_id IS DISTINCT FROM a.id OR d.status <> 'pending' THEN
		RETURN;
	END IF;

	d.last_status_code := finish_webhook_delivery.status_code;
	d.last_error := message;
	IF finish_webhook_delivery.status_code = 410 THEN
		IF d.kind = 'webhook' THEN
			UPDATE agent_tasks_internal.webhook_endpoints e
			   SET enabled = false, disabled_at = now(), updated_at = now(),
				   disabled_reason = 'the receiver answered 410 Gone'
			 WHERE e.account = d.account AND e.id = d.endpoint_id AND e.enabled;
			d.last_error := 'the receiver answered 410 Gone: the endpoint is disabled';
		ELSE
			d.last_error := 'the receiver answered 410 Gone';
		END IF;
	ELSE
		IF d.kind = 'callback' THEN
			schedule := agent_tasks_internal.callback_schedule();
		ELSE
			SELECT coalesce(e.retry_schedule, agent_tasks_internal.default_webhook_schedule()) INTO schedule
			  FROM agent_tasks_internal.webhook_endpoints e
			 WHERE e.account = d.account AND e.id = d.endpoint_id;
			schedule := coalesce(schedule, agent_tasks_internal.default_webhook_schedule());
		END IF;
		step := d.attempts - d.schedule_start;
		IF step BETWEEN 1 AND coalesce(cardinality(schedule), 0) THEN
			delay := coalesce(agent_tasks_internal.retry_after(response_headers),
				schedule[step] * coalesce(nullif(current_setting('agent_tasks.webhook_retry_scale', true), '')::float8, 1)
					* (0.9 + random() / 5));
			UPDATE agent_tasks_internal.webhook_deliveries x
			   SET next_attempt_at = now() + delay, leased_at = NULL,
				   last_status_code = d.last_status_code, last_error = d.last_error, updated_at = now()
			 WHERE x.account = d.account AND x.id = d.id;
			PERFORM agent_tasks_internal.wake_workers('http');
			RETURN;
		END IF;
	END IF;

	-- Exhausted, or gone: no more attempts.
	UPDATE agent_tasks_internal.webhook_deliveries x
	   SET status = 'failed', leased_at = NULL,
		   last_status_code = d.last_status_code, last_error = d.last_error, updated_at = now()
	 WHERE x.account = d.account AND x.id = d.id
	RETURNING * INTO d;
	PERFORM agent_tasks_internal.log_delivery(d, CASE d.kind WHEN 'callback' THEN 'callback_failed' ELSE 'webhook_failed' END);
END
$$;

-- The outcomes of many attempts at once (the dispatcher records what ended
-- together in one call): the same effects as finish_webhook_delivery for
-- each, the 2xx answers set-wise (two statements for the whole batch), the
-- others one by one.  Never raises for what the network sent.
CREATE FUNCTION agent_tasks_internal.finish_webhook_deliveries(accounts text[], ids uuid[],
	status_codes integer[], response_headers jsonb[], response_bodies text[], errors text[],
	latencies integer[])
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	SET enable_seqscan = off		-- as claim_webhook_deliveries
AS $$
DECLARE
	callback_accounts text[];
	callbacks uuid[];
	d agent_tasks_internal.webhook_deliveries;
	i integer;
BEGIN
	WITH o AS (
		SELECT o.* FROM unnest(accounts, ids, status_codes, response_bodies, errors, latencies)
			AS o(account, id, status_code, response_body, error, latency_ms)
		 WHERE o.error IS NULL AND o.status_code BETWEEN 200 AND 299
	), a AS (
		-- only an attempt still open (in flight, or lost while it was) takes an outcome
		UPDATE agent_tasks_internal.webhook_attempts x
		   SET status = 'succeeded', status_code = o.status_code, error = NULL,
			   response_body = left(o.response_body, 1024), latency_ms = greatest(o.latency_ms, 0),
			   ended_at = now()
		  FROM o
		 WHERE x.account = o.account AND x.id = o.id AND x.status IN ('in_flight', 'lost')
		RETURNING x.account, x.delivery_id, o.status_code
	), delivered AS (
		UPDATE agent_tasks_internal.webhook_deliveries x
		   SET status = 'delivered', delivered_at = now(), leased_at = NULL,
			   last_status_code = a.status_code, last_error = NULL, updated_at = now()
		  FROM a
		 WHERE x.account = a.account AND x.id = a.delivery_id AND x.status <> 'delivered'
		RETURNING x.account, x.id, x.kind
	)
	SELECT array_agg(delivered.account), array_agg(delivered.id) INTO callback_accounts, callbacks
	  FROM delivered WHERE delivered.kind = 'callback';
	IF callbacks IS NOT NULL THEN
		FOR d IN SELECT x.* FROM unnest(callback_accounts, callbacks) c(account, id)
				   JOIN agent_tasks_internal.webhook_deliveries x ON x.account = c.account AND x.id = c.id
				  ORDER BY x.id
		LOOP
			PERFORM agent_tasks_internal.log_delivery(d, 'callback_delivered');
		END LOOP;
	END IF;

	FOR i IN 1 .. coalesce(cardinality(ids), 0)
	LOOP
		CONTINUE WHEN errors[i] IS NULL AND status_codes[i] BETWEEN 200 AND 299;
		PERFORM agent_tasks_internal.finish_webhook_delivery(accounts[i], ids[i], status_codes[i],
			response_headers[i], response_bodies[i], errors[i], latencies[i]);
	END LOOP;
END
$$;

-- Public API ----------------------------------------------------------------

CREATE VIEW agent_tasks.webhook_endpoints WITH (security_invoker = true) AS
SELECT e.id, e.account, e.url, e.events, e.description, e.retry_schedule,
	   make_interval(secs => e.timeout_ms / 1000.0) AS timeout,
	   e.enabled, e.disabled_reason, e.disabled_at,
	   (SELECT max(s.created_at) FROM agent_tasks_internal.webhook_secrets s
		 WHERE s.account = e.account AND s.endpoint_id = e.id) AS secret_created_at,
	   (SELECT max(s.expires_at) FROM agent_tasks_internal.webhook_secrets s
		 WHERE s.account = e.account AND s.endpoint_id = e.id AND s.expires_at > now()) AS previous_secret_expires_at,
	   e.created_by, e.created_at, e.updated_at
  FROM agent_tasks_internal.webhook_endpoints e;
COMMENT ON VIEW agent_tasks.webhook_endpoints IS 'Webhook endpoints of the current account (agent_tasks_admin): URL, subscribed events, retry schedule, enabled or why disabled, secret rotation times. Secrets are never shown.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.events IS 'Subscribed events (task.created, task.queued, task.started, task.needs_clarification, task.on_hold, task.completed, task.failed, task.cancelled, task.message, task.feedback) or {*} for all.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.retry_schedule IS 'Delays before retry 1, 2, ... after the immediate first attempt; NULL means the default {5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h}.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.previous_secret_expires_at IS 'While a rotated secret still signs (24 h after rotate_webhook_secret), when it stops.';

CREATE VIEW agent_tasks.webhook_deliveries WITH (security_invoker = true) AS
SELECT d.id, d.account, 'msg_' || d.id AS webhook_id, d.kind, d.endpoint_id AS webhook, d.task_id,
	   d.event, d.url, d.status, d.leased_at IS NOT NULL AND d.status = 'pending' AS in_flight,
	   d.attempts,
	   CASE WHEN d.status = 'pending' AND d.leased_at IS NULL THEN d.next_attempt_at END AS next_attempt_at,
	   d.last_status_code, d.last_error, d.body::jsonb AS payload,
	   d.created_at, d.updated_at, d.delivered_at
  FROM agent_tasks_internal.webhook_deliveries d;
COMMENT ON VIEW agent_tasks.webhook_deliveries IS 'Webhook and callback deliveries of the current account (agent_tasks_admin): one per event and endpoint (kind webhook) or per finished task with a callback_url (kind callback); status pending, delivered, failed (retries exhausted or 410) or cancelled (endpoint disabled).';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.webhook_id IS 'The webhook-id header: the same on every attempt, so receivers can deduplicate.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.payload IS 'The JSON body sent (and signed) on every attempt.';

CREATE VIEW agent_tasks.webhook_attempts WITH (security_invoker = true) AS
SELECT a.id, a.account, a.delivery_id, a.attempt, a.status, a.status_code, a.error,
	   a.response_body, a.latency_ms, a.worker, a.started_at, a.ended_at
  FROM agent_tasks_internal.webhook_attempts a;
COMMENT ON VIEW agent_tasks.webhook_attempts IS 'Every attempt at a delivery (agent_tasks_admin): status in_flight, succeeded, failed or lost (the dispatcher died), HTTP status code, latency, error, start of the response body (1 KB).';

CREATE FUNCTION agent_tasks_internal.check_webhook_secret(secret text)
	RETURNS text
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF secret IS NULL THEN
		RETURN agent_tasks_internal.new_webhook_secret();
	END IF;
	PERFORM agent_tasks_internal.sign_webhook(secret, 'msg_check', 0, '');		-- PT400 when malformed
	RETURN secret;
END
$$;

-- Checks shared by create_webhook and update_webhook (PT400 naming the fix).
CREATE FUNCTION agent_tasks_internal.check_webhook_url(url text)
	RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	checked text := agent_tasks_internal.check_url('url', url);
BEGIN
	IF checked IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'url must not be empty', 'url is null',
			'Pass the https:// URL that receives the events.');
	END IF;
	RETURN checked;
END
$$;

-- The events, sorted and without duplicates.
CREATE FUNCTION agent_tasks_internal.check_webhook_events(events text[])
	RETURNS text[]
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	unknown text[];
BEGIN
	IF events IS NULL OR cardinality(events) = 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'events must not be empty',
			format('events = %s', coalesce(events::text, 'null')),
			'Name the events to send, e.g. {task.completed,task.failed}, or {*} for all: '
			|| array_to_string(agent_tasks_internal.webhook_events(), ', ') || '.');
	END IF;
	unknown := ARRAY(SELECT e FROM unnest(events) e
					  WHERE e IS NULL OR NOT (e = '*' OR e = ANY (agent_tasks_internal.webhook_events())));
	IF cardinality(unknown) > 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'unknown webhook event',
			format('events = %s: unknown %s', events::text, unknown::text),
			'Events: ' || array_to_string(agent_tasks_internal.webhook_events(), ', ') || ', or * for all.');
	END IF;
	RETURN ARRAY(SELECT DISTINCT e FROM unnest(events) e ORDER BY e);
END
$$;

CREATE FUNCTION agent_tasks_internal.check_retry_schedule(retry_schedule interval[])
	RETURNS interval[]
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF retry_schedule IS NOT NULL AND (cardinality(retry_schedule) > 20
		OR EXISTS (SELECT 1 FROM unnest(retry_schedule) s WHERE s IS NULL OR s < '0' OR s > '7 days')) THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid retry schedule',
			format('retry_schedule = %s', retry_schedule::text),
			'Give at most 20 delays between 0 and 7 days (the delay before each retry), or null for the default.');
	END IF;
	RETURN retry_schedule;
END
$$;

-- The timeout in milliseconds.
CREATE FUNCTION agent_tasks_internal.check_webhook_timeout(timeout interval)
	RETURNS integer
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF timeout IS NULL OR timeout < '1 second' OR timeout > '30 seconds' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid webhook timeout',
			format('timeout = %s', coalesce(timeout::text, 'null')), 'Use 1 to 30 seconds.');
	END IF;
	RETURN (extract(epoch FROM timeout) * 1000)::integer;
END
$$;

CREATE FUNCTION agent_tasks.create_webhook(
	url text,
	events text[],
	secret text DEFAULT NULL,
	description text DEFAULT NULL,
	retry_schedule interval[] DEFAULT NULL,
	timeout interval DEFAULT '15 seconds')
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result record;
	timeout_ms integer;
BEGIN
	SELECT agent_tasks.uuid_v7() AS id, agent_tasks_internal.check_webhook_url(create_webhook.url) AS url,
		   NULL::text[] AS events, NULL::text AS secret INTO result;
	result.events := agent_tasks_internal.check_webhook_events(create_webhook.events);
	PERFORM agent_tasks_internal.check_text('description', description, 1000);
	PERFORM agent_tasks_internal.check_retry_schedule(create_webhook.retry_schedule);
	timeout_ms := agent_tasks_internal.check_webhook_timeout(create_webhook.timeout);
	result.secret := agent_tasks_internal.check_webhook_secret(create_webhook.secret);
	INSERT INTO agent_tasks_internal.webhook_endpoints
		(account, id, url, events, description, retry_schedule, timeout_ms, created_by)
	VALUES (agent_tasks.current_account(), result.id, result.url, result.events, create_webhook.description,
			create_webhook.retry_schedule, timeout_ms, agent_tasks_internal.current_actor());
	INSERT INTO agent_tasks_internal.webhook_secrets (account, endpoint_id, secret)
	VALUES (agent_tasks.current_account(), result.id, result.secret);
	RETURN jsonb_build_object('id', result.id, 'url', result.url, 'events', result.events,
							  'secret', result.secret, 'enabled', true, 'created_at', now());
END
$$;
COMMENT ON FUNCTION agent_tasks.create_webhook(text, text[], text, text, interval[], interval) IS 'Register an endpoint (agent_tasks_admin) for events of this account: url (https; checked like every URL), events ({*} for all), secret ("whsec_" + base64; generated when omitted), optional retry_schedule and timeout (default 15 s). Returns {id, url, events, secret, enabled, created_at}: the secret this one time only.';

-- The endpoint, locked, or PT404.
CREATE FUNCTION agent_tasks_internal.lock_webhook(webhook uuid)
	RETURNS agent_tasks_internal.webhook_endpoints
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e agent_tasks_internal.webhook_endpoints;
BEGIN
	SELECT * INTO e FROM agent_tasks_internal.webhook_endpoints x
	 WHERE x.account = agent_tasks.current_account() AND x.id = webhook
	   FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'webhook not found',
			format('No webhook %s in this account.', coalesce(webhook::text, 'null')),
			'List them in agent_tasks.webhook_endpoints.');
	END IF;
	RETURN e;
END
$$;

CREATE FUNCTION agent_tasks.rotate_webhook_secret(webhook uuid, secret text DEFAULT NULL)
	RETURNS text
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e agent_tasks_internal.webhook_endpoints := agent_tasks_internal.lock_webhook(webhook);
	new_secret text := agent_tasks_internal.check_webhook_secret(rotate_webhook_secret.secret);
BEGIN
	UPDATE agent_tasks_internal.webhook_secrets s
	   SET expires_at = now() + interval '24 hours'
	 WHERE s.account = e.account AND s.endpoint_id = e.id AND s.expires_at IS NULL;
	INSERT INTO agent_tasks_internal.webhook_secrets (account, endpoint_id, secret)
	VALUES (e.account, e.id, new_secret);
	RETURN new_secret;
END
$$;
COMMENT ON FUNCTION agent_tasks.rotate_webhook_secret(uuid, text) IS 'Give the endpoint a new secret (generated, or the one passed) and return it once; the previous secret keeps signing for 24 hours, so webhook-signature carries both signatures meanwhile.';

CREATE FUNCTION agent_tasks.disable_webhook(webhook uuid, reason text DEFAULT 'disabled by a user')
	RETURNS agent_tasks.webhook_endpoints
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e agent_tasks_internal.webhook_endpoints := agent_tasks_internal.lock_webhook(webhook);
	result agent_tasks.webhook_endpoints;
BEGIN
	PERFORM agent_tasks_internal.check_text('reason', reason, 200);
	IF e.enabled THEN
		UPDATE agent_tasks_internal.webhook_endpoints x
		   SET enabled = false, disabled_at = now(), updated_at = now(),
			   disabled_reason = coalesce(disable_webhook.reason, 'disabled by a user')
		 WHERE x.account = e.account AND x.id = e.id;
	END IF;
	SELECT * INTO result FROM agent_tasks.webhook_endpoints v WHERE v.account = e.account AND v.id = e.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.disable_webhook(uuid, text) IS 'Stop sending to this endpoint: no new deliveries, and its pending ones are cancelled when they come due (redeliver() resends them after enable_webhook()). Idempotent.';

CREATE FUNCTION agent_tasks.enable_webhook(webhook uuid)
	RETURNS agent_tasks.webhook_endpoints
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e agent_tasks_internal.webhook_endpoints := agent_tasks_internal.lock_webhook(webhook);
	result agent_tasks.webhook_endpoints;
BEGIN
	IF NOT e.enabled THEN
		UPDATE agent_tasks_internal.webhook_endpoints x
		   SET enabled = true, disabled_at = NULL, disabled_reason = NULL, updated_at = now()
		 WHERE x.account = e.account AND x.id = e.id;
	END IF;
	SELECT * INTO result FROM agent_tasks.webhook_endpoints v WHERE v.account = e.account AND v.id = e.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.enable_webhook(uuid) IS 'Send to a disabled endpoint again (events from now on; redeliver() resends earlier ones). Idempotent.';

CREATE FUNCTION agent_tasks.update_webhook(webhook uuid, patch jsonb)
	RETURNS agent_tasks.webhook_endpoints
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e agent_tasks_internal.webhook_endpoints := agent_tasks_internal.lock_webhook(webhook);
	old_url text := e.url;
	f record;
	result agent_tasks.webhook_endpoints;
BEGIN
	PERFORM agent_tasks_internal.check_json('patch', patch, 'object');
	FOR f IN SELECT key, value, jsonb_typeof(value) AS type, value #>> '{}' AS text_value
			   FROM jsonb_each(coalesce(patch, '{}'))
	LOOP
		IF f.key NOT IN ('url', 'events', 'description', 'retry_schedule', 'timeout') THEN
			PERFORM agent_tasks_internal.raise('PT400', format('webhook field %s cannot be changed', quote_ident(f.key)),
				format('patch = %s', left(patch::text, 200)),
				'Mutable fields: url, events, description, retry_schedule, timeout; the secret changes with rotate_webhook_secret(), enabled with enable_webhook() / disable_webhook().');
		END IF;
		IF NOT (f.type = 'null' AND f.key IN ('description', 'retry_schedule', 'timeout', 'url', 'events')
				OR f.type = 'string' AND f.key IN ('url', 'description', 'timeout')
				OR f.type = 'array' AND f.key IN ('events', 'retry_schedule')) THEN
			PERFORM agent_tasks_internal.raise('PT400', format('invalid value for %s', f.key),
				format('%s = %s', f.key, left(f.value::text, 200)),
				CASE WHEN f.key IN ('events', 'retry_schedule') THEN 'Give a JSON array of strings.'
					 ELSE 'Give a JSON string.' END);
		END IF;
		BEGIN
			CASE f.key
				WHEN 'url' THEN
					e.url := agent_tasks_internal.check_webhook_url(f.text_value);
				WHEN 'events' THEN
					e.events := agent_tasks_internal.check_webhook_events(CASE WHEN f.type = 'array'
						THEN ARRAY(SELECT x FROM jsonb_array_elements_text(f.value) x) END);
				WHEN 'description' THEN
					e.description := f.text_value;
					PERFORM agent_tasks_internal.check_text('description', e.description, 1000);
				WHEN 'retry_schedule' THEN
					e.retry_schedule := agent_tasks_internal.check_retry_schedule(CASE WHEN f.type = 'array'
						THEN ARRAY(SELECT x::interval FROM jsonb_array_elements_text(f.value) x) END);
				WHEN 'timeout' THEN
					e.timeout_ms := agent_tasks_internal.check_webhook_timeout(f.text_value::interval);
			END CASE;
		EXCEPTION WHEN data_exception THEN
			PERFORM agent_tasks_internal.raise('PT400', format('invalid value for %s', f.key),
				format('%s = %s', f.key, left(f.value::text, 200)), NULL);
		END;
	END LOOP;
	UPDATE agent_tasks_internal.webhook_endpoints x
	   SET url = e.url, events = e.events, description = e.description,
		   retry_schedule = e.retry_schedule, timeout_ms = e.timeout_ms, updated_at = now()
	 WHERE x.account = e.account AND x.id = e.id;
	IF e.url IS DISTINCT FROM old_url THEN
		-- what is still to be sent goes to the new URL (an attempt in flight ends at the old one)
		UPDATE agent_tasks_internal.webhook_deliveries d
		   SET url = e.url, updated_at = now()
		 WHERE d.account = e.account AND d.endpoint_id = e.id AND d.status = 'pending';
	END IF;
	SELECT * INTO result FROM agent_tasks.webhook_endpoints v WHERE v.account = e.account AND v.id = e.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.update_webhook(uuid, jsonb) IS 'Change an endpoint (agent_tasks_admin): the patch names the fields: url (checked like every URL), events, description, retry_schedule (array of intervals, null for the default), timeout ("1 s" to "30 s"). A new url applies to the endpoint''s pending deliveries too (an attempt in flight ends at the old one); events to changes from now on; schedule and timeout to the next attempt. PT400 for an unknown field or a bad value, PT404 for an unknown endpoint.';

CREATE FUNCTION agent_tasks.delete_webhook(webhook uuid)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e agent_tasks_internal.webhook_endpoints := agent_tasks_internal.lock_webhook(webhook);
BEGIN
	-- nothing more is sent: pending deliveries are cancelled (an attempt in
	-- flight still records its outcome; a 2xx marks its delivery delivered)
	UPDATE agent_tasks_internal.webhook_deliveries d
	   SET status = 'cancelled', last_error = 'the webhook endpoint was deleted', updated_at = now()
	 WHERE d.account = e.account AND d.endpoint_id = e.id AND d.status = 'pending';
	-- its secrets go with it (foreign key, on delete cascade)
	DELETE FROM agent_tasks_internal.webhook_endpoints x WHERE x.account = e.account AND x.id = e.id;
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.delete_webhook(uuid) IS 'Delete an endpoint and its secrets (agent_tasks_admin): its pending deliveries are cancelled ("the webhook endpoint was deleted"); its deliveries and their attempts stay in webhook_deliveries / webhook_attempts as history until agent_tasks.retention_deliveries purges them. PT404 for an unknown endpoint.';

CREATE FUNCTION agent_tasks.redeliver(delivery uuid)
	RETURNS agent_tasks.webhook_deliveries
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d agent_tasks_internal.webhook_deliveries;
	result agent_tasks.webhook_deliveries;
BEGIN
	SELECT * INTO d FROM agent_tasks_internal.webhook_deliveries x
	 WHERE x.account = agent_tasks.current_account() AND x.id = delivery
	   FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'delivery not found',
			format('No webhook delivery %s in this account.', coalesce(delivery::text, 'null')),
			'List them in agent_tasks.webhook_deliveries.');
	END IF;
	IF d.status = 'pending' AND d.leased_at IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the delivery is being sent',
			format('delivery %s has attempt %s in flight', d.id, d.attempts),
			'Wait for its outcome in agent_tasks.webhook_attempts.');
	END IF;
	IF d.kind = 'webhook' AND NOT EXISTS (SELECT 1 FROM agent_tasks_internal.webhook_endpoints e
										   WHERE e.account = d.account AND e.id = d.endpoint_id) THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the webhook endpoint was deleted',
			format('delivery %s went to webhook %s, which no longer exists', d.id, d.endpoint_id),
			'Register the endpoint again with agent_tasks.create_webhook(); new events go to it.');
	END IF;
	IF d.kind = 'webhook' AND NOT EXISTS (SELECT 1 FROM agent_tasks_internal.webhook_endpoints e
										   WHERE e.account = d.account AND e.id = d.endpoint_id AND e.enabled) THEN
		PERFORM agent_tasks_internal.raise('PT409', 'the webhook endpoint is disabled',
			format('delivery %s goes to webhook %s, which is disabled', d.id, d.endpoint_id),
			'Enable it with agent_tasks.enable_webhook() first.');
	END IF;
	UPDATE agent_tasks_internal.webhook_deliveries x
	   SET status = 'pending', next_attempt_at = now(), schedule_start = x.attempts, updated_at = now()
	 WHERE x.account = d.account AND x.id = d.id;
	PERFORM agent_tasks_internal.wake_workers('http');
	SELECT * INTO result FROM agent_tasks.webhook_deliveries v WHERE v.account = d.account AND v.id = d.id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.redeliver(uuid) IS 'Send a delivery again now, with the same webhook-id and body, and a fresh retry schedule (any status but in flight; PT409 while its endpoint is disabled or once it is deleted).';

GRANT EXECUTE ON FUNCTION
	agent_tasks.create_webhook(text, text[], text, text, interval[], interval),
	agent_tasks.update_webhook(uuid, jsonb),
	agent_tasks.delete_webhook(uuid),
	agent_tasks.rotate_webhook_secret(uuid, text),
	agent_tasks.disable_webhook(uuid, text),
	agent_tasks.enable_webhook(uuid),
	agent_tasks.redeliver(uuid)
TO agent_tasks_admin;
-- Artifacts (files attached to a task or a run) and presence (who is
-- watching a task right now).

-- ---------------------------------------------------------------------------
-- Artifacts: bytes stored in the database up to agent_tasks.artifact_max_bytes
-- (default 10 MB), or a URL.  process_task(task, message, files) turns the
-- files it is given into artifacts of the task, linked to the run it queues.

CREATE TABLE agent_tasks_internal.artifacts (
	account			text NOT NULL,
	id				uuid NOT NULL DEFAULT agent_tasks.uuid_v7(),
	task_id			uuid NOT NULL,
	run_id			uuid,
	name			text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
	content_type	text NOT NULL CHECK (length(content_type) <= 200),
	size			bigint CHECK (size >= 0),
	sha256			text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	content			bytea,
	url				text CHECK (length(url) <= 2000),
	created_by		text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, id),
	CHECK ((content IS NULL) <> (url IS NULL)),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE,
	FOREIGN KEY (account, run_id) REFERENCES agent_tasks_internal.runs (account, id) ON DELETE CASCADE
);
CREATE INDEX ON agent_tasks_internal.artifacts (account, task_id, id);
CREATE INDEX ON agent_tasks_internal.artifacts (account, run_id) WHERE run_id IS NOT NULL;
GRANT SELECT ON agent_tasks_internal.artifacts TO agent_tasks_reader;
GRANT INSERT, DELETE ON agent_tasks_internal.artifacts TO agent_tasks_writer;
GRANT UPDATE (run_id) ON agent_tasks_internal.artifacts TO agent_tasks_writer;

CREATE VIEW agent_tasks.artifacts WITH (security_invoker = true) AS
SELECT id, account, task_id, run_id, name, content_type, size, sha256, url,
	   content IS NOT NULL AS stored, created_by, created_at
  FROM agent_tasks_internal.artifacts;
COMMENT ON VIEW agent_tasks.artifacts IS 'Files attached to tasks and runs (without their bytes: fetch_artifact returns those).';
COMMENT ON COLUMN agent_tasks.artifacts.run_id IS 'The run the file belongs to (files given to process_task), or null for a file of the task.';
COMMENT ON COLUMN agent_tasks.artifacts.size IS 'Size in bytes (for a link: as given, if given).';
COMMENT ON COLUMN agent_tasks.artifacts.sha256 IS 'SHA-256 of the bytes, hex (for a link: as given, if given).';
COMMENT ON COLUMN agent_tasks.artifacts.url IS 'Where the file is, for a link; null when the bytes are stored.';
COMMENT ON COLUMN agent_tasks.artifacts.stored IS 'True when the bytes are stored in the database (fetch_artifact returns them).';

-- Store one artifact; every check in one place.
CREATE FUNCTION agent_tasks_internal.insert_artifact(account text, task uuid, run uuid, name text,
	content_type text, content_base64 text, url text, sha256 text DEFAULT NULL, size bigint DEFAULT NULL)
	RETURNS uuid
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	max_bytes bigint := agent_tasks_internal.setting_int('agent_tasks.artifact_max_bytes', 10485760);
	b64 text;
	bytes bytea;
	new_id uuid := agent_tasks.uuid_v7();
	digest text;
BEGIN
	PERFORM agent_tasks_internal.check_text('name', insert_artifact.name, 255, true);
	IF insert_artifact.name ~ '[[:cntrl:]]' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid file name',
			format('name = %s', quote_literal(insert_artifact.name)), 'Remove control characters from the name.');
	END IF;
	IF insert_artifact.content_type IS NOT NULL
		AND insert_artifact.content_type !~* '^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+(\s*;.{0,150})?$' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid content type',
			format('content_type = %s', quote_literal(left(insert_artifact.content_type, 200))),
			'Use a media type like text/plain or image/png.');
	END IF;
	IF (insert_artifact.content_base64 IS NULL) = (insert_artifact.url IS NULL) THEN
		PERFORM agent_tasks_internal.raise('PT400', 'a file needs either content or a url',
			format('file %s has %s.', quote_literal(insert_artifact.name),
				   CASE WHEN insert_artifact.url IS NULL THEN 'neither' ELSE 'both' END),
			'Pass content_base64 (the bytes, base64) or url (a link), not both.');
	END IF;
	IF insert_artifact.sha256 IS NOT NULL AND lower(insert_artifact.sha256) !~ '^[0-9a-f]{64}$' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid sha256',
			format('sha256 = %s', quote_literal(left(insert_artifact.sha256, 100))), 'Give 64 hexadecimal digits.');
	END IF;

	IF insert_artifact.content_base64 IS NOT NULL THEN
		b64 := translate(regexp_replace(insert_artifact.content_base64, '\s+', '', 'g'), '-_', '+/');
		IF length(b64) / 4 * 3 > max_bytes + 3 THEN
			PERFORM agent_tasks_internal.raise('PT400', 'file is too large',
				format('%s has about %s bytes; the limit is %s (agent_tasks.artifact_max_bytes).',
					   quote_literal(insert_artifact.name), length(b64) / 4 * 3, max_bytes),
				'Attach a link (url) to larger files.');
		END IF;
		b64 := rpad(b64, (length(b64) + 3) / 4 * 4, '=');
		BEGIN
			bytes := decode(b64, 'base64');
		EXCEPTION WHEN invalid_parameter_value OR data_exception THEN
			PERFORM agent_tasks_internal.raise('PT400', 'content_base64 is not base64',
				format('file %s: %s', quote_literal(insert_artifact.name), SQLERRM),
				'Encode the bytes with base64 (standard or URL-safe alphabet).');
		END;
		IF length(bytes) > max_bytes THEN
			PERFORM agent_tasks_internal.raise('PT400', 'file is too large',
				format('%s has %s bytes; the limit is %s (agent_tasks.artifact_max_bytes).',
					   quote_literal(insert_artifact.name), length(bytes), max_bytes),
				'Attach a link (url) to larger files.');
		END IF;
		digest := encode(pg_catalog.sha256(bytes), 'hex');
		IF insert_artifact.sha256 IS NOT NULL AND lower(insert_artifact.sha256) <> digest THEN
			PERFORM agent_tasks_internal.raise('PT422', 'sha256 does not match the content',
				format('file %s: given %s, content has %s', quote_literal(insert_artifact.name),
					   lower(insert_artifact.sha256), digest),
				'Send the file again, or omit sha256.');
		END IF;
		IF insert_artifact.size IS NOT NULL AND insert_artifact.size <> length(bytes) THEN
			PERFORM agent_tasks_internal.raise('PT422', 'size does not match the content',
				format('file %s: given %s bytes, content has %s', quote_literal(insert_artifact.name),
					   insert_artifact.size, length(bytes)),
				'Send the file again, or omit size.');
		END IF;
	ELSE
		PERFORM agent_tasks_internal.check_url('url', insert_artifact.url);
		IF insert_artifact.size < 0 THEN
			PERFORM agent_tasks_internal.raise('PT400', 'invalid size',
				format('size = %s', insert_artifact.size), 'Give the size in bytes, or omit it.');
		END IF;
	END IF;

	INSERT INTO agent_tasks_internal.artifacts
		(account, id, task_id, run_id, name, content_type, size, sha256, content, url, created_by)
	VALUES (insert_artifact.account, new_id, insert_artifact.task, insert_artifact.run, btrim(insert_artifact.name),
			coalesce(lower(insert_artifact.content_type), 'application/octet-stream'),
			coalesce(length(bytes), insert_artifact.size), coalesce(digest, lower(insert_artifact.sha256)),
			bytes, insert_artifact.url, agent_tasks_internal.current_actor());
	RETURN new_id;
END
$$;

CREATE FUNCTION agent_tasks.attach_artifact(task uuid, name text, content_base64 text DEFAULT NULL,
	url text DEFAULT NULL, content_type text DEFAULT NULL, run uuid DEFAULT NULL,
	sha256 text DEFAULT NULL, size bigint DEFAULT NULL)
	RETURNS agent_tasks.artifacts
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	new_id uuid;
	result agent_tasks.artifacts;
BEGIN
	IF attach_artifact.run IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM agent_tasks_internal.runs r
			 WHERE r.account = t.account AND r.id = attach_artifact.run AND r.task_id = t.id) THEN
		PERFORM agent_tasks_internal.raise('PT404', 'run not found',
			format('Task %s has no run %s.', t.id, attach_artifact.run),
			'List the task''s runs in agent_tasks.runs.');
	END IF;
	new_id := agent_tasks_internal.insert_artifact(t.account, t.id, attach_artifact.run, attach_artifact.name,
		attach_artifact.content_type, attach_artifact.content_base64, attach_artifact.url,
		attach_artifact.sha256, attach_artifact.size);
	SELECT * INTO result FROM agent_tasks.artifacts a WHERE a.account = t.account AND a.id = new_id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.attach_artifact(uuid, text, text, text, text, uuid, text, bigint) IS 'Attach a file to a task (or to one of its runs): its bytes as content_base64 (up to agent_tasks.artifact_max_bytes, default 10 MB; sha256 and size are computed, and checked when given: PT422), or a url (with sha256 and size if known).';

-- PostgREST 12 sends a function's result as the raw response body, with any
-- media type, when the function returns a domain named "*/*" (its media type
-- handlers); SQL callers get bytea.
CREATE DOMAIN agent_tasks."*/*" AS bytea;
COMMENT ON DOMAIN agent_tasks."*/*" IS 'bytea that PostgREST sends as the raw response body, with the Content-Type the function sets (fetch_artifact).';

CREATE FUNCTION agent_tasks.fetch_artifact(artifact uuid)
	RETURNS agent_tasks."*/*"
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a agent_tasks_internal.artifacts;
BEGIN
	SELECT * INTO a FROM agent_tasks_internal.artifacts x
	 WHERE x.account = agent_tasks.current_account() AND x.id = fetch_artifact.artifact;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'artifact not found',
			format('No artifact %s in this account.', fetch_artifact.artifact),
			'List them in agent_tasks.artifacts.');
	END IF;
	IF a.content IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT409', 'artifact is a link',
			format('Artifact %s is stored as %s.', a.id, a.url), 'Download it from its url.');
	END IF;
	-- Through PostgREST: the file as a download, with its own media type
	-- (never rendered by a browser: attachment, nosniff).
	IF nullif(current_setting('request.method', true), '') IS NOT NULL THEN
		PERFORM set_config('response.headers', jsonb_build_array(
			jsonb_build_object('Content-Type', a.content_type),
			jsonb_build_object('Content-Disposition',
				format('attachment; filename="%s"', regexp_replace(a.name, '["\\[:cntrl:]]', '_', 'g'))),
			jsonb_build_object('X-Content-Type-Options', 'nosniff'))::text, true);
	END IF;
	RETURN a.content;
END
$$;
COMMENT ON FUNCTION agent_tasks.fetch_artifact(uuid) IS 'The bytes of a stored artifact. Over REST (GET /rpc/fetch_artifact?artifact=...) the response is the file itself, with its content type, as an attachment. PT404 for an unknown artifact, PT409 for a link.';

CREATE FUNCTION agent_tasks.delete_artifact(artifact uuid)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM agent_tasks_internal.artifacts x
	 WHERE x.account = agent_tasks.current_account() AND x.id = delete_artifact.artifact;
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT404', 'artifact not found',
			format('No artifact %s in this account.', delete_artifact.artifact),
			'List them in agent_tasks.artifacts.');
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION agent_tasks.delete_artifact(uuid) IS 'Delete an artifact (PT404 when it does not exist).';

-- process_task's files: [{name, content_type, content_base64 | url}, ...]
-- become artifacts of the task, and the list the run and the message keep
-- holds references instead of the bytes: {artifact_id, name, content_type,
-- size, sha256, url}.  A string is a link; an object with artifact_id names
-- an artifact of the task; other objects are kept as they are.
CREATE FUNCTION agent_tasks_internal.store_files(t agent_tasks_internal.tasks, files jsonb)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f jsonb;
	n integer := 0;
	art_id uuid;
	result jsonb := '[]';
BEGIN
	IF files IS NULL OR jsonb_typeof(files) <> 'array' THEN
		RETURN files;			-- process_task's own check refuses non-arrays
	END IF;
	FOR f IN SELECT value FROM jsonb_array_elements(files) LOOP
		n := n + 1;
		art_id := NULL;
		IF jsonb_typeof(f) = 'string' THEN
			art_id := agent_tasks_internal.insert_artifact(t.account, t.id, NULL,
				coalesce(nullif(substring(f #>> '{}' FROM '([^/?#]+)(?:[?#].*)?$'), ''), 'file'),
				NULL, NULL, f #>> '{}');
		ELSIF jsonb_typeof(f) = 'object' AND (f ? 'content_base64' OR f ? 'url') THEN
			art_id := agent_tasks_internal.insert_artifact(t.account, t.id, NULL,
				coalesce(f ->> 'name', substring(f ->> 'url' FROM '([^/?#]+)(?:[?#].*)?$'), format('file %s', n)),
				f ->> 'content_type', f ->> 'content_base64', f ->> 'url', f ->> 'sha256',
				CASE WHEN jsonb_typeof(f -> 'size') = 'number' THEN (f ->> 'size')::bigint END);
		ELSIF jsonb_typeof(f) = 'object' AND f ? 'artifact_id' THEN
			SELECT a.id INTO art_id FROM agent_tasks_internal.artifacts a
			 WHERE a.account = t.account AND a.task_id = t.id AND a.id::text = f ->> 'artifact_id';
			IF art_id IS NULL THEN
				PERFORM agent_tasks_internal.raise('PT404', 'artifact not found',
					format('File %s names artifact %s, which task %s does not have.', n, f ->> 'artifact_id', t.id),
					'List the task''s files in agent_tasks.artifacts.');
			END IF;
		END IF;
		IF art_id IS NULL THEN
			result := result || jsonb_build_array(f);
		ELSE
			result := result || (SELECT jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
						'artifact_id', a.id, 'name', a.name, 'content_type', a.content_type,
						'size', a.size, 'sha256', a.sha256, 'url', a.url)))
				  FROM agent_tasks_internal.artifacts a WHERE a.account = t.account AND a.id = art_id);
		END IF;
	END LOOP;
	RETURN result;
END
$$;

-- A new run owns the files its input names (process_task stored them just before).
CREATE FUNCTION agent_tasks_internal.run_files() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF jsonb_typeof(NEW.input -> 'files') = 'array' THEN
		UPDATE agent_tasks_internal.artifacts a SET run_id = NEW.id
		 WHERE a.account = NEW.account AND a.task_id = NEW.task_id AND a.run_id IS NULL
		   AND a.id::text IN (SELECT f ->> 'artifact_id' FROM jsonb_array_elements(NEW.input -> 'files') f
							   WHERE jsonb_typeof(f) = 'object');
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER run_files
	AFTER INSERT ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NEW.input ? 'files')
	EXECUTE FUNCTION agent_tasks_internal.run_files();

-- ---------------------------------------------------------------------------
-- Presence: "this person's device is watching this task".  A touch keeps
-- it for agent_tasks.presence_ttl (default 60 s); clients touch about every
-- 30 s.  Expired rows go on the next touch of the task and in the
-- maintenance job; reads never show them.

CREATE TABLE agent_tasks_internal.presence (
	account		text NOT NULL,
	task_id		uuid NOT NULL,
	watcher		text NOT NULL,
	device_id	text NOT NULL CHECK (length(device_id) BETWEEN 1 AND 200),
	since		timestamptz NOT NULL DEFAULT now(),
	seen_at		timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL,
	PRIMARY KEY (account, task_id, watcher, device_id),
	FOREIGN KEY (account, task_id) REFERENCES agent_tasks_internal.tasks (account, id) ON DELETE CASCADE
);
-- Watching is part of reading: readers announce themselves too.
GRANT SELECT, INSERT, UPDATE, DELETE ON agent_tasks_internal.presence TO agent_tasks_reader;

CREATE VIEW agent_tasks.presence WITH (security_invoker = true) AS
SELECT task_id, account, watcher AS "user", device_id, since, seen_at, expires_at
  FROM agent_tasks_internal.presence
 WHERE expires_at > now();
COMMENT ON VIEW agent_tasks.presence IS 'Who is watching which task right now (one row per person and device; rows expire agent_tasks.presence_ttl after the last touch_presence).';
COMMENT ON COLUMN agent_tasks.presence."user" IS 'The person (e-mail), or the role of a session without one.';
COMMENT ON COLUMN agent_tasks.presence.since IS 'When this device started watching.';

CREATE FUNCTION agent_tasks.watchers(task uuid)
	RETURNS SETOF agent_tasks.presence
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.tasks t
					WHERE t.account = agent_tasks.current_account() AND t.id = watchers.task) THEN
		PERFORM agent_tasks_internal.not_found(task);
	END IF;
	RETURN QUERY
		SELECT p.* FROM agent_tasks.presence p
		 WHERE p.account = agent_tasks.current_account() AND p.task_id = watchers.task
		 ORDER BY p."user", p.device_id;
END
$$;
COMMENT ON FUNCTION agent_tasks.watchers(uuid) IS 'Who is watching the task now (unexpired presence), by person and device. PT404 for an unknown task.';

CREATE FUNCTION agent_tasks.touch_presence(task uuid, device_id text)
	RETURNS SETOF agent_tasks.presence
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	ttl interval := agent_tasks_internal.setting_seconds('agent_tasks.presence_ttl', 60);
BEGIN
	PERFORM agent_tasks_internal.check_text('device_id', touch_presence.device_id, 200, true);
	IF NOT EXISTS (SELECT 1 FROM agent_tasks_internal.tasks t WHERE t.account = acct AND t.id = touch_presence.task) THEN
		PERFORM agent_tasks_internal.not_found(task);
	END IF;
	DELETE FROM agent_tasks_internal.presence p
	 WHERE p.account = acct AND p.task_id = touch_presence.task AND p.expires_at <= now();
	INSERT INTO agent_tasks_internal.presence AS p (account, task_id, watcher, device_id, expires_at)
	VALUES (acct, touch_presence.task, agent_tasks_internal.current_actor(), touch_presence.device_id, now() + ttl)
	ON CONFLICT ON CONSTRAINT presence_pkey DO UPDATE
	   SET seen_at = now(), expires_at = excluded.expires_at;
	RETURN QUERY SELECT * FROM agent_tasks.watchers(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.touch_presence(uuid, text) IS 'Say that you are watching the task from this device, for agent_tasks.presence_ttl (60 s): idempotent, call it again to stay. Returns the current watchers.';

CREATE FUNCTION agent_tasks.leave_presence(task uuid, device_id text)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM agent_tasks_internal.presence p
	 WHERE p.account = agent_tasks.current_account() AND p.task_id = leave_presence.task
	   AND p.watcher = agent_tasks_internal.current_actor() AND p.device_id = leave_presence.device_id;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION agent_tasks.leave_presence(uuid, text) IS 'Stop watching the task from this device before the presence expires; false when it was not watching.';

GRANT EXECUTE ON FUNCTION
	agent_tasks.fetch_artifact(uuid),
	agent_tasks.watchers(uuid),
	agent_tasks.touch_presence(uuid, text),
	agent_tasks.leave_presence(uuid, text)
TO agent_tasks_reader;
GRANT EXECUTE ON FUNCTION
	agent_tasks.attach_artifact(uuid, text, text, text, text, uuid, text, bigint),
	agent_tasks.delete_artifact(uuid)
TO agent_tasks_writer;
-- Tenancy and privileges, applied last so that they cover everything the
-- files before made.

-- Row-level security on every table, all with the same policy: a row is
-- seen and written only by sessions of its account.  Done here, for every
-- table of the schema, so that no table can be added without it.
DO $$
DECLARE
	t name;
BEGIN
	FOR t IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
	LOOP
		EXECUTE format('ALTER TABLE agent_tasks_internal.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format($p$CREATE POLICY account_isolation ON agent_tasks_internal.%I
			USING (account = (SELECT agent_tasks.current_account()))
			WITH CHECK (account = (SELECT agent_tasks.current_account()))$p$, t);
	END LOOP;
END
$$;

-- Nothing is executable by PUBLIC; each call is granted to the least of the
-- extension's roles that needs it (reader < writer < worker < admin, each a
-- member of the next).

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks_internal FROM PUBLIC;

-- The API functions run with the caller's rights and use these helpers;
-- table privileges and row-level security decide what the helpers may do.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agent_tasks_internal TO agent_tasks_reader;

GRANT SELECT ON ALL TABLES IN SCHEMA agent_tasks TO agent_tasks_reader;

GRANT EXECUTE ON FUNCTION
	agent_tasks.uuid_v7(),
	agent_tasks.uuid_v7_time(uuid),
	agent_tasks.status_kind(text),
	agent_tasks.current_account(),
	agent_tasks.current_user_email(),
	agent_tasks.get_task(uuid),
	agent_tasks.list_tasks(text, text, text, text, boolean, text, text, text, text, text, text, text, uuid, integer, integer)
TO agent_tasks_reader;

GRANT EXECUTE ON FUNCTION
	agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
		text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean),
	agent_tasks.update_task(uuid, jsonb),
	agent_tasks.archive_task(uuid),
	agent_tasks.unarchive_task(uuid),
	agent_tasks.delete_task(uuid),
	agent_tasks.process_task(uuid, text, jsonb),
	agent_tasks.stop_task(uuid, text),
	agent_tasks.cancel_task(uuid, text),
	agent_tasks.retry_task(uuid),
	agent_tasks.send_message(uuid, text, text, jsonb),
	agent_tasks.send_feedback(uuid, text),
	agent_tasks.set_assignees(uuid, text[]),
	agent_tasks.add_followers(uuid, text[]),
	agent_tasks.remove_followers(uuid, text[]),
	agent_tasks.add_dependency(uuid, uuid),
	agent_tasks.remove_dependency(uuid, uuid)
TO agent_tasks_writer;

GRANT EXECUTE ON FUNCTION
	agent_tasks.set_task_status(uuid, text, text, jsonb, jsonb)
TO agent_tasks_worker;
