-- The audit trail and realtime notifications, written by the extension
-- itself.  The trigger functions are SECURITY DEFINER because no API role
-- may write activities; firing a trigger needs no EXECUTE grant, so they are
-- granted to nobody.  Status changes are checked by the C state machine
-- (enforce_status_transition) before they happen and applied by the C
-- transition path (run_transition, task_transition) after.

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE OF status ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('task');

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('run');

-- Realtime: each account has its own NOTIFY channel, a random name given
-- to the account's members by notify_channel().  LISTEN needs no privilege,
-- so only the name keeps another tenant from listening; an account nobody
-- asked a channel for sends nothing.
CREATE TABLE agent_tasks_internal.account_channels (
	account		text NOT NULL,
	channel		text NOT NULL UNIQUE CHECK (channel ~ '^agent_tasks_[0-9a-f]{32}$'),
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account)
);

CREATE FUNCTION agent_tasks.notify_channel() RETURNS text
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	name text;
BEGIN
	SELECT c.channel INTO name FROM agent_tasks_internal.account_channels c WHERE c.account = acct;
	IF NOT FOUND THEN
		INSERT INTO agent_tasks_internal.account_channels (account, channel)
		VALUES (acct, 'agent_tasks_' || encode(agent_tasks_internal.random_bytes(16), 'hex'))
		ON CONFLICT (account) DO NOTHING;
		SELECT c.channel INTO name FROM agent_tasks_internal.account_channels c WHERE c.account = acct;
	END IF;
	RETURN name;
END
$$;
COMMENT ON FUNCTION agent_tasks.notify_channel() IS 'The NOTIFY channel of the current account (made on first call): LISTEN on it to hear of every task change, {"id", "account", "status", "event"} once per transaction and task, and of progress reports. Keep it as private as a key: anyone who knows the name can listen.';

-- A compact message on the account's channel; sent at commit, once per
-- task changed in the transaction, never for a transaction that rolls
-- back; not at all with agent_tasks.notify off (src/wakeup.c).
CREATE FUNCTION agent_tasks_internal.notify_change(account text, task_id uuid, status text, event text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_notify_change'
	LANGUAGE C VOLATILE STRICT;

-- A message on the account's channel now (progress reports).
CREATE FUNCTION agent_tasks_internal.notify_account(account text, payload text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_notify_account'
	LANGUAGE C VOLATILE STRICT;

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

-- The fields whose change is logged as an "updated" activity, as JSON
-- (src/transitions.c compares the same fields).
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

-- What a change of a task or run sets off -- the task following its run,
-- the trail, the webhook outbox, NOTIFY and wake-ups at commit, dependents
-- and command-mode parents -- is applied in one place, src/transitions.c.
CREATE FUNCTION agent_tasks_internal.run_transition() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_run_transition'
	LANGUAGE C SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION agent_tasks_internal.task_transition() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_task_transition'
	LANGUAGE C SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER run_transition
	AFTER INSERT OR UPDATE OF status ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.run_transition();
CREATE TRIGGER task_transition
	AFTER INSERT OR UPDATE OR DELETE ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_transition();

-- The full-text document of a task, kept by a trigger rather than as a
-- generated column: PostgreSQL 15 recomputes a stored generated column at
-- every UPDATE, so each status change re-tokenized the whole prompt.  Now
-- it is computed when a task is inserted and when its title or prompt
-- change.  A restored row keeps the document it was dumped with (one
-- dumped by 0.1.0, where the column was generated, comes without one and
-- gets it here).  The document: to_tsvector('english', title || ' ' ||
-- prompt), in C (src/task_search.c) since every creation computes it.
CREATE FUNCTION agent_tasks_internal.index_task_text() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_index_task_text'
	LANGUAGE C;

CREATE TRIGGER index_task_text
	BEFORE INSERT ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NEW.search IS NULL OR NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.index_task_text();
CREATE TRIGGER reindex_task_text
	BEFORE UPDATE OF title, prompt ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.prompt IS DISTINCT FROM NEW.prompt)
	EXECUTE FUNCTION agent_tasks_internal.index_task_text();

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
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_link_changed('assignee');
CREATE TRIGGER follower_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_followers
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_link_changed('follower');
CREATE TRIGGER dependency_changed
	AFTER INSERT OR DELETE ON agent_tasks_internal.task_dependencies
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.task_link_changed('dependency');

CREATE FUNCTION agent_tasks_internal.message_added() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	task_status text := (SELECT t.status FROM agent_tasks_internal.tasks t
						  WHERE t.account = NEW.account AND t.id = NEW.task_id);
BEGIN
	PERFORM agent_tasks_internal.log_activity(NEW.account, NEW.task_id, 'message',
		jsonb_build_object('message_id', NEW.id, 'role', NEW.role, 'author', NEW.author),
		run_id => NEW.run_id);
	-- every payload carries the task's current status
	PERFORM agent_tasks_internal.notify_change(NEW.account, NEW.task_id, task_status, 'message');
	-- hooks get the message as webhooks do (85_webhooks.sql)
	PERFORM agent_tasks_internal.fire_hooks(NEW.account, NEW.task_id, 'task.message', task_status,
		jsonb_build_object('message', jsonb_build_object(
			'id', NEW.id, 'run_id', NEW.run_id, 'role', NEW.role, 'author', NEW.author,
			'body', NEW.body, 'data', NEW.data, 'created_at', agent_tasks_internal.iso8601(NEW.created_at))));
	RETURN NULL;
END
$$;

CREATE TRIGGER message_added
	AFTER INSERT ON agent_tasks_internal.messages
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.message_added();

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
