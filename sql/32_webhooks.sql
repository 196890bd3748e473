--
-- 32_webhooks: Standard Webhooks signing (the design's test vector), the
-- webhook API and its errors, the outbox written by triggers, and the
-- delivery policy of claim_webhook_deliveries / finish_webhook_delivery,
-- driven by hand as the dispatcher would (no worker serves this database).
-- Ids, secrets and times are never printed.
--
\set SHOW_CONTEXT never
RESET ROLE;

--
-- Signing
--
SELECT agent_tasks_internal.sign_webhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
	'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}') AS test_vector;
-- the same key without the prefix is refused; an empty body signs
SELECT expect_error($$SELECT agent_tasks_internal.sign_webhook('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1, 'x')$$);
SELECT agent_tasks_internal.sign_webhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1, '') ~ '^v1,[A-Za-z0-9+/]{43}=$' AS empty_body_signs;
SELECT expect_error($$SELECT agent_tasks_internal.sign_webhook('whsec_', 'msg_1', 1, 'x')$$);
SELECT expect_error($$SELECT agent_tasks_internal.sign_webhook('whsec_!!!!not base64!!!!', 'msg_1', 1, 'x')$$);
SELECT expect_error($$SELECT agent_tasks_internal.sign_webhook('whsec_AAAAAAAAAAA=', 'msg_1', 1, 'x')$$);
SELECT expect_error(format('SELECT agent_tasks_internal.sign_webhook(%L, %L, 1, %L)', 'whsec_' || repeat('A', 200), 'msg_1', 'x'));
SELECT agent_tasks_internal.new_webhook_secret() ~ '^whsec_[A-Za-z0-9+/]{32}$' AS generated_secret_format,
	   agent_tasks_internal.new_webhook_secret() <> agent_tasks_internal.new_webhook_secret() AS secrets_differ;

--
-- Creating endpoints (admin scope)
--
SET ROLE regress_writer;
SET agent_tasks.account = 'hooks-a';
SELECT error_code($$SELECT agent_tasks.create_webhook('https://hooks.example.com/a', '{*}')$$) AS writer_cannot_create;
SET ROLE regress_app;
SET agent_tasks.email = 'hook-admin@a.example';
SELECT expect_error($$SELECT agent_tasks.create_webhook('https://hooks.example.com/a', '{}')$$);
SELECT expect_error($$SELECT agent_tasks.create_webhook('https://hooks.example.com/a', NULL)$$);
SELECT expect_error($$SELECT agent_tasks.create_webhook('https://hooks.example.com/a', '{task.created,task.exploded}')$$);
SELECT expect_error($$SELECT agent_tasks.create_webhook(NULL, '{*}')$$);
SELECT error_code($$SELECT agent_tasks.create_webhook('not a url', '{*}')$$) AS bad_url;
SELECT expect_error($$SELECT agent_tasks.create_webhook('https://hooks.example.com/a', '{*}', 'secret')$$);
SELECT expect_error($$SELECT agent_tasks.create_webhook('https://hooks.example.com/a', '{*}', retry_schedule => '{1 s, -1 s}')$$);
SELECT expect_error($$SELECT agent_tasks.create_webhook('https://hooks.example.com/a', '{*}', timeout => '1 minute')$$);

-- the secret is returned this once: generated, or the one given
SELECT w ->> 'id' AS hook_all, w ->> 'secret' AS secret_all,
	   w - 'id' - 'secret' - 'created_at' AS shown, (w ->> 'secret') ~ '^whsec_' AS generated
  FROM agent_tasks.create_webhook('https://hooks.example.com/all', '{*}') w \gset
SELECT :'shown' AS created, :'generated' AS generated_secret;
SELECT w ->> 'id' AS hook_done, w ->> 'secret' = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' AS secret_kept
  FROM agent_tasks.create_webhook('https://hooks.example.com/done', '{task.failed,task.completed,task.completed}',
	'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'completions only', '{1 s, 2 s}', '5 seconds') w \gset
SELECT :'secret_kept' AS secret_kept;
-- the view: no secret anywhere
SELECT url, events, description, retry_schedule, timeout, enabled, disabled_reason,
	   secret_created_at IS NOT NULL AS has_secret, previous_secret_expires_at, created_by
  FROM agent_tasks.webhook_endpoints ORDER BY url;
SELECT string_agg(column_name::text, ', ' ORDER BY ordinal_position) AS endpoint_columns
  FROM information_schema.columns WHERE table_schema = 'agent_tasks' AND table_name = 'webhook_endpoints';
SELECT error_code('SELECT secret FROM agent_tasks_internal.webhook_secrets') AS admin_cannot_read_secrets;
SELECT error_code($$SELECT * FROM agent_tasks_internal.claim_webhook_deliveries('me', 1)$$) AS admin_cannot_claim;
SET ROLE regress_reader;
SELECT error_code('SELECT * FROM agent_tasks.webhook_deliveries') AS reader_cannot_see_deliveries;
SET ROLE regress_app;

--
-- The outbox: events written with the change, in the same transaction
--
SELECT (agent_tasks.create_task('hooked', callback_url => 'https://cb.example.com/done?token=abc', external_id => 'ext-1')).id AS t1 \gset
SELECT (agent_tasks.set_task_status(:'t1', 'queued')).status AS queued;
SELECT (agent_tasks.set_task_status(:'t1', 'in_progress')).status AS started;
SELECT agent_tasks.send_message(:'t1', 'progress note', 'agent') IS NOT NULL AS message;
SELECT (agent_tasks.set_task_status(:'t1', 'completed', output =>
	'{"created": ["docs/new.md"], "modified": ["docs/old.md"], "deleted": [], "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8"}')).status AS completed;
SELECT (agent_tasks.send_feedback(:'t1', 'like')).status AS feedback;
SELECT d.kind, d.event, w.url AS endpoint, d.url, d.status, d.attempts, d.in_flight, d.next_attempt_at IS NOT NULL AS due
  FROM agent_tasks.webhook_deliveries d LEFT JOIN agent_tasks.webhook_endpoints w ON w.id = d.webhook
 WHERE d.task_id = :'t1'
 ORDER BY d.id;
-- the payload: type, ISO-8601 timestamp, data = the task (+ previous_status, message)
SELECT event, payload ->> 'type' = event AS typed,
	   payload ->> 'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS iso8601,
	   (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(payload -> 'data') k) AS data_keys
  FROM agent_tasks.webhook_deliveries
 WHERE task_id = :'t1' AND kind = 'webhook' AND webhook = :'hook_all'
 ORDER BY id;
SELECT payload -> 'data' ->> 'status' AS status, payload -> 'data' ->> 'previous_status' AS previous,
	   payload -> 'data' -> 'output' ->> 'commit' AS commit, payload -> 'data' ->> 'external_id' AS external_id
  FROM agent_tasks.webhook_deliveries WHERE task_id = :'t1' AND event = 'task.completed' AND webhook = :'hook_all';
SELECT payload -> 'data' -> 'message' ->> 'body' AS body, payload -> 'data' -> 'message' ->> 'role' AS role
  FROM agent_tasks.webhook_deliveries WHERE task_id = :'t1' AND event = 'task.message';
SELECT payload -> 'data' ->> 'feedback' AS feedback FROM agent_tasks.webhook_deliveries WHERE task_id = :'t1' AND event = 'task.feedback';
-- the callback (Flint style): succeeded, resources, commit, ISO-8601 timestamp
SELECT payload - 'timestamp' - 'task_id' AS callback, payload ->> 'task_id' = :'t1' AS for_task,
	   payload ->> 'timestamp' ~ 'Z$' AS iso8601
  FROM agent_tasks.webhook_deliveries WHERE task_id = :'t1' AND kind = 'callback';
-- a failed task's callback carries the error
SELECT (agent_tasks.create_task('doomed', callback_url => 'https://cb.example.com/done')).id AS t2 \gset
SELECT (agent_tasks.set_task_status(:'t2', 'queued')).status AS queued;
SELECT (agent_tasks.set_task_status(:'t2', 'in_progress')).status AS running;
SELECT (agent_tasks.set_task_status(:'t2', 'failed', 'rejected', error => '{"message": "the repository is archived"}')).status AS failed;
SELECT payload - 'timestamp' - 'task_id' AS callback FROM agent_tasks.webhook_deliveries WHERE task_id = :'t2' AND kind = 'callback';
-- a rolled-back change leaves nothing behind
BEGIN;
SELECT (agent_tasks.create_task('never')).status AS created;
SELECT count(*) AS pending_inside FROM agent_tasks.webhook_deliveries d JOIN agent_tasks.tasks t ON t.id = d.task_id WHERE t.title = 'never';
ROLLBACK;
SELECT count(*) AS after_rollback FROM agent_tasks.webhook_deliveries d WHERE d.payload -> 'data' ->> 'title' = 'never';
-- other accounts see nothing
SET agent_tasks.account = 'hooks-b';
SELECT count(*) AS other_account_endpoints FROM agent_tasks.webhook_endpoints;
SELECT count(*) AS other_account_deliveries FROM agent_tasks.webhook_deliveries;
SELECT expect_error(format('SELECT agent_tasks.disable_webhook(%L)', :'hook_all'));
SELECT expect_error(format('SELECT agent_tasks.redeliver(%L)', :'t1'));
SET agent_tasks.account = 'hooks-a';

--
-- The dispatcher's side: claim, sign, finish (as the dispatcher, a superuser)
--
RESET ROLE;
-- (other files' tasks with a callback_url may have deliveries too: only hooks-a counts)
CREATE TEMP TABLE claimed AS
SELECT * FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) WHERE account = 'hooks-a';
SELECT count(*) AS claimed, count(DISTINCT id) AS attempts,
	   bool_and(timeout_ms IN (15000, 5000)) AS timeouts, bool_and(max_response_bytes = 65536) AS body_cap,
	   bool_and(body = (SELECT d.body FROM agent_tasks_internal.webhook_deliveries d
						 JOIN agent_tasks_internal.webhook_attempts a ON a.delivery_id = d.id WHERE a.id = c.id)) AS body_sent
  FROM claimed c;
SELECT (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(headers) k) AS header_names, count(*)
  FROM claimed GROUP BY 1 ORDER BY 1;
-- the signature: HMAC of "webhook-id.webhook-timestamp.body" with the endpoint's secret
SELECT bool_and(headers ->> 'webhook-signature' = agent_tasks_internal.sign_webhook(
		'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', headers ->> 'webhook-id', (headers ->> 'webhook-timestamp')::bigint, body)) AS signed_with_given_secret,
	   bool_and(abs((headers ->> 'webhook-timestamp')::bigint - extract(epoch FROM now())) < 60) AS timestamp_now
  FROM claimed WHERE url = 'https://hooks.example.com/done';
SELECT bool_and(headers ->> 'webhook-signature' = agent_tasks_internal.sign_webhook(
		:'secret_all', headers ->> 'webhook-id', (headers ->> 'webhook-timestamp')::bigint, body)) AS signed_with_generated_secret
  FROM claimed WHERE url = 'https://hooks.example.com/all';
SELECT bool_and(headers ->> 'webhook-id' = 'msg_' || a.delivery_id) AS id_is_delivery
  FROM claimed c JOIN agent_tasks_internal.webhook_attempts a ON a.id = c.id;
SELECT count(*) AS claimed_again FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) WHERE account = 'hooks-a';
SET ROLE regress_app;
SELECT status, in_flight, attempts, next_attempt_at IS NULL AS not_scheduled, count(*)
  FROM agent_tasks.webhook_deliveries GROUP BY 1, 2, 3, 4;
SELECT status, worker, count(*) FROM agent_tasks.webhook_attempts GROUP BY 1, 2;
RESET ROLE;

-- helpers: the claimed attempt of an event, and what became of it
CREATE FUNCTION pg_temp.attempt_of(ev text, hook text) RETURNS uuid LANGUAGE sql AS $$
	SELECT a.id FROM agent_tasks_internal.webhook_attempts a
	  JOIN agent_tasks_internal.webhook_deliveries d ON d.account = a.account AND d.id = a.delivery_id
	 WHERE d.event = ev AND d.url = hook AND d.task_id = (SELECT id FROM agent_tasks_internal.tasks WHERE title = 'hooked')
	 ORDER BY a.id DESC LIMIT 1
$$;
CREATE FUNCTION pg_temp.finish(attempt uuid, code integer, headers jsonb DEFAULT NULL, body text DEFAULT 'ok',
	err text DEFAULT NULL, latency integer DEFAULT 12) RETURNS void LANGUAGE sql AS $$
	SELECT agent_tasks_internal.finish_webhook_delivery('hooks-a', attempt, code, headers, body, err, latency)
$$;
CREATE FUNCTION pg_temp.state(ev text, hook text) RETURNS text LANGUAGE sql AS $$
	SELECT format('%s attempts=%s code=%s error=%s in_flight=%s', d.status, d.attempts, d.last_status_code,
				  d.last_error, d.leased_at IS NOT NULL)
	  FROM agent_tasks_internal.webhook_deliveries d
	 WHERE d.event = ev AND d.url = hook AND d.task_id = (SELECT id FROM agent_tasks_internal.tasks WHERE title = 'hooked')
$$;
CREATE FUNCTION pg_temp.delay(ev text, hook text) RETURNS numeric LANGUAGE sql AS $$
	SELECT round(extract(epoch FROM d.next_attempt_at - now())::numeric, 1)
	  FROM agent_tasks_internal.webhook_deliveries d
	 WHERE d.event = ev AND d.url = hook AND d.task_id = (SELECT id FROM agent_tasks_internal.tasks WHERE title = 'hooked')
$$;
\set all '''https://hooks.example.com/all'''
\set done '''https://hooks.example.com/done'''

-- 2xx delivers; the attempt keeps code, latency and the start of the body
SELECT pg_temp.finish(pg_temp.attempt_of('task.created', :all), 204, '{"Content-Type": "text/plain"}', repeat('x', 5000));
SELECT pg_temp.state('task.created', :all);
SELECT status, status_code, error, length(response_body) AS body_kept, latency_ms
  FROM agent_tasks_internal.webhook_attempts WHERE id = pg_temp.attempt_of('task.created', :all);
-- a second outcome for the same attempt changes nothing
SELECT pg_temp.finish(pg_temp.attempt_of('task.created', :all), 500);
SELECT pg_temp.state('task.created', :all);

-- 500: retried on the default schedule, 5 s (+-10 %) after the first attempt
SELECT pg_temp.finish(pg_temp.attempt_of('task.queued', :all), 500, NULL, 'oops', NULL, 30);
SELECT pg_temp.state('task.queued', :all);
SELECT pg_temp.delay('task.queued', :all) BETWEEN 4.4 AND 5.6 AS five_seconds;
-- the endpoint's own schedule: 1 s
SELECT pg_temp.finish(pg_temp.attempt_of('task.completed', :done), 503);
SELECT pg_temp.delay('task.completed', :done) BETWEEN 0.8 AND 1.2 AS one_second;
-- agent_tasks.webhook_retry_scale shortens scheduled delays (tests)
SET agent_tasks.webhook_retry_scale = 0.01;
SELECT pg_temp.finish(pg_temp.attempt_of('task.started', :all), 502);
SELECT pg_temp.delay('task.started', :all) BETWEEN 0.0 AND 0.1 AS scaled;
RESET agent_tasks.webhook_retry_scale;
-- Retry-After in seconds (any header case) replaces the scheduled delay
SELECT pg_temp.finish(pg_temp.attempt_of('task.message', :all), 429, '{"retry-after": "120"}');
SELECT pg_temp.delay('task.message', :all) BETWEEN 118 AND 120 AS retry_after_120_seconds;
-- Retry-After as an HTTP date
SELECT pg_temp.finish(pg_temp.attempt_of('task.feedback', :all), 503,
	jsonb_build_object('Retry-After', to_char((now() + interval '1 hour') AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS "GMT"')));
SELECT pg_temp.delay('task.feedback', :all) BETWEEN 3590 AND 3600 AS retry_after_date;
SELECT agent_tasks_internal.retry_after(h) AS retry_after
  FROM (VALUES ('{"Retry-After": "0"}'::jsonb), ('{"RETRY-AFTER": " 7 "}'), ('{"Retry-After": "999999999"}'),
			   ('{"Retry-After": "soon"}'), ('{"Retry-After": "Wed, 31 Feb 2024 07:28:00 GMT"}'),
			   ('{"Retry-After": ["3", "4"]}'), ('[1, 2]'), ('"x"'), (NULL)) v(h);

-- no response at all (connection refused, timeout): error kept, retried
SELECT pg_temp.finish(pg_temp.attempt_of('task.completed', :all), NULL, NULL, NULL, 'connection refused', -5);
SELECT pg_temp.state('task.completed', :all);
SELECT status, status_code, error, latency_ms FROM agent_tasks_internal.webhook_attempts WHERE id = pg_temp.attempt_of('task.completed', :all);

-- whatever the network sends, finish_webhook_delivery does not raise
SELECT pg_temp.finish(agent_tasks.uuid_v7(), 200) AS unknown_attempt;
SELECT agent_tasks_internal.finish_webhook_delivery('no-such-account', agent_tasks.uuid_v7(), NULL, NULL, NULL, NULL, NULL) AS nothing;
SELECT a.id AS callback_attempt FROM agent_tasks_internal.webhook_attempts a
  JOIN agent_tasks_internal.webhook_deliveries d ON d.id = a.delivery_id WHERE d.task_id = :'t1' AND d.kind = 'callback' \gset
SELECT pg_temp.finish(:'callback_attempt', 99999, '"not an object"', repeat('é', 3000), repeat('e', 5000), NULL);
SELECT status, status_code, length(error) AS error_kept, length(response_body) AS body_kept, latency_ms
  FROM agent_tasks_internal.webhook_attempts WHERE id = :'callback_attempt';
SELECT status, attempts, last_status_code FROM agent_tasks_internal.webhook_deliveries WHERE task_id = :'t1' AND kind = 'callback';

-- 410 Gone: the endpoint is disabled, the delivery fails, the task's trail says so
SELECT (SELECT a.id FROM agent_tasks_internal.webhook_attempts a JOIN agent_tasks_internal.webhook_deliveries d ON d.id = a.delivery_id
		 WHERE d.task_id = :'t2' AND d.url = :done) AS gone_attempt \gset
SELECT pg_temp.finish(:'gone_attempt', 410);
SELECT d.status, d.attempts, d.last_status_code, d.last_error
  FROM agent_tasks_internal.webhook_deliveries d WHERE d.task_id = :'t2' AND d.url = :done;
SET ROLE regress_app;
SELECT enabled, disabled_reason, disabled_at IS NOT NULL AS disabled_at FROM agent_tasks.webhook_endpoints WHERE id = :'hook_done';
SELECT event, mask(data::text) FROM agent_tasks.activities WHERE task_id = :'t2' AND event LIKE 'webhook%';
-- no new deliveries for it; its pending ones are cancelled when they come due
SELECT (agent_tasks.create_task('after gone')).id AS t3 \gset
SELECT (agent_tasks.set_task_status(:'t3', 'queued')).status AS queued;
SELECT (agent_tasks.set_task_status(:'t3', 'in_progress')).status AS running;
SELECT (agent_tasks.set_task_status(:'t3', 'completed')).status AS completed;
SELECT count(*) AS new_deliveries_to_disabled FROM agent_tasks.webhook_deliveries WHERE webhook = :'hook_done' AND task_id = :'t3';
RESET ROLE;
UPDATE agent_tasks_internal.webhook_deliveries SET next_attempt_at = now() WHERE url = :done AND status = 'pending';
SELECT count(*) AS claimed_for_disabled FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url = :done;
SELECT status, last_error, count(*) FROM agent_tasks_internal.webhook_deliveries WHERE url = :done GROUP BY 1, 2 ORDER BY 1;

-- exhausted: after the last scheduled retry the delivery fails and is logged
SET ROLE regress_app;
SELECT w ->> 'id' AS hook_short FROM agent_tasks.create_webhook('https://hooks.example.com/short', '{task.created}',
	retry_schedule => '{0 s}') w \gset
SELECT (agent_tasks.create_task('short-lived')).id AS t4 \gset
RESET ROLE;
SELECT pg_temp.finish(c.id, 500) FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/short';
SELECT status, attempts FROM agent_tasks_internal.webhook_deliveries WHERE endpoint_id = :'hook_short';
SELECT pg_temp.finish(c.id, 500, NULL, 'still broken') FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/short';
SELECT status, attempts, last_status_code, last_error, leased_at IS NULL AS not_in_flight
  FROM agent_tasks_internal.webhook_deliveries WHERE endpoint_id = :'hook_short';
SELECT event, mask(data::text) FROM agent_tasks.activities WHERE task_id = :'t4' AND event LIKE 'webhook%';

-- a dispatcher that dies mid-attempt: the lease runs out, the delivery is
-- claimed again and the old attempt is marked lost; its late 2xx still counts
SET ROLE regress_app;
SELECT (agent_tasks.create_task('lease')).id AS t5 \gset
RESET ROLE;
SELECT c.id AS first_attempt FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/short' \gset
SELECT round(extract(epoch FROM next_attempt_at - now())) AS lease_seconds, leased_at IS NOT NULL AS leased
  FROM agent_tasks_internal.webhook_deliveries WHERE endpoint_id = :'hook_short' AND task_id = :'t5';
UPDATE agent_tasks_internal.webhook_deliveries SET next_attempt_at = now() - interval '1 second'
 WHERE endpoint_id = :'hook_short' AND task_id = :'t5';
SELECT c.id AS second_attempt FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/short' \gset
SELECT attempt, status, error FROM agent_tasks_internal.webhook_attempts a
 WHERE a.delivery_id = (SELECT id FROM agent_tasks_internal.webhook_deliveries WHERE task_id = :'t5' AND endpoint_id = :'hook_short')
 ORDER BY attempt;
SELECT pg_temp.finish(:'second_attempt', 500);
SELECT status, attempts FROM agent_tasks_internal.webhook_deliveries WHERE task_id = :'t5' AND endpoint_id = :'hook_short';
SELECT pg_temp.finish(:'first_attempt', 200);
SELECT status, attempts, last_status_code FROM agent_tasks_internal.webhook_deliveries WHERE task_id = :'t5' AND endpoint_id = :'hook_short';
-- attempts in flight when the server stopped are due again at once
SET ROLE regress_app;
SELECT (agent_tasks.create_task('restart')).id AS t6 \gset
RESET ROLE;
SELECT count(*) AS claimed FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/short';
UPDATE agent_tasks_internal.webhook_deliveries SET leased_at = pg_postmaster_start_time() - interval '1 minute'
 WHERE task_id = :'t6' AND endpoint_id = :'hook_short';
SELECT count(*) AS claimed_after_restart FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/short';
SELECT string_agg(status, ',' ORDER BY attempt) AS attempts FROM agent_tasks_internal.webhook_attempts
 WHERE delivery_id = (SELECT id FROM agent_tasks_internal.webhook_deliveries WHERE task_id = :'t6' AND endpoint_id = :'hook_short');

--
-- redeliver, disable / enable, rotate
--
SET ROLE regress_app;
SELECT expect_error(format('SELECT agent_tasks.redeliver(%L)', :'t1'));
SELECT id AS delivered FROM agent_tasks.webhook_deliveries WHERE task_id = :'t1' AND event = 'task.created' AND webhook = :'hook_all' \gset
SELECT status, attempts, in_flight, next_attempt_at IS NOT NULL AS due FROM agent_tasks.redeliver(:'delivered');
SELECT id AS in_flight FROM agent_tasks.webhook_deliveries WHERE task_id = :'t6' AND webhook = :'hook_short' \gset
SELECT expect_error(format('SELECT agent_tasks.redeliver(%L)', :'in_flight'));
SELECT id AS failed_delivery FROM agent_tasks.webhook_deliveries WHERE task_id = :'t4' AND webhook = :'hook_short' \gset
SELECT enabled FROM agent_tasks.disable_webhook(:'hook_short', 'maintenance');
SELECT enabled, disabled_reason FROM agent_tasks.disable_webhook(:'hook_short');
SELECT expect_error(format('SELECT agent_tasks.redeliver(%L)', :'failed_delivery'));
SELECT enabled, disabled_reason FROM agent_tasks.enable_webhook(:'hook_short');
SELECT status, attempts, last_error FROM agent_tasks.redeliver(:'failed_delivery');
RESET ROLE;
-- a fresh schedule after redeliver: one more failure is retried, not final
SELECT pg_temp.finish(c.id, 500) FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c
 WHERE c.headers ->> 'webhook-id' = 'msg_' || :'failed_delivery';
SELECT status, attempts, schedule_start FROM agent_tasks_internal.webhook_deliveries WHERE id = :'failed_delivery';
SET ROLE regress_app;
SELECT expect_error(format('SELECT agent_tasks.disable_webhook(%L)', agent_tasks.uuid_v7()));
SELECT expect_error(format('SELECT agent_tasks.rotate_webhook_secret(%L, %L)', :'hook_all', 'whsec_short'));
-- rotation: the new secret is returned once; both sign for 24 hours
SELECT agent_tasks.rotate_webhook_secret(:'hook_all') AS new_secret \gset
SELECT :'new_secret' ~ '^whsec_' AS new_secret_format, :'new_secret' <> :'secret_all' AS changed;
SELECT round(extract(epoch FROM previous_secret_expires_at - now()) / 3600) AS old_secret_hours_left
  FROM agent_tasks.webhook_endpoints WHERE id = :'hook_all';
RESET ROLE;
UPDATE agent_tasks_internal.webhook_deliveries SET status = 'delivered' WHERE status = 'pending';
SET ROLE regress_app;
SELECT (agent_tasks.create_task('rotated')).id AS t7 \gset
SELECT id AS rotated_delivery FROM agent_tasks.webhook_deliveries WHERE task_id = :'t7' AND webhook = :'hook_all' \gset
RESET ROLE;
SELECT c.headers ->> 'webhook-signature' AS sigs, c.headers ->> 'webhook-id' AS mid,
	   c.headers ->> 'webhook-timestamp' AS ts, c.body AS body
  FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url = :all \gset
SELECT :'mid' = 'msg_' || :'rotated_delivery' AS webhook_id,
	   split_part(:'sigs', ' ', 1) = agent_tasks_internal.sign_webhook(:'new_secret', :'mid', :'ts'::bigint, :'body') AS new_first,
	   split_part(:'sigs', ' ', 2) = agent_tasks_internal.sign_webhook(:'secret_all', :'mid', :'ts'::bigint, :'body') AS old_second;
-- a given secret can replace it as well
SET ROLE regress_app;
SELECT agent_tasks.rotate_webhook_secret(:'hook_all', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw') = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' AS given;
RESET ROLE;
SELECT count(*) AS secrets, count(*) FILTER (WHERE expires_at IS NULL) AS current
  FROM agent_tasks_internal.webhook_secrets WHERE endpoint_id = :'hook_all';

--
-- update_webhook / delete_webhook
--
SET ROLE regress_writer;
SELECT error_code(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"description": "x"}')) AS writer_cannot_update,
	   error_code(format('SELECT agent_tasks.delete_webhook(%L)', :'hook_done')) AS writer_cannot_delete;
SET ROLE regress_app;
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', agent_tasks.uuid_v7(), '{}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '[1]'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"secret": "whsec_x"}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"url": "http://hooks.example.com/plain"}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"url": null}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"url": 42}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"events": []}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"events": ["task.exploded"]}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"events": "task.created"}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"retry_schedule": ["1 s", "soon"]}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"retry_schedule": ["8 days"]}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"timeout": "2 minutes"}'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{"timeout": "whenever"}'));
-- a failed update changes nothing
SELECT url, events, description, retry_schedule, timeout FROM agent_tasks.webhook_endpoints WHERE id = :'hook_done';
-- pending deliveries follow a new URL; finished ones keep theirs
SELECT (agent_tasks.create_task('before the move')).id AS t8 \gset
SELECT (agent_tasks.set_task_status(:'t8', 'queued')).status AS queued;
SELECT (agent_tasks.set_task_status(:'t8', 'in_progress')).status AS running;
SELECT (agent_tasks.set_task_status(:'t8', 'completed')).status AS completed;
SELECT enabled FROM agent_tasks.enable_webhook(:'hook_done');
SELECT (agent_tasks.create_task('moving', callback_url => NULL)).id AS t9 \gset
SELECT (agent_tasks.set_task_status(:'t9', 'queued')).status AS queued;
SELECT (agent_tasks.set_task_status(:'t9', 'in_progress')).status AS running;
SELECT (agent_tasks.set_task_status(:'t9', 'failed', 'rejected')).status AS failed;
SELECT url, events, description, retry_schedule, timeout, enabled, updated_at >= created_at AS touched
  FROM agent_tasks.update_webhook(:'hook_done', '{"url": "https://hooks.example.com/moved", "events": ["task.failed", "task.created", "task.failed"],
	"description": null, "retry_schedule": ["2 s", "1 minute"], "timeout": "3 seconds"}');
SELECT d.event, d.status, d.url FROM agent_tasks.webhook_deliveries d
 WHERE d.webhook = :'hook_done' AND d.task_id IN (:'t8', :'t9') ORDER BY d.id;
-- the new settings apply to the next claim and the next retry
RESET ROLE;
UPDATE agent_tasks_internal.webhook_deliveries SET status = 'delivered' WHERE status = 'pending' AND endpoint_id IS DISTINCT FROM :'hook_done';
SELECT url, timeout_ms FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.account = 'hooks-a';
SELECT pg_temp.finish(a.id, 500) FROM agent_tasks_internal.webhook_attempts a
  JOIN agent_tasks_internal.webhook_deliveries d ON d.account = a.account AND d.id = a.delivery_id
 WHERE d.endpoint_id = :'hook_done' AND d.task_id = :'t9' AND a.status = 'in_flight';
SELECT round(extract(epoch FROM next_attempt_at - now())) AS retry_seconds
  FROM agent_tasks_internal.webhook_deliveries WHERE endpoint_id = :'hook_done' AND task_id = :'t9';
UPDATE agent_tasks_internal.webhook_deliveries SET next_attempt_at = now() + interval '1 hour'
 WHERE endpoint_id = :'hook_done' AND task_id = :'t9';
-- an empty patch changes nothing but is no error; null description and schedule clear them
SET ROLE regress_app;
SELECT url, events, timeout FROM agent_tasks.update_webhook(:'hook_done', '{}');
SELECT retry_schedule FROM agent_tasks.update_webhook(:'hook_done', '{"retry_schedule": null}');

-- delete: pending deliveries are cancelled, the history stays, the secrets go
SELECT (agent_tasks.create_task('after the move')).id AS t10 \gset
SELECT (agent_tasks.set_task_status(:'t10', 'queued')).status AS queued;
SELECT (agent_tasks.set_task_status(:'t10', 'in_progress')).status AS running;
SELECT (agent_tasks.set_task_status(:'t10', 'failed', 'rejected')).status AS failed;
RESET ROLE;
SELECT count(*) AS sent_before_delete FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/moved';
SET ROLE regress_app;
SELECT status, in_flight, count(*) FROM agent_tasks.webhook_deliveries WHERE webhook = :'hook_done' GROUP BY 1, 2 ORDER BY 1, 2;
SET agent_tasks.account = 'hooks-b';
SELECT expect_error(format('SELECT agent_tasks.delete_webhook(%L)', :'hook_done'));
SELECT expect_error(format('SELECT agent_tasks.update_webhook(%L, %L)', :'hook_done', '{}'));
SET agent_tasks.account = 'hooks-a';
SELECT agent_tasks.delete_webhook(:'hook_done') AS deleted;
SELECT count(*) AS endpoint_left FROM agent_tasks.webhook_endpoints WHERE id = :'hook_done';
SELECT status, last_error, count(*) FROM agent_tasks.webhook_deliveries WHERE webhook = :'hook_done' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) > 0 AS attempts_kept FROM agent_tasks.webhook_attempts a
  JOIN agent_tasks.webhook_deliveries d ON d.id = a.delivery_id WHERE d.webhook = :'hook_done';
SELECT expect_error(format('SELECT agent_tasks.delete_webhook(%L)', :'hook_done'));
SELECT expect_error(format('SELECT agent_tasks.redeliver(%L)', (SELECT id FROM agent_tasks.webhook_deliveries WHERE webhook = :'hook_done' AND task_id = :'t10' LIMIT 1)));
RESET ROLE;
SELECT count(*) AS secrets_left FROM agent_tasks_internal.webhook_secrets WHERE endpoint_id = :'hook_done';
-- nothing is claimed for it any more
SELECT count(*) AS claimed_for_deleted FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/moved';
-- the outcome of an attempt in flight is still recorded: a 2xx means delivered
SELECT pg_temp.finish(a.id, CASE d.event WHEN 'task.created' THEN 200 ELSE 500 END) FROM agent_tasks_internal.webhook_attempts a
  JOIN agent_tasks_internal.webhook_deliveries d ON d.account = a.account AND d.id = a.delivery_id
 WHERE d.endpoint_id = :'hook_done' AND a.status = 'in_flight';
SELECT d.event, d.status, d.last_status_code, d.last_error FROM agent_tasks_internal.webhook_deliveries d
 WHERE d.endpoint_id = :'hook_done' AND d.task_id = :'t10' ORDER BY d.event;

-- the batch path the dispatcher uses records the same outcomes as one by one
SET ROLE regress_app;
SELECT w ->> 'id' AS hook_batch FROM agent_tasks.create_webhook('https://hooks.example.com/batch', '{task.created}',
	retry_schedule => '{1 minute}') w \gset
SELECT count(*) AS created FROM (SELECT agent_tasks.create_task('batch ' || i) FROM generate_series(1, 4) i) x;
RESET ROLE;
CREATE TEMP TABLE batch AS
SELECT c.*, row_number() OVER (ORDER BY c.body) AS n
  FROM agent_tasks_internal.claim_webhook_deliveries('regress', 1000) c WHERE c.url LIKE '%/batch';
SELECT agent_tasks_internal.finish_webhook_deliveries(
	array_agg(account ORDER BY n), array_agg(id ORDER BY n),
	array_agg(CASE n WHEN 1 THEN 200 WHEN 2 THEN 204 WHEN 3 THEN 503 END ORDER BY n),
	array_agg(CASE n WHEN 3 THEN '{"retry-after": "30"}'::jsonb END ORDER BY n),
	array_agg(CASE WHEN n < 4 THEN 'ok' END ORDER BY n),
	array_agg(CASE n WHEN 4 THEN 'connection refused' END ORDER BY n),
	array_agg(n::integer ORDER BY n))
  FROM batch;
SELECT b.n, d.status, d.attempts, d.last_status_code, d.last_error,
	   CASE b.n WHEN 3 THEN extract(epoch FROM d.next_attempt_at - now()) BETWEEN 28 AND 30.5
				WHEN 4 THEN extract(epoch FROM d.next_attempt_at - now()) BETWEEN 53 AND 67 END AS retry_as_scheduled,
	   a.status AS attempt, a.latency_ms
  FROM batch b
  JOIN agent_tasks_internal.webhook_attempts a ON a.id = b.id
  JOIN agent_tasks_internal.webhook_deliveries d ON d.id = a.delivery_id
 ORDER BY b.n;
-- a second outcome for the same attempts changes nothing; unknown ones are ignored
SELECT agent_tasks_internal.finish_webhook_deliveries(ARRAY['hooks-a', 'hooks-a'], ARRAY[(SELECT id FROM batch WHERE n = 3), agent_tasks.uuid_v7()],
	ARRAY[200, 200], ARRAY[NULL, NULL]::jsonb[], ARRAY['', ''], ARRAY[NULL, NULL]::text[], ARRAY[1, 1]) AS again;
SELECT count(*) FILTER (WHERE d.status = 'delivered') AS delivered, count(*) AS deliveries
  FROM agent_tasks_internal.webhook_deliveries d WHERE d.endpoint_id = :'hook_batch';
SELECT agent_tasks_internal.finish_webhook_deliveries(NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS empty_batch;
