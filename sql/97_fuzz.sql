--
-- 97_fuzz: every public function of schema agent_tasks (found in the
-- catalog, so functions added later are covered without a change here)
-- called with NULLs, wrong JSON types, huge and malformed values, as each
-- API role (agent_tasks_reader, _writer, _worker, _admin), with a fixed
-- seed.  Every call is rolled back (it ends in a sentinel error), so calls
-- do not depend on each other and the output does not depend on how many
-- functions there are.  Asserted: no crash (the file would end early), no
-- XX000, and every error a PTxxx of the extension or one of the PostgreSQL
-- errors listed in allowed_error (README, Errors): the checks PostgreSQL
-- makes before the extension's code runs.
--
\set SHOW_CONTEXT never
RESET ROLE;
SET agent_tasks.account = 'fuzz';
SET agent_tasks.email = 'fuzz@example.com';

DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM (VALUES ('regress_fuzz_reader', 'agent_tasks_reader'),
								   ('regress_fuzz_writer', 'agent_tasks_writer'),
								   ('regress_fuzz_worker', 'agent_tasks_worker'),
								   ('regress_fuzz_admin', 'agent_tasks_admin')) AS v(name, member_of)
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE %I', r.name, r.member_of);
		END IF;
	END LOOP;
END
$$;

-- Rows for the ids to point at: tasks in several states, a run, an agent, a webhook.
SET ROLE regress_fuzz_admin;
CREATE TEMP TABLE fuzz_ids (kind text, id uuid);
GRANT SELECT ON fuzz_ids TO PUBLIC;
SELECT count(*) AS agents FROM (
	SELECT agent_tasks.create_agent('fuzz-ext', 'external')
	UNION ALL SELECT agent_tasks.create_agent('fuzz-http', 'http', 'https://agent.example.com/fuzz')) a;
INSERT INTO fuzz_ids SELECT 'task', id FROM agent_tasks.create_task('fuzz pending');
INSERT INTO fuzz_ids SELECT 'task', id FROM agent_tasks.create_task('fuzz queued', agent => 'fuzz-ext', auto_process => true);
INSERT INTO fuzz_ids SELECT 'run', r.run_id FROM agent_tasks.claim_runs('fuzz-worker', '{fuzz-ext}') r;
INSERT INTO fuzz_ids SELECT 'task', (agent_tasks.cancel_task(t.id, 'fuzz')).id FROM agent_tasks.create_task('fuzz done') t;
INSERT INTO fuzz_ids SELECT 'webhook', (agent_tasks.create_webhook('https://hooks.example.com/fuzz', '{*}') ->> 'id')::uuid;
SELECT kind, count(*) FROM fuzz_ids GROUP BY kind ORDER BY kind;
RESET ROLE;

-- PostgreSQL's own refusals a call may meet before (or beside) the
-- extension's checks, each with why it is not the extension's to map:
CREATE FUNCTION public.allowed_error(sqlstate text) RETURNS text
	LANGUAGE sql IMMUTABLE
RETURN CASE sqlstate
	-- the role lacks EXECUTE on the function: checked before it runs.
	-- (Malformed literals, 22P02 and the like, are PostgreSQL's input
	-- checks before a call; the values here are all well-formed, so any
	-- such error would be the extension's and counts.)
	WHEN '42501' THEN 'insufficient_privilege'
	END;

-- Values per argument type: NULLs, every JSON type, empty, huge, malformed.
CREATE FUNCTION public.fuzz_values(typ regtype, fn text) RETURNS text[]
	LANGUAGE plpgsql STABLE
AS $$
DECLARE
	ids text[] := ARRAY(SELECT quote_literal(id) || '::uuid' FROM fuzz_ids ORDER BY kind, id);
BEGIN
	RETURN CASE typ
		WHEN 'text'::regtype THEN ARRAY['NULL', $q$''$q$, $q$'x'$q$, $q$'fuzz-ext'$q$, $q$'{"a": 1}'$q$,
			$q$E'line\nbreak\ttab'$q$, $q$'https://agent.example.com/x'$q$, $q$'💥 ü'$q$,
			$q$repeat('x', 100000)$q$, $q$'queued'$q$, $q$'whsec_AAAA'$q$, $q$'-1'$q$]
		WHEN 'jsonb'::regtype THEN ARRAY['NULL', $q$'null'$q$, $q$'5'$q$, $q$'"s"'$q$, $q$'true'$q$,
			$q$'[]'$q$, $q$'{}'$q$, $q$'[1, {"a": []}]'$q$, $q$'{"type": 5}'$q$,
			$q$'{"title": 5, "type": [], "items": "x", "status": {}, "url": 7, "events": 1}'$q$,
			$q$'{"type": "object", "properties": "x", "required": 5}'$q$,
			$q$(repeat('[', 3000) || repeat(']', 3000))::jsonb$q$,
			$q$(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 20000) i)$q$,
			$q$jsonb_build_object('text', repeat('y', 200000))$q$,
			$q$(SELECT jsonb_agg(jsonb_build_object('title', 'item ' || i)) FROM generate_series(1, 20000) i)$q$]
		WHEN 'uuid'::regtype THEN ARRAY['NULL', $q$'00000000-0000-0000-0000-000000000000'::uuid$q$,
			$q$'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid$q$] || ids
		WHEN 'integer'::regtype THEN ARRAY['NULL', '0', '-1', '1', '2147483647', '(-2147483648)']
		WHEN 'bigint'::regtype THEN ARRAY['NULL', '0', '-1', '9223372036854775807']
		WHEN 'numeric'::regtype THEN ARRAY['NULL', '0', '-1', $q$'NaN'::numeric$q$, '1e300', $q$'Infinity'::numeric$q$]
		WHEN 'boolean'::regtype THEN ARRAY['NULL', 'true', 'false']
		WHEN 'interval'::regtype THEN CASE WHEN fn = 'wait_task'
			THEN ARRAY['NULL', $q$'0'$q$, $q$'-1 s'$q$, $q$'20 ms'$q$]
			ELSE ARRAY['NULL', $q$'0'$q$, $q$'-1 day'$q$, $q$'1 s'$q$, $q$'178000000 years'$q$, $q$'1 microsecond'$q$] END
		WHEN 'timestamp with time zone'::regtype THEN ARRAY['NULL', $q$'-infinity'$q$, $q$'infinity'$q$,
			$q$'2000-01-01'$q$, $q$'4713-01-01 BC'$q$, $q$'294276-12-31'$q$]
		WHEN 'text[]'::regtype THEN ARRAY['NULL', $q$'{}'$q$, $q$'{NULL}'$q$, $q$'{""}'$q$,
			$q$'{x,"a b",task:read}'$q$, $q$'{"*"}'$q$, $q$'{not-an-email}'$q$,
			$q$ARRAY(SELECT 'u' || i || '@example.com' FROM generate_series(1, 5000) i)$q$]
		WHEN 'uuid[]'::regtype THEN ARRAY['NULL', $q$'{}'$q$, $q$'{NULL}'$q$,
			$q$'{00000000-0000-0000-0000-000000000000}'$q$,
			$q$ARRAY(SELECT id FROM fuzz_ids)$q$]
		WHEN 'interval[]'::regtype THEN ARRAY['NULL', $q$'{}'$q$, $q$'{NULL}'$q$, $q$'{-1 s}'$q$,
			$q$ARRAY(SELECT interval '1 s' FROM generate_series(1, 1000))$q$]
		WHEN 'name'::regtype THEN ARRAY['NULL', $q$''$q$, $q$'postgres'$q$, $q$'no_such_role'$q$,
			$q$'regress_fuzz_reader'$q$]
		ELSE ARRAY['NULL'] END;
END
$$;

-- calls, failures outside the catalogue, functions called
CREATE TABLE public.fuzz_log (role text, fn text, call text, sqlstate text, message text, ms numeric);
GRANT INSERT, SELECT ON public.fuzz_log TO PUBLIC;

-- A plausible value per type, for the arguments not being varied.
CREATE FUNCTION public.fuzz_plain(typ regtype) RETURNS text
	LANGUAGE sql STABLE
RETURN CASE typ
	WHEN 'text'::regtype THEN $q$'fuzz-ext'$q$
	WHEN 'jsonb'::regtype THEN $q$'{}'$q$
	WHEN 'uuid'::regtype THEN (SELECT quote_literal(min(id::text)) FROM fuzz_ids WHERE kind = 'task')
	WHEN 'integer'::regtype THEN '1'
	WHEN 'bigint'::regtype THEN '1'
	WHEN 'numeric'::regtype THEN '1'
	WHEN 'boolean'::regtype THEN 'false'
	WHEN 'interval'::regtype THEN $q$'10 ms'$q$
	WHEN 'text[]'::regtype THEN $q$'{}'$q$
	WHEN 'uuid[]'::regtype THEN $q$'{}'$q$
	WHEN 'name'::regtype THEN $q$'regress_fuzz_reader'$q$
	ELSE 'NULL' END;

-- Call a function; log how it ended.  Rolled back whatever happened.
CREATE FUNCTION public.fuzz_call(sig text, name text, args text[]) RETURNS void
	LANGUAGE plpgsql
AS $$
DECLARE
	call text := format('SELECT count(*) FROM agent_tasks.%I(%s) AS x', name, array_to_string(args, ', '));
	st text;
	msg text;
	t0 timestamptz := clock_timestamp();
BEGIN
	BEGIN
		EXECUTE call;
		RAISE EXCEPTION USING ERRCODE = 'FZ000', MESSAGE = 'rolled back';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	END;
	INSERT INTO public.fuzz_log
	VALUES (current_user, sig, left(call, 300), st, left(msg, 200),
			extract(epoch FROM clock_timestamp() - t0) * 1000);
END
$$;

-- Each function: all arguments NULL; then each argument through every value
-- of its type, the others plausible; then random combinations.
CREATE FUNCTION public.fuzz(random_calls integer) RETURNS void
	LANGUAGE plpgsql
AS $$
DECLARE
	f record;
	vals text[];
	v text;
	args text[];
	n integer;
	i integer;
	k integer;
	j integer;
BEGIN
	FOR f IN SELECT p.proname::text AS name, p.oid::regprocedure::text AS sig,
					ARRAY(SELECT t::regtype FROM unnest(p.proargtypes::oid[]) t) AS types
			   FROM pg_proc p
			  WHERE p.pronamespace = 'agent_tasks'::regnamespace AND p.prorettype <> 'trigger'::regtype
			  ORDER BY p.oid::regprocedure::text
	LOOP
		n := coalesce(array_length(f.types, 1), 0);
		args := ARRAY(SELECT 'NULL::' || format_type(t, NULL) FROM unnest(f.types) t);
		PERFORM public.fuzz_call(f.sig, f.name, args);
		FOR k IN 1 .. n LOOP
			FOREACH v IN ARRAY public.fuzz_values(f.types[k], f.name) LOOP
				args := '{}';
				FOR j IN 1 .. n LOOP
					args := args || ((CASE WHEN j = k THEN v ELSE public.fuzz_plain(f.types[j]) END)
									 || '::' || format_type(f.types[j], NULL));
				END LOOP;
				PERFORM public.fuzz_call(f.sig, f.name, args);
			END LOOP;
		END LOOP;
		FOR i IN 1 .. random_calls LOOP
			args := '{}';
			FOR k IN 1 .. n LOOP
				vals := public.fuzz_values(f.types[k], f.name);
				args := args || (vals[1 + floor(random() * array_length(vals, 1))::integer]
								 || '::' || format_type(f.types[k], NULL));
			END LOOP;
			PERFORM public.fuzz_call(f.sig, f.name, args);
		END LOOP;
	END LOOP;
END
$$;

SELECT setseed(0.1010);
SET client_min_messages = warning;	-- the calls' notices depend on which functions exist
SET ROLE regress_fuzz_reader;
SELECT public.fuzz(15);
SET ROLE regress_fuzz_writer;
SELECT public.fuzz(15);
SET ROLE regress_fuzz_worker;
SELECT public.fuzz(15);
SET ROLE regress_fuzz_admin;
SELECT public.fuzz(15);
RESET ROLE;
RESET client_min_messages;

-- Expected: none.
SELECT sqlstate, message, count(*) AS calls, min(fn) AS function, min(role) AS role, min(call) AS example
  FROM public.fuzz_log
 WHERE sqlstate <> 'FZ000' AND sqlstate NOT LIKE 'PT%' AND public.allowed_error(sqlstate) IS NULL
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS internal_errors FROM public.fuzz_log WHERE sqlstate = 'XX000';
-- Every public function was called as every role, and some calls got through.
SELECT count(DISTINCT fn) = (SELECT count(*) FROM pg_proc p
							  WHERE p.pronamespace = 'agent_tasks'::regnamespace
								AND p.prorettype <> 'trigger'::regtype) AS every_function,
	   count(DISTINCT role) AS roles,
	   count(*) FILTER (WHERE sqlstate = 'FZ000') > 0 AS some_succeeded,
	   count(*) FILTER (WHERE sqlstate LIKE 'PT%') > 0 AS some_refused
  FROM public.fuzz_log;

DROP FUNCTION public.fuzz(integer);
DROP FUNCTION public.fuzz_call(text, text, text[]);
DROP FUNCTION public.fuzz_plain(regtype);
DROP FUNCTION public.fuzz_values(regtype, text);
DROP FUNCTION public.allowed_error(text);
DROP TABLE public.fuzz_log;
