-- REST access: API keys with scopes, authenticate() for PostgREST's
-- db-pre-request, grant_api() for the roles PostgREST logs in with, and rate
-- limits on task creation.
--
-- How a REST request is authenticated (PostgREST 12):
--   * PostgREST verifies a JWT itself (Authorization: Bearer <jwt>), switches
--     to the JWT's "role" and publishes its claims in request.jwt.claims;
--     authenticate() lets such a request through unchanged.
--   * An API key is a JWT too once the DBA has given the extension
--     PostgREST's jwt-secret (set_jwt_secret): create_api_key then signs
--     {role, account, key_id} with it (HS256), so "Authorization: Bearer
--     <key>" passes PostgREST's own check, and authenticate() recognises the
--     claim key_id.  PostgREST parses every Bearer token as a JWT and answers
--     401 (PGRST301) before db-pre-request runs when it is not one, so
--     without a secret keys are opaque ("at_...") and travel as X-Api-Key.
--   * Either shape also travels in the header X-Api-Key, or in "apikey" (the
--     header supabase-js always sends: used only when it holds one of our
--     keys, since it usually holds the project's anonymous JWT).
--   * Whatever the header, authenticate() finds the key by the SHA-256 of
--     the token, checks revocation, expiry and the scope the request needs,
--     then switches to the key's role (SET LOCAL ROLE) and sets the claims
--     (account, email, key_id) from the stored key, so that row-level
--     security sees the key's account exactly as with a JWT, and a revoked
--     key is refused at once although its signature stays valid.
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

-- ---------------------------------------------------------------------------
-- Keys as JWTs.  The secret is PostgREST's jwt-secret, given once by the DBA.
-- One row for the whole database: account is '' so that the account policy
-- every table gets (90_grants.sql) hides it from every API role and from
-- agent_tasks_engine; only the SECURITY DEFINER functions below, which keep
-- the rights of the superuser who installed the extension, read it.

CREATE TABLE agent_tasks_internal.jwt_secret (
	account		text NOT NULL DEFAULT '' CHECK (account = ''),
	secret		text NOT NULL CHECK (length(secret) >= 32),
	set_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account)
);
COMMENT ON TABLE agent_tasks_internal.jwt_secret IS 'PostgREST''s jwt-secret, with which create_api_key signs keys (set_jwt_secret); readable by no API role.';

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

CREATE VIEW agent_tasks.api_keys WITH (security_invoker = true) AS
SELECT id, account, name, prefix, scopes, user_email AS email, created_by, created_at, expires_at,
	   revoked_at, last_used_at,
	   CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
			WHEN expires_at <= now() THEN 'expired'
			ELSE 'active' END AS status
  FROM agent_tasks_internal.api_keys;
COMMENT ON VIEW agent_tasks.api_keys IS 'API keys of the current account (admin scope). The token itself is shown once, by create_api_key; only its SHA-256 is stored and it is never readable.';
COMMENT ON COLUMN agent_tasks.api_keys.prefix IS 'To recognise a key: the first characters of an at_ token, or "..." and the last ones of a key that is a JWT (they all start alike).';
COMMENT ON COLUMN agent_tasks.api_keys.scopes IS 'What the key may do: task:read, task:write, worker, admin (each implies the ones before it).';
COMMENT ON COLUMN agent_tasks.api_keys.email IS 'The person the key acts as (owner and actor of what it creates), if any.';
COMMENT ON COLUMN agent_tasks.api_keys.last_used_at IS 'Last request that changed data (minute precision). PostgREST runs reads in read-only transactions, which cannot record it.';
COMMENT ON COLUMN agent_tasks.api_keys.status IS 'active, revoked or expired.';

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

CREATE FUNCTION agent_tasks.authenticate()
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

-- ---------------------------------------------------------------------------
-- Rate limits: fixed windows counted in a table with a few rows per
-- (account, subject), one per shard.  A creation increments a shard row no
-- other transaction holds (SKIP LOCKED; a new shard when all are held),
-- keeps it until commit and adds up the shards, so concurrent creators of
-- one account do not wait for each other.  Creations still uncommitted in
-- other sessions are not seen: concurrent creators can pass the limit by at
-- most their number.

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
	shard			smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (account, subject, shard)
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

-- Root tasks count (a command-mode parent is one job; its children do not).
-- Roles that bypass row-level security (superusers, BYPASSRLS) bypass the
-- limit as well: maintenance, benchmarks and the extension's own jobs.  In C
-- (src/rate_limits.c): a creation that counts against no limit costs a role
-- look-up and one index probe; the others call count_task_creation().
CREATE FUNCTION agent_tasks_internal.task_rate_limit() RETURNS trigger
	AS 'MODULE_PATHNAME', 'at_task_rate_limit'
	LANGUAGE C;

CREATE TRIGGER task_rate_limit
	BEFORE INSERT ON agent_tasks_internal.tasks
	FOR EACH ROW WHEN (NOT agent_tasks_internal.restoring()
					   AND NEW.parent_id IS NULL)
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
  LEFT JOIN LATERAL (SELECT sum(x.count)::bigint AS count, max(x.window_end) AS window_end
					   FROM agent_tasks_internal.rate_counters x
					  WHERE x.account = s.account AND x.subject = s.subject AND x.window_end > now()) c ON true;
COMMENT ON VIEW agent_tasks.rate_limits IS 'Task-creation limits of the current account (subject "account") and of its API keys that have one (subject = key id), with the use of the current window. Over a limit create_task fails with PT429 (HTTP 429) and says when to retry.';
COMMENT ON COLUMN agent_tasks.rate_limits.max_count IS 'Task creations allowed per period (0 = no limit). Without a custom limit the account has agent_tasks.task_rate_limit per agent_tasks.task_rate_window (default 100 per hour) for REST requests, and none for SQL sessions.';
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
COMMENT ON FUNCTION agent_tasks.set_rate_limit(integer, interval, uuid) IS 'Set the task-creation limit of the current account (key null) or of one API key (admin scope): max_count per period (fixed windows; 0 = no limit; null removes the custom limit). A limit set for the account applies to SQL sessions as well as REST requests; without one only REST requests have the default. Returns the account''s limits.';

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
