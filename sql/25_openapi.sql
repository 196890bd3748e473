--
-- 25_openapi: the OpenAPI 3 document agent_tasks.openapi() makes from the
-- catalog (issue 11): every view column described, what each role sees,
-- the verbs a view offers derived from its privileges and triggers, and
-- request / response schemas of the functions.  (test/rest/openapi.test.mjs
-- fetches it through PostgREST and compiles it with openapi-typescript.)
--
\set SHOW_CONTEXT never
RESET ROLE;

-- Every column of every view has a description (the schemas take them).
SELECT c.relname, a.attname
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'agent_tasks'::regnamespace AND c.relkind = 'v'
   AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;

-- A reader: the views it reads, the functions it may call, nothing else.
SET ROLE regress_reader;
CREATE TEMP TABLE doc_reader AS SELECT agent_tasks.openapi() AS d;
RESET ROLE;
SELECT d ->> 'openapi' AS openapi,
	   d #>> '{info,version}' = (SELECT extversion FROM pg_extension WHERE extname = 'agent_tasks') AS version,
	   d -> 'security' AS security,
	   (d #> '{components,securitySchemes,apiKey}') - 'description' AS api_key,
	   (d #> '{components,securitySchemes,bearer}') - 'description' AS bearer
  FROM doc_reader;
SELECT p AS path,
	   (SELECT array_agg(m ORDER BY m) FROM jsonb_object_keys(d -> 'paths' -> p) m) AS methods
  FROM doc_reader, unnest(ARRAY['/tasks', '/runs', '/messages', '/api_keys', '/webhook_endpoints',
								'/rpc/get_task', '/rpc/list_tasks', '/rpc/openapi', '/rpc/create_task',
								'/rpc/claim_runs', '/rpc/create_agent']) p
 ORDER BY 1;
-- Paths only for what the role may use: each one checked against the catalog.
SELECT count(*) FILTER (WHERE NOT ok) AS not_usable, count(*) > 20 AS many
  FROM doc_reader, jsonb_object_keys(d -> 'paths') p,
	   LATERAL (SELECT CASE WHEN p LIKE '/rpc/%'
							THEN EXISTS (SELECT 1 FROM pg_proc f
										  WHERE f.pronamespace = 'agent_tasks'::regnamespace
											AND f.proname = substr(p, 6)
											AND has_function_privilege('regress_reader', f.oid, 'EXECUTE'))
							ELSE has_table_privilege('regress_reader', 'agent_tasks.' || quote_ident(substr(p, 2)), 'SELECT')
					   END AS ok) c;
-- A view's schema: its columns with their types and descriptions; the GET
-- of a view takes a filter per column and PostgREST's parameters.
SELECT d #> '{components,schemas,tasks,properties,id}' AS id,
	   (d #> '{components,schemas,tasks,properties,labels}') - 'description' AS labels,
	   (d #> '{components,schemas,tasks,properties,created_at}') - 'description' AS created_at,
	   (d #> '{components,schemas,tasks,properties,context}') - 'description' AS context,
	   (d #> '{components,schemas,runs,properties,cost}') - 'description' AS cost,
	   (SELECT count(*) FROM jsonb_object_keys(d #> '{components,schemas,tasks,properties}'))
		   = (SELECT count(*) FROM pg_attribute WHERE attrelid = 'agent_tasks.tasks'::regclass AND attnum > 0) AS every_column
  FROM doc_reader;
SELECT jsonb_path_query_array(d, '$.paths."/tasks".get.parameters[*]."$ref"') @>
		   '["#/components/parameters/tasks.status", "#/components/parameters/select", "#/components/parameters/order",
			 "#/components/parameters/limit", "#/components/parameters/offset"]' AS get_parameters,
	   (d #> '{components,parameters,tasks.status}') - 'description' AS status_filter,
	   d #> '{paths,/tasks,get,responses,200,content,application/json,schema}' AS rows
  FROM doc_reader;
-- A stable function: POST with its arguments as a JSON object, GET with
-- them in the query string; the result is the view's row.
SELECT d #> '{paths,/rpc/get_task,post,requestBody,content,application/json,schema}' AS body,
	   d #> '{paths,/rpc/get_task,get,parameters}' AS query,
	   d #> '{paths,/rpc/get_task,post,responses,200,content,application/json,schema}' AS result,
	   d #> '{paths,/rpc/get_task,post,summary}' = to_jsonb(obj_description('agent_tasks.get_task(uuid)'::regprocedure, 'pg_proc')) AS summary
  FROM doc_reader;

-- A writer: the volatile functions over POST only; a set of rows is an
-- array, jsonb any JSON; void answers 204.
SET ROLE regress_writer;
CREATE TEMP TABLE doc_writer AS SELECT agent_tasks.openapi() AS d;
RESET ROLE;
SELECT (SELECT array_agg(m ORDER BY m) FROM jsonb_object_keys(d #> '{paths,/rpc/create_task}') m) AS create_task,
	   d #> '{paths,/rpc/create_task,post,responses,200,content,application/json,schema}' AS creates,
	   d #> '{paths,/rpc/create_task,post,requestBody,content,application/json,schema,additionalProperties}' AS closed,
	   d #> '{paths,/rpc/watchers,get,responses,200,content,application/json,schema}' AS watchers,
	   d #> '{paths,/rpc/list_tasks,get,responses,200,content,application/json,schema}' AS list,
	   d #> '{paths,/rpc/authenticate,post,responses,204}' AS void,
	   d #> '{paths,/rpc/delete_task}' IS NOT NULL AS delete_task,
	   d #> '{paths,/rpc/claim_runs}' IS NULL AS no_claim_runs
  FROM doc_writer;

-- An administrator: the admin views and functions too; a function that
-- returns a table has its columns as the result's properties.
SET ROLE regress_app;
SELECT d #> '{paths,/webhook_endpoints,get,operationId}' AS webhooks,
	   d #> '{paths,/rpc/claim_runs,post,responses,200,content,application/json,schema,type}' AS claims,
	   d #> '{paths,/rpc/claim_runs,post,responses,200,content,application/json,schema,items,properties,run_id}' AS run_id,
	   d #> '{paths,/rpc/claim_runs,post,requestBody,content,application/json,schema,required}' AS claim_required
  FROM (SELECT agent_tasks.openapi() AS d) x;
-- operation ids are unique (generated clients name their calls by them)
SELECT count(*) > 100 AS many, count(*) = count(DISTINCT op) AS unique_operation_ids
  FROM (SELECT agent_tasks.openapi() AS d) x,
	   jsonb_path_query(d, '$.paths.*.*.operationId') op;
RESET ROLE;

-- The write verbs of a view come from the catalog: the privilege and a view
-- that takes the change (automatically updatable, or an INSTEAD OF trigger).
BEGIN;
CREATE VIEW agent_tasks.openapi_probe AS SELECT 1 AS n, 'x'::text AS label;
COMMENT ON VIEW agent_tasks.openapi_probe IS 'probe';
GRANT SELECT, INSERT, UPDATE ON agent_tasks.openapi_probe TO agent_tasks_writer;
SET LOCAL ROLE regress_writer;
SELECT 'no trigger' AS probe, (SELECT array_agg(m ORDER BY m) FROM jsonb_object_keys(agent_tasks.openapi() #> '{paths,/openapi_probe}') m) AS methods;
RESET ROLE;
CREATE FUNCTION pg_temp.probe_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER probe_insert INSTEAD OF INSERT ON agent_tasks.openapi_probe FOR EACH ROW EXECUTE FUNCTION pg_temp.probe_insert();
CREATE TRIGGER probe_update INSTEAD OF UPDATE ON agent_tasks.openapi_probe FOR EACH ROW EXECUTE FUNCTION pg_temp.probe_insert();
CREATE TRIGGER probe_delete INSTEAD OF DELETE ON agent_tasks.openapi_probe FOR EACH ROW EXECUTE FUNCTION pg_temp.probe_insert();
SET LOCAL ROLE regress_writer;
SELECT 'INSTEAD OF triggers' AS probe, (SELECT array_agg(m ORDER BY m) FROM jsonb_object_keys(agent_tasks.openapi() #> '{paths,/openapi_probe}') m) AS methods;
SET LOCAL ROLE regress_reader;
SELECT 'as a reader' AS probe, (SELECT array_agg(m ORDER BY m) FROM jsonb_object_keys(agent_tasks.openapi() #> '{paths,/openapi_probe}') m) AS methods;
SET LOCAL ROLE regress_writer;
SELECT agent_tasks.openapi() #> '{paths,/openapi_probe,post,requestBody,content,application/json,schema}' AS post_body,
	   agent_tasks.openapi() #> '{components,schemas,openapi_probe,properties,n}' AS n;
ROLLBACK;

-- A role without the API's roles may not call it.
SET ROLE regress_nobody;
SELECT agent_tasks.openapi();
RESET ROLE;
