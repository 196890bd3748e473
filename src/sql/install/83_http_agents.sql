-- http and openai agents: what the HTTP dispatcher (src/http_dispatcher.c)
-- sends and what an answer means.  The URL policy (SSRF protection,
-- src/url_policy.c), agent secrets (never readable through the API),
-- per-run tokens for agents that answer asynchronously, the request
-- builders, and claim_http_runs / finish_http_run, which the dispatcher
-- calls in short transactions of their own around each request.

CREATE FUNCTION agent_tasks_internal.url_policy_violation(url text) RETURNS text
	AS 'MODULE_PATHNAME', 'at_url_policy_violation' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION agent_tasks_internal.url_policy_violation(text) IS 'NULL when the dispatcher may call the URL, else why not: https only, no user information, no literal address in a blocked range (any spelling), no localhost; agent_tasks.allow_insecure_loopback, agent_tasks.http_allowed_cidrs and agent_tasks.http_plain_allowed make exceptions.';

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

-- The task's conversation as a run gets it, oldest first (message_window).
CREATE FUNCTION agent_tasks_internal.task_messages(account text, task uuid)
	RETURNS jsonb
	LANGUAGE sql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'run_id', m.run_id, 'role', m.role,
			'author', m.author, 'body', m.body, 'data', m.data, 'created_at', m.created_at) ORDER BY m.id), '[]')
	  FROM agent_tasks_internal.messages m
	 WHERE m.account = task_messages.account AND m.task_id = task
	   AND m.id IN (SELECT agent_tasks_internal.message_window(task_messages.account, task))
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
	IF NOT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = agent_tasks_internal.caller()), false) THEN
		PERFORM agent_tasks_internal.raise('PT403', format('%s is for the dispatcher', what),
			format('role %s is not a superuser', agent_tasks_internal.caller()), NULL);
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
-- before sending.  Runs are claimed together by claim_batch (exact
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
	claimed agent_tasks_internal.runs[];
	sendable agent_tasks_internal.runs[] := '{}';
	tokens text[] := '{}';
	requests agent_tasks_internal.http_request[];
	q agent_tasks_internal.http_request;
	c record;
	reason text;
	i integer;
BEGIN
	PERFORM agent_tasks_internal.require_superuser('claim_http_runs');
	claimed := ARRAY(SELECT x FROM agent_tasks_internal.claim_batch('{http,openai}', NULL, NULL, worker, NULL,
														  coalesce(max, 0)) x);
	IF cardinality(claimed) = 0 THEN
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
