-- Console (issue 12): the web console that PostgREST serves from the
-- extension itself (GET /rpc/console), the few calls it needs beyond the
-- rest of the API, and live progress (NOTIFY and a task.progress webhook
-- event for every progress report).  The console's files live in
-- src/console/ and are compiled into the library (src/console.c), so a
-- fresh install and an upgrade define the same small functions here.

-- The bytes of one of the console's files, or NULL for an unknown name.
CREATE FUNCTION agent_tasks_internal.console_file(name text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'at_console_file' LANGUAGE C STABLE STRICT;

-- What the console's pages may load and reach: scripts and styles from the
-- same origin only (no inline script, no other origin), requests to the API
-- beside it, and no framing.  require-trusted-types-for makes any HTML
-- sink (innerHTML and the like) throw, so no database string can become
-- markup even by mistake.
CREATE FUNCTION agent_tasks_internal.console_csp() RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'default-src ''none''; script-src ''self''; style-src ''self''; img-src ''self''; '
		|| 'connect-src ''self''; base-uri ''none''; form-action ''none''; frame-ancestors ''none''; '
		|| 'require-trusted-types-for ''script''; trusted-types ''none'''
$$;

-- GET /rpc/console (the page) and /rpc/console?file=... (its script and
-- styles).  The anonymous role may call it (grant_api(role, 'anon')) and
-- authenticate() lets GET and HEAD of it through without credentials: it returns no data,
-- only the files, and the page then talks to the API with the user's key.
CREATE FUNCTION agent_tasks.console(file text DEFAULT 'index.html')
	RETURNS agent_tasks."*/*"
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	body bytea := agent_tasks_internal.console_file(coalesce(console.file, 'index.html'));
BEGIN
	IF body IS NULL THEN
		PERFORM agent_tasks_internal.raise('PT404', 'console file not found',
			format('file = %s', quote_literal(left(console.file, 100))),
			'Open /rpc/console; its page loads the other files.');
	END IF;
	PERFORM set_config('response.headers', jsonb_build_array(
		jsonb_build_object('Content-Type',
			CASE substring(coalesce(console.file, 'index.html') FROM '\.([a-z]+)$')
				WHEN 'html' THEN 'text/html; charset=utf-8'
				WHEN 'js' THEN 'text/javascript; charset=utf-8'
				WHEN 'css' THEN 'text/css; charset=utf-8'
				WHEN 'svg' THEN 'image/svg+xml'
				ELSE 'application/octet-stream' END),
		jsonb_build_object('Content-Security-Policy', agent_tasks_internal.console_csp()),
		jsonb_build_object('X-Content-Type-Options', 'nosniff'),
		jsonb_build_object('X-Frame-Options', 'DENY'),
		jsonb_build_object('Referrer-Policy', 'no-referrer'),
		jsonb_build_object('Cache-Control', 'no-cache'))::text, true);
	RETURN body;
END
$$;
COMMENT ON FUNCTION agent_tasks.console(text) IS 'The web console, served by PostgREST: open GET /rpc/console in a browser and sign in with an API key or a JWT. file names one of its files (index.html, console.js, console.css, favicon.svg). Needs no credentials and returns no data; sent with a Content-Security-Policy that allows only same-origin scripts, styles and requests.';

-- Who the caller is and what they may do, so that the console offers only
-- what the API would allow.  Scopes follow from role membership, which is
-- how authenticate() sets up a key's request and how a JWT's role works.
CREATE FUNCTION agent_tasks.whoami()
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_build_object(
		'account', agent_tasks.current_account(),
		'email', agent_tasks.current_user_email(),
		'role', agent_tasks_internal.caller(),
		'key_name', nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'key_name',
		'scopes', to_jsonb(ARRAY(
			SELECT s.scope
			  FROM (VALUES (1, 'task:read', 'agent_tasks_reader'), (2, 'task:write', 'agent_tasks_writer'),
						   (3, 'worker', 'agent_tasks_worker'), (4, 'admin', 'agent_tasks_admin')) s(level, scope, role)
			 WHERE pg_has_role(agent_tasks_internal.caller(), s.role, 'USAGE')
			 ORDER BY s.level)))
$$;
COMMENT ON FUNCTION agent_tasks.whoami() IS 'The caller: account, e-mail, database role, API key name (for key requests) and scopes (task:read, task:write, worker, admin) that the role has. PT403 when no account is set.';

-- The counts beside the console's task list: list_tasks's own filters, one
-- count per status, so that the two never disagree.
CREATE FUNCTION agent_tasks.count_tasks(
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
	parent uuid DEFAULT NULL)
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_object_agg(s.status, (agent_tasks.list_tasks(
			status => s.status, type => count_tasks.type, agent => count_tasks.agent,
			owner => count_tasks.owner, mine => count_tasks.mine, assignee => count_tasks.assignee,
			archived => count_tasks.archived, created_by => count_tasks.created_by,
			repository => count_tasks.repository, origin => count_tasks.origin,
			external_id => count_tasks.external_id, search => count_tasks.search,
			parent => count_tasks.parent, page_size => 1) ->> 'count')::bigint ORDER BY s.n)
	  FROM unnest(ARRAY['pending', 'queued', 'in_progress', 'needs_clarification', 'on_hold',
						'completed', 'failed', 'cancelled']) WITH ORDINALITY s(status, n)
$$;
COMMENT ON FUNCTION agent_tasks.count_tasks IS 'How many tasks list_tasks would find with these filters, per status: {"pending": n, "queued": n, ...}.';

-- Completed and failed runs per minute over the last hour, per agent (the
-- console's Queues chart).  Every agent has its 60 minutes, zeros included;
-- runs of tasks without an agent show as agent NULL when any ended.
CREATE VIEW agent_tasks.queue_throughput WITH (security_invoker = true) AS
WITH ended AS (
	SELECT r.account, r.agent_id, date_trunc('minute', r.ended_at) AS minute,
		   count(*) FILTER (WHERE r.status = 'completed') AS completed,
		   count(*) FILTER (WHERE r.status = 'failed') AS failed
	  FROM agent_tasks_internal.runs r
	 WHERE r.status IN ('completed', 'failed')
	   AND r.ended_at >= date_trunc('minute', now()) - interval '59 minutes'
	 GROUP BY r.account, r.agent_id, date_trunc('minute', r.ended_at)
), subjects AS (
	SELECT a.account, a.id AS agent_id, a.name FROM agent_tasks_internal.agents a
	UNION
	SELECT DISTINCT e.account, NULL::uuid, NULL::text FROM ended e WHERE e.agent_id IS NULL
)
SELECT s.account, s.name AS agent, m.minute,
	   coalesce(e.completed, 0) AS completed,
	   coalesce(e.failed, 0) AS failed
  FROM subjects s
 CROSS JOIN generate_series(date_trunc('minute', now()) - interval '59 minutes',
							date_trunc('minute', now()), interval '1 minute') m(minute)
  LEFT JOIN ended e ON e.account = s.account AND e.agent_id IS NOT DISTINCT FROM s.agent_id
				   AND e.minute = m.minute;
COMMENT ON VIEW agent_tasks.queue_throughput IS 'Completed and failed runs per minute over the last hour (60 rows per agent, the current minute last), per agent; runs of tasks without an agent as agent NULL.';
COMMENT ON COLUMN agent_tasks.queue_throughput.minute IS 'Start of the minute.';

-- Live progress: every progress report (report_progress, or an http agent's
-- acceptance) of a run in progress sends NOTIFY agent_tasks with event
-- "progress" and queues a task.progress webhook event.  A trigger, as for
-- every other event: only the extension may write webhook deliveries.
CREATE FUNCTION agent_tasks_internal.run_progress_announced() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	percent numeric;
	t agent_tasks_internal.tasks;
BEGIN
	IF jsonb_typeof(NEW.progress_data -> 'percent') = 'number' THEN
		percent := (NEW.progress_data ->> 'percent')::numeric;
	END IF;
	SELECT * INTO t FROM agent_tasks_internal.tasks x WHERE x.account = NEW.account AND x.id = NEW.task_id;
	-- A NOTIFY payload must stay under 8000 bytes: the message is cut.
	PERFORM agent_tasks_internal.notify_account(NEW.account, jsonb_strip_nulls(jsonb_build_object(
			'id', NEW.task_id, 'account', NEW.account, 'status', t.status, 'event', 'progress',
			'run', NEW.id, 'phase', NEW.phase, 'progress', left(NEW.progress, 200),
			'percent', percent))::text);
	PERFORM agent_tasks_internal.enqueue_webhook_event(t, 'task.progress', jsonb_strip_nulls(jsonb_build_object(
		'run_id', NEW.id, 'attempt', NEW.attempt, 'phase', NEW.phase, 'progress', NEW.progress,
		'percent', percent)));
	RETURN NULL;
END
$$;

CREATE TRIGGER run_progress_announced
	AFTER UPDATE OF phase, progress, progress_data ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NEW.status = 'in_progress'
					   AND (OLD.phase IS DISTINCT FROM NEW.phase OR OLD.progress IS DISTINCT FROM NEW.progress
							OR OLD.progress_data IS DISTINCT FROM NEW.progress_data))
	EXECUTE FUNCTION agent_tasks_internal.run_progress_announced();

GRANT EXECUTE ON FUNCTION
	agent_tasks.console(text),
	agent_tasks.whoami(),
	agent_tasks.count_tasks(text, text, text, boolean, text, text, text, text, text, text, text, uuid)
TO agent_tasks_reader;
