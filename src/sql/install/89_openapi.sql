-- The columns of every view, described: the catalog is the API's reference,
-- and agent_tasks.openapi() takes the descriptions of its schemas from here
-- (test 25_openapi fails when a view column has none).

COMMENT ON COLUMN agent_tasks.tasks.id IS 'Task id (UUID v7: sorts by creation time).';
COMMENT ON COLUMN agent_tasks.tasks.account IS 'The account (tenant) the task belongs to; every session sees only its own.';
COMMENT ON COLUMN agent_tasks.tasks.parent_id IS 'The command-mode task this item belongs to, or null.';
COMMENT ON COLUMN agent_tasks.tasks.title IS 'Short title (1 to 500 characters).';
COMMENT ON COLUMN agent_tasks.tasks.type IS 'Free classification of the task (e.g. code, review, research), for filters and agents.';
COMMENT ON COLUMN agent_tasks.tasks.command IS 'For command mode: the command run on each item (with item the item itself); null for a plain task.';
COMMENT ON COLUMN agent_tasks.tasks.item IS 'For an item of a command-mode task: the item (any JSON) it works on.';
COMMENT ON COLUMN agent_tasks.tasks.context IS 'JSON object of context for the agent (repository, branch, files, ...).';
COMMENT ON COLUMN agent_tasks.tasks.repository IS 'context->>''repository'', for filtering.';
COMMENT ON COLUMN agent_tasks.tasks.agent IS 'Name of the agent that executes the task''s runs, or null (taken by any external worker).';
COMMENT ON COLUMN agent_tasks.tasks.priority IS 'From -1000 to 1000; higher runs first.';
COMMENT ON COLUMN agent_tasks.tasks.output_schema IS 'JSON Schema the output must satisfy, or null; an output that does not fails the run (invalid_output).';
COMMENT ON COLUMN agent_tasks.tasks.owner IS 'E-mail of the person who owns the task.';
COMMENT ON COLUMN agent_tasks.tasks.created_by IS 'Who created the task: the person, worker or database role.';
COMMENT ON COLUMN agent_tasks.tasks.assignees IS 'E-mails of the people assigned, sorted.';
COMMENT ON COLUMN agent_tasks.tasks.followers IS 'E-mails of the people following the task, sorted.';
COMMENT ON COLUMN agent_tasks.tasks.skills IS 'Skills an agent or worker needs for the task.';
COMMENT ON COLUMN agent_tasks.tasks.labels IS 'Free labels, for filters.';
COMMENT ON COLUMN agent_tasks.tasks.metadata IS 'JSON object of the caller''s own data, kept as given.';
COMMENT ON COLUMN agent_tasks.tasks.external_id IS 'The caller''s id for the task (at most 200 characters), for lookups.';
COMMENT ON COLUMN agent_tasks.tasks.origin IS 'Where the task came from: sql by default, schedule for a schedule''s task, or what the creator gave.';
COMMENT ON COLUMN agent_tasks.tasks.idempotency_key IS 'Key that makes a repeated create return the same task instead of a second one (unique per account).';
COMMENT ON COLUMN agent_tasks.tasks.callback_url IS 'https URL that receives the task once it is finished (signed like a webhook).';
COMMENT ON COLUMN agent_tasks.tasks.run_after IS 'The first run is not started before this time.';
COMMENT ON COLUMN agent_tasks.tasks.latest_run_id IS 'The task''s latest run (attempt), or null before the first.';
COMMENT ON COLUMN agent_tasks.tasks.output IS 'The output of the completed run (JSON), or null.';
COMMENT ON COLUMN agent_tasks.tasks.error IS 'Why the latest run failed: an object with code and message, or null.';
COMMENT ON COLUMN agent_tasks.tasks.feedback IS 'The person''s verdict on the result: like, dislike or null.';
COMMENT ON COLUMN agent_tasks.tasks.budget_tokens IS 'Most tokens the task''s runs may use, or null for no limit (budget_exceeded past it).';
COMMENT ON COLUMN agent_tasks.tasks.budget_cost IS 'Most cost the task''s runs may use, or null for no limit (budget_exceeded past it).';
COMMENT ON COLUMN agent_tasks.tasks.archived_at IS 'When the task was archived, or null.';
COMMENT ON COLUMN agent_tasks.tasks.created_at IS 'When the task was created.';
COMMENT ON COLUMN agent_tasks.tasks.updated_at IS 'When the task last changed.';

COMMENT ON COLUMN agent_tasks.runs.id IS 'Run id (UUID v7).';
COMMENT ON COLUMN agent_tasks.runs.account IS 'The account the run belongs to.';
COMMENT ON COLUMN agent_tasks.runs.task_id IS 'The task this run is an attempt at.';
COMMENT ON COLUMN agent_tasks.runs.agent IS 'Name of the agent executing the run, or null (any external worker).';
COMMENT ON COLUMN agent_tasks.runs.kind IS 'Who executes it: sql, http, openai or external (the agent''s kind when the run was queued).';
COMMENT ON COLUMN agent_tasks.runs.attempt IS 'Attempt number, from 1.';
COMMENT ON COLUMN agent_tasks.runs.status IS 'queued, in_progress, needs_clarification, on_hold, completed, failed or cancelled.';
COMMENT ON COLUMN agent_tasks.runs.status_reason IS 'Why the run has its status (timeout, worker_lost, invalid_output, budget_exceeded, user_request, ...).';
COMMENT ON COLUMN agent_tasks.runs.priority IS 'The task''s priority when the run was queued; higher is claimed first.';
COMMENT ON COLUMN agent_tasks.runs.due_at IS 'When a queued run may be claimed (later after a retry back-off).';
COMMENT ON COLUMN agent_tasks.runs.phase IS 'The latest phase the worker reported (report_progress).';
COMMENT ON COLUMN agent_tasks.runs.progress IS 'The latest progress message the worker reported.';
COMMENT ON COLUMN agent_tasks.runs.progress_data IS 'JSON the worker reported with its latest progress.';
COMMENT ON COLUMN agent_tasks.runs.worker IS 'The worker holding or last holding the run.';
COMMENT ON COLUMN agent_tasks.runs.lease_expires_at IS 'While in progress: when the worker''s lease ends unless renewed (heartbeat_run); then the run is retried (worker_lost).';
COMMENT ON COLUMN agent_tasks.runs.heartbeat_at IS 'The worker''s latest heartbeat.';
COMMENT ON COLUMN agent_tasks.runs.queued_at IS 'When the run was queued.';
COMMENT ON COLUMN agent_tasks.runs.started_at IS 'When a worker claimed the run.';
COMMENT ON COLUMN agent_tasks.runs.ended_at IS 'When the run reached a terminal status.';
COMMENT ON COLUMN agent_tasks.runs.input IS 'Extra input given to process_task for this run (JSON), or null.';
COMMENT ON COLUMN agent_tasks.runs.output IS 'The run''s output (JSON), once completed.';
COMMENT ON COLUMN agent_tasks.runs.error IS 'Why the run failed: an object with code and message, or null.';
COMMENT ON COLUMN agent_tasks.runs.usage IS 'Usage the worker reported (JSON object, e.g. model and token counts).';
COMMENT ON COLUMN agent_tasks.runs.tokens IS 'Tokens the run used.';
COMMENT ON COLUMN agent_tasks.runs.cost IS 'Cost the run used.';

COMMENT ON COLUMN agent_tasks.activities.id IS 'Activity id (UUID v7: in order of occurrence).';
COMMENT ON COLUMN agent_tasks.activities.account IS 'The account the activity belongs to.';
COMMENT ON COLUMN agent_tasks.activities.task_id IS 'The task it happened to.';
COMMENT ON COLUMN agent_tasks.activities.run_id IS 'The run concerned, or null.';
COMMENT ON COLUMN agent_tasks.activities.event IS 'What happened: created, status_changed, updated, message, feedback, progress, archived, unarchived, assignee_added, assignee_removed, follower_added, follower_removed, ...';
COMMENT ON COLUMN agent_tasks.activities.actor IS 'Who did it: a worker, else the person, else the database role.';
COMMENT ON COLUMN agent_tasks.activities.from_status IS 'For a status change: the status before.';
COMMENT ON COLUMN agent_tasks.activities.to_status IS 'For a status change: the status after.';
COMMENT ON COLUMN agent_tasks.activities.reason IS 'For a status change: its reason.';
COMMENT ON COLUMN agent_tasks.activities.data IS 'Details of the event (JSON object, e.g. the changed fields).';
COMMENT ON COLUMN agent_tasks.activities.created_at IS 'When it happened.';

COMMENT ON COLUMN agent_tasks.messages.id IS 'Message id (UUID v7: in conversation order).';
COMMENT ON COLUMN agent_tasks.messages.account IS 'The account the message belongs to.';
COMMENT ON COLUMN agent_tasks.messages.task_id IS 'The task whose conversation it is part of.';
COMMENT ON COLUMN agent_tasks.messages.run_id IS 'The run it was written in or for, or null.';
COMMENT ON COLUMN agent_tasks.messages.role IS 'user, agent or system.';
COMMENT ON COLUMN agent_tasks.messages.author IS 'Who wrote it: the person, the agent or worker, or the database role.';
COMMENT ON COLUMN agent_tasks.messages.body IS 'The text (1 to 100000 characters).';
COMMENT ON COLUMN agent_tasks.messages.data IS 'Structured content of the message (JSON object), e.g. a clarification''s options.';
COMMENT ON COLUMN agent_tasks.messages.created_at IS 'When it was written.';

COMMENT ON COLUMN agent_tasks.agents.id IS 'Agent id (UUID v7).';
COMMENT ON COLUMN agent_tasks.agents.account IS 'The account the agent belongs to.';
COMMENT ON COLUMN agent_tasks.agents.name IS 'Unique name in the account (lower case letters, digits, _ . -), used by tasks.';
COMMENT ON COLUMN agent_tasks.agents.kind IS 'sql (a function run in the database), http (a URL called with each run), openai (an OpenAI-compatible chat API) or external (claimed by workers).';
COMMENT ON COLUMN agent_tasks.agents.target IS 'What executes the runs: the function (sql), the URL (http, openai); null for external.';
COMMENT ON COLUMN agent_tasks.agents.config IS 'Settings of the kind (JSON object), e.g. the model of an openai agent. Secrets are kept apart and never shown.';
COMMENT ON COLUMN agent_tasks.agents.concurrency IS 'Most runs of the agent in progress at once.';
COMMENT ON COLUMN agent_tasks.agents.timeout IS 'How long a run may take before it fails with timeout.';
COMMENT ON COLUMN agent_tasks.agents.max_attempts IS 'Most runs per task before it fails for good (max_attempts).';
COMMENT ON COLUMN agent_tasks.agents.backoff_base IS 'Delay before the first retry; doubled at each further one.';
COMMENT ON COLUMN agent_tasks.agents.backoff_max IS 'Longest delay between retries.';
COMMENT ON COLUMN agent_tasks.agents.budget_tokens IS 'Most tokens all the agent''s runs may use, or null for no limit.';
COMMENT ON COLUMN agent_tasks.agents.budget_cost IS 'Most cost all the agent''s runs may use, or null for no limit.';
COMMENT ON COLUMN agent_tasks.agents.created_at IS 'When the agent was created.';
COMMENT ON COLUMN agent_tasks.agents.updated_at IS 'When the agent last changed.';

COMMENT ON COLUMN agent_tasks.users.id IS 'Person id (UUID v7).';
COMMENT ON COLUMN agent_tasks.users.account IS 'The account the person belongs to.';
COMMENT ON COLUMN agent_tasks.users.email IS 'E-mail address, lower case, unique in the account.';
COMMENT ON COLUMN agent_tasks.users.created_at IS 'When the person was first mentioned.';

COMMENT ON COLUMN agent_tasks.status_transitions.from_status IS 'The status before.';
COMMENT ON COLUMN agent_tasks.status_transitions.to_status IS 'The status after.';
COMMENT ON COLUMN agent_tasks.status_transitions.for_task IS 'True when a task may change so.';
COMMENT ON COLUMN agent_tasks.status_transitions.for_run IS 'True when a run may change so.';

COMMENT ON COLUMN agent_tasks.dependencies.account IS 'The account of both tasks.';
COMMENT ON COLUMN agent_tasks.dependencies.task_id IS 'The task that waits.';
COMMENT ON COLUMN agent_tasks.dependencies.depends_on IS 'The task it waits for (its blocker): it is not ready before that one is completed, and is cancelled if that one fails or is cancelled.';
COMMENT ON COLUMN agent_tasks.dependencies.depends_on_status IS 'The blocker''s status.';
COMMENT ON COLUMN agent_tasks.dependencies.created_at IS 'When the dependency was added.';

COMMENT ON COLUMN agent_tasks.queue_stats.account IS 'The account.';
COMMENT ON COLUMN agent_tasks.queue_stats.agent IS 'The agent''s name; null for the runs of tasks without an agent.';
COMMENT ON COLUMN agent_tasks.queue_stats.kind IS 'The agent''s kind (external for runs without an agent).';
COMMENT ON COLUMN agent_tasks.queue_stats.queued IS 'Runs queued, due or not.';
COMMENT ON COLUMN agent_tasks.queue_stats.runnable IS 'Queued runs that are due (may be claimed now).';
COMMENT ON COLUMN agent_tasks.queue_stats.in_progress IS 'Runs in progress.';
COMMENT ON COLUMN agent_tasks.queue_stats.oldest_queued_age IS 'How long the oldest queued run has waited.';
COMMENT ON COLUMN agent_tasks.queue_stats.completed_last_hour IS 'Runs completed in the last hour.';
COMMENT ON COLUMN agent_tasks.queue_stats.failed_last_hour IS 'Runs failed in the last hour.';
COMMENT ON COLUMN agent_tasks.queue_stats.duration_p50_seconds IS 'Median duration of the runs ended in the last hour, in seconds.';
COMMENT ON COLUMN agent_tasks.queue_stats.duration_p95_seconds IS '95th percentile of the duration of the runs ended in the last hour, in seconds.';
COMMENT ON COLUMN agent_tasks.queue_stats.used_tokens IS 'Tokens used by all the agent''s runs.';
COMMENT ON COLUMN agent_tasks.queue_stats.used_cost IS 'Cost used by all the agent''s runs.';

COMMENT ON COLUMN agent_tasks.run_history.task_id IS 'The task.';
COMMENT ON COLUMN agent_tasks.run_history.run_id IS 'The run (UUID v7: order by it for the attempts in order).';
COMMENT ON COLUMN agent_tasks.run_history.attempt IS 'Attempt number, from 1.';
COMMENT ON COLUMN agent_tasks.run_history.status IS 'The run''s status.';
COMMENT ON COLUMN agent_tasks.run_history.status_reason IS 'Why the run has its status.';
COMMENT ON COLUMN agent_tasks.run_history.agent IS 'Name of the agent, or null.';
COMMENT ON COLUMN agent_tasks.run_history.worker IS 'The worker that held the run.';
COMMENT ON COLUMN agent_tasks.run_history.queued_at IS 'When the run was queued.';
COMMENT ON COLUMN agent_tasks.run_history.started_at IS 'When a worker claimed it.';
COMMENT ON COLUMN agent_tasks.run_history.ended_at IS 'When it ended.';
COMMENT ON COLUMN agent_tasks.run_history.duration IS 'ended_at - started_at.';
COMMENT ON COLUMN agent_tasks.run_history.error IS 'Why it failed (code and message), or null.';
COMMENT ON COLUMN agent_tasks.run_history.tokens IS 'Tokens the run used.';
COMMENT ON COLUMN agent_tasks.run_history.cost IS 'Cost the run used.';
COMMENT ON COLUMN agent_tasks.run_history.account IS 'The account.';

COMMENT ON COLUMN agent_tasks.api_keys.id IS 'Key id (UUID v7), for revoke_api_key and set_rate_limit.';
COMMENT ON COLUMN agent_tasks.api_keys.account IS 'The account the key acts in.';
COMMENT ON COLUMN agent_tasks.api_keys.name IS 'Name given at creation.';
COMMENT ON COLUMN agent_tasks.api_keys.created_by IS 'Who created the key.';
COMMENT ON COLUMN agent_tasks.api_keys.created_at IS 'When the key was created.';
COMMENT ON COLUMN agent_tasks.api_keys.expires_at IS 'When the key stops working, or null for never.';
COMMENT ON COLUMN agent_tasks.api_keys.revoked_at IS 'When the key was revoked, or null.';

COMMENT ON COLUMN agent_tasks.rate_limits.account IS 'The account.';
COMMENT ON COLUMN agent_tasks.rate_limits.subject IS '"account" for the account''s limit, else the id of the API key limited.';
COMMENT ON COLUMN agent_tasks.rate_limits.period IS 'Length of a window.';

COMMENT ON COLUMN agent_tasks.schedules.id IS 'Schedule id (UUID v7).';
COMMENT ON COLUMN agent_tasks.schedules.account IS 'The account the tasks are created in.';
COMMENT ON COLUMN agent_tasks.schedules.name IS 'Unique name in the account.';
COMMENT ON COLUMN agent_tasks.schedules.created_by IS 'Who created the schedule.';
COMMENT ON COLUMN agent_tasks.schedules.created_at IS 'When the schedule was created.';
COMMENT ON COLUMN agent_tasks.schedules.updated_at IS 'When the schedule last changed.';
COMMENT ON COLUMN agent_tasks.schedules.jobid IS 'Id of the pg_cron job (cron.job.jobid), or null when it is gone.';
COMMENT ON COLUMN agent_tasks.schedules.last_fired_at IS 'The last time the schedule created a task.';

COMMENT ON COLUMN agent_tasks.webhook_endpoints.id IS 'Endpoint id (UUID v7).';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.account IS 'The account whose events are sent.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.url IS 'The https URL events are posted to.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.description IS 'Free description.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.timeout IS 'How long an attempt may take.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.enabled IS 'False once disabled (by disable_webhook, or after failing for days); disabled endpoints receive nothing.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.disabled_reason IS 'Why the endpoint was disabled.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.disabled_at IS 'When it was disabled.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.secret_created_at IS 'When the current signing secret was made.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.created_by IS 'Who created the endpoint.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.created_at IS 'When the endpoint was created.';
COMMENT ON COLUMN agent_tasks.webhook_endpoints.updated_at IS 'When the endpoint last changed.';

COMMENT ON COLUMN agent_tasks.webhook_deliveries.id IS 'Delivery id (UUID v7).';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.account IS 'The account.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.kind IS 'webhook (an event for an endpoint) or callback (a finished task for its callback_url).';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.webhook IS 'The endpoint (for kind webhook), else null.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.task_id IS 'The task the event is about.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.event IS 'The event (task.completed, ...).';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.url IS 'Where it is sent.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.status IS 'pending, delivered, failed or cancelled.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.in_flight IS 'True while an attempt is under way.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.attempts IS 'Attempts made so far.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.next_attempt_at IS 'When the next attempt is due, while pending and not in flight.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.last_status_code IS 'HTTP status of the last attempt, or null.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.last_error IS 'Error of the last attempt, or null.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.created_at IS 'When the event happened.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.updated_at IS 'When the delivery last changed.';
COMMENT ON COLUMN agent_tasks.webhook_deliveries.delivered_at IS 'When an attempt succeeded, or null.';

COMMENT ON COLUMN agent_tasks.webhook_attempts.id IS 'Attempt id (UUID v7).';
COMMENT ON COLUMN agent_tasks.webhook_attempts.account IS 'The account.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.delivery_id IS 'The delivery attempted.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.attempt IS 'Attempt number, from 1.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.status IS 'in_flight, succeeded, failed or lost (the dispatcher died).';
COMMENT ON COLUMN agent_tasks.webhook_attempts.status_code IS 'HTTP status the receiver answered, or null.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.error IS 'Why it failed (connection error, timeout, status), or null.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.response_body IS 'Start of the response body (1 KB).';
COMMENT ON COLUMN agent_tasks.webhook_attempts.latency_ms IS 'Milliseconds until the answer.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.worker IS 'The process that made the attempt.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.started_at IS 'When it started.';
COMMENT ON COLUMN agent_tasks.webhook_attempts.ended_at IS 'When it ended.';

COMMENT ON COLUMN agent_tasks.artifacts.id IS 'Artifact id (UUID v7).';
COMMENT ON COLUMN agent_tasks.artifacts.account IS 'The account.';
COMMENT ON COLUMN agent_tasks.artifacts.task_id IS 'The task the file belongs to.';
COMMENT ON COLUMN agent_tasks.artifacts.name IS 'File name.';
COMMENT ON COLUMN agent_tasks.artifacts.content_type IS 'Media type (e.g. text/plain).';
COMMENT ON COLUMN agent_tasks.artifacts.created_by IS 'Who attached it.';
COMMENT ON COLUMN agent_tasks.artifacts.created_at IS 'When it was attached.';

COMMENT ON COLUMN agent_tasks.presence.task_id IS 'The task watched.';
COMMENT ON COLUMN agent_tasks.presence.account IS 'The account.';
COMMENT ON COLUMN agent_tasks.presence.device_id IS 'The device or browser tab, as touch_presence named it.';
COMMENT ON COLUMN agent_tasks.presence.seen_at IS 'The latest touch_presence.';
COMMENT ON COLUMN agent_tasks.presence.expires_at IS 'When the row disappears unless touched again.';

COMMENT ON COLUMN agent_tasks.queue_throughput.account IS 'The account.';
COMMENT ON COLUMN agent_tasks.queue_throughput.agent IS 'The agent''s name, or null for runs without an agent.';
COMMENT ON COLUMN agent_tasks.queue_throughput.completed IS 'Runs completed in the minute.';
COMMENT ON COLUMN agent_tasks.queue_throughput.failed IS 'Runs failed in the minute.';

COMMENT ON COLUMN agent_tasks.account_bindings.role IS 'The database role.';
COMMENT ON COLUMN agent_tasks.account_bindings.account IS 'The account the role is bound to (its sessions act only in it), or null.';
COMMENT ON COLUMN agent_tasks.account_bindings.account_choice IS 'True when the role may choose its account (agent_tasks.account).';

COMMENT ON COLUMN agent_tasks.hooks.account IS 'The account whose task changes call the hook.';
COMMENT ON COLUMN agent_tasks.hooks.name IS 'Unique name in the account; hooks are called in name order.';
COMMENT ON COLUMN agent_tasks.hooks.events IS 'The task events that call it (or {*} for all).';
COMMENT ON COLUMN agent_tasks.hooks.function IS 'The function called, with its full signature.';
COMMENT ON COLUMN agent_tasks.hooks.run_as IS 'The role it runs as: the function''s owner, who registered it.';
COMMENT ON COLUMN agent_tasks.hooks.enabled IS 'False while disabled (alter_hook).';
COMMENT ON COLUMN agent_tasks.hooks.created_by IS 'Who registered it.';
COMMENT ON COLUMN agent_tasks.hooks.created_at IS 'When it was registered.';
COMMENT ON COLUMN agent_tasks.hooks.updated_at IS 'When it last changed.';

-- ready_tasks has the columns of tasks: the same descriptions.
DO $$
DECLARE
	c record;
BEGIN
	FOR c IN SELECT a.attname, col_description('agent_tasks.tasks'::regclass, t.attnum) AS description
			   FROM pg_attribute a
			   JOIN pg_attribute t ON t.attrelid = 'agent_tasks.tasks'::regclass AND t.attname = a.attname
			  WHERE a.attrelid = 'agent_tasks.ready_tasks'::regclass AND a.attnum > 0 AND NOT a.attisdropped
			  ORDER BY a.attnum
	LOOP
		EXECUTE format('COMMENT ON COLUMN agent_tasks.ready_tasks.%I IS %L', c.attname, c.description);
	END LOOP;
END
$$;

-- The OpenAPI 3.0 document of the REST API (issue 11), made from the catalog
-- at each call, so that it always matches the installed schema and shows
-- only what the caller may use.  PostgREST's own document (GET /) is
-- Swagger 2.0, offers every function over GET and names no security scheme.

-- The JSON Schema of a type, as PostgREST writes its values in JSON.
CREATE FUNCTION agent_tasks_internal.openapi_type(typ oid)
	RETURNS jsonb
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t pg_type;
BEGIN
	SELECT * INTO t FROM pg_type WHERE oid = typ;
	IF t.typtype = 'd' THEN
		RETURN agent_tasks_internal.openapi_type(t.typbasetype);
	END IF;
	IF t.typcategory = 'A' THEN
		RETURN jsonb_build_object('type', 'array', 'items', agent_tasks_internal.openapi_type(t.typelem));
	END IF;
	IF t.typtype = 'c' THEN
		IF t.typnamespace = 'agent_tasks'::regnamespace THEN
			RETURN jsonb_build_object('$ref', '#/components/schemas/' || t.typname);
		END IF;
		RETURN '{"type": "object"}';
	END IF;
	RETURN CASE typ
		WHEN 'uuid'::regtype THEN '{"type": "string", "format": "uuid"}'
		WHEN 'boolean'::regtype THEN '{"type": "boolean"}'
		WHEN 'smallint'::regtype THEN '{"type": "integer", "format": "int32"}'
		WHEN 'integer'::regtype THEN '{"type": "integer", "format": "int32"}'
		WHEN 'bigint'::regtype THEN '{"type": "integer", "format": "int64"}'
		WHEN 'real'::regtype THEN '{"type": "number", "format": "float"}'
		WHEN 'double precision'::regtype THEN '{"type": "number", "format": "double"}'
		WHEN 'numeric'::regtype THEN '{"type": "number"}'
		WHEN 'timestamp with time zone'::regtype THEN '{"type": "string", "format": "date-time"}'
		WHEN 'timestamp without time zone'::regtype THEN '{"type": "string", "format": "date-time"}'
		WHEN 'date'::regtype THEN '{"type": "string", "format": "date"}'
		-- an interval is written as PostgreSQL does ("00:05:00") and read in
		-- any of its input forms ("5 minutes", ISO 8601 "PT5M")
		WHEN 'interval'::regtype THEN '{"type": "string", "format": "interval"}'
		WHEN 'json'::regtype THEN '{}'
		WHEN 'jsonb'::regtype THEN '{}'
		WHEN 'record'::regtype THEN '{"type": "object"}'
		ELSE '{"type": "string"}'
	END::jsonb;
END
$$;
COMMENT ON FUNCTION agent_tasks_internal.openapi_type(oid) IS 'The OpenAPI 3.0 schema of a type as PostgREST renders its values (arrays, the views'' row types by $ref, domains by their base type).';

CREATE FUNCTION agent_tasks.openapi()
	RETURNS jsonb
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	who name := agent_tasks_internal.caller();
	error_response CONSTANT jsonb := '{"$ref": "#/components/responses/Error"}';
	json_rows CONSTANT text := 'application/json';
	views jsonb;
	schemas jsonb;
	filters jsonb;
	view_paths jsonb;
	rpc_paths jsonb;
BEGIN
	-- The views the caller may read, their columns, and the verbs each
	-- accepts: a write needs the privilege and a view that takes it
	-- (automatically updatable or with an INSTEAD OF trigger).
	WITH v AS (
		SELECT c.oid, c.relname, c.reltype,
			   has_table_privilege(who, c.oid, 'SELECT') AS can_select,
			   has_table_privilege(who, c.oid, 'INSERT') AND pg_relation_is_updatable(c.oid, true) & 8 = 8 AS can_insert,
			   has_table_privilege(who, c.oid, 'UPDATE') AND pg_relation_is_updatable(c.oid, true) & 4 = 4 AS can_update,
			   has_table_privilege(who, c.oid, 'DELETE') AND pg_relation_is_updatable(c.oid, true) & 16 = 16 AS can_delete
		  FROM pg_class c
		 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relkind = 'v'
	)
	SELECT jsonb_agg(to_jsonb(v) - 'oid' || jsonb_build_object('oid', v.oid::int8, 'reltype', v.reltype::int8) ORDER BY v.relname)
	  INTO views
	  FROM v
	 WHERE v.can_select
		-- or returned by a function the caller may execute
		OR EXISTS (SELECT 1 FROM pg_proc p
					WHERE p.pronamespace = 'agent_tasks'::regnamespace AND p.prorettype = v.reltype
					  AND has_function_privilege(who, p.oid, 'EXECUTE'));

	-- A schema per view: its columns, described by their comments.
	SELECT jsonb_object_agg(v ->> 'relname', jsonb_strip_nulls(jsonb_build_object(
			   'type', 'object',
			   'description', obj_description((v ->> 'oid')::oid, 'pg_class'),
			   'properties', (SELECT jsonb_object_agg(a.attname,
										 agent_tasks_internal.openapi_type(a.atttypid)
										 || jsonb_strip_nulls(jsonb_build_object(
												'description', col_description(a.attrelid, a.attnum),
												'nullable', true))
										 ORDER BY a.attnum)
								FROM pg_attribute a
							   WHERE a.attrelid = (v ->> 'oid')::oid AND a.attnum > 0 AND NOT a.attisdropped))))
	  INTO schemas
	  FROM jsonb_array_elements(views) v;

	-- A filter parameter per column of the views the caller may read.
	SELECT jsonb_object_agg(format('%s.%s', v ->> 'relname', a.attname), jsonb_build_object(
			   'name', a.attname,
			   'in', 'query',
			   'required', false,
			   'description', 'Filter on ' || a.attname || ' with a PostgREST operator: eq.value, neq., gt., gte., lt., lte., like., ilike., in.(a,b), is.null, cs.{a,b}, fts., not.eq., ...',
			   'schema', '{"type": "string"}'::jsonb))
	  INTO filters
	  FROM jsonb_array_elements(views) v
	  JOIN pg_attribute a ON a.attrelid = (v ->> 'oid')::oid AND a.attnum > 0 AND NOT a.attisdropped
	 WHERE (v ->> 'can_select')::boolean;

	SELECT jsonb_object_agg('/' || (v ->> 'relname'), jsonb_strip_nulls(jsonb_build_object(
			   'get', jsonb_build_object(
				   'operationId', 'get_' || (v ->> 'relname'),
				   'tags', jsonb_build_array(v ->> 'relname'),
				   'summary', obj_description((v ->> 'oid')::oid, 'pg_class'),
				   'parameters', f.refs || '[{"$ref": "#/components/parameters/select"}, {"$ref": "#/components/parameters/order"},
						{"$ref": "#/components/parameters/limit"}, {"$ref": "#/components/parameters/offset"},
						{"$ref": "#/components/parameters/Range"}, {"$ref": "#/components/parameters/PreferCount"}]'::jsonb,
				   'responses', jsonb_build_object(
					   '200', jsonb_build_object('description', 'The rows', 'content', jsonb_build_object(json_rows,
							  jsonb_build_object('schema', jsonb_build_object('type', 'array', 'items', r.ref)))),
					   '206', jsonb_build_object('description', 'Part of the rows (Range)', 'content', jsonb_build_object(json_rows,
							  jsonb_build_object('schema', jsonb_build_object('type', 'array', 'items', r.ref)))),
					   'default', error_response)),
			   'post', CASE WHEN (v ->> 'can_insert')::boolean THEN jsonb_build_object(
				   'operationId', 'post_' || (v ->> 'relname'),
				   'tags', jsonb_build_array(v ->> 'relname'),
				   'summary', 'Create ' || (v ->> 'relname'),
				   'parameters', '[{"$ref": "#/components/parameters/select"}, {"$ref": "#/components/parameters/PreferReturn"}]'::jsonb,
				   'requestBody', jsonb_build_object('required', true, 'content', jsonb_build_object(json_rows,
						jsonb_build_object('schema', r.ref))),
				   'responses', jsonb_build_object(
					   '201', jsonb_build_object('description', 'Created (with Prefer: return=representation, the rows)',
							  'content', jsonb_build_object(json_rows,
							  jsonb_build_object('schema', jsonb_build_object('type', 'array', 'items', r.ref)))),
					   'default', error_response)) END,
			   'patch', CASE WHEN (v ->> 'can_update')::boolean THEN jsonb_build_object(
				   'operationId', 'patch_' || (v ->> 'relname'),
				   'tags', jsonb_build_array(v ->> 'relname'),
				   'summary', 'Change the ' || (v ->> 'relname') || ' the filters select',
				   'parameters', f.refs || '[{"$ref": "#/components/parameters/select"}, {"$ref": "#/components/parameters/PreferReturn"}]'::jsonb,
				   'requestBody', jsonb_build_object('required', true, 'content', jsonb_build_object(json_rows,
						jsonb_build_object('schema', r.ref))),
				   'responses', jsonb_build_object(
					   '200', jsonb_build_object('description', 'The changed rows (Prefer: return=representation)',
							  'content', jsonb_build_object(json_rows,
							  jsonb_build_object('schema', jsonb_build_object('type', 'array', 'items', r.ref)))),
					   '204', jsonb_build_object('description', 'Changed'),
					   'default', error_response)) END,
			   'delete', CASE WHEN (v ->> 'can_delete')::boolean THEN jsonb_build_object(
				   'operationId', 'delete_' || (v ->> 'relname'),
				   'tags', jsonb_build_array(v ->> 'relname'),
				   'summary', 'Delete the ' || (v ->> 'relname') || ' the filters select',
				   'parameters', f.refs || '[{"$ref": "#/components/parameters/PreferReturn"}]'::jsonb,
				   'responses', jsonb_build_object(
					   '200', jsonb_build_object('description', 'The deleted rows (Prefer: return=representation)',
							  'content', jsonb_build_object(json_rows,
							  jsonb_build_object('schema', jsonb_build_object('type', 'array', 'items', r.ref)))),
					   '204', jsonb_build_object('description', 'Deleted'),
					   'default', error_response)) END)))
	  INTO view_paths
	  FROM jsonb_array_elements(views) v
	 CROSS JOIN LATERAL (SELECT jsonb_build_object('$ref', '#/components/schemas/' || (v ->> 'relname')) AS ref) r
	 CROSS JOIN LATERAL (SELECT jsonb_agg(jsonb_build_object('$ref', format('#/components/parameters/%s.%s', v ->> 'relname', a.attname))
										  ORDER BY a.attnum) AS refs
						   FROM pg_attribute a
						  WHERE a.attrelid = (v ->> 'oid')::oid AND a.attnum > 0 AND NOT a.attisdropped) f
	 WHERE (v ->> 'can_select')::boolean;

	-- The functions the caller may execute, as PostgREST calls them: POST
	-- with the arguments in a JSON object, and GET with them in the query
	-- string for those that change nothing (PostgREST answers 405 to a GET
	-- of a volatile function).
	WITH fn AS (
		SELECT p.oid, p.proname, p.provolatile, p.proretset, p.prorettype, p.pronargs, p.pronargdefaults,
			   rt.typtype = 'd' AND rt.typname ~ '^[^/]+/[^/]+$' AS media_type, rt.typname AS rettypname,
			   row_number() OVER (PARTITION BY p.proname ORDER BY p.oid) AS overload
		  FROM pg_proc p
		  JOIN pg_type rt ON rt.oid = p.prorettype
		 WHERE p.pronamespace = 'agent_tasks'::regnamespace AND p.prokind = 'f'
		   AND has_function_privilege(who, p.oid, 'EXECUTE')
		   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype)
	),
	arg AS (
		SELECT fn.oid, a.name, a.type, a.mode, a.n
		  FROM fn
		  JOIN pg_proc p ON p.oid = fn.oid
		 CROSS JOIN LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
								   coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs])),
								   p.proargnames) WITH ORDINALITY AS a(type, mode, name, n)
	),
	sig AS (
		SELECT fn.*,
			   coalesce((SELECT jsonb_object_agg(arg.name,
											   agent_tasks_internal.openapi_type(arg.type) ORDER BY arg.n)
						   FROM arg WHERE arg.oid = fn.oid AND arg.mode IN ('i', 'b', 'v')), '{}') AS inputs,
			   (SELECT jsonb_agg(arg.name ORDER BY arg.n)
				  FROM (SELECT arg.*, row_number() OVER (ORDER BY arg.n) AS k
						  FROM arg WHERE arg.oid = fn.oid AND arg.mode IN ('i', 'b', 'v')) arg
				 WHERE arg.k <= fn.pronargs - fn.pronargdefaults) AS required,
			   (SELECT jsonb_build_object('type', 'object', 'properties',
										  jsonb_object_agg(arg.name, agent_tasks_internal.openapi_type(arg.type) ORDER BY arg.n))
				  FROM arg WHERE arg.oid = fn.oid AND arg.mode IN ('o', 'b', 't')
				HAVING count(*) > 0) AS outputs,
			   EXISTS (SELECT 1 FROM arg WHERE arg.oid = fn.oid AND arg.mode IN ('i', 'b', 'v')
											AND coalesce(arg.name, '') = '') AS unnamed
		  FROM fn
	),
	op AS (
		SELECT sig.*,
			   CASE WHEN sig.overload = 1 THEN sig.proname ELSE sig.proname || '_' || sig.overload END AS op_name,
			   CASE WHEN sig.prorettype = 'void'::regtype
					THEN jsonb_build_object('204', jsonb_build_object('description', 'Done'))
					ELSE jsonb_build_object('200', jsonb_build_object('description', 'The result',
						 'content', jsonb_build_object(
							 CASE WHEN sig.media_type THEN sig.rettypname::text ELSE json_rows END,
							 jsonb_build_object('schema',
								 CASE WHEN sig.media_type THEN '{"type": "string"}'::jsonb
									  WHEN sig.proretset THEN jsonb_build_object('type', 'array', 'items',
										  coalesce(sig.outputs, agent_tasks_internal.openapi_type(sig.prorettype)))
									  ELSE coalesce(sig.outputs, agent_tasks_internal.openapi_type(sig.prorettype)) END))))
			   END || jsonb_build_object('default', error_response) AS responses
		  FROM sig
		 WHERE NOT sig.unnamed
	)
	SELECT jsonb_object_agg('/rpc/' || op.proname, jsonb_strip_nulls(jsonb_build_object(
			   'post', jsonb_strip_nulls(jsonb_build_object(
				   'operationId', op.op_name,
				   'tags', '["rpc"]'::jsonb,
				   'summary', obj_description(op.oid, 'pg_proc'),
				   'requestBody', jsonb_build_object('required', op.required IS NOT NULL, 'content',
						jsonb_build_object(json_rows, jsonb_build_object('schema', jsonb_strip_nulls(jsonb_build_object(
							'type', 'object',
							'properties', op.inputs,
							'required', op.required,
							'additionalProperties', false))))),
				   'responses', op.responses)),
			   'get', CASE WHEN op.provolatile IN ('s', 'i') THEN jsonb_strip_nulls(jsonb_build_object(
				   'operationId', op.op_name || '_get',
				   'tags', '["rpc"]'::jsonb,
				   'summary', obj_description(op.oid, 'pg_proc'),
				   'parameters', (SELECT jsonb_agg(jsonb_build_object(
										'name', i.key,
										'in', 'query',
										'required', op.required ? i.key,
										-- arrays and JSON go in the query string as PostgreSQL literals
										'schema', CASE WHEN i.value ->> 'type' IN ('string', 'integer', 'number', 'boolean')
													   THEN i.value ELSE '{"type": "string"}'::jsonb END))
									FROM jsonb_each(op.inputs) i),
				   'responses', op.responses)) END)))
	  INTO rpc_paths
	  FROM op
	 -- one path per name: PostgREST picks among overloads by their arguments
	 WHERE op.overload = 1;

	RETURN jsonb_build_object(
		'openapi', '3.0.3',
		'info', jsonb_build_object(
			'title', 'agent_tasks',
			'version', (SELECT extversion FROM pg_extension WHERE extname = 'agent_tasks'),
			'description', obj_description('agent_tasks'::regnamespace, 'pg_namespace')
				|| ' This document lists what the role ' || quote_ident(who) || ' may use.'),
		-- relative to the document's address, <root>/rpc/openapi
		'servers', '[{"url": "../"}]'::jsonb,
		'security', '[{"apiKey": []}, {"bearer": []}]'::jsonb,
		'paths', coalesce(view_paths, '{}') || coalesce(rpc_paths, '{}'),
		'components', jsonb_build_object(
			'securitySchemes', jsonb_build_object(
				'apiKey', jsonb_build_object('type', 'apiKey', 'in', 'header', 'name', 'X-Api-Key',
					'description', 'An agent_tasks API key (create_api_key); its scopes decide what it may call.'),
				'bearer', jsonb_build_object('type', 'http', 'scheme', 'bearer',
					'description', 'Authorization: Bearer with a JWT signed with PostgREST''s secret (claims role, account, email), or an agent_tasks API key where the server accepts keys there.')),
			'schemas', coalesce(schemas, '{}') || jsonb_build_object('Error', jsonb_build_object(
				'type', 'object',
				'description', 'PostgREST''s error body; code is the SQLSTATE (PTxxx for the extension''s errors) or PGRSTxxx.',
				'properties', jsonb_build_object(
					'code', '{"type": "string"}'::jsonb,
					'message', '{"type": "string"}'::jsonb,
					'details', '{"type": "string", "nullable": true}'::jsonb,
					'hint', '{"type": "string", "nullable": true}'::jsonb))),
			'responses', jsonb_build_object('Error', jsonb_build_object(
				'description', 'An error (4xx from the extension''s checks, 401 without a valid key or token)',
				'content', jsonb_build_object(json_rows, jsonb_build_object('schema',
					jsonb_build_object('$ref', '#/components/schemas/Error'))))),
			'parameters', coalesce(filters, '{}') || jsonb_build_object(
				'select', jsonb_build_object('name', 'select', 'in', 'query', 'required', false,
					'description', 'Columns to return, with aliases (alias:column), JSON paths (data->>key) and embedded resources.',
					'schema', '{"type": "string"}'::jsonb),
				'order', jsonb_build_object('name', 'order', 'in', 'query', 'required', false,
					'description', 'Sort order, e.g. created_at.desc,id.asc (nullsfirst / nullslast).',
					'schema', '{"type": "string"}'::jsonb),
				'limit', jsonb_build_object('name', 'limit', 'in', 'query', 'required', false,
					'description', 'Most rows to return.', 'schema', '{"type": "integer", "minimum": 0}'::jsonb),
				'offset', jsonb_build_object('name', 'offset', 'in', 'query', 'required', false,
					'description', 'Rows to skip.', 'schema', '{"type": "integer", "minimum": 0}'::jsonb),
				'Range', jsonb_build_object('name', 'Range', 'in', 'header', 'required', false,
					'description', 'Rows to return by position, e.g. 0-24 (with Range-Unit: items).',
					'schema', '{"type": "string"}'::jsonb),
				'PreferCount', jsonb_build_object('name', 'Prefer', 'in', 'header', 'required', false,
					'description', 'count=exact (or planned, estimated) for the total in Content-Range.',
					'schema', '{"type": "string", "enum": ["count=exact", "count=planned", "count=estimated"]}'::jsonb),
				'PreferReturn', jsonb_build_object('name', 'Prefer', 'in', 'header', 'required', false,
					'description', 'return=representation to get the rows written.',
					'schema', '{"type": "string", "enum": ["return=minimal", "return=headers-only", "return=representation"]}'::jsonb))));
END
$$;
COMMENT ON FUNCTION agent_tasks.openapi() IS 'The OpenAPI 3.0 document of the REST API, made from the catalog: the views the caller may read (GET with PostgREST''s filters; POST, PATCH, DELETE where the view accepts them and the caller may), the functions it may execute (POST; GET too for those that change nothing), request and response schemas with the columns'' descriptions, and the X-Api-Key and Bearer security schemes. Over REST: GET /rpc/openapi.';
GRANT EXECUTE ON FUNCTION agent_tasks.openapi() TO agent_tasks_reader;
