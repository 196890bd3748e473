--
-- 01_ids: UUIDv7 generated in C
--
\set SHOW_CONTEXT never
SET ROLE regress_app;
SET agent_tasks.account = 'acme';
SET agent_tasks.email = 'alice@example.com';

-- 10000 ids from one session are strictly increasing, all distinct, all
-- version 7 with the RFC 9562 variant.
CREATE TEMP TABLE ids AS
SELECT n, agent_tasks.uuid_v7() AS id FROM generate_series(1, 10000) n;
SELECT count(*) AS ids, count(DISTINCT id) AS distinct_ids FROM ids;
SELECT count(*) AS out_of_order
  FROM (SELECT id, lag(id) OVER (ORDER BY n) AS prev FROM ids) s
 WHERE prev IS NOT NULL AND id <= prev;
SELECT count(*) FILTER (WHERE substr(id::text, 15, 1) = '7') AS version_7,
	   count(*) FILTER (WHERE substr(id::text, 20, 1) IN ('8', '9', 'a', 'b')) AS variant_10
  FROM ids;
-- The embedded time is the time of creation (ms precision; the counter may
-- borrow a few milliseconds in a burst), and never decreases.
SELECT bool_and(agent_tasks.uuid_v7_time(id) BETWEEN now() - interval '1 minute'
									   AND clock_timestamp() + interval '1 second') AS close_to_now
  FROM ids;
SELECT count(*) AS time_going_back
  FROM (SELECT agent_tasks.uuid_v7_time(id) AS t,
			   lag(agent_tasks.uuid_v7_time(id)) OVER (ORDER BY n) AS prev FROM ids) s
 WHERE t < prev;
SELECT abs(extract(epoch FROM agent_tasks.uuid_v7_time(agent_tasks.uuid_v7()) - clock_timestamp())) < 1
	AS fresh_id_is_now;
-- milliseconds precision: the microseconds are a multiple of 1000
SELECT extract(microseconds FROM agent_tasks.uuid_v7_time(agent_tasks.uuid_v7()))::bigint % 1000 AS sub_ms;
-- Known value: 2024-01-01 00:00:00 UTC is 1704067200000 ms = 0x018cc251f400.
SELECT agent_tasks.uuid_v7_time('018cc251-f400-7000-8000-000000000000') AT TIME ZONE 'UTC' AS known_time;
-- Other versions have no embedded time.
SELECT agent_tasks.uuid_v7_time(gen_random_uuid()) IS NULL AS v4_has_no_time,
	   agent_tasks.uuid_v7_time('00000000-0000-0000-0000-000000000000') IS NULL AS nil_has_no_time,
	   agent_tasks.uuid_v7_time(NULL) IS NULL AS strict;
-- A malformed uuid is refused by PostgreSQL's own input function (22P02).
SELECT expect_error($$SELECT agent_tasks.uuid_v7_time('not-a-uuid')$$);
-- Every id column defaults to it, so ids sort in creation order (lists violations).
SELECT a.attrelid::regclass AS id_without_uuid_v7
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'agent_tasks_internal'::regnamespace AND c.relkind = 'r'
   AND a.attname = 'id' AND NOT a.attisdropped
   AND pg_get_expr(d.adbin, d.adrelid) IS DISTINCT FROM 'agent_tasks.uuid_v7()';
SELECT count(*) AS core_tables_with_v7_ids
  FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE a.attname = 'id' AND pg_get_expr(d.adbin, d.adrelid) = 'agent_tasks.uuid_v7()'
   AND d.adrelid::regclass::text IN ('agent_tasks_internal.users', 'agent_tasks_internal.agents',
		'agent_tasks_internal.tasks', 'agent_tasks_internal.runs', 'agent_tasks_internal.messages',
		'agent_tasks_internal.activities');
SELECT (agent_tasks.create_task('first')).id AS first_id \gset
SELECT (agent_tasks.create_task('second')).id AS second_id \gset
SELECT :'first_id'::uuid < :'second_id'::uuid AS ids_in_creation_order,
	   substr(:'first_id', 15, 1) AS version;
SELECT count(*) AS ordered FROM agent_tasks.tasks
 WHERE id IN (:'first_id', :'second_id')
   AND agent_tasks.uuid_v7_time(id) BETWEEN created_at - interval '1 millisecond' AND created_at + interval '1 second';
SELECT agent_tasks.delete_task(:'first_id'), agent_tasks.delete_task(:'second_id');
DROP TABLE ids;
RESET ROLE;
