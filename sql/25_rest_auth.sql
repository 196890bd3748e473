--
-- 25_rest_auth: API keys that are JWTs signed with PostgREST's secret (so
-- that they work as "Authorization: Bearer"), the apikey header, the
-- default rate limit for REST requests only, and origin = 'rest'.
-- authenticate() is called as PostgREST calls it (request.* set by hand).
-- Tokens, ids and times are never printed.
--
\set SHOW_CONTEXT never
RESET ROLE;
-- the anonymous role of these requests (as 20_api_keys sets it up)
SELECT agent_tasks.grant_api('regress_api_anon', 'anon');
CREATE FUNCTION pg_temp.request(method text, path text, headers jsonb, claims jsonb DEFAULT NULL)
	RETURNS void
	LANGUAGE sql
AS $$
	-- PostgREST switches to the JWT's role (else the anonymous one) and
	-- publishes the request and the JWT's claims
	SELECT set_config('role', coalesce(claims ->> 'role', 'regress_api_anon'), true),
		   set_config('request.method', method, true),
		   set_config('request.path', path, true),
		   set_config('request.headers', headers::text, true),
		   set_config('request.jwt.claims', coalesce(claims, '{"role": "regress_api_anon"}')::text, true),
		   set_config('agent_tasks.account', '', true),
		   set_config('agent_tasks.email', '', true);
$$;
CREATE FUNCTION pg_temp.jwt_part(token text, n integer) RETURNS jsonb
	LANGUAGE sql
	RETURN convert_from(decode(rpad(translate(split_part(token, '.', n), '-_', '+/'),
		(length(split_part(token, '.', n)) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb;
CREATE FUNCTION pg_temp.claims(token text) RETURNS jsonb
	LANGUAGE sql
	RETURN pg_temp.jwt_part(token, 2);
-- the end of a JWT key, by which messages name it, differs from key to key
CREATE FUNCTION pg_temp.masked(t text) RETURNS text
	LANGUAGE sql
	RETURN regexp_replace(regexp_replace(regexp_replace(regexp_replace(t, '\.\.\.[A-Za-z0-9_-]{8}', '...<end>', 'g'),
		'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', '<time>', 'g'), '\d+ seconds', 'N seconds', 'g'), '"\d+"', '"N"', 'g');
CREATE FUNCTION pg_temp.bearer(token text) RETURNS jsonb
	LANGUAGE sql
	RETURN jsonb_build_object('authorization', 'Bearer ' || token);

--
-- HMAC-SHA256 in C (RFC 4231, test case 2)
--
SELECT encode(agent_tasks_internal.hmac_sha256('Jefe', 'what do ya want for nothing?'), 'hex') = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' AS rfc4231;
SELECT agent_tasks_internal.base64url('\xfbff'::bytea) AS base64url;

--
-- The JWT secret: the DBA's alone, never readable through the API
--
SELECT expect_error($$SELECT agent_tasks.set_jwt_secret('too short')$$);
SET ROLE regress_app;
SELECT error_code($$SELECT agent_tasks.set_jwt_secret(repeat('x', 40))$$) AS admin_sets_secret;
SELECT error_code($$SELECT * FROM agent_tasks_internal.jwt_secret$$) AS admin_reads_secret;
RESET ROLE;
SET ROLE agent_tasks_engine;
SET agent_tasks.account = 'auth-a';
SELECT count(*) AS engine_sees_secret FROM agent_tasks_internal.jwt_secret;
RESET ROLE;
SELECT agent_tasks.set_jwt_secret('a-secret-of-at-least-32-characters-for-postgrest') AS set;

--
-- Keys are JWTs now: {role, account, key_id, iat, exp}, HS256
--
SET ROLE regress_app;
SET agent_tasks.account = 'auth-a';
SET agent_tasks.email = 'ann@a.example';
SELECT k ->> 'token' AS write_token, k ->> 'id' AS write_key, k ->> 'prefix' AS write_prefix, k ->> 'bearer' AS bearer
  FROM agent_tasks.create_api_key('bearer writer', '{task:write}') k \gset
SELECT k ->> 'token' AS read_token, k ->> 'id' AS read_key
  FROM agent_tasks.create_api_key('bearer reader', '{task:read}', now() + interval '1 day') k \gset
SELECT k ->> 'token' AS worker_token FROM agent_tasks.create_api_key('bearer worker', '{worker}') k \gset
SELECT k ->> 'token' AS admin_token FROM agent_tasks.create_api_key('bearer admin', '{admin}') k \gset
SELECT k ->> 'token' AS revoked_token, k ->> 'id' AS revoked_key FROM agent_tasks.create_api_key('bearer revoked', '{task:read}') k \gset
SELECT :'bearer' AS bearer,
	   :'write_token' ~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$' AS jwt_shape,
	   :'write_prefix' = '...' || right(:'write_token', 8) AS prefix_is_the_end;
SELECT pg_temp.jwt_part(:'write_token', 1) AS header;
SELECT c - 'key_id' - 'iat' AS claims, c ->> 'key_id' = :'write_key' AS key_id_claim,
	   (c ->> 'iat')::bigint BETWEEN extract(epoch FROM now()) - 60 AND extract(epoch FROM now()) AS iat_now
  FROM pg_temp.claims(:'write_token') c;
-- an expiring key carries exp, which PostgREST checks itself
SELECT c ->> 'role' AS role, (c ->> 'exp')::bigint - (c ->> 'iat')::bigint BETWEEN 86340 AND 86400 AS exp_in_a_day
  FROM pg_temp.claims(:'read_token') c;
RESET ROLE;
-- signed with the secret, as PostgREST verifies it; only the hash is stored
SELECT split_part(:'write_token', '.', 3) = agent_tasks_internal.base64url(agent_tasks_internal.hmac_sha256(
		   'a-secret-of-at-least-32-characters-for-postgrest',
		   convert_to(split_part(:'write_token', '.', 1) || '.' || split_part(:'write_token', '.', 2), 'UTF8'))) AS signed,
	   (SELECT key_hash = sha256(convert_to(:'write_token', 'UTF8')) FROM agent_tasks_internal.api_keys
		 WHERE id = :'write_key') AS hash_stored;
SELECT count(*) AS token_stored FROM agent_tasks_internal.api_keys k
 WHERE to_jsonb(k)::text LIKE '%' || split_part(:'write_token', '.', 3) || '%';

--
-- "Authorization: Bearer <key>": PostgREST verified the JWT and switched to
-- its role; authenticate() checks the key behind it and sets its claims
--
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', pg_temp.bearer(:'write_token'), pg_temp.claims(:'write_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, current_setting('request.jwt.claims')::jsonb - 'key_id' AS claims;
SELECT title, owner, origin FROM agent_tasks.create_task('Made with a Bearer key');
COMMIT;
-- a PostgREST whose jwt-role-claim-key finds no role in it runs the request
-- as the anonymous role: authenticate() switches to the key's role itself
BEGIN;
SELECT pg_temp.request('GET', '/tasks', pg_temp.bearer(:'write_token'), pg_temp.claims(:'write_token') - 'role');
SELECT current_user AS before;
SELECT agent_tasks.authenticate();
SELECT current_user AS after, agent_tasks.current_account();
ROLLBACK;
-- every scope: the role is the key's, the scope is checked per request
BEGIN;
SELECT pg_temp.request('GET', '/tasks', pg_temp.bearer(:'read_token'), pg_temp.claims(:'read_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, (SELECT count(*) FROM agent_tasks.tasks) AS tasks;
ROLLBACK;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', pg_temp.bearer(:'read_token'), pg_temp.claims(:'read_token'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS read_key_writes;
ROLLBACK;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/claim_runs', pg_temp.bearer(:'worker_token'), pg_temp.claims(:'worker_token'));
SELECT agent_tasks.authenticate();
SELECT current_user;
ROLLBACK;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_api_key', pg_temp.bearer(:'admin_token'), pg_temp.claims(:'admin_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, (agent_tasks.create_api_key('made over REST', '{task:read}')) ->> 'bearer' AS bearer;
ROLLBACK;
-- revoked: the signature is still valid, the key is not
SET ROLE regress_app;
SELECT status FROM agent_tasks.revoke_api_key(:'revoked_key');
RESET ROLE;
RESET agent_tasks.account;
RESET agent_tasks.email;
BEGIN;
SELECT pg_temp.request('GET', '/tasks', pg_temp.bearer(:'revoked_token'), pg_temp.claims(:'revoked_token'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS revoked;
ROLLBACK;
-- a JWT with the claim key_id, signed with the secret, that is no key of
-- ours (made by someone else who has the secret)
SELECT split_part(:'write_token', '.', 1) || '.' || split_part(:'write_token', '.', 2) || '.' ||
	   agent_tasks_internal.base64url(agent_tasks_internal.hmac_sha256('another', 'payload')) AS forged \gset
BEGIN;
SELECT pg_temp.request('GET', '/tasks', pg_temp.bearer(:'forged'), pg_temp.claims(:'forged'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS unknown;
ROLLBACK;
-- a Bearer JWT naming a key_id must be the key itself: not a malformed one
BEGIN;
SELECT pg_temp.request('GET', '/tasks', pg_temp.bearer('x.y.z'), pg_temp.claims(:'forged'));
SELECT pg_temp.masked(expect_error('SELECT agent_tasks.authenticate()')) AS malformed;
ROLLBACK;

--
-- X-Api-Key takes both shapes; apikey only when it holds one of ours
--
BEGIN;
SELECT pg_temp.request('GET', '/tasks', jsonb_build_object('x-api-key', :'read_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, agent_tasks.current_account();
ROLLBACK;
-- supabase-js with one of our keys: the key in apikey and as Bearer
BEGIN;
SELECT pg_temp.request('GET', '/tasks', pg_temp.bearer(:'read_token') || jsonb_build_object('apikey', :'read_token'),
	pg_temp.claims(:'read_token'));
SELECT agent_tasks.authenticate();
SELECT current_user, agent_tasks.current_account();
ROLLBACK;
-- supabase-js with a JWT of the project: apikey holds the anonymous JWT,
-- which is no key of ours and is ignored; the Bearer JWT decides
BEGIN;
SELECT pg_temp.request('GET', '/tasks',
	jsonb_build_object('apikey', 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLW9mLWFub3RoZXItc2VydmljZS1hbm9uLWtleQ',
					   'authorization', 'Bearer eyJ...'),
	'{"role": "regress_writer", "account": "auth-a", "email": "jo@a.example"}');
SELECT agent_tasks.authenticate();
SELECT current_user, agent_tasks.current_account(), agent_tasks.current_user_email();
ROLLBACK;
-- ... and anything else there is ignored too, not an error
BEGIN;
SELECT pg_temp.request('GET', '/tasks', jsonb_build_object('apikey', 'not a JWT at all'),
	'{"role": "regress_writer", "account": "auth-a"}');
SELECT agent_tasks.authenticate();
SELECT current_user;
ROLLBACK;
-- an at_ token in apikey is ours: checked, and refused when wrong
BEGIN;
SELECT pg_temp.request('GET', '/tasks', jsonb_build_object('apikey', 'at_' || repeat('A', 43)));
SELECT regexp_replace(expect_error('SELECT agent_tasks.authenticate()'), 'at_[A-Za-z0-9_-]{8}', 'at_<prefix>') AS wrong_at_apikey;
ROLLBACK;

--
-- Without the secret, keys are opaque at_ tokens for X-Api-Key; keys
-- issued as JWTs keep working there
--
SELECT agent_tasks.set_jwt_secret(NULL) AS removed;
SET ROLE regress_app;
SET agent_tasks.account = 'auth-a';
SELECT (k ->> 'token') ~ '^at_[A-Za-z0-9_-]{43}$' AS opaque, k ->> 'bearer' AS bearer,
	   k ->> 'prefix' = left(k ->> 'token', 11) AS prefix_is_the_start
  FROM agent_tasks.create_api_key('opaque', '{task:read}') k;
RESET ROLE;
RESET agent_tasks.account;
BEGIN;
SELECT pg_temp.request('GET', '/tasks', jsonb_build_object('x-api-key', :'write_token'));
SELECT agent_tasks.authenticate();
SELECT current_user;
ROLLBACK;

--
-- The default rate limit is for REST requests; SQL sessions are limited
-- only by a limit set for their account
--
SET agent_tasks.task_rate_limit = 2;
SET ROLE regress_writer;
SET agent_tasks.account = 'auth-limits';
SELECT count(*) AS sql_created FROM generate_series(1, 3) i, agent_tasks.create_task('sql ' || i) t;
SELECT subject, max_count, used, custom FROM agent_tasks.rate_limits;
RESET ROLE;
RESET agent_tasks.account;
SET ROLE regress_app;
SET agent_tasks.account = 'auth-limits';
SELECT k ->> 'token' AS limits_token FROM agent_tasks.create_api_key('limits', '{task:write}') k \gset
RESET ROLE;
RESET agent_tasks.account;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', jsonb_build_object('x-api-key', :'limits_token'));
SELECT agent_tasks.authenticate();
SELECT (agent_tasks.create_task('rest 1')).origin, (agent_tasks.create_task('rest 2')).origin;
SELECT pg_temp.masked(expect_error($$SELECT agent_tasks.create_task('rest 3')$$)) AS rest_limited;
ROLLBACK;
-- a limit set for the account applies to SQL sessions as well
SET ROLE regress_app;
SET agent_tasks.account = 'auth-limits';
SELECT subject, max_count FROM agent_tasks.set_rate_limit(1);
SET ROLE regress_writer;
SELECT (agent_tasks.create_task('sql 4')).status;
SELECT pg_temp.masked(expect_error($$SELECT agent_tasks.create_task('sql 5')$$)) AS sql_limited;
SET ROLE regress_app;
SELECT count(*) FROM agent_tasks.set_rate_limit(NULL);
RESET ROLE;
RESET agent_tasks.task_rate_limit;

--
-- origin: 'rest' through PostgREST, 'sql' otherwise, unless passed
--
SET ROLE regress_writer;
SET agent_tasks.account = 'auth-limits';
SELECT (agent_tasks.create_task('from psql')).origin AS sql_origin,
	   (agent_tasks.create_task('from a script', origin => 'nightly-import')).origin AS passed_origin;
RESET ROLE;
RESET agent_tasks.account;
BEGIN;
SELECT pg_temp.request('POST', '/rpc/create_task', jsonb_build_object('x-api-key', :'limits_token'));
SELECT agent_tasks.authenticate();
SELECT (agent_tasks.create_task('over REST')).origin AS rest_origin,
	   (agent_tasks.create_task('over REST, named', origin => 'zapier')).origin AS passed_origin;
ROLLBACK;

--
-- The former name of agent_tasks.email is still read, in C too (the actor
-- of the activity of a new task)
--
SET ROLE regress_writer;
SET agent_tasks.account = 'auth-limits';
SET agent_tasks."user" = 'Former@A.example';
SELECT id AS former_task, created_by FROM agent_tasks.create_task('under the former name') \gset
SELECT :'created_by' AS created_by, actor FROM agent_tasks.activities WHERE task_id = :'former_task' ORDER BY id LIMIT 1;
RESET agent_tasks."user";
RESET ROLE;
RESET agent_tasks.account;
