-- agent_tasks 0.1.0 -> 0.2.0.  Every schema change since 0.1.0, in the order
-- made; test/tap/t/041_upgrade.pl checks that the result equals a fresh 0.2.0 install.

\echo Use "ALTER EXTENSION agent_tasks UPDATE TO '0.2.0'" to load this file. \quit

-- Backups (issue 8) ----------------------------------------------------------

-- A restore by pg_dump / pg_restore loads rows as they were: the triggers
-- that would take them for new changes step aside (src/restore.c).
CREATE FUNCTION agent_tasks_internal.restoring() RETURNS boolean
	AS 'MODULE_PATHNAME', 'at_restoring'
	LANGUAGE C STABLE PARALLEL SAFE;

DROP TRIGGER enforce_status_transition ON agent_tasks_internal.tasks;
DROP TRIGGER enforce_status_transition ON agent_tasks_internal.runs;
DROP TRIGGER assignee_changed ON agent_tasks_internal.task_assignees;
DROP TRIGGER follower_changed ON agent_tasks_internal.task_followers;
DROP TRIGGER dependency_changed ON agent_tasks_internal.task_dependencies;
DROP TRIGGER message_added ON agent_tasks_internal.messages;
DROP TRIGGER bind_agent_role ON agent_tasks_internal.agents;
DROP TRIGGER task_rate_limit ON agent_tasks_internal.tasks;
DROP TRIGGER webhook_message_added ON agent_tasks_internal.messages;
DROP TRIGGER run_files ON agent_tasks_internal.runs;

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE OF status ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('task');

CREATE TRIGGER enforce_status_transition
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.enforce_status_transition('run');

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

CREATE TRIGGER message_added
	AFTER INSERT ON agent_tasks_internal.messages
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.message_added();

CREATE TRIGGER bind_agent_role
	BEFORE INSERT OR UPDATE ON agent_tasks_internal.agents
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.bind_agent_role();

CREATE TRIGGER task_rate_limit
	BEFORE INSERT ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring()
					   AND NEW.parent_id IS NULL)
	EXECUTE FUNCTION agent_tasks_internal.task_rate_limit();

CREATE TRIGGER webhook_message_added
	AFTER INSERT ON agent_tasks_internal.messages
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring())
	EXECUTE FUNCTION agent_tasks_internal.webhook_message_added();

CREATE TRIGGER run_files
	AFTER INSERT ON agent_tasks_internal.runs
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring()
					   AND NEW.input ? 'files')
	EXECUTE FUNCTION agent_tasks_internal.run_files();

-- Every table's rows are saved by pg_dump with the extension.
-- (One call per statement: each updates the extension's catalog row.)
DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT c.oid FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
			  ORDER BY c.relname
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(t, '');
	END LOOP;
END
$$;

-- The tokens and cost an agent's runs used, in shards: a run takes the
-- first shard no other transaction holds (record_usage), so runs of one
-- agent finishing at once do not wait for each other's commit.  The
-- agent's use is the sum of its shards.
CREATE TABLE agent_tasks_internal.agent_usage (
	account			text NOT NULL,
	agent_id		uuid NOT NULL,
	shard			smallint NOT NULL,
	tokens			bigint NOT NULL DEFAULT 0,
	cost			numeric NOT NULL DEFAULT 0,
	PRIMARY KEY (account, agent_id, shard),
	FOREIGN KEY (account, agent_id) REFERENCES agent_tasks_internal.agents (account, id) ON DELETE CASCADE
);

ALTER TABLE agent_tasks_internal.agent_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_isolation ON agent_tasks_internal.agent_usage
	USING (account = (SELECT agent_tasks.current_account()))
	WITH CHECK (account = (SELECT agent_tasks.current_account()));
SELECT pg_catalog.pg_extension_config_dump('agent_tasks_internal.agent_usage', '');
-- (agents.used_tokens and used_cost are dropped below, once nothing reads them)
INSERT INTO agent_tasks_internal.agent_usage (account, agent_id, shard, tokens, cost)
SELECT a.account, a.id, 0, a.used_tokens, a.used_cost
  FROM agent_tasks_internal.agents a
 WHERE a.used_tokens <> 0 OR a.used_cost <> 0;

-- queue_stats shows runs of tasks without an agent; agents' use is the sum
-- of their usage shards.
CREATE OR REPLACE VIEW agent_tasks.queue_stats WITH (security_invoker = true) AS
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


-- Engine core, step 1 (issue 9) -------------------------------------------

-- A blocker failed or was cancelled: cancel every unfinished task that
-- waits for it, directly or through other tasks, each naming the blocker it
-- waited for.  The whole closure is found and changed here, set-wise, so
-- that a long chain costs one statement, not one per link: the
-- dependents' own transitions then find nothing left to cancel.
CREATE FUNCTION agent_tasks_internal.cancel_dependents(blocker agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids uuid[];
	reasons text[];
	dependent record;
BEGIN
	-- The walk stops at finished tasks, so the dependents' own transitions,
	-- once they are cancelled, find nothing more to do.
	WITH RECURSIVE closure(id, blocker_id, blocker_status) AS (
		SELECT t.id, blocker.id, blocker.status
		  FROM agent_tasks_internal.task_dependencies d
		  JOIN agent_tasks_internal.tasks t ON t.account = d.account AND t.id = d.task_id
		 WHERE d.account = blocker.account AND d.depends_on = blocker.id
		   AND agent_tasks.status_kind(t.status) <> 'terminal'
		UNION
		SELECT t.id, c.id, 'cancelled'
		  FROM closure c
		  JOIN agent_tasks_internal.task_dependencies d ON d.account = blocker.account AND d.depends_on = c.id
		  JOIN agent_tasks_internal.tasks t ON t.account = d.account AND t.id = d.task_id
		 WHERE agent_tasks.status_kind(t.status) <> 'terminal'
	)
	SELECT array_agg(x.id ORDER BY x.id), array_agg(x.reason ORDER BY x.id) INTO ids, reasons
	  FROM (SELECT DISTINCT ON (c.id) c.id, format('dependency_%s:%s', c.blocker_status, c.blocker_id) AS reason
			  FROM closure c
			 ORDER BY c.id, c.blocker_status DESC, c.blocker_id) x;
	IF ids IS NULL THEN
		RETURN;
	END IF;

	-- Waiting for blockers, they are pending without an open run: one update.
	UPDATE agent_tasks_internal.tasks t
	   SET status = 'cancelled', status_reason = x.reason, updated_at = now()
	  FROM unnest(ids, reasons) AS x(id, reason)
	 WHERE t.account = blocker.account AND t.id = x.id
	   AND t.status = 'pending'
	   AND NOT EXISTS (SELECT 1 FROM agent_tasks_internal.runs r
						WHERE r.account = t.account AND r.id = t.latest_run_id
						  AND agent_tasks.status_kind(r.status) <> 'terminal');
	-- Any other (a run was started by hand meanwhile) through its run.
	FOR dependent IN
		SELECT t AS task, x.reason
		  FROM unnest(ids, reasons) AS x(id, reason)
		  JOIN agent_tasks_internal.tasks t ON t.account = blocker.account AND t.id = x.id
		 WHERE agent_tasks.status_kind(t.status) <> 'terminal'
		 ORDER BY t.id
		   FOR UPDATE OF t
	LOOP
		PERFORM agent_tasks_internal.move_task(dependent.task, 'cancelled', dependent.reason);
	END LOOP;
END
$$;


-- Runs get a bounded window of their task's conversation.
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

-- The task's conversation as a run gets it, oldest first (message_window).
CREATE OR REPLACE FUNCTION agent_tasks_internal.task_messages(account text, task uuid)
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

-- Claims in C (src/claims.c): per-agent queue indexes, one batch per call.
DROP INDEX agent_tasks_internal.runs_runnable;
CREATE INDEX runs_queued ON agent_tasks_internal.runs (account, agent_id, priority DESC, due_at, id)
	WHERE status = 'queued' AND agent_id IS NOT NULL;
CREATE INDEX runs_queued_without_agent ON agent_tasks_internal.runs (kind, account, priority DESC, due_at, id)
	WHERE status = 'queued' AND agent_id IS NULL;
DROP FUNCTION agent_tasks_internal.claim_next(text, text, uuid[], text, interval);
CREATE FUNCTION agent_tasks_internal.claim_batch(kinds text[], account text, agents uuid[],
	worker text, lease interval, max integer)
	RETURNS SETOF agent_tasks_internal.runs
	AS 'MODULE_PATHNAME', 'at_claim_batch'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

DROP FUNCTION agent_tasks_internal.claim_sql_runs(text, integer);

CREATE FUNCTION agent_tasks_internal.claim_sql_runs(worker text, max integer,
	OUT account text, OUT run_id uuid, OUT task_id uuid, OUT call text, OUT run_as oid,
	OUT timeout_ms integer, OUT function oid)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'at_claim_sql_runs'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

DROP FUNCTION agent_tasks.claim_runs(text, text[], integer, interval);
CREATE OR REPLACE FUNCTION agent_tasks.claim_runs(worker text, agents text[] DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION agent_tasks_internal.claim_http_runs(worker text, max integer)
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

-- Rate-limit counters in shards: concurrent creators of one account no
-- longer wait for each other's commit.
ALTER TABLE agent_tasks_internal.rate_counters ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE agent_tasks_internal.rate_counters DROP CONSTRAINT rate_counters_pkey,
	ADD CONSTRAINT rate_counters_pkey PRIMARY KEY (account, subject, shard);
CREATE OR REPLACE FUNCTION agent_tasks_internal.rate_limit_hit(account text, subject text, what text)
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
	UPDATE agent_tasks_internal.rate_counters c
	   SET count = CASE WHEN c.window_start = start THEN c.count + 1 ELSE 1 END,
		   window_start = start,
		   window_end = start + lim.period
	 WHERE c.account = rate_limit_hit.account AND c.subject = rate_limit_hit.subject
	   AND c.shard = (SELECT x.shard FROM agent_tasks_internal.rate_counters x
					   WHERE x.account = rate_limit_hit.account AND x.subject = rate_limit_hit.subject
					   ORDER BY x.shard
					   LIMIT 1
						 FOR UPDATE SKIP LOCKED);
	IF NOT FOUND THEN
		INSERT INTO agent_tasks_internal.rate_counters AS c (account, subject, shard, window_start, window_end, count)
		SELECT rate_limit_hit.account, rate_limit_hit.subject, coalesce(max(x.shard) + 1, 0), start, start + lim.period, 1
		  FROM agent_tasks_internal.rate_counters x
		 WHERE x.account = rate_limit_hit.account AND x.subject = rate_limit_hit.subject
		ON CONFLICT ON CONSTRAINT rate_counters_pkey DO UPDATE
		   SET count = CASE WHEN c.window_start = excluded.window_start THEN c.count + 1 ELSE 1 END,
			   window_start = excluded.window_start,
			   window_end = excluded.window_end;
	END IF;
	ends := start + lim.period;
	SELECT sum(c.count) INTO n FROM agent_tasks_internal.rate_counters c
	 WHERE c.account = rate_limit_hit.account AND c.subject = rate_limit_hit.subject AND c.window_start = start;
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

CREATE OR REPLACE VIEW agent_tasks.rate_limits WITH (security_invoker = true) AS
SELECT s.account, s.subject, lim.max_count, lim.period,
	   coalesce(CASE WHEN c.window_end > now() THEN c.count END, 0) AS used,
	   CASE WHEN c.window_end > now() THEN c.window_end END AS resets_at,
	   l.account IS NOT NULL AS custom
  FROM (SELECT agent_tasks.current_account() AS account, 'account'::text AS subject
		UNION
		SELECT r.account, r.subject FROM agent_tasks_internal.rate_limits r) s
 CROSS JOIN LATERAL agent_tasks_internal.rate_limit_of(s.account, s.subject) lim
  LEFT JOIN agent_tasks_internal.rate_limits l ON l.account = s.account AND l.subject = s.subject
  LEFT JOIN LATERAL (SELECT sum(x.count)::bigint AS count, max(x.window_end) AS window_end
					   FROM agent_tasks_internal.rate_counters x
					  WHERE x.account = s.account AND x.subject = s.subject AND x.window_end > now()) c ON true;

-- Runs an executor claimed belong to it while it lives (executor_holds):
-- no lease grows with a run's place in the batch.
CREATE FUNCTION agent_tasks_internal.executor_holds(worker text, claimed_at timestamptz) RETURNS boolean
	AS 'MODULE_PATHNAME', 'at_executor_holds' LANGUAGE C VOLATILE STRICT;
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
DROP FUNCTION agent_tasks_internal.recover_runs();
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

-- Engine core, step 8 (issue 9): one transition path in C ------------------

-- The trigger chain (run_changed -> task_changed, task_finished,
-- webhook_task_changed, run_signals, task_signals) becomes two C triggers.
DROP TRIGGER run_changed ON agent_tasks_internal.runs;
DROP TRIGGER run_signals ON agent_tasks_internal.runs;
DROP TRIGGER task_changed ON agent_tasks_internal.tasks;
DROP TRIGGER task_finished ON agent_tasks_internal.tasks;
DROP TRIGGER task_signals ON agent_tasks_internal.tasks;
DROP TRIGGER webhook_task_changed ON agent_tasks_internal.tasks;
DROP FUNCTION agent_tasks_internal.run_changed();
DROP FUNCTION agent_tasks_internal.run_signals();
DROP FUNCTION agent_tasks_internal.task_changed();
DROP FUNCTION agent_tasks_internal.task_finished();
DROP FUNCTION agent_tasks_internal.task_signals();
DROP FUNCTION agent_tasks_internal.webhook_task_changed();

-- A compact message on channel "agent_tasks"; sent at commit, once per
-- task changed in the transaction, never for a transaction that rolls
-- back; not at all with agent_tasks.notify off (src/wakeup.c).
CREATE OR REPLACE FUNCTION agent_tasks_internal.notify_change(account text, task_id uuid, status text, event text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_notify_change'
	LANGUAGE C VOLATILE STRICT;

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

-- A child of a command-mode parent moved (src/transitions.c calls this
-- with the parent locked and unfinished).  The parent has no run of its
-- own: it starts with its first child and ends with its last one.  Only a
-- finished child can be the last, so only then are the children counted
-- (queueing N children stays linear).
CREATE FUNCTION agent_tasks_internal.child_moved(parent agent_tasks_internal.tasks, child_status text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	children record;
BEGIN
	IF agent_tasks.status_kind(child_status) <> 'terminal' THEN
		IF parent.status = 'queued' AND child_status = 'in_progress' THEN
			UPDATE agent_tasks_internal.tasks p SET status = 'in_progress', status_reason = NULL, updated_at = now()
			 WHERE p.account = parent.account AND p.id = parent.id;
		END IF;
		RETURN;
	END IF;

	IF parent.status NOT IN ('queued', 'in_progress')
		OR EXISTS (SELECT 1 FROM agent_tasks_internal.tasks c
					WHERE c.account = parent.account AND c.parent_id = parent.id
					  AND agent_tasks.status_kind(c.status) <> 'terminal') THEN
		RETURN;
	END IF;

	-- The last child finished.  One row per child, kind and resource: count
	-- children once each, and gather resources in item order.
	SELECT count(DISTINCT c.id) FILTER (WHERE c.status = 'failed') AS failed,
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
	 WHERE c.account = parent.account AND c.parent_id = parent.id;

	IF parent.status = 'queued' THEN
		UPDATE agent_tasks_internal.tasks p SET status = 'in_progress', status_reason = NULL, updated_at = now()
		 WHERE p.account = parent.account AND p.id = parent.id;
	END IF;
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
END
$$;

-- Command mode processes its children set-wise.
-- Process the children of a command-mode parent (locked by the caller) that
-- are not running: as process_task() would one by one, but set-wise, so
-- that N items cost N rows, not N statements.
CREATE FUNCTION agent_tasks_internal.process_children(parent agent_tasks_internal.tasks)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ids uuid[];
	parents uuid[];
	blocked record;
	child uuid;
BEGIN
	SELECT array_agg(x.id ORDER BY x.id) INTO ids
	  FROM (SELECT c.id FROM agent_tasks_internal.tasks c
			 WHERE c.account = parent.account AND c.parent_id = parent.id
			   AND c.status IN ('pending', 'on_hold', 'failed', 'cancelled')
			   FOR UPDATE) x;
	IF ids IS NULL THEN
		RETURN;
	END IF;

	SELECT d.task_id, array_agg(d.depends_on ORDER BY d.depends_on) AS blockers INTO blocked
	  FROM agent_tasks_internal.task_dependencies d
	  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
	 WHERE d.account = parent.account AND d.task_id = ANY (ids) AND b.status <> 'completed'
	 GROUP BY d.task_id ORDER BY d.task_id LIMIT 1;
	IF FOUND THEN
		PERFORM agent_tasks_internal.raise('PT409', 'task is blocked by unfinished dependencies',
			format('task %s waits for %s', blocked.task_id, array_to_string(blocked.blockers, ', ')),
			'It is queued automatically when they complete; or remove them with agent_tasks.remove_dependency().');
	END IF;

	-- Held with their run: the run resumes.
	UPDATE agent_tasks_internal.runs r
	   SET status = 'queued', status_reason = 'resumed', due_at = now(), ended_at = NULL,
		   lease_expires_at = NULL
	  FROM agent_tasks_internal.tasks c
	 WHERE c.account = parent.account AND c.id = ANY (ids) AND c.status = 'on_hold'
	   AND r.account = c.account AND r.id = c.latest_run_id AND r.status = 'on_hold';

	-- Any other gets a new run; children that are parents themselves go
	-- through process_task.
	SELECT coalesce(array_agg(DISTINCT g.parent_id ORDER BY g.parent_id), '{}') INTO parents
	  FROM agent_tasks_internal.tasks g
	 WHERE g.account = parent.account AND g.parent_id = ANY (ids);
	INSERT INTO agent_tasks_internal.runs
		(account, id, task_id, agent_id, kind, attempt, status_reason, priority, due_at)
	SELECT c.account, agent_tasks.uuid_v7(), c.id, c.agent_id, coalesce(a.kind, 'external'), 1,
		   CASE WHEN c.status IN ('pending', 'on_hold') THEN 'user_request' ELSE 'follow_up' END,
		   c.priority, greatest(coalesce(c.run_after, now()), now())
	  FROM agent_tasks_internal.tasks c
	  LEFT JOIN agent_tasks_internal.agents a ON a.account = c.account AND a.id = c.agent_id
	 WHERE c.account = parent.account AND c.id = ANY (ids)
	   AND c.status IN ('pending', 'on_hold', 'failed', 'cancelled')
	   AND c.id <> ALL (parents)
	 ORDER BY c.id;

	FOREACH child IN ARRAY parents
	LOOP
		PERFORM agent_tasks.process_task(child);
	END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION agent_tasks.process_task(task uuid, message text DEFAULT NULL, files jsonb DEFAULT NULL)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	blockers uuid[];
	input jsonb;
	command_parent boolean := false;
BEGIN
	-- Files with content or a url become artifacts; the run keeps references (86_artifacts.sql).
	files := agent_tasks_internal.store_files(t, files);
	PERFORM agent_tasks_internal.check_json('files', files, 'array', 1048576);
	input := jsonb_strip_nulls(jsonb_build_object('message', message, 'files', files));
	IF message IS NOT NULL THEN
		PERFORM agent_tasks.send_message(task, message, 'user', jsonb_strip_nulls(jsonb_build_object('files', files)));
		t := agent_tasks_internal.lock_task(task);
	END IF;

	-- Command mode: the parent runs through its children.  Asked apart, so
	-- that a plain task's check runs no query.
	IF t.command IS NOT NULL THEN
		command_parent := EXISTS (SELECT 1 FROM agent_tasks_internal.tasks c
								   WHERE c.account = t.account AND c.parent_id = t.id);
	END IF;
	IF command_parent THEN
		PERFORM agent_tasks_internal.process_children(t);
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

-- Status changes are HOT updates: no index on the columns they change.
DROP INDEX agent_tasks_internal.tasks_account_status_idx;
ALTER TABLE agent_tasks_internal.tasks SET (fillfactor = 75);

-- Trust boundaries (issue 10) ------------------------------------------------

-- current_account() in C (src/accounts.c), with accounts bound to roles.
CREATE OR REPLACE FUNCTION agent_tasks.current_account() RETURNS text
	AS 'MODULE_PATHNAME', 'at_current_account'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks.current_account() IS 'The account (tenant) of this session: the account its role is bound to (bind_account), else the JWT claim "account", else the setting agent_tasks.account; PT403 when none is set, when a bound role names another account, or when the session may not choose (agent_tasks.account_choice = off).';

-- worker_status() shows each caller its own account's runs and errors only
-- (src/shared_state.c); same signature.
COMMENT ON FUNCTION agent_tasks.worker_status() IS 'For agent_tasks_admin: the background workers, from shared memory: pid, name, state, current run, runs done and failed, last error. A caller sees a current run and a last error only when they are its own account''s run, and no counters; superusers and members of pg_monitor see everything. Empty when the library is not preloaded.';

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
REVOKE ALL ON FUNCTION
	agent_tasks.bind_account(name, text),
	agent_tasks.unbind_account(name),
	agent_tasks.allow_account_choice(name, boolean)
FROM PUBLIC;
GRANT SELECT ON agent_tasks.account_bindings TO agent_tasks_reader;

-- Every refusal has a PT code: a malformed JSON Schema is refused (PT400)
-- and process_task takes at most 100 files (the checks of JSON arguments
-- are replaced with the other input checks, below).
CREATE OR REPLACE FUNCTION agent_tasks.validate_json(schema jsonb, document jsonb, path text DEFAULT '$')
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

CREATE OR REPLACE FUNCTION agent_tasks_internal.store_files(t agent_tasks_internal.tasks, files jsonb)
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
	IF jsonb_array_length(files) > 100 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'too many files',
			format('%s files were given; the limit is 100.', jsonb_array_length(files)),
			'Attach the others to the task with agent_tasks.attach_artifact(), or pass fewer.');
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


-- Console (issue 12) ---------------------------------------------------------

-- The web console served by PostgREST (GET /rpc/console), whoami(),
-- count_tasks(), the view queue_throughput, and live progress (NOTIFY and
-- the task.progress webhook event); see src/sql/install/87_console.sql.

CREATE OR REPLACE FUNCTION agent_tasks_internal.webhook_events()
	RETURNS text[]
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ARRAY['task.created', 'task.queued', 'task.started', 'task.needs_clarification',
				 'task.on_hold', 'task.completed', 'task.failed', 'task.cancelled',
				 'task.message', 'task.feedback', 'task.progress']
$$;
COMMENT ON COLUMN agent_tasks.webhook_endpoints.events IS 'Subscribed events (task.created, task.queued, task.started, task.needs_clarification, task.on_hold, task.completed, task.failed, task.cancelled, task.message, task.feedback, task.progress) or {*} for all.';

-- authenticate() lets the console's files through without credentials.
CREATE OR REPLACE FUNCTION agent_tasks.authenticate()
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	headers jsonb := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
	claims text := nullif(current_setting('request.jwt.claims', true), '');
	token text := headers ->> 'x-api-key';
	apikey text := headers ->> 'apikey';
	payload text := translate(split_part(apikey, '.', 2), '-_', '+/');
	key record;
BEGIN
	-- supabase-js sends the project's anonymous JWT as apikey on every
	-- request: only one of our keys there is taken for a key, an at_ token
	-- or a JWT whose claims name a key_id.  (Read without a function of our
	-- own or an exception block: the anonymous role of a database set up
	-- for 0.1.0 may execute only what it was granted then, and this runs
	-- for every request.)
	IF token IS NULL AND (apikey LIKE 'at\_%'
						  OR (apikey ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
							  AND length(payload) % 4 <> 1
							  AND encode(decode(payload || repeat('=', (4 - length(payload) % 4) % 4), 'base64'),
										 'escape') ~ '"key_id"\s*:')) THEN
		token := apikey;
	END IF;
	-- A key that is a JWT, sent as Bearer: PostgREST has verified its
	-- signature and expiry; revocation and scope are checked here, by the
	-- token's hash like any key.  (A non-JWT bearer token never gets here
	-- with PostgREST 12; a proxy or a later version may pass an at_ one on.)
	IF token IS NULL AND ((claims IS NOT NULL AND claims::jsonb ? 'key_id')
						  OR headers ->> 'authorization' ~* '^bearer\s+at_') THEN
		token := coalesce(substring(headers ->> 'authorization' FROM '^[Bb][Ee][Aa][Rr][Ee][Rr]\s+(\S+)\s*$'), '');
	END IF;

	IF token IS NULL THEN
		-- A JWT that PostgREST has verified (its role and claims are set), or
		-- a role granted API access directly.
		IF pg_has_role(current_user, 'agent_tasks_reader', 'USAGE') THEN
			RETURN;
		END IF;
		-- The console's files (agent_tasks.console()): the page asks for
		-- the key itself.
		IF upper(current_setting('request.method', true)) IN ('GET', 'HEAD')
			AND btrim(current_setting('request.path', true), '/') = 'rpc/console' THEN
			RETURN;
		END IF;
		PERFORM agent_tasks_internal.raise('PT401', 'authentication required',
			'The request carries neither an API key nor a JWT.',
			'Send the header "Authorization: Bearer <key or jwt>" (agent_tasks.create_api_key) or "X-Api-Key: <key>".');
	END IF;

	key := agent_tasks_internal.check_api_key(token, current_setting('request.method', true),
											  current_setting('request.path', true));
	-- Not SECURITY DEFINER: "role" cannot be set inside one.
	PERFORM set_config('role', key.role, true);
	PERFORM set_config('request.jwt.claims', key.claims::text, true);
END
$$;
COMMENT ON FUNCTION agent_tasks.authenticate() IS 'PostgREST db-pre-request: accepts a verified JWT, or an API key as "Authorization: Bearer" (keys that are JWTs), X-Api-Key or apikey (checks revocation, expiry and the scope the request needs, then switches to the key''s role and account); anything else is refused with 401. An apikey header that holds no key of ours (supabase-js''s anonymous JWT) is ignored.';

-- The anonymous role may also serve the console's files.
CREATE OR REPLACE FUNCTION agent_tasks.grant_api(role name, mode text)
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
						   'agent_tasks_internal.raise(text, text, text, text), '
						   'agent_tasks.console(text), agent_tasks_internal.console_file(text), '
						   'agent_tasks_internal.console_csp() TO %I', grant_api.role);
			granted := 'what an unauthenticated request needs to reach agent_tasks.authenticate() and the console''s files, and no data';
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
COMMENT ON FUNCTION agent_tasks.grant_api(name, text) IS 'For the database administrator: give a role API access. mode anon: only what PostgREST''s anonymous role needs to call authenticate() and to serve the console''s files (console()); read, write, worker, admin: membership in agent_tasks_reader, _writer, _worker or _admin (grant admin to PostgREST''s authenticator so that it may switch to the role of any key or JWT).';

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

REVOKE ALL ON FUNCTION
	agent_tasks.console(text),
	agent_tasks.whoami(),
	agent_tasks.count_tasks(text, text, text, boolean, text, text, text, text, text, text, text, uuid)
FROM PUBLIC;
GRANT SELECT ON agent_tasks.queue_throughput TO agent_tasks_reader;

-- Roles given the anonymous mode before this version serve the console too.
DO $$
DECLARE
	anon regrole;
BEGIN
	FOR anon IN SELECT a.grantee::regrole
				  FROM pg_proc p, aclexplode(p.proacl) a
				 WHERE p.oid = 'agent_tasks.authenticate()'::regprocedure
				   AND a.privilege_type = 'EXECUTE' AND a.grantee NOT IN (0, p.proowner)
				   AND a.grantee <> 'agent_tasks_reader'::regrole
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION agent_tasks.console(text), '
					   'agent_tasks_internal.console_file(text), agent_tasks_internal.console_csp() TO %s', anon);
	END LOOP;
END
$$;

-- Trust boundaries, part 2 (issue 10) ---------------------------------------
-- Private tables: agent_tasks_engine owns the views and API functions
-- (see the end of this script and 90_grants.sql); checks that depend on
-- who calls use caller(); sql agents run only functions their role owns.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agent_tasks_engine') THEN
		CREATE ROLE agent_tasks_engine NOLOGIN NOINHERIT;
	END IF;
END
$$;

GRANT USAGE ON SCHEMA agent_tasks, agent_tasks_internal TO agent_tasks_engine;

CREATE FUNCTION agent_tasks_internal.caller() RETURNS name
	AS 'MODULE_PATHNAME', 'at_caller'
	LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION agent_tasks_internal.bind_agent_role() RETURNS trigger
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

CREATE OR REPLACE FUNCTION agent_tasks.create_agent(
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

CREATE OR REPLACE FUNCTION agent_tasks.send_message(task uuid, body text, role text DEFAULT 'user',
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
	IF role <> 'user' AND NOT pg_has_role(agent_tasks_internal.caller(), 'agent_tasks_worker', 'MEMBER') THEN
		PERFORM agent_tasks_internal.raise('PT403', format('only agents may send %s messages', role),
			format('role %s is not a member of agent_tasks_worker', agent_tasks_internal.caller()),
			'Send the message with role => ''user''.');
	END IF;
	PERFORM agent_tasks_internal.check_text('body', body, 100000, true);
	INSERT INTO agent_tasks_internal.messages (account, id, task_id, run_id, role, author, body, data)
	VALUES (t.account, message_id, t.id, t.latest_run_id, role, agent_tasks_internal.current_actor(), body,
			coalesce(agent_tasks_internal.check_json('data', data, 'object'), '{}'));

	-- A person's answer to a clarification question re-queues the run; a
	-- follow-up on a completed or failed task in prompt mode starts a new
	-- run with it, as Mintlify and Flapjack do (a command-mode parent runs
	-- through its children: process_task() restarts those).
	IF role = 'user' AND t.status = 'needs_clarification' THEN
		PERFORM agent_tasks_internal.move_task(t, 'queued', 'clarified');
	ELSIF role = 'user' AND t.status IN ('completed', 'failed') AND t.command IS NULL THEN
		-- (the input process_task(task, message, files) would give the run)
		PERFORM agent_tasks_internal.queue_run(agent_tasks_internal.lock_task(task), 1, t.run_after, 'follow_up',
			jsonb_strip_nulls(jsonb_build_object('message', body, 'files', data -> 'files')));
	END IF;

	SELECT * INTO result FROM agent_tasks.messages m WHERE m.account = t.account AND m.id = message_id;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.send_message(uuid, text, text, jsonb) IS 'Add a message to the task''s conversation (role user; agent and system for agent_tasks_worker). A user message answers a clarification question and re-queues the run; on a completed or failed task (prompt mode) it starts a follow-up run. On other statuses it only joins the conversation.';

CREATE OR REPLACE FUNCTION agent_tasks_internal.require_superuser(what text)
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

-- In C (src/rate_limits.c): a creation that counts against no limit costs
-- a role look-up and one index probe; the others call count_task_creation().
CREATE OR REPLACE FUNCTION agent_tasks_internal.task_rate_limit() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_task_rate_limit'
	LANGUAGE C;

CREATE OR REPLACE FUNCTION agent_tasks_internal.required_level(method text, path text)
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
	-- A view: the least role that may read it (api_keys and the webhook
	-- views are for admins only, for instance; 90_grants.sql).
	SELECT coalesce(min(l), 4) INTO level
	  FROM pg_class c, generate_series(1, 4) l
	 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relname = object
	   AND has_table_privilege(agent_tasks_internal.level_role(l), c.oid, 'SELECT');
	IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relname = object) THEN
		level := NULL;
	END IF;
	level := coalesce(level, 1);
	RETURN CASE WHEN is_read THEN level ELSE greatest(level, 2) END;
END
$$;


-- Task hooks (issue 13) -------------------------------------------------------

-- An application's own functions, called inside the transaction of a task
-- change (src/hooks.c), registered per account by an admin.
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

ALTER TABLE agent_tasks_internal.hooks ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_isolation ON agent_tasks_internal.hooks
	USING (account = (SELECT agent_tasks.current_account()))
	WITH CHECK (account = (SELECT agent_tasks.current_account()));
SELECT pg_catalog.pg_extension_config_dump('agent_tasks_internal.hooks', '');

-- Messages fire the task.message hooks.
CREATE OR REPLACE FUNCTION agent_tasks_internal.message_added() RETURNS trigger
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

REVOKE ALL ON FUNCTION agent_tasks.create_hook(text, text[], text), agent_tasks.alter_hook(text, text[], text, boolean),
	agent_tasks.drop_hook(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	agent_tasks.create_hook(text, text[], text),
	agent_tasks.alter_hook(text, text[], text, boolean),
	agent_tasks.drop_hook(text)
TO agent_tasks_admin;

-- Engine core, step 9 (issue 9): the hot path without scans ------------------

CREATE OR REPLACE FUNCTION agent_tasks_internal.lock_task_in(account text, task uuid)
	RETURNS agent_tasks_internal.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ancestors uuid[] := '{}';
	parent uuid;
	t agent_tasks_internal.tasks;
BEGIN
	-- Walk up by key, one row per level (a recursive query could be
	-- planned as a scan of every task): the ancestors, root first.
	SELECT x.parent_id INTO parent FROM agent_tasks_internal.tasks x
	 WHERE x.account = lock_task_in.account AND x.id = task;
	WHILE parent IS NOT NULL AND cardinality(ancestors) < 100 LOOP
		ancestors := parent || ancestors;
		SELECT x.parent_id INTO parent FROM agent_tasks_internal.tasks x
		 WHERE x.account = lock_task_in.account AND x.id = parent;
	END LOOP;
	IF cardinality(ancestors) > 0 THEN
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

-- Realtime without leaking (issue 10) ----------------------------------------

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


-- A message on the account's channel now (progress reports).
CREATE FUNCTION agent_tasks_internal.notify_account(account text, payload text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_notify_account'
	LANGUAGE C VOLATILE STRICT;

ALTER TABLE agent_tasks_internal.account_channels ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_isolation ON agent_tasks_internal.account_channels
	USING (account = (SELECT agent_tasks.current_account()))
	WITH CHECK (account = (SELECT agent_tasks.current_account()));
SELECT pg_catalog.pg_extension_config_dump('agent_tasks_internal.account_channels', '');
REVOKE ALL ON FUNCTION agent_tasks.notify_channel() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agent_tasks.notify_channel() TO agent_tasks_reader;


-- Engine core, step 10 (issue 9): hot-path helpers keep their plans (a SQL
-- function with SET is planned at every call; PL/pgSQL keeps its plans) ----

-- In C (src/accounts.c), as the transitions name the actor.
CREATE OR REPLACE FUNCTION agent_tasks_internal.current_actor() RETURNS text
	AS 'MODULE_PATHNAME', 'at_current_actor'
	LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION agent_tasks_internal.unfinished_blockers(account text, task uuid)
	RETURNS uuid[]
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN (SELECT coalesce(array_agg(d.depends_on ORDER BY d.depends_on), '{}')
			  FROM agent_tasks_internal.task_dependencies d
			  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
			 WHERE d.account = unfinished_blockers.account AND d.task_id = unfinished_blockers.task
			   AND b.status <> 'completed');
END
$$;

-- OpenAPI and plain http (issue 11) -----------------------------------------

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

COMMENT ON FUNCTION agent_tasks_internal.url_policy_violation(text) IS 'NULL when the dispatcher may call the URL, else why not: https only, no user information, no literal address in a blocked range (any spelling), no localhost; agent_tasks.allow_insecure_loopback, agent_tasks.http_allowed_cidrs and agent_tasks.http_plain_allowed make exceptions.';

-- REST authentication (issue 11) ---------------------------------------------

-- API keys that are JWTs signed with PostgREST's jwt-secret (given once by
-- the DBA with set_jwt_secret), so that they work as "Authorization:
-- Bearer"; the apikey header counts only when it holds one of our keys.
CREATE TABLE agent_tasks_internal.jwt_secret (
	account		text NOT NULL DEFAULT '' CHECK (account = ''),
	secret		text NOT NULL CHECK (length(secret) >= 32),
	set_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account)
);
COMMENT ON TABLE agent_tasks_internal.jwt_secret IS 'PostgREST''s jwt-secret, with which create_api_key signs keys (set_jwt_secret); readable by no API role.';
ALTER TABLE agent_tasks_internal.jwt_secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_isolation ON agent_tasks_internal.jwt_secret
	USING (account = (SELECT agent_tasks.current_account()))
	WITH CHECK (account = (SELECT agent_tasks.current_account()));
SELECT pg_catalog.pg_extension_config_dump('agent_tasks_internal.jwt_secret', '');

CREATE FUNCTION agent_tasks_internal.hmac_sha256(key bytea, data bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'at_hmac_sha256'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION agent_tasks_internal.base64url(data bytea)
	RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
AS $$
	SELECT rtrim(translate(encode(data, 'base64'), E'+/\n', '-_'), '=')
$$;

CREATE FUNCTION agent_tasks.set_jwt_secret(secret text)
	RETURNS text
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF set_jwt_secret.secret IS NULL THEN
		DELETE FROM agent_tasks_internal.jwt_secret;
		RETURN 'JWT secret removed: new API keys are opaque (at_...) and travel as X-Api-Key; keys issued as JWTs keep working as X-Api-Key';
	END IF;
	IF length(set_jwt_secret.secret) < 32 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'JWT secret too short',
			format('The secret has %s characters; PostgREST requires at least 32.', length(set_jwt_secret.secret)),
			'Pass PostgREST''s jwt-secret exactly as in its configuration (not base64-decoded).');
	END IF;
	INSERT INTO agent_tasks_internal.jwt_secret AS s (account, secret) VALUES ('', set_jwt_secret.secret)
	ON CONFLICT ON CONSTRAINT jwt_secret_pkey DO UPDATE SET secret = excluded.secret, set_at = now();
	RETURN 'JWT secret set: new API keys are JWTs for "Authorization: Bearer" (and X-Api-Key); PostgREST must have the same jwt-secret';
END
$$;
COMMENT ON FUNCTION agent_tasks.set_jwt_secret(text) IS 'For the database administrator: give the extension PostgREST''s jwt-secret (at least 32 characters, as written in PostgREST''s configuration), so that create_api_key issues keys that are JWTs, usable as "Authorization: Bearer <key>". Null removes it (new keys are opaque at_ tokens for X-Api-Key). Stored in a private table no API role can read; keys issued before keep working as X-Api-Key whatever the secret.';

-- Create a key of the current account; returns what create_api_key shows,
-- the token included, which is stored nowhere (only its SHA-256).  SECURITY
-- DEFINER with the installer's rights: the only reader of the secret.  It
-- makes new keys only, for the caller's account, signing claims it builds
-- itself, so nobody can have it sign anything else or re-issue a key.
CREATE FUNCTION agent_tasks_internal.issue_api_key(name text, level integer, user_email text,
	expires_at timestamptz)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	secret text := (SELECT s.secret FROM agent_tasks_internal.jwt_secret s WHERE s.account = '');
	key agent_tasks_internal.api_keys;
	token text;
	signed text;
BEGIN
	key.id := agent_tasks.uuid_v7();
	key.account := agent_tasks.current_account();
	key.scopes := ARRAY(SELECT agent_tasks_internal.level_scope(i) FROM generate_series(1, level) i);
	key.created_by := agent_tasks_internal.current_actor();
	IF secret IS NULL THEN
		token := 'at_' || agent_tasks_internal.base64url(agent_tasks_internal.random_bytes(32));
		key.prefix := left(token, 11);
	ELSE
		-- PostgREST switches to "role" and checks "exp" itself, before
		-- authenticate() runs.
		signed := agent_tasks_internal.base64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.'
			|| agent_tasks_internal.base64url(convert_to(jsonb_strip_nulls(jsonb_build_object(
				   'role', agent_tasks_internal.level_role(level), 'account', key.account, 'key_id', key.id,
				   'iat', floor(extract(epoch FROM now()))::bigint,
				   'exp', floor(extract(epoch FROM issue_api_key.expires_at))::bigint))::text, 'UTF8'));
		token := signed || '.' || agent_tasks_internal.base64url(
			agent_tasks_internal.hmac_sha256(convert_to(secret, 'UTF8'), convert_to(signed, 'UTF8')));
		-- Every JWT starts with the same header: its end tells keys apart.
		key.prefix := '...' || right(token, 8);
	END IF;
	INSERT INTO agent_tasks_internal.api_keys
		(account, id, name, prefix, key_hash, scopes, user_email, created_by, expires_at)
	VALUES (key.account, key.id, issue_api_key.name, key.prefix, sha256(convert_to(token, 'UTF8')), key.scopes,
			issue_api_key.user_email, key.created_by, issue_api_key.expires_at);
	RETURN jsonb_build_object('id', key.id, 'name', issue_api_key.name, 'token', token, 'prefix', key.prefix,
							  'scopes', key.scopes, 'email', issue_api_key.user_email,
							  'expires_at', issue_api_key.expires_at, 'bearer', secret IS NOT NULL);
END
$$;

COMMENT ON COLUMN agent_tasks.api_keys.prefix IS 'To recognise a key: the first characters of an at_ token, or "..." and the last ones of a key that is a JWT (they all start alike).';

-- The key behind a token, checked for this request.  SECURITY DEFINER: the
-- caller is PostgREST's anonymous role, which may read no key; knowing the
-- token is the authorization.  Returns the role and the claims to set.
CREATE OR REPLACE FUNCTION agent_tasks_internal.check_api_key(token text, method text, path text,
	OUT role text, OUT claims jsonb)
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key agent_tasks_internal.api_keys;
	needed integer;
	has integer;
BEGIN
	IF token IS NULL OR (token !~ '^at_[A-Za-z0-9_-]{20,100}$'
						 AND NOT (length(token) <= 4000 AND token ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$')) THEN
		PERFORM agent_tasks_internal.raise('PT401', 'invalid API key',
			'The token is not an agent_tasks API key (at_..., or a JWT that create_api_key issued).',
			'Create a key with agent_tasks.create_api_key() and send it as "Authorization: Bearer <key>" or X-Api-Key.');
	END IF;
	SELECT * INTO key FROM agent_tasks_internal.api_keys k
	 WHERE k.key_hash = sha256(convert_to(token, 'UTF8'));
	IF NOT FOUND THEN
		PERFORM agent_tasks_internal.raise('PT401', 'invalid API key',
			format('No API key matches the token %s',
				   CASE WHEN token LIKE 'at\_%' THEN left(token, 11) || '...' ELSE '...' || right(token, 8) END),
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


-- The default rate limit is for REST requests; SQL sessions are limited
-- only by a limit set for their account.  Tasks created through PostgREST
-- have origin 'rest' (create_task is re-created with it in "REST resources
-- and seed shapes" below).

-- Where a call comes from: 'rest' through PostgREST (which publishes the
-- request's method for db-pre-request and the call), else 'sql'.
CREATE FUNCTION agent_tasks_internal.request_origin()
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_request_origin'
	LANGUAGE C STABLE PARALLEL SAFE;

-- Count a task creation against its account and, for a request made with an
-- API key, against the key.  The account's default limit (the settings) is
-- for REST requests; a SQL session is counted only against a limit set for
-- its account with set_rate_limit.  SECURITY DEFINER: no API role may write
-- the counters.  It counts for the current account only, so calling it
-- directly can harm nobody else.
CREATE OR REPLACE FUNCTION agent_tasks_internal.count_task_creation()
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	acct text := agent_tasks.current_account();
	claims text := nullif(current_setting('request.jwt.claims', true), '');
	key_id text;
BEGIN
	IF agent_tasks_internal.request_origin() = 'rest'
		OR EXISTS (SELECT 1 FROM agent_tasks_internal.rate_limits l
					WHERE l.account = acct AND l.subject = 'account') THEN
		PERFORM agent_tasks_internal.rate_limit_hit(acct, 'account', format('Account %s', quote_literal(acct)));
	END IF;
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
COMMENT ON COLUMN agent_tasks.rate_limits.max_count IS 'Task creations allowed per period (0 = no limit). Without a custom limit the account has agent_tasks.task_rate_limit per agent_tasks.task_rate_window (default 100 per hour) for REST requests, and none for SQL sessions.';
COMMENT ON FUNCTION agent_tasks.set_rate_limit(integer, interval, uuid) IS 'Set the task-creation limit of the current account (key null) or of one API key (admin scope): max_count per period (fixed windows; 0 = no limit; null removes the custom limit). A limit set for the account applies to SQL sessions as well as REST requests; without one only REST requests have the default. Returns the account''s limits.';

-- The setting agent_tasks."user" is now agent_tasks.email (no quoting);
-- the old name is still read when the new one is empty.
CREATE OR REPLACE FUNCTION agent_tasks.current_user_email() RETURNS text
	AS 'MODULE_PATHNAME', 'at_current_user_email'
	LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION agent_tasks.current_user_email() IS 'The person acting in this session: JWT claim "email" (or "sub"), else the setting agent_tasks.email (else its former name agent_tasks.user); NULL when unknown.';

CREATE OR REPLACE FUNCTION agent_tasks_internal.fire_schedule(account text, schedule uuid)
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
	PERFORM set_config('agent_tasks.email', coalesce(s.user_email, ''), true);
	PERFORM set_config('agent_tasks.user', '', true);
	PERFORM set_config('role', 'agent_tasks_writer', true);
	t := agent_tasks_internal.create_from_template(s.template);
	PERFORM set_config('role', 'none', true);
	UPDATE agent_tasks_internal.schedules x
	   SET last_fired_at = now(), last_task_id = t.id, fire_count = x.fire_count + 1
	 WHERE x.account = s.account AND x.id = s.id;
	RETURN t.id;
END
$$;

-- REST resources and seed shapes (issue 11) --------------------------------
-- Tasks made without a title are marked (title_derived), and the view shows
-- the prompt as description too; create_task takes description for prompt
-- and a call without a title; API parameters lose the names PostgREST
-- reserves or SQL makes one quote (list_tasks page_size and page_offset,
-- claim_runs max_runs); a user follow-up on a finished task starts a run;
-- create_webhook's events default to all; INSTEAD OF triggers give the
-- views the usual verbs (89_resources.sql).
ALTER TABLE agent_tasks_internal.tasks ADD COLUMN title_derived boolean NOT NULL DEFAULT false;
CREATE OR REPLACE VIEW agent_tasks.tasks WITH (security_invoker = true) AS
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
	   t.search,
	   t.title_derived,
	   t.prompt AS description
  FROM agent_tasks_internal.tasks t
  LEFT JOIN agent_tasks_internal.agents a ON a.account = t.account AND a.id = t.agent_id
  LEFT JOIN agent_tasks_internal.users o ON o.account = t.account AND o.id = t.owner_id;
COMMENT ON COLUMN agent_tasks.tasks.title_derived IS 'True when no title was given and the server made one: from the first line of the prompt (or the command), for a command item from its parent''s; false once a title is set (PostHog''s title_manually_set, negated).';
COMMENT ON COLUMN agent_tasks.tasks.description IS 'The prompt again, under the name PostHog and AGNT give it: a new row or a change may give either (not both, unless equal).';
-- (ready_tasks selects v.*: the new columns join it)
CREATE OR REPLACE VIEW agent_tasks.ready_tasks WITH (security_invoker = true) AS
SELECT v.*
  FROM agent_tasks.tasks v
 WHERE v.status = 'pending'
   AND NOT v.archived
   AND NOT EXISTS (
		SELECT 1
		  FROM agent_tasks_internal.task_dependencies d
		  JOIN agent_tasks_internal.tasks b ON b.account = d.account AND b.id = d.depends_on
		 WHERE d.account = v.account AND d.task_id = v.id AND b.status <> 'completed');

-- create_task is in C (src/tasks.c), with the task's INSERT.
DROP FUNCTION agent_tasks_internal.insert_task(agent_tasks_internal.tasks);

DROP FUNCTION agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
	text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean);
CREATE FUNCTION agent_tasks.create_task(
	title text DEFAULT NULL,
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
	origin text DEFAULT NULL,
	idempotency_key text DEFAULT NULL,
	callback_url text DEFAULT NULL,
	parent uuid DEFAULT NULL,
	run_after timestamptz DEFAULT NULL,
	depends_on uuid[] DEFAULT '{}',
	budget_tokens bigint DEFAULT NULL,
	budget_cost numeric DEFAULT NULL,
	auto_process boolean DEFAULT false,
	description text DEFAULT NULL)
	RETURNS agent_tasks.tasks
	AS 'MODULE_PATHNAME', 'at_create_task'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
	text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean, text) IS 'Create a task (prompt mode), or a parent with one child task per item (command mode: command + items; an item is a title, or an object with title, prompt, context (object, or a string kept as {"text": ...}) and external_id or externalId). Without a title, the title is made from the prompt (or command) and title_derived is true; description is another name for prompt. Same idempotency_key and payload returns the same task; a different payload fails with PT422. auto_process queues it at once.';


CREATE OR REPLACE FUNCTION agent_tasks.update_task(task uuid, patch jsonb)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks_internal.tasks := agent_tasks_internal.lock_task(task);
	field_types constant jsonb := '{"title": "string", "prompt": "string", "description": "string", "type": "string",
		"context": "object", "agent": "string", "priority": "number", "output_schema": "object",
		"owner": "string", "skills": "array", "labels": "array", "metadata": "object",
		"external_id": "string", "callback_url": "string", "run_after": "string",
		"budget_tokens": "number", "budget_cost": "number"}';
	f record;
	text_array text[];
BEGIN
	-- room for a prompt of 100000 characters; context and metadata are checked on their own
	PERFORM agent_tasks_internal.check_json('patch', patch, 'object', 1048576);
	IF patch ? 'prompt' AND patch ? 'description' AND patch -> 'prompt' IS DISTINCT FROM patch -> 'description' THEN
		PERFORM agent_tasks_internal.raise('PT400', 'prompt and description differ',
			'description is another name for prompt; both were given, with different values.',
			'Pass one of them.');
	END IF;
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
			WHEN 'title' THEN
				t.title := btrim(agent_tasks_internal.check_text('title', f.value #>> '{}', 500, true));
				t.title_derived := false;
			WHEN 'prompt', 'description' THEN
				t.prompt := agent_tasks_internal.check_text('prompt', f.value #>> '{}', 100000);
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
	   SET title = t.title, title_derived = t.title_derived, prompt = t.prompt, type = t.type, context = t.context,
		   agent_id = t.agent_id, priority = t.priority, output_schema = t.output_schema,
		   owner_id = t.owner_id, skills = t.skills, labels = t.labels, metadata = t.metadata,
		   external_id = t.external_id, callback_url = t.callback_url, run_after = t.run_after,
		   budget_tokens = t.budget_tokens, budget_cost = t.budget_cost, updated_at = now()
	 WHERE account = t.account AND id = t.id;
	RETURN agent_tasks.get_task(task);
END
$$;
COMMENT ON FUNCTION agent_tasks.update_task(uuid, jsonb) IS 'Change mutable fields of a task: the patch object names them (null clears; description is another name for prompt; a title makes title_derived false). Status, ids and history cannot be patched.';

DROP FUNCTION agent_tasks.list_tasks(text, text, text, text, boolean, text, text, text, text, text, text, text, uuid, integer, integer);
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
	page_size integer DEFAULT 50,
	page_offset integer DEFAULT 0)
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
	IF list_tasks.page_size IS NULL OR list_tasks.page_size NOT BETWEEN 1 AND 1000
		OR list_tasks.page_offset IS NULL OR list_tasks.page_offset < 0 THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid page',
			format('page_size = %s, page_offset = %s', coalesce(list_tasks.page_size::text, 'null'),
				coalesce(list_tasks.page_offset::text, 'null')),
			'page_size is 1 to 1000, page_offset 0 or more.');
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
		 LIMIT list_tasks.page_size OFFSET list_tasks.page_offset
	)
	SELECT jsonb_build_object(
			'count', (SELECT count(*) FROM matching),
			'limit', list_tasks.page_size,
			'offset', list_tasks.page_offset,
			'results', coalesce((SELECT jsonb_agg(to_jsonb(p) - 'search' - 'account' ORDER BY p.id DESC) FROM page p), '[]'))
	  INTO result;
	RETURN result;
END
$$;
COMMENT ON FUNCTION agent_tasks.list_tasks IS 'One page of tasks, newest first, with the total: {"count", "limit", "offset", "results"}; page_size (1 to 1000, default 50) and page_offset choose the page (over REST, ?limit= and ?offset= are PostgREST''s own and do not reach the function). Filters: status, type, agent, owner, mine, assignee, archived (true / false / all), created_by, repository, origin, external_id, search (full text), parent.';



CREATE OR REPLACE FUNCTION agent_tasks.create_webhook(
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

-- (the readers' SELECT after the writers' verbs, as in a fresh install:
-- the end of this script grants it again)
REVOKE SELECT ON agent_tasks.tasks, agent_tasks.messages FROM agent_tasks_reader;

-- Resources with the usual verbs (issue 11).  Through PostgREST, POST /tasks
-- creates, PATCH /tasks?id=eq.X changes and DELETE /tasks?id=eq.X deletes;
-- the same for a task's messages (POST), assignees and followers (POST,
-- DELETE) and webhook endpoints (PATCH, DELETE).  An unknown argument of
-- create_task gets a 400 naming it, from an overload PostgREST falls back to.  INSTEAD OF triggers on
-- the views turn each row into a call of the API function that does the
-- same thing, so the same checks apply: the trigger functions keep the
-- caller's rights, the caller needs EXECUTE on that function (a reader has
-- no INSERT on the views either), and its errors are the function's.
-- A column the view does not have is PostgREST's 400 (PGRST204) naming it.

-- The assignees and followers of each task, one row per person.
CREATE VIEW agent_tasks.task_assignees WITH (security_invoker = true) AS
SELECT ta.account, ta.task_id, u.email, ta.created_at
  FROM agent_tasks_internal.task_assignees ta
  JOIN agent_tasks_internal.users u ON u.account = ta.account AND u.id = ta.user_id;
COMMENT ON VIEW agent_tasks.task_assignees IS 'Assignees of the tasks of the current account, one row per task and person. POST {task_id, email} assigns, DELETE ?task_id=eq.X&email=eq.Y unassigns (task:write).';
COMMENT ON COLUMN agent_tasks.task_assignees.email IS 'The assigned person (lower case).';
COMMENT ON COLUMN agent_tasks.task_assignees.account IS 'The account (tenant) of the task.';
COMMENT ON COLUMN agent_tasks.task_assignees.task_id IS 'The task the person is assigned to.';
COMMENT ON COLUMN agent_tasks.task_assignees.created_at IS 'When the person was assigned.';

CREATE VIEW agent_tasks.task_followers WITH (security_invoker = true) AS
SELECT tf.account, tf.task_id, u.email, tf.created_at
  FROM agent_tasks_internal.task_followers tf
  JOIN agent_tasks_internal.users u ON u.account = tf.account AND u.id = tf.user_id;
COMMENT ON VIEW agent_tasks.task_followers IS 'Followers of the tasks of the current account, one row per task and person. POST {task_id, email} adds, DELETE ?task_id=eq.X&email=eq.Y removes (task:write).';
COMMENT ON COLUMN agent_tasks.task_followers.email IS 'The following person (lower case).';
COMMENT ON COLUMN agent_tasks.task_followers.account IS 'The account (tenant) of the task.';
COMMENT ON COLUMN agent_tasks.task_followers.task_id IS 'The task the person follows.';
COMMENT ON COLUMN agent_tasks.task_followers.created_at IS 'When the person started following.';

-- PT400 naming the columns of a new row that the server sets: a client
-- may leave them out or send null, nothing else.
CREATE FUNCTION agent_tasks_internal.refuse_server_columns(resource text, new_row jsonb, writable text[])
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	given text[] := ARRAY(SELECT c.key FROM jsonb_each(new_row) c
						   WHERE jsonb_typeof(c.value) <> 'null' AND c.key <> ALL (writable)
						   ORDER BY c.key);
BEGIN
	IF cardinality(given) > 0 THEN
		PERFORM agent_tasks_internal.raise('PT400',
			format('%s set by the server: %s', CASE WHEN cardinality(given) = 1 THEN 'column' ELSE 'columns' END,
				   array_to_string(given, ', ')),
			format('A new row of %s cannot give %s.', resource, array_to_string(given, ', ')),
			format('Columns a new row of %s may give: %s.', resource, array_to_string(writable, ', ')));
	END IF;
END
$$;

-- POST /tasks: create_task() with the row's columns.
CREATE FUNCTION agent_tasks_internal.tasks_insert() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM agent_tasks_internal.refuse_server_columns('tasks', to_jsonb(NEW),
		ARRAY['title', 'prompt', 'description', 'type', 'command', 'context', 'agent', 'priority', 'output_schema', 'owner',
			  'assignees', 'followers', 'skills', 'labels', 'metadata', 'external_id', 'origin',
			  'idempotency_key', 'callback_url', 'parent_id', 'run_after', 'budget_tokens', 'budget_cost']);
	NEW := agent_tasks.create_task(
		title => NEW.title, prompt => NEW.prompt, description => NEW.description, type => NEW.type,
		command => NEW.command,
		context => NEW.context, agent => NEW.agent, priority => coalesce(NEW.priority, 0),
		output_schema => NEW.output_schema, owner => NEW.owner, assignees => NEW.assignees,
		followers => NEW.followers, skills => NEW.skills, labels => NEW.labels, metadata => NEW.metadata,
		external_id => NEW.external_id, origin => NEW.origin, idempotency_key => NEW.idempotency_key,
		callback_url => NEW.callback_url, parent => NEW.parent_id, run_after => NEW.run_after,
		budget_tokens => NEW.budget_tokens, budget_cost => NEW.budget_cost);
	RETURN NEW;
END
$$;

-- PATCH /tasks: each changed column goes where the functions change it:
-- archived, feedback, assignees, followers and status to their own
-- functions, everything else to update_task(), which refuses what cannot
-- change (naming the field).
CREATE FUNCTION agent_tasks_internal.tasks_update() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed jsonb := (SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}')
						FROM jsonb_each(to_jsonb(NEW)) n
					   WHERE n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key);
	patch jsonb := changed - ARRAY['archived', 'feedback', 'assignees', 'followers', 'status'];
BEGIN
	IF patch <> '{}' THEN
		PERFORM agent_tasks.update_task(OLD.id, patch);
	END IF;
	IF changed ? 'assignees' THEN
		PERFORM agent_tasks.set_assignees(OLD.id, coalesce(NEW.assignees, '{}'));
	END IF;
	IF changed ? 'followers' THEN
		PERFORM agent_tasks.add_followers(OLD.id, ARRAY(SELECT unnest(NEW.followers) EXCEPT SELECT unnest(OLD.followers)));
		PERFORM agent_tasks.remove_followers(OLD.id, ARRAY(SELECT unnest(OLD.followers) EXCEPT SELECT unnest(NEW.followers)));
	END IF;
	IF changed ? 'feedback' THEN
		PERFORM agent_tasks.send_feedback(OLD.id, NEW.feedback);
	END IF;
	IF changed ? 'archived' AND NEW.archived THEN
		PERFORM agent_tasks.archive_task(OLD.id);
	ELSIF changed ? 'archived' THEN
		PERFORM agent_tasks.unarchive_task(OLD.id);
	END IF;
	IF changed ? 'status' THEN
		-- (PT403 naming the scope: PostgREST answers a key request's 42501 with 401)
		IF NOT has_function_privilege('agent_tasks.set_task_status(uuid, text, text, jsonb, jsonb)', 'EXECUTE') THEN
			PERFORM agent_tasks_internal.raise('PT403', 'only workers set a status',
				format('role %s may not execute agent_tasks.set_task_status()', current_user),
				'Drive the task with process_task, stop_task, cancel_task or retry_task; a status is set with the worker scope.');
		END IF;
		PERFORM agent_tasks.set_task_status(OLD.id, NEW.status);
	END IF;
	NEW := agent_tasks.get_task(OLD.id);
	RETURN NEW;
END
$$;

-- DELETE /tasks: delete_task().  A child deleted with its parent earlier in
-- the same statement is gone already: no row for it.
CREATE FUNCTION agent_tasks_internal.tasks_delete() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM 1 FROM agent_tasks.tasks v WHERE v.account = OLD.account AND v.id = OLD.id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM agent_tasks.delete_task(OLD.id);
	RETURN OLD;
END
$$;

CREATE TRIGGER tasks_insert INSTEAD OF INSERT ON agent_tasks.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.tasks_insert();
CREATE TRIGGER tasks_update INSTEAD OF UPDATE ON agent_tasks.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.tasks_update();
CREATE TRIGGER tasks_delete INSTEAD OF DELETE ON agent_tasks.tasks
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.tasks_delete();

-- POST /messages: send_message() (a follow-up, or the answer to a
-- clarification question).  A conversation is append-only, like the
-- activity trail: PATCH and DELETE are refused with its PT403.
CREATE FUNCTION agent_tasks_internal.messages_change() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		PERFORM agent_tasks_internal.raise('PT403', 'messages cannot be changed',
			format('message %s of task %s', OLD.id, OLD.task_id),
			'A conversation is append-only; it disappears only with its task (agent_tasks.delete_task).');
	END IF;
	PERFORM agent_tasks_internal.refuse_server_columns('messages', to_jsonb(NEW),
		ARRAY['task_id', 'body', 'role', 'data']);
	NEW := agent_tasks.send_message(NEW.task_id, NEW.body, coalesce(NEW.role, 'user'), coalesce(NEW.data, '{}'));
	RETURN NEW;
END
$$;

CREATE TRIGGER messages_change INSTEAD OF INSERT OR UPDATE OR DELETE ON agent_tasks.messages
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.messages_change();

-- POST and DELETE /task_assignees and /task_followers: one person at a time.
CREATE FUNCTION agent_tasks_internal.task_people_change() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t agent_tasks.tasks;
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM agent_tasks_internal.refuse_server_columns(TG_TABLE_NAME, to_jsonb(NEW), ARRAY['task_id', 'email']);
		IF TG_TABLE_NAME = 'task_assignees' THEN
			t := agent_tasks.get_task(NEW.task_id);
			t := agent_tasks.set_assignees(NEW.task_id, t.assignees || NEW.email);
		ELSE
			t := agent_tasks.add_followers(NEW.task_id, ARRAY[NEW.email]);
		END IF;
		NEW.account := t.account;
		NEW.email := lower(btrim(NEW.email));
		NEW.created_at := now();
		RETURN NEW;
	END IF;
	IF TG_TABLE_NAME = 'task_assignees' THEN
		t := agent_tasks.get_task(OLD.task_id);
		PERFORM agent_tasks.set_assignees(OLD.task_id, array_remove(t.assignees, OLD.email));
	ELSE
		PERFORM agent_tasks.remove_followers(OLD.task_id, ARRAY[OLD.email]);
	END IF;
	RETURN OLD;
END
$$;

CREATE TRIGGER task_assignees_change INSTEAD OF INSERT OR DELETE ON agent_tasks.task_assignees
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_people_change();
CREATE TRIGGER task_followers_change INSTEAD OF INSERT OR DELETE ON agent_tasks.task_followers
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.task_people_change();

-- PATCH and DELETE /webhook_endpoints (admins).  POST is refused: the
-- secret of a new endpoint is shown once, in the answer of
-- create_webhook(), and the view has no place for it.
CREATE FUNCTION agent_tasks_internal.webhook_endpoints_change() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed jsonb;
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM agent_tasks_internal.raise('PT403', 'endpoints are created with create_webhook()',
			'Its answer carries the endpoint''s secret, shown only that once.',
			'POST /rpc/create_webhook {"url": ..., "events": [...]} (events default to all).');
	END IF;
	IF TG_OP = 'DELETE' THEN
		PERFORM agent_tasks.delete_webhook(OLD.id);
		RETURN OLD;
	END IF;
	changed := (SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}')
				  FROM jsonb_each(to_jsonb(NEW)) n
				 WHERE n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key);
	IF changed - 'enabled' <> '{}' THEN
		PERFORM agent_tasks.update_webhook(OLD.id, changed - 'enabled');
	END IF;
	IF changed ? 'enabled' AND NEW.enabled THEN
		PERFORM agent_tasks.enable_webhook(OLD.id);
	ELSIF changed ? 'enabled' THEN
		PERFORM agent_tasks.disable_webhook(OLD.id);
	END IF;
	SELECT * INTO NEW FROM agent_tasks.webhook_endpoints e WHERE e.account = OLD.account AND e.id = OLD.id;
	RETURN NEW;
END
$$;

CREATE TRIGGER webhook_endpoints_change INSTEAD OF INSERT OR UPDATE OR DELETE ON agent_tasks.webhook_endpoints
	FOR EACH ROW EXECUTE FUNCTION agent_tasks_internal.webhook_endpoints_change();

-- PostgREST 12 calls an RPC's overload that takes a single unnamed jsonb
-- with the whole body when the body's keys match no other signature of the
-- function (otherwise it answers 404 PGRST202, naming no field).  Such an
-- overload names the keys that are no argument of the function, and the
-- argument a camelCase key stands for (callbackUrl: callback_url).
CREATE FUNCTION agent_tasks_internal.refuse_unknown_arguments(function_name name, body jsonb)
	RETURNS void
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	known text[] := ARRAY(SELECT DISTINCT a.name FROM pg_proc p, unnest(p.proargnames) a(name)
						   WHERE p.pronamespace = 'agent_tasks'::regnamespace AND p.proname = function_name
							 AND a.name <> '' ORDER BY 1);
	unknown text[];
	meant text[];
BEGIN
	IF jsonb_typeof(body) IS DISTINCT FROM 'object' THEN
		PERFORM agent_tasks_internal.raise('PT400', format('the arguments of %s must be a JSON object', function_name),
			format('got a JSON %s', coalesce(jsonb_typeof(body), 'null')), NULL);
	END IF;
	unknown := ARRAY(SELECT k FROM jsonb_object_keys(body) k WHERE k <> ALL (known) ORDER BY k);
	meant := ARRAY(SELECT format('%s is %s', k, lower(regexp_replace(k, '([a-z0-9])([A-Z])', '\1_\2', 'g')))
					 FROM unnest(unknown) k
					WHERE lower(regexp_replace(k, '([a-z0-9])([A-Z])', '\1_\2', 'g')) = ANY (known));
	IF cardinality(unknown) > 0 THEN
		PERFORM agent_tasks_internal.raise('PT400',
			format('unknown argument%s of %s: %s', CASE WHEN cardinality(unknown) > 1 THEN 's' ELSE '' END,
				   function_name, array_to_string(unknown, ', ')),
			format('%s takes %s.', function_name, array_to_string(known, ', ')),
			CASE WHEN cardinality(meant) > 0 THEN array_to_string(meant, '; ') || '.' END);
	END IF;
END
$$;

-- (From SQL it is create_task with its arguments in one JSON object.)
CREATE FUNCTION agent_tasks.create_task(jsonb)
	RETURNS agent_tasks.tasks
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	a record;
BEGIN
	PERFORM agent_tasks_internal.refuse_unknown_arguments('create_task', $1);
	SELECT * INTO a FROM jsonb_to_record($1) AS x(title text, prompt text, type text, command text, items jsonb,
		context jsonb, agent text, priority integer, output_schema jsonb, owner text, assignees text[],
		followers text[], skills text[], labels text[], metadata jsonb, external_id text, origin text,
		idempotency_key text, callback_url text, parent uuid, run_after timestamptz, depends_on uuid[],
		budget_tokens bigint, budget_cost numeric, auto_process boolean, description text);
	RETURN agent_tasks.create_task(title => a.title, prompt => a.prompt, type => a.type, command => a.command,
		items => a.items, context => a.context, agent => a.agent,
		priority => CASE WHEN $1 ? 'priority' THEN a.priority ELSE 0 END, output_schema => a.output_schema,
		owner => a.owner, assignees => a.assignees, followers => a.followers, skills => a.skills,
		labels => a.labels, metadata => a.metadata, external_id => a.external_id, origin => a.origin,
		idempotency_key => a.idempotency_key, callback_url => a.callback_url, parent => a.parent,
		run_after => a.run_after, depends_on => a.depends_on, budget_tokens => a.budget_tokens,
		budget_cost => a.budget_cost, auto_process => a.auto_process, description => a.description);
END
$$;
COMMENT ON FUNCTION agent_tasks.create_task(jsonb) IS 'create_task with its arguments in one JSON object. PostgREST calls it when the keys of a POST /rpc/create_task body match no argument list: it answers PT400 naming the unknown keys (and the argument a camelCase key stands for).';

-- Who may use which verb: the roles that may call the functions behind it.
GRANT INSERT, UPDATE, DELETE ON agent_tasks.tasks TO agent_tasks_writer;
GRANT INSERT, UPDATE, DELETE ON agent_tasks.messages TO agent_tasks_writer;
GRANT INSERT, DELETE ON agent_tasks.task_assignees, agent_tasks.task_followers TO agent_tasks_writer;
GRANT INSERT, UPDATE, DELETE ON agent_tasks.webhook_endpoints TO agent_tasks_admin;

-- The new functions' grants in the order 90_grants.sql gives them (the
-- engine's first), so that their privileges read as in a fresh install.
GRANT EXECUTE ON FUNCTION
	agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
		text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean, text),
	agent_tasks.create_task(jsonb),
	agent_tasks.list_tasks(text, text, text, text, boolean, text, text, text, text, text, text, text, uuid, integer, integer),
	agent_tasks.claim_runs(text, text[], integer, interval)
TO agent_tasks_engine;
GRANT EXECUTE ON FUNCTION
	agent_tasks.list_tasks(text, text, text, text, boolean, text, text, text, text, text, text, text, uuid, integer, integer)
TO agent_tasks_reader;
GRANT EXECUTE ON FUNCTION
	agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[],
		text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean, text),
	agent_tasks.create_task(jsonb)
TO agent_tasks_writer;
GRANT EXECUTE ON FUNCTION agent_tasks.claim_runs(text, text[], integer, interval) TO agent_tasks_worker;

-- Search document ------------------------------------------------------------
ALTER TABLE agent_tasks_internal.tasks ALTER COLUMN search DROP EXPRESSION;
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

-- Partial secondary indexes on tasks (see 10_tables.sql).
DROP INDEX agent_tasks_internal.tasks_account_owner_id_idx;
CREATE INDEX ON agent_tasks_internal.tasks (account, owner_id) WHERE owner_id IS NOT NULL;
ALTER TABLE agent_tasks_internal.tasks DROP CONSTRAINT tasks_account_idempotency_key_key;
CREATE UNIQUE INDEX tasks_idempotency_key ON agent_tasks_internal.tasks (account, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

DROP FUNCTION agent_tasks_internal.queue_run(agent_tasks_internal.tasks, integer, timestamptz, text, jsonb);
-- Queue a new run of a task; run_transition makes it the task's latest.
-- A task created queued names its first run already: that run gets the id.
-- In C (src/transitions.c), which queues the first run of every task.
CREATE FUNCTION agent_tasks_internal.queue_run(t agent_tasks_internal.tasks, attempt integer,
	due_at timestamptz, reason text, input jsonb DEFAULT NULL, id uuid DEFAULT NULL)
	RETURNS uuid
	AS 'MODULE_PATHNAME', 'at_queue_run'
	LANGUAGE C VOLATILE;

-- The input checks in C (src/input_checks.c), for a dozen calls per
-- created task: a JSON null patch, items or template is refused (PT400);
-- the hint of a refused URL names agent_tasks.http_plain_allowed.
CREATE OR REPLACE FUNCTION agent_tasks_internal.check_text(field text, value text, max_length integer,
	required boolean DEFAULT false)
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_check_text'
	LANGUAGE C;

CREATE OR REPLACE FUNCTION agent_tasks_internal.check_json(field text, value jsonb, expected text,
	max_bytes integer DEFAULT 65536)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'at_check_json'
	LANGUAGE C;

CREATE OR REPLACE FUNCTION agent_tasks_internal.check_tags(field text, value text[])
	RETURNS text[]
	AS 'MODULE_PATHNAME', 'at_check_tags'
	LANGUAGE C;

CREATE OR REPLACE FUNCTION agent_tasks_internal.check_url(field text, url text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_check_url'
	LANGUAGE C;

-- What an agent's answer does to its run, in C (src/outcomes.c): executors
-- record it with kept statements, complete_run and the HTTP dispatcher
-- through these two.
CREATE OR REPLACE FUNCTION agent_tasks_internal.complete_attempt(r agent_tasks_internal.runs, output jsonb, usage jsonb)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_complete_attempt'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION agent_tasks_internal.finish_sql_run(account text, run_id uuid, result jsonb)
	RETURNS void
	AS 'MODULE_PATHNAME', 'at_finish_sql_run_sql'
	LANGUAGE C VOLATILE
	SET search_path = pg_catalog, pg_temp;

-- An agent's use is counted in shards (agent_usage): runs of one agent
-- that finish at once no longer wait for each other's commit on its row.
CREATE OR REPLACE FUNCTION agent_tasks_internal.record_usage(r agent_tasks_internal.runs, usage jsonb)
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
CREATE OR REPLACE FUNCTION agent_tasks_internal.over_budget(account text, task uuid)
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

ALTER TABLE agent_tasks_internal.agents DROP COLUMN used_tokens, DROP COLUMN used_cost;

-- Webhook payloads in C (src/webhook_payload.c): as SQL functions with a
-- pinned search_path they were parsed again at every event.
CREATE OR REPLACE FUNCTION agent_tasks_internal.iso8601(ts timestamptz)
	RETURNS text
	AS 'MODULE_PATHNAME', 'at_iso8601'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION agent_tasks_internal.webhook_task_data(t agent_tasks_internal.tasks)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'at_webhook_task_data'
	LANGUAGE C STABLE;

-- ready_tasks has the columns of tasks, the new ones included: the same
-- descriptions.
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

-- Names without quoting, the rest (issue 11): the columns "user" of
-- api_keys and schedules are email, that of presence is watcher (it holds
-- a session's role when there is no e-mail), and create_api_key's argument
-- "user" is email.  Renaming a view's column keeps its comment, and the
-- functions that return the view's rows (revoke_api_key, watchers,
-- touch_presence, the schedule functions) follow it; watchers orders by the
-- column by name, so its body is replaced.
ALTER VIEW agent_tasks.api_keys RENAME COLUMN "user" TO email;
ALTER VIEW agent_tasks.schedules RENAME COLUMN "user" TO email;
ALTER VIEW agent_tasks.presence RENAME COLUMN "user" TO watcher;

CREATE OR REPLACE FUNCTION agent_tasks.watchers(task uuid)
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
		 ORDER BY p.watcher, p.device_id;
END
$$;
COMMENT ON FUNCTION agent_tasks.watchers(uuid) IS 'Who is watching the task now (unexpired presence), by person and device. PT404 for an unknown task.';

DROP FUNCTION agent_tasks.create_api_key(text, text[], timestamptz, text);
CREATE FUNCTION agent_tasks.create_api_key(name text, scopes text[] DEFAULT '{task:read,task:write}',
	expires_at timestamptz DEFAULT NULL, email text DEFAULT NULL)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key_name text := btrim(agent_tasks_internal.check_text('name', create_api_key.name, 200, true));
	level integer;
	acts_as text;
	bad text;
BEGIN
	SELECT s INTO bad FROM unnest(create_api_key.scopes) s
	 WHERE agent_tasks_internal.scope_level(s) IS NULL LIMIT 1;
	IF create_api_key.scopes IS NULL OR cardinality(create_api_key.scopes) = 0 OR bad IS NOT NULL
		OR array_position(create_api_key.scopes, NULL) IS NOT NULL THEN
		PERFORM agent_tasks_internal.raise('PT400', 'invalid scopes',
			format('scopes = %s', coalesce(create_api_key.scopes::text, 'null')),
			'Use one or more of task:read, task:write, worker, admin.');
	END IF;
	-- The key gets the effective scopes: each implies the ones before it.
	SELECT max(agent_tasks_internal.scope_level(s)) INTO level FROM unnest(create_api_key.scopes) s;
	IF create_api_key.expires_at IS NOT NULL AND create_api_key.expires_at <= now() THEN
		PERFORM agent_tasks_internal.raise('PT400', 'expires_at is in the past',
			format('expires_at = %s', agent_tasks_internal.time_text(create_api_key.expires_at)),
			'Pass a future time, or null for a key that does not expire.');
	END IF;
	acts_as := lower(btrim(coalesce(create_api_key.email, agent_tasks.current_user_email())));
	IF acts_as IS NOT NULL THEN
		PERFORM agent_tasks_internal.user_id(agent_tasks.current_account(), acts_as);	-- validates, provisions
	END IF;
	RETURN agent_tasks_internal.issue_api_key(key_name, level, acts_as, create_api_key.expires_at);
END
$$;
COMMENT ON FUNCTION agent_tasks.create_api_key(text, text[], timestamptz, text) IS 'Create an API key (admin scope): returns {id, name, token, prefix, scopes, email, expires_at, bearer}. The token is shown only this once. With the JWT secret set (set_jwt_secret; bearer = true) it is a JWT: send it as "Authorization: Bearer <token>" or as X-Api-Key; without (bearer = false) it is an opaque at_... token for the header X-Api-Key. Scopes: task:read, task:write, worker, admin (each implies the ones before it). The key acts as the person email (default: you).';
GRANT EXECUTE ON FUNCTION agent_tasks.create_api_key(text, text[], timestamptz, text) TO agent_tasks_engine;
GRANT EXECUTE ON FUNCTION agent_tasks.create_api_key(text, text[], timestamptz, text) TO agent_tasks_admin;

-- Privileges of the functions above, as 90_grants.sql gives them (keep last).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks_internal FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks FROM PUBLIC;
-- Private tables (issue 10).  The API roles have no privilege on the
-- tables of agent_tasks_internal, nor on its functions: they read through
-- the views of agent_tasks and write through its functions.  Both belong to
-- agent_tasks_engine (00_base.sql), which alone holds the table privileges
-- and is subject to row-level security like any caller, so every read and
-- write sees only the caller's account (defence in depth: the functions
-- name the account too).  The functions are SECURITY DEFINER with
-- search_path pinned; which role may call which is their EXECUTE grant,
-- checked against the caller before the function takes its owner's rights,
-- so a reader cannot call a writer's function; inside, checks that depend
-- on who calls use agent_tasks_internal.caller(), not current_user.
-- Kept in step with the end of the upgrade script, which applies the same
-- blocks: a CREATE OR REPLACE FUNCTION makes a function SECURITY INVOKER
-- again, so every upgrade script ends with them.
REVOKE ALL ON ALL TABLES IN SCHEMA agent_tasks_internal
	FROM agent_tasks_reader, agent_tasks_writer, agent_tasks_worker, agent_tasks_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA agent_tasks_internal TO agent_tasks_engine;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA agent_tasks_internal
	FROM agent_tasks_reader, agent_tasks_writer, agent_tasks_worker, agent_tasks_admin;
-- (the readers' grants of the identity functions after the engine's, in
-- the same order whether installed or upgraded)
REVOKE EXECUTE ON FUNCTION agent_tasks.current_account(), agent_tasks.current_user_email(), agent_tasks.status_kind(text),
	agent_tasks.uuid_v7(), agent_tasks.uuid_v7_time(uuid) FROM agent_tasks_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agent_tasks, agent_tasks_internal TO agent_tasks_engine;
GRANT EXECUTE ON FUNCTION agent_tasks.current_account(), agent_tasks.current_user_email(), agent_tasks.status_kind(text),
	agent_tasks.uuid_v7(), agent_tasks.uuid_v7_time(uuid) TO agent_tasks_reader;
-- The helpers of the functions that keep the caller's rights (above, and
-- the INSTEAD OF triggers of 89_resources.sql).
GRANT EXECUTE ON FUNCTION agent_tasks_internal.raise(text, text, text, text),
	agent_tasks_internal.check_api_key(text, text, text),
	agent_tasks_internal.refuse_server_columns(text, jsonb, text[]) TO agent_tasks_reader;
GRANT EXECUTE ON FUNCTION agent_tasks_internal.check_binding(name) TO agent_tasks_admin;
-- A pg_cron tick creates its task as agent_tasks_writer (fire_schedule):
-- what create_task() would do, with the engine's rights.
GRANT EXECUTE ON FUNCTION agent_tasks_internal.create_from_template(jsonb, boolean) TO agent_tasks_writer;
ALTER FUNCTION agent_tasks_internal.create_from_template(jsonb, boolean) SECURITY DEFINER;
ALTER FUNCTION agent_tasks_internal.create_from_template(jsonb, boolean) OWNER TO agent_tasks_engine;
-- The views run with their owner's rights (not security_invoker) and row-
-- level security applies to their owner: each caller sees its account.
-- Nobody reads a view without the privilege to: admins only for keys and
-- webhooks.
DO $$
DECLARE
	v regclass;
BEGIN
	FOR v IN SELECT c.oid FROM pg_class c
			  WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relkind = 'v'
			  ORDER BY c.relname
	LOOP
		EXECUTE format('ALTER VIEW %s RESET (security_invoker)', v);
		EXECUTE format('ALTER VIEW %s OWNER TO agent_tasks_engine', v);
	END LOOP;
END
$$;
GRANT SELECT ON ALL TABLES IN SCHEMA agent_tasks TO agent_tasks_reader;
-- A function a view calls is executed with the reader's EXECUTE privilege
-- and rights (PostgreSQL checks tables against the view's owner, functions
-- against the caller).
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT DISTINCT d.refobjid::regprocedure FROM pg_depend d
			   JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
			   JOIN pg_class c ON c.oid = rw.ev_class
			   JOIN pg_proc p ON p.oid = d.refobjid
			  WHERE d.refclassid = 'pg_proc'::regclass
				AND c.relnamespace = 'agent_tasks'::regnamespace
				AND p.pronamespace = 'agent_tasks_internal'::regnamespace
			  ORDER BY 1
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO agent_tasks_reader', f);
		-- and runs as the caller: it needs the owner's rights to read
		IF (SELECT l.lanname IN ('sql', 'plpgsql') AND NOT p.prosecdef
			  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = f) THEN
			EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
			EXECUTE format('ALTER FUNCTION %s OWNER TO agent_tasks_engine', f);
		END IF;
	END LOOP;
END
$$;
REVOKE SELECT ON agent_tasks.api_keys, agent_tasks.webhook_endpoints, agent_tasks.webhook_deliveries,
	agent_tasks.webhook_attempts FROM agent_tasks_reader;
GRANT SELECT ON agent_tasks.api_keys, agent_tasks.webhook_endpoints, agent_tasks.webhook_deliveries,
	agent_tasks.webhook_attempts TO agent_tasks_admin;

-- The API functions in SQL that API roles may call take the rights of
-- agent_tasks_engine, except those that act on roles (authenticate() sets
-- the request's role, the account bindings alter roles).  So does
-- create_task(), in C (src/tasks.c); the others in C read no table
-- (worker_status() reads shared memory as the caller).  Those for the DBA
-- alone (grant_api, run_maintenance, ...) keep the DBA's rights.
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
			  WHERE p.pronamespace = 'agent_tasks'::regnamespace
				AND (l.lanname IN ('sql', 'plpgsql') OR p.proname = 'create_task') AND NOT p.prosecdef
				AND has_function_privilege('agent_tasks_admin', p.oid, 'EXECUTE')
				AND p.proname NOT IN ('authenticate', 'bind_account', 'unbind_account', 'allow_account_choice')
			  ORDER BY p.oid::regprocedure::text
	LOOP
		IF NOT 'search_path=pg_catalog, pg_temp' = ANY (coalesce((SELECT proconfig FROM pg_proc WHERE oid = f), '{}')) THEN
			RAISE EXCEPTION 'function % does not pin search_path = pg_catalog, pg_temp', f;
		END IF;
		EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
		EXECUTE format('ALTER FUNCTION %s OWNER TO agent_tasks_engine', f);
	END LOOP;
END
$$;
