/*-------------------------------------------------------------------------
 *
 * outcomes.c
 *	  What the answer of an agent does to its run, for every kind of
 *	  worker:
 *
 *	  - complete_attempt(r, output, usage): the usage is recorded, the
 *		output is checked against the task's output schema (the run fails
 *		with invalid_output when it does not match), the run completes;
 *	  - finish_sql_run(account, run, result): the answer of an sql agent, or
 *		of an http agent answering the same way -- {"status": "completed",
 *		"output", "usage"}, {"status": "needs_clarification", "question"},
 *		{"status": "failed", "error", "retryable"}, or any other JSON value,
 *		which is the output itself -- recorded in the transaction that
 *		computed it, after locking the task (its ancestors first) and the
 *		run.  A run that is no longer in progress is PT409: the agent's
 *		changes roll back with it.
 *
 *	  Executors call at_finish_sql_run() directly; external workers reach
 *	  complete_attempt() through complete_run(), the HTTP dispatcher both
 *	  through finish_http_run().  The common outcome -- an output for a
 *	  task of its own, without a schema or usage -- costs two kept
 *	  statements.  Retries with backoff, failures, clarification questions
 *	  and usage stay in SQL (fail_attempt, clarify_attempt, record_usage),
 *	  shared with fail_run() and request_clarification().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "agent_tasks.h"
#include "outcomes.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(at_complete_attempt);
PG_FUNCTION_INFO_V1(at_finish_sql_run_sql);

/*
 * The statements, planned once per session.  $1 is the account and $2 the
 * run in each; the run row handed to the SQL outcome functions is read by
 * key in the same statement.
 */
#define RUN_ROW "FROM agent_tasks_internal.runs r WHERE r.account = $1 AND r.id = $2"

/* A task of its own (no ancestors to lock first): lock it, then the run. */
static const char *lock_parentless_sql =
"SELECT s.output_schema,"
"       (SELECT r.status FROM agent_tasks_internal.runs r"
"         WHERE r.account = $1 AND r.id = $2 FOR UPDATE)"
"  FROM (SELECT t.output_schema FROM agent_tasks_internal.tasks t"
"         WHERE t.account = $1 AND t.id = $3 AND t.parent_id IS NULL"
"           FOR UPDATE OFFSET 0) s";

/* Any task: its ancestors root first, the task, then the run. */
static const char *lock_child_sql =
"SELECT x.output_schema,"
"       (SELECT r.status FROM agent_tasks_internal.runs r"
"         WHERE r.account = $1 AND r.id = $2 FOR UPDATE)"
"  FROM agent_tasks_internal.lock_task_in($1, $3) x";

static const char *task_of_run_sql =
"SELECT r.task_id " RUN_ROW;

static const char *output_schema_sql =
"SELECT t.output_schema FROM agent_tasks_internal.tasks t"
" WHERE t.account = $1 AND t.id = (SELECT r.task_id " RUN_ROW ")";

static const char *record_usage_sql =
"SELECT agent_tasks_internal.record_usage(r, $3) " RUN_ROW;

/* One row, and the run failed, when the output does not match the schema. */
static const char *fail_unless_valid_sql =
"SELECT agent_tasks_internal.fail_attempt(r,"
"         jsonb_build_object('message', 'the output does not match the task''s JSON Schema',"
"                            'errors', to_jsonb(v.errors), 'output', $4),"
"         'invalid_output', false)"
"  FROM (SELECT agent_tasks.validate_json($3, $4) AS errors) v, agent_tasks_internal.runs r"
" WHERE cardinality(v.errors) > 0 AND r.account = $1 AND r.id = $2";

static const char *complete_sql =
"UPDATE agent_tasks_internal.runs x"
"   SET status = 'completed', status_reason = NULL, output = $3,"
"       ended_at = pg_catalog.clock_timestamp(), lease_expires_at = NULL"
" WHERE x.account = $1 AND x.id = $2";

static const char *clarify_sql =
"SELECT agent_tasks_internal.clarify_attempt(r, $3 ->> 'question', $3 -> 'usage') " RUN_ROW;

/* The agent said it failed: its error (an object, or a message), retryable or not. */
static const char *fail_declared_sql =
"SELECT agent_tasks_internal.fail_attempt(r,"
"         CASE WHEN jsonb_typeof($3 -> 'error') = 'object' THEN $3 -> 'error'"
"              ELSE jsonb_build_object('message', coalesce($3 ->> 'error', 'the agent reported a failure')) END,"
"         'rejected', coalesce(($3 ->> 'retryable')::boolean, false)) "
RUN_ROW;

static const char *fail_unknown_status_sql =
"SELECT agent_tasks_internal.fail_attempt(r, jsonb_build_object('message', $3),"
"                                         'invalid_output', false) " RUN_ROW;

static SPIPlanPtr lock_parentless_plan;
static SPIPlanPtr lock_child_plan;
static SPIPlanPtr task_of_run_plan;
static SPIPlanPtr output_schema_plan;
static SPIPlanPtr record_usage_plan;
static SPIPlanPtr fail_unless_valid_plan;
static SPIPlanPtr complete_plan;
static SPIPlanPtr clarify_plan;
static SPIPlanPtr fail_declared_plan;
static SPIPlanPtr fail_unknown_status_plan;

/*
 * Run a kept statement (planned at its first use) with the account, the
 * run and up to two more arguments of the given types; returns the rows
 * it returned or changed.
 */
static uint64
run_statement(SPIPlanPtr *plan, const char *sql, Datum account, Datum run,
			  int nextra, const Oid *extra_types, const Datum *extra, const bool *extra_null)
{
	Oid			types[4] = {TEXTOID, UUIDOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;

	Assert(nextra <= 2);
	values[0] = account;
	values[1] = run;
	for (int i = 0; i < nextra; i++)
	{
		types[2 + i] = extra_types[i];
		values[2 + i] = extra[i];
		nulls[2 + i] = extra_null[i] ? 'n' : ' ';
	}
	if (*plan == NULL)
		*plan = at_keep_plan(sql, 2 + nextra, types);
	rc = SPI_execute_plan(*plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "an outcome statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/* The value of result's key, or NULL when result is no object or lacks it. */
static JsonbValue *
find_member(Datum result, const char *key)
{
	Jsonb	   *doc = DatumGetJsonbP(result);
	JsonbValue	k;

	if (!JB_ROOT_IS_OBJECT(doc))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&doc->root, JB_FOBJECT, &k);
}

/* The jsonb of result's key, as the operator -> gives it (NULL: none). */
static Datum
member(Datum result, const char *key, bool *isnull)
{
	JsonbValue *v = find_member(result, key);

	*isnull = (v == NULL);
	return v ? JsonbPGetDatum(JsonbValueToJsonb(v)) : (Datum) 0;
}

/* The text of result's key, as the operator ->> gives it (NULL: none). */
static char *
member_text(Datum result, const char *key)
{
	JsonbValue *v = find_member(result, key);
	Jsonb	   *value;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	value = JsonbValueToJsonb(v);
	return JsonbToCString(NULL, &value->root, VARSIZE(value));
}

/* PT409 for an answer that came too late; status NULL: the run is gone. */
static void no_longer_in_progress(Datum run, const char *status) pg_attribute_noreturn();

static void
no_longer_in_progress(Datum run, const char *status)
{
	ereport(ERROR,
			(errcode(ERRCODE_AT_CONFLICT),
			 errmsg("the run is no longer in progress"),
			 errdetail("run %s is %s",
					   DatumGetCString(DirectFunctionCall1(uuid_out, run)),
					   status ? status : "gone"),
			 errhint("It was stopped or cancelled while the agent worked; its changes are rolled back.")));
}

/*
 * Complete the run with output, unless the output does not match the
 * task's schema (then the run fails with invalid_output).  The task and
 * the run are locked.
 */
static void
complete(Datum account, Datum run, Datum schema, bool schema_null,
		 Datum output, bool output_null, Datum usage, bool usage_null)
{
	Oid			jsonb_types[2] = {JSONBOID, JSONBOID};
	Datum		args[2];
	bool		args_null[2];

	if (!usage_null)
		run_statement(&record_usage_plan, record_usage_sql, account, run,
					  1, jsonb_types, &usage, &usage_null);
	if (!schema_null)
	{
		args[0] = schema;
		args[1] = output;
		args_null[0] = false;
		args_null[1] = output_null;
		if (run_statement(&fail_unless_valid_plan, fail_unless_valid_sql, account, run,
						  2, jsonb_types, args, args_null) > 0)
			return;
	}
	run_statement(&complete_plan, complete_sql, account, run,
				  1, jsonb_types, &output, &output_null);
}

/*
 * Record an agent's answer (see the file header).  account is text, run
 * and task are uuids; the caller is connected to SPI or not.
 */
void
at_finish_sql_run(Datum account, Datum run, Datum task, Datum result, bool result_null)
{
	Oid			task_type = UUIDOID;
	Oid			jsonb_type = JSONBOID;
	bool		no = false;
	bool		schema_null = true;
	Datum		schema = (Datum) 0;
	char	   *run_status = NULL;
	char	   *declared = NULL;
	bool		usage_null = true;
	Datum		usage = (Datum) 0;

	SPI_connect();

	/* the task first (its ancestors before it), then the run */
	if (run_statement(&lock_parentless_plan, lock_parentless_sql, account, run,
					  1, &task_type, &task, &no) == 0)
		run_statement(&lock_child_plan, lock_child_sql, account, run,
					  1, &task_type, &task, &no);
	if (SPI_processed == 1)
	{
		schema = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &schema_null);
		run_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	if (run_status == NULL || strcmp(run_status, "in_progress") != 0)
		no_longer_in_progress(run, run_status);

	if (!result_null)
	{
		declared = member_text(result, "status");
		usage = member(result, "usage", &usage_null);
	}

	if (declared == NULL)
		complete(account, run, schema, schema_null, result, result_null, usage, usage_null);
	else if (strcmp(declared, "completed") == 0)
	{
		bool		output_null;
		Datum		output = member(result, "output", &output_null);

		complete(account, run, schema, schema_null, output, output_null, usage, usage_null);
	}
	else if (strcmp(declared, "needs_clarification") == 0)
		run_statement(&clarify_plan, clarify_sql, account, run, 1, &jsonb_type, &result, &no);
	else if (strcmp(declared, "failed") == 0)
	{
		if (!usage_null)
			run_statement(&record_usage_plan, record_usage_sql, account, run,
						  1, &jsonb_type, &usage, &no);
		run_statement(&fail_declared_plan, fail_declared_sql, account, run,
					  1, &jsonb_type, &result, &no);
	}
	else
	{
		Oid			text_type = TEXTOID;
		Datum		message = CStringGetTextDatum(psprintf("the agent returned an unknown status %s",
														   quote_literal_cstr(declared)));

		run_statement(&fail_unknown_status_plan, fail_unknown_status_sql, account, run,
					  1, &text_type, &message, &no);
	}

	SPI_finish();
}

/*
 * agent_tasks_internal.finish_sql_run(account text, run_id uuid, result jsonb)
 */
Datum
at_finish_sql_run_sql(PG_FUNCTION_ARGS)
{
	Datum		account = PG_GETARG_DATUM(0);
	Datum		run = PG_GETARG_DATUM(1);
	Datum		task = (Datum) 0;
	bool		task_null = true;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("an account and a run are required"),
				 errdetail("finish_sql_run(%s, %s, ...)", PG_ARGISNULL(0) ? "NULL" : "account",
						   PG_ARGISNULL(1) ? "NULL" : "run"),
				 errhint("Pass the account and the id of the run the agent answered.")));
	SPI_connect();
	if (run_statement(&task_of_run_plan, task_of_run_sql, account, run, 0, NULL, NULL, NULL) == 1)
		task = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &task_null);
	if (task_null)
		no_longer_in_progress(run, NULL);
	task = SPI_datumTransfer(task, false, UUID_LEN);
	SPI_finish();

	at_finish_sql_run(account, run, task, PG_GETARG_DATUM(2), PG_ARGISNULL(2));
	PG_RETURN_VOID();
}

/*
 * agent_tasks_internal.complete_attempt(r runs, output jsonb, usage jsonb):
 * the run (task and run locked by the caller) completes with output.
 */
Datum
at_complete_attempt(PG_FUNCTION_ARGS)
{
	HeapTupleHeader r = PG_GETARG_HEAPTUPLEHEADER(0);
	bool		account_null;
	bool		run_null;
	Datum		account = GetAttributeByName(r, "account", &account_null);
	Datum		run = GetAttributeByName(r, "id", &run_null);
	Datum		schema = (Datum) 0;
	bool		schema_null = true;

	if (account_null || run_null)
		ereport(ERROR,
				(errcode(ERRCODE_AT_NOT_FOUND),
				 errmsg("no run to complete")));
	SPI_connect();
	if (run_statement(&output_schema_plan, output_schema_sql, account, run, 0, NULL, NULL, NULL) == 1)
		schema = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &schema_null);
	complete(account, run, schema, schema_null,
			 PG_GETARG_DATUM(1), PG_ARGISNULL(1), PG_GETARG_DATUM(2), PG_ARGISNULL(2));
	SPI_finish();
	PG_RETURN_VOID();
}
