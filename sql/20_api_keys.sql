--
-- 20_api_keys: API keys, authenticate() as PostgREST calls it (the request.*
-- settings PostgREST sets are set by hand here), scopes, grant_api() and
-- rate limits on task creation.  Tokens, ids and times are never printed.
--
\set SHOW_CONTEXT never
RESET ROLE;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_api_anon') THEN
		CREATE ROLE regress_api_anon NOLOGIN;
	END IF;
END
$$;
-- Roles for PostgREST: the anonymous role may only reach authenticate().
SELECT agent_tasks.grant_api('regress_api_anon', 'anon');
SELECT has_function_privilege('regress_api_anon', 'agent_tasks.authenticate()', 'EXECUTE') AS anon_authenticates,
	   has_table_privilege('regress_api_anon', 'agent_tasks.tasks', 'SELECT') AS anon_reads_tasks,
	   has_function_privilege('regress_api_anon', 'agent_tasks.create_task(text, text, text, text, jsonb, jsonb, text, integer, jsonb, text, text[], text[], text[], text[], jsonb, text, text, text, text, uuid, timestamptz, uuid[], bigint, numeric, boolean, text)', 'EXECUTE') AS anon_creates;
SELECT agent_tasks.grant_api('regress_api_anon', 'read');
SELECT pg_has_role('regress_api_anon', 'agent_tasks_reader', 'MEMBER') AS anon_is_reader;
REVOKE agent_tasks_reader FROM regress_api_anon;
SELECT expect_error($$SELECT agent_tasks.grant_api('regress_api_anon', 'root')$$);
SELECT expect_error($$SELECT agent_tasks.grant_api('regress_no_such_role', 'read')$$);

--
-- Creating keys (admin scope)
--
SET ROLE regress_app;
SET agent_tasks.account = 'keys-a';
SET agent_tasks.email = 'kim@a.example';
SELECT k ->> 'token' AS admin_token, k ->> 'id' AS admin_key FROM agent_tasks.create_api_key('ci admin', '{admin}') k \gset
SELECT k ->> 'token' AS write_token, k ->> 'id' AS write_key FROM agent_tasks.create_api_key('writer', '{task:write}') k \gset
SELECT k ->> 'token' AS read_token, k ->> 'id' AS read_key, k ->> 'email' AS read_email
  FROM agent_tasks.create_api_key('dashboard', '{task:read}', now() + interval '1 day', email => 'Dana@A.example') k \gset
SELECT :'read_email' AS dashboard_acts_as;
-- the token: at_ and 43 base64url characters (256 random bits), shown once
SELECT :'admin_token' ~ '^at_[A-Za-z0-9_-]{43}$' AS token_format,
	   :'admin_token' <> :'write_token' AS tokens_differ;
-- what the view shows: effective scopes (each implies the ones before it), no secret
SELECT name, scopes, email, created_by, status, prefix = left(:'admin_token', 11) AND name = 'ci admin' AS prefix_of_admin,
	   expires_at IS NOT NULL AS expires, last_used_at, revoked_at
  FROM agent_tasks.api_keys ORDER BY id;
SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) AS api_keys_columns
  FROM information_schema.columns WHERE table_schema = 'agent_tasks' AND table_name = 'api_keys';
-- nobody may read the stored hash, not even an admin
SELECT has_column_privilege('agent_tasks_admin', 'agent_tasks_internal.api_keys', 'key_hash', 'SELECT') AS admin_reads_hash;
SELECT expect_error($$SELECT key_hash FROM agent_tasks_internal.api_keys$$);
-- the hash is SHA-256 of the token, and the token itself is stored nowhere
RESET ROLE;
SELECT count(*) AS hash_matches FROM agent_tasks_internal.api_keys
 WHERE key_hash = sha256(convert_to(:'admin_token', 'UTF8'));
SELECT count(*) AS token_stored FROM agent_tasks_internal.api_keys k
 WHERE to_jsonb(k)::text LIKE '%' || substr(:'admin_token', 12) || '%';
SET ROLE regress_app;
-- bad input
SELECT expect_error($$SELECT agent_tasks.create_api_key('x', '{task:delete}')$$);
SELECT expect_error($$SELECT agent_tasks.create_api_key('x', '{}')$$);
SELECT expect_error($$SELECT agent_tasks.create_api_key('', '{admin}')$$);
SELECT regexp_replace(expect_error($$SELECT agent_tasks.create_api_key('x', '{admin}', now() - interval '1 second')$$),
	'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', '<time>') AS past;
SELECT expect_error($$SELECT agent_tasks.create_api_key('x', '{admin}', NULL, 'not an address')$$);
-- writers may not manage keys
SET ROLE regress_writer;
SELECT error_code($$SELECT agent_tasks.create_api_key('x', '{task:read}')$$) AS writer_creates_key;
SELECT error_code($$SELECT * FROM agent_tasks.api_keys$$) AS writer_lists_keys;

--
-- authenticate(): what PostgREST does for a request.  It switches to the
-- anonymous role, publishes the request, and calls authenticate().
--
RESET ROLE;
-- key prefixes are random, times vary
CREATE FUNCTION pg_temp.masked(t text) RETURNS text
	LANGUAGE sql
	RETURN regexp_replace(regexp_replace(regexp_replace(t, 'at_[A-Za-z0-9_-]{8}', 'at_<prefix>', 'g'),
		'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', '<time>', 'g'), '\d+ seconds', 'N seconds', 'g');
CREATE FUNCTION pg_temp.request(method text, path text, headers jsonb) RETURNS void
	LANGUAGE sql
AS $$
	SELECT set_config('role', 'regress_api_anon', true),
		   set_config('request.method', method, true),
		   set_config('request.path', path, true),
		   set_config('request.headers', headers::text, true),
		   set_config('request.jwt.claims', '{"role": "regress_api_anon"}', true),
		   set_config('agent_tasks.account', '', true),
		   set_config('agent_tasks.email', '', true);
$$;
-- the session's own settings stay out of the way
RESET agent_tasks.account;
RESET agent_tasks.email;

-- a write key creating a task: role and claims come from the key
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', jsonb_build_object('x-api-key', :'write_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, current_setting('request.jwt.claims')::jsonb - 'key_id' AS claims,
	   current_setting('request.jwt.claims')::jsonb ->> 'key_id' = :'write_key' AS key_id_claim;
SELECT title, owner, created_by FROM agent_tasks.create_task('Made with a key');
COMMIT;
SELECT name, last_used_at IS NOT NULL AS used FROM agent_tasks_internal.api_keys WHERE account = 'keys-a' ORDER BY id;
-- the "apikey" header works too; reads run in READ ONLY transactions, which record no use
BEGIN READ ONLY;
SELECT pg_temp.request('GET', '/tasks', jsonb_build_object('apikey', :'read_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, agent_tasks.current_account(), agent_tasks.current_user_email();
SELECT title FROM agent_tasks.tasks;
COMMIT;
SELECT last_used_at IS NULL AS read_not_recorded FROM agent_tasks_internal.api_keys WHERE id = :'read_key';
-- a read key may call STABLE functions and read views ...
BEGIN;
SELECT pg_temp.request('GET', '/rpc/list_tasks', jsonb_build_object('x-api-key', :'read_token'));
SELECT agent_tasks.authenticate();
SELECT (agent_tasks.list_tasks()) ->> 'count' AS tasks;
ROLLBACK;
-- ... but not change anything (PT403 -> HTTP 403, naming the scope it needs)
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', jsonb_build_object('x-api-key', :'read_token'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS error;
ROLLBACK;
BEGIN;
SELECT pg_temp.request('PATCH', '/tasks', jsonb_build_object('x-api-key', :'read_token'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS error;
ROLLBACK;
-- keys are managed with the admin scope only
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_api_key', jsonb_build_object('x-api-key', :'write_token'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS error;
ROLLBACK;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_api_key', jsonb_build_object('x-api-key', :'admin_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, (agent_tasks.create_api_key('made over REST', '{task:read}')) ->> 'scopes' AS scopes;
ROLLBACK;
-- the scope each kind of request needs, derived from the grants
SELECT m AS method, p AS path, agent_tasks_internal.level_scope(agent_tasks_internal.required_level(m, p)) AS scope
  FROM (VALUES ('GET', '/'), ('GET', '/tasks'), ('HEAD', '/runs'), ('POST', '/tasks'), ('DELETE', '/activities'),
			   ('GET', '/rpc/get_task'), ('POST', '/rpc/list_tasks'), ('POST', '/rpc/create_task'),
			   ('POST', '/rpc/touch_presence'), ('POST', '/rpc/set_task_status'), ('POST', '/rpc/revoke_api_key'),
			   ('POST', '/rpc/grant_api'), ('GET', '/rpc/no_such_function'), ('GET', '/api_keys')) r(m, p);
-- no credentials at all: PT401 -> HTTP 401
BEGIN;
SELECT pg_temp.request('GET', '/tasks', '{}');
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS error;
ROLLBACK;
-- a bearer token that is not a JWT is ours when it looks like a key
BEGIN;
SELECT pg_temp.request('GET', '/tasks', jsonb_build_object('authorization', 'Bearer ' || :'read_token'));
SELECT agent_tasks.authenticate();
SELECT current_user;
ROLLBACK;
-- wrong, malformed, revoked and expired keys: PT401
BEGIN;
SELECT pg_temp.request('GET', '/tasks', '{"x-api-key": "at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}');
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS error;
ROLLBACK;
BEGIN;
SELECT pg_temp.request('GET', '/tasks', '{"x-api-key": "secret"}');
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS error;
ROLLBACK;
SET agent_tasks.account = 'keys-a';
SET ROLE regress_app;
SELECT name, status, revoked_at IS NOT NULL AS revoked FROM agent_tasks.revoke_api_key(:'write_key');
-- revoking again changes nothing; an unknown key is PT404
SELECT status FROM agent_tasks.revoke_api_key(:'write_key');
SELECT expect_error($$SELECT agent_tasks.revoke_api_key('00000000-0000-7000-8000-000000000000')$$);
RESET ROLE;
RESET agent_tasks.account;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', jsonb_build_object('x-api-key', :'write_token'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS revoked;
ROLLBACK;
UPDATE agent_tasks_internal.api_keys SET expires_at = now() - interval '1 minute' WHERE id = :'read_key';
BEGIN;
SELECT pg_temp.request('GET', '/tasks', jsonb_build_object('x-api-key', :'read_token'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS expired;
ROLLBACK;
SET agent_tasks.account = 'keys-a';
SET ROLE regress_app;
SELECT name, status FROM agent_tasks.api_keys ORDER BY id;
RESET ROLE;
RESET agent_tasks.account;
-- a JWT verified by PostgREST (role and claims set) passes unchanged
BEGIN;
SELECT set_config('role', 'regress_writer', true),
	   set_config('request.method', 'POST', true), set_config('request.path', '/rpc/create_task', true),
	   set_config('request.headers', '{"authorization": "Bearer eyJ..."}', true),
	   set_config('request.jwt.claims', '{"role": "regress_writer", "account": "keys-b", "email": "jo@b.example"}', true);
SELECT agent_tasks.authenticate();
SELECT current_user, agent_tasks.current_account(), agent_tasks.current_user_email();
ROLLBACK;
-- keys of another account see nothing of this one
SET ROLE regress_app;
SET agent_tasks.account = 'keys-b';
SELECT count(*) AS other_accounts_keys FROM agent_tasks.api_keys;
SELECT error_code(format('SELECT agent_tasks.revoke_api_key(%L)', :'admin_key')) AS revoke_other_accounts_key;

--
-- Rate limits: task creations per account (default 100 per hour) and per key
--
RESET ROLE;
SHOW agent_tasks.task_rate_limit;
SHOW agent_tasks.task_rate_window;
-- the limit cannot be lifted by a session of an API role
SET ROLE regress_writer;
SELECT error_code('SET agent_tasks.task_rate_limit = 0') AS writer_sets_limit;
RESET ROLE;
SET ROLE regress_app;
SET agent_tasks.account = 'limits-a';
SET agent_tasks.email = 'lee@a.example';
SELECT subject, max_count, period, used, custom FROM agent_tasks.rate_limits;
SELECT subject, max_count, period, used, custom FROM agent_tasks.set_rate_limit(3, '1 hour');
SELECT expect_error($$SELECT agent_tasks.set_rate_limit(-1)$$);
SELECT expect_error($$SELECT agent_tasks.set_rate_limit(5, '0 seconds')$$);
SELECT expect_error($$SELECT agent_tasks.set_rate_limit(5, '1 hour', '00000000-0000-7000-8000-000000000000')$$);
SET ROLE regress_writer;
SELECT error_code($$SELECT agent_tasks.set_rate_limit(1000)$$) AS writer_raises_limit;
SELECT (agent_tasks.create_task('one')).status;
SELECT (agent_tasks.create_task('two', idempotency_key => 'two')).status;
-- a command-mode parent counts once, whatever its items
SELECT (agent_tasks.create_task('three', command => 'generate', items => '["a", "b", "c"]')).status;
-- the fourth is refused: PT429, with when to retry in the detail and the hint
SELECT pg_temp.masked(expect_error($$SELECT agent_tasks.create_task('four')$$)) AS over_limit;
SELECT count(*) AS tasks FROM agent_tasks.tasks WHERE parent_id IS NULL;
-- an idempotent replay creates nothing and is not counted
SELECT (agent_tasks.create_task('two', idempotency_key => 'two')).title AS replayed;
SET ROLE regress_app;
SELECT subject, max_count, used, resets_at > now() AS window_open FROM agent_tasks.rate_limits;
-- the window ends: counting starts again
RESET ROLE;
UPDATE agent_tasks_internal.rate_counters
   SET window_start = window_start - interval '1 hour', window_end = window_end - interval '1 hour'
 WHERE account = 'limits-a';
SET ROLE regress_writer;
SELECT (agent_tasks.create_task('four, later')).status;
SELECT subject, used FROM agent_tasks.rate_limits;
-- superusers (and BYPASSRLS roles) are not limited, nor counted
RESET ROLE;
SELECT count(*) AS superuser_created FROM generate_series(1, 5) i, agent_tasks.create_task('bulk ' || i) t;
SET ROLE regress_writer;
SELECT subject, used FROM agent_tasks.rate_limits;
-- 0 means no limit
SET ROLE regress_app;
SELECT subject, max_count FROM agent_tasks.set_rate_limit(0);
SET ROLE regress_writer;
SELECT count(*) AS unlimited FROM generate_series(1, 5) i, agent_tasks.create_task('free ' || i) t;
-- null removes the account's own limit: the server's default applies again
-- (to REST requests; SQL sessions then have no limit)
SET ROLE regress_app;
SELECT subject, max_count, period, custom FROM agent_tasks.set_rate_limit(NULL);
-- a key can have a limit of its own, counted besides the account's
SELECT k ->> 'token' AS lim_token, k ->> 'id' AS lim_key FROM agent_tasks.create_api_key('limited', '{task:write}') k \gset
SELECT count(*) AS limits FROM agent_tasks.set_rate_limit(1, NULL, :'lim_key');
SELECT subject = :'lim_key' AS is_key, max_count, period, used FROM agent_tasks.rate_limits ORDER BY subject = 'account' DESC;
RESET ROLE;
RESET agent_tasks.account;
RESET agent_tasks.email;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', jsonb_build_object('x-api-key', :'lim_token'));
SELECT agent_tasks.authenticate();
SELECT (agent_tasks.create_task('by the limited key')).status;
COMMIT;
-- through PostgREST the refusal carries an HTTP status and a Retry-After header
-- (SQLSTATE PGRST: PostgREST's own format); the body is the usual one
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', jsonb_build_object('x-api-key', :'lim_token'));
SELECT agent_tasks.authenticate();
DO $$
DECLARE
	st text; msg text; det text;
BEGIN
	PERFORM agent_tasks.create_task('again');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RAISE NOTICE 'sqlstate %', st;
	RAISE NOTICE 'body %', regexp_replace(regexp_replace(msg, '\d+ seconds', 'N seconds', 'g'), 'at_[A-Za-z0-9_-]{8}', 'at_<prefix>');
	RAISE NOTICE 'response %', regexp_replace(det, '"\d+"', '"N"');
END
$$;
ROLLBACK;
