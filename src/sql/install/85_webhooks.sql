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
				 'task.message', 'task.feedback', 'task.progress']
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

-- A time as webhooks show it: YYYY-MM-DDTHH:MI:SS.USZ, in UTC.
CREATE FUNCTION agent_tasks_internal.iso8601(ts timestamptz)
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_iso8601'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- What a webhook says about a task (no internal columns); in C
-- (src/webhook_payload.c): every event of an account with hooks or
-- webhooks builds it.
CREATE FUNCTION agent_tasks_internal.webhook_task_data(t agent_tasks_internal.tasks)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'at_webhook_task_data'
	LANGUAGE C STABLE;

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
-- Task changes are queued by the transition path (src/transitions.c, with
-- enqueue_webhook_event and callback_body above); messages here.
-- SECURITY DEFINER: API roles may not write deliveries; firing a trigger
-- needs no EXECUTE grant, so these are granted to nobody.

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
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.webhook_message_added();

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
COMMENT ON COLUMN agent_tasks.webhook_endpoints.events IS 'Subscribed events (task.created, task.queued, task.started, task.needs_clarification, task.on_hold, task.completed, task.failed, task.cancelled, task.message, task.feedback, task.progress) or {*} for all.';
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
	events text[] DEFAULT '{*}',
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
COMMENT ON FUNCTION agent_tasks.create_webhook(text, text[], text, text, interval[], interval) IS 'Register an endpoint (agent_tasks_admin) for events of this account: url (https; checked like every URL), events (default {*}: all), secret ("whsec_" + base64; generated when omitted), optional retry_schedule and timeout (default 15 s). Returns {id, url, events, secret, enabled, created_at}: the secret this one time only.';

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
