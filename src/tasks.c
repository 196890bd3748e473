/*-------------------------------------------------------------------------
 *
 * tasks.c
 *	  agent_tasks.create_task(): a new task from its arguments, checked and
 *	  inserted -- already queued with its first run when auto_process asks
 *	  it for a task of its own -- with its people, its dependencies and, in
 *	  command mode, one child task per item; returned as the tasks view
 *	  shows it.
 *
 *	  In C because every task is created here: written in PL/pgSQL, a
 *	  third of a creation went to interpreting it.  The argument checks are
 *	  input_checks.c's.  What the new rows set off (the trail, the first
 *	  run, webhooks, hooks, the rate limit, the search document) is the
 *	  triggers' business (state_machine.c, transitions.c, rate_limits.c,
 *	  task_search.c).  Assignees, followers, dependencies, output schemas,
 *	  people and process_task() are reached through their SQL functions, so
 *	  that each of those rules is written once.
 *
 *	  The result is read back through the tasks view by key: a hook of the
 *	  account may have changed the task in this transaction, and the view
 *	  is where assignees, followers and "mine" are defined.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/uuid.h"

#include "agent_tasks.h"
#include "input_checks.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(at_create_task);

/* create_task()'s arguments, in the order of its SQL declaration. */
enum
{
	ARG_TITLE, ARG_PROMPT, ARG_TYPE, ARG_COMMAND, ARG_ITEMS, ARG_CONTEXT, ARG_AGENT,
	ARG_PRIORITY, ARG_OUTPUT_SCHEMA, ARG_OWNER, ARG_ASSIGNEES, ARG_FOLLOWERS, ARG_SKILLS,
	ARG_LABELS, ARG_METADATA, ARG_EXTERNAL_ID, ARG_ORIGIN, ARG_IDEMPOTENCY_KEY,
	ARG_CALLBACK_URL, ARG_PARENT, ARG_RUN_AFTER, ARG_DEPENDS_ON, ARG_BUDGET_TOKENS,
	ARG_BUDGET_COST, ARG_AUTO_PROCESS, ARG_DESCRIPTION
};

/* The columns a new task row is given, in the order of insert_sql's list. */
enum
{
	COL_ACCOUNT, COL_ID, COL_PARENT_ID, COL_TITLE, COL_PROMPT, COL_TYPE, COL_COMMAND,
	COL_ITEM, COL_CONTEXT, COL_AGENT_ID, COL_PRIORITY, COL_OUTPUT_SCHEMA, COL_OWNER_ID,
	COL_CREATED_BY, COL_SKILLS, COL_LABELS, COL_METADATA, COL_EXTERNAL_ID, COL_ORIGIN,
	COL_IDEMPOTENCY_KEY, COL_REQUEST_HASH, COL_CALLBACK_URL, COL_RUN_AFTER,
	COL_LATEST_RUN_ID, COL_STATUS_REASON, COL_BUDGET_TOKENS, COL_BUDGET_COST,
	COL_TITLE_DERIVED, N_COLUMNS
};

typedef struct TaskRow
{
	Datum		values[N_COLUMNS];
	char		nulls[N_COLUMNS];	/* SPI style: 'n' null, ' ' not */
} TaskRow;

/* A task is new and pending, or new and queued when it names its first run. */
static const char *insert_sql =
"INSERT INTO agent_tasks_internal.tasks"
" (account, id, parent_id, title, prompt, type, command, item, context, agent_id, priority,"
"  output_schema, owner_id, created_by, skills, labels, metadata, external_id, origin,"
"  idempotency_key, request_hash, callback_url, run_after, latest_run_id, status_reason,"
"  budget_tokens, budget_cost, title_derived, status)"
" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,"
"  $20, $21, $22, $23, $24, $25, $26, $27, $28,"
"  CASE WHEN $24 IS NULL THEN 'pending' ELSE 'queued' END)";
static Oid	insert_types[N_COLUMNS] = {
	TEXTOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
	UUIDOID, INT4OID, JSONBOID, UUIDOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, JSONBOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, UUIDOID, TEXTOID, INT8OID,
	NUMERICOID, BOOLOID
};

/*
 * What an idempotency key stands for: every argument, as checked.  The
 * same expression as 0.1.0's, so that a retry across the upgrade still
 * finds its task.
 */
static const char *request_hash_sql =
"SELECT pg_catalog.md5(pg_catalog.jsonb_build_array($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
"  $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)::text)";
static Oid	request_hash_types[24] = {
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, TEXTOID, INT4OID, JSONBOID,
	TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBOID, TEXTOID,
	TEXTOID, TEXTOID, UUIDOID, TIMESTAMPTZOID, UUIDARRAYOID, INT8OID, NUMERICOID, BOOLOID
};

/* Plans kept for the session, made at first use. */
static SPIPlanPtr insert_plan;
static SPIPlanPtr request_hash_plan;
static SPIPlanPtr by_key_plan;
static SPIPlanPtr agent_plan;
static SPIPlanPtr agent_error_plan;
static SPIPlanPtr user_plan;
static SPIPlanPtr parent_plan;
static SPIPlanPtr not_found_plan;
static SPIPlanPtr output_schema_plan;
static SPIPlanPtr assignees_plan;
static SPIPlanPtr followers_plan;
static SPIPlanPtr dependency_plan;
static SPIPlanPtr process_plan;
static SPIPlanPtr view_plan;

/* Execute a kept plan (made from sql at first use); returns SPI_processed. */
static uint64
run(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	int			ret;

	if (*slot == NULL)
		*slot = at_keep_plan(sql, nargs, types);
	ret = SPI_execute_plan(*slot, values, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s", sql, SPI_result_code_string(ret));
	return SPI_processed;
}

static inline text *
text_arg(FunctionCallInfo fcinfo, int arg)
{
	return PG_ARGISNULL(arg) ? NULL : PG_GETARG_TEXT_PP(arg);
}

static inline void
set_column(TaskRow *row, int column, Datum value, bool isnull)
{
	row->values[column] = isnull ? (Datum) 0 : value;
	row->nulls[column] = isnull ? 'n' : ' ';
}

static inline void
set_text(TaskRow *row, int column, text *value)
{
	set_column(row, column, PointerGetDatum(value), value == NULL);
}

/* substring(value FROM pattern), or NULL when it does not match. */
static text *
regex_substring(text *value, const char *pattern)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 2, DEFAULT_COLLATION_OID, NULL, NULL);
	fcinfo->args[0].value = PointerGetDatum(value);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(pattern);
	fcinfo->args[1].isnull = false;
	result = textregexsubstr(fcinfo);
	return fcinfo->isnull ? NULL : DatumGetTextPP(result);
}

/* btrim(value): the value without leading and trailing spaces. */
static text *
trim_spaces(text *value)
{
	return DatumGetTextPP(DirectFunctionCall1(btrim1, PointerGetDatum(value)));
}

/*
 * The title of a task created without one (Flint and Mintlify create with
 * a prompt only): the first line of the prompt, else the command, its
 * white space collapsed, cut at a word boundary to at most 80 characters.
 */
static text *
derived_title(text *prompt, text *command)
{
	text	   *line = prompt ? regex_substring(prompt, "\\S[^\\n]*") : NULL;
	char	   *head;
	int			head_bytes;
	text	   *cut;

	if (line == NULL)
		line = command;
	line = DatumGetTextPP(DirectFunctionCall4Coll(textregexreplace, DEFAULT_COLLATION_OID,
												  PointerGetDatum(line),
												  CStringGetTextDatum("\\s+"),
												  CStringGetTextDatum(" "),
												  CStringGetTextDatum("g")));
	line = trim_spaces(line);
	if (pg_mbstrlen_with_len(VARDATA_ANY(line), VARSIZE_ANY_EXHDR(line)) <= 80)
		return line;

	head = VARDATA_ANY(line);
	head_bytes = pg_mbcharcliplen(head, VARSIZE_ANY_EXHDR(line), 79);
	cut = regex_substring(cstring_to_text_with_len(head, head_bytes), "^(.*\\S)\\s");
	if (cut != NULL && VARSIZE_ANY_EXHDR(cut) > 0)
		return cstring_to_text(psprintf("%s…", text_to_cstring(cut)));
	return cstring_to_text(psprintf("%.*s…", head_bytes, head));
}

/* The first column of the first row of the last statement, copied out. */
static Datum
first_value(bool *isnull)
{
	Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);

	return *isnull ? (Datum) 0 :
		datumCopy(value, TupleDescAttr(SPI_tuptable->tupdesc, 0)->attbyval,
				  TupleDescAttr(SPI_tuptable->tupdesc, 0)->attlen);
}

/* An agent of the account by name; the SQL helper refuses an unknown one. */
static Datum
agent_id(Datum account, text *name, bool *isnull)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {account, PointerGetDatum(name)};

	*isnull = (name == NULL);
	if (name == NULL)
		return (Datum) 0;
	if (run(&agent_plan,
			"SELECT a.id FROM agent_tasks_internal.agents a WHERE a.account = $1 AND a.name = $2",
			2, types, values, NULL) == 0)
		run(&agent_error_plan, "SELECT agent_tasks_internal.agent_id($1, $2)", 2, types, values, NULL);
	return first_value(isnull);
}

static void
refuse_not_found(Datum task)
{
	Oid			types[1] = {UUIDOID};

	run(&not_found_plan, "SELECT agent_tasks_internal.not_found($1)", 1, types, &task, NULL);
	elog(ERROR, "not_found() returned");
}

static void
insert_task(TaskRow *row)
{
	run(&insert_plan, insert_sql, N_COLUMNS, insert_types, row->values, row->nulls);
}

/*
 * Insert the task unless a task with its idempotency key exists already
 * (made by a concurrent call, which the unique index waited for).
 * Returns false then, the insertion undone.
 */
static bool
insert_unless_duplicate(TaskRow *row)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		inserted = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		insert_task(row);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION || edata->constraint_name == NULL ||
			strcmp(edata->constraint_name, "tasks_idempotency_key") != 0)
			ReThrowError(edata);
		inserted = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	return inserted;
}

/* The task of an idempotency key: its id and request hash, if any. */
static bool
task_of_key(Datum account, Datum key, Datum *id, text **hash)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {account, key};
	bool		isnull;
	Datum		value;

	if (run(&by_key_plan,
			"SELECT e.id, e.request_hash FROM agent_tasks_internal.tasks e"
			" WHERE e.account = $1 AND e.idempotency_key = $2",
			2, types, values, NULL) == 0)
		return false;
	*id = first_value(&isnull);
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*hash = isnull ? NULL : DatumGetTextPCopy(value);
	return true;
}

/* Are the texts equal, NULL equal to NULL only (IS NOT DISTINCT FROM)? */
static bool
same_text(text *a, text *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return DatumGetBool(DirectFunctionCall2Coll(texteq, DEFAULT_COLLATION_OID,
												PointerGetDatum(a), PointerGetDatum(b)));
}

static bool
has_key(Jsonb *object, const char *key)
{
	return getKeyJsonValueFromContainer(&object->root, key, strlen(key), NULL) != NULL;
}

/* The value of a key of a JSON object as ->> gives it: text, or NULL. */
static text *
member_text(Jsonb *object, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&object->root, key, strlen(key), NULL);
	Jsonb	   *value;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
	value = JsonbValueToJsonb(v);
	return cstring_to_text(JsonbToCString(NULL, &value->root, VARSIZE(value)));
}

/* {key: value} */
static Jsonb *
one_member_object(const char *key, JsonbValue *value)
{
	JsonbParseState *state = NULL;
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	pushJsonbValue(&state, WJB_KEY, &k);
	pushJsonbValue(&state, WJB_VALUE, value);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* A JSON value as an error shows it: its first 200 characters. */
static char *
shown_json(Jsonb *value)
{
	char	   *text = JsonbToCString(NULL, &value->root, VARSIZE(value));

	return pnstrdup(text, pg_mbcharcliplen(text, strlen(text), 200));
}

static char *
json_type_of(Jsonb *value)
{
	return TextDatumGetCString(DirectFunctionCall1(jsonb_typeof, JsonbPGetDatum(value)));
}

/*
 * One child task per item of a command: an item is a title, or an object
 * with title, prompt, context (an object, or a string kept as {"text": ...})
 * and external_id (or externalId).  A child is its parent's copy otherwise.
 */
static void
insert_items(TaskRow *parent, Jsonb *items)
{
	int			count = JB_ROOT_COUNT(items);
	MemoryContext item_context = AllocSetContextCreate(CurrentMemoryContext,
													   "create_task item",
													   ALLOCSET_DEFAULT_SIZES);
	MemoryContext outer = MemoryContextSwitchTo(item_context);
	text	   *parent_title = DatumGetTextPP(parent->values[COL_TITLE]);
	text	   *parent_prompt = parent->nulls[COL_PROMPT] == 'n' ? NULL :
		DatumGetTextPP(parent->values[COL_PROMPT]);

	for (int i = 0; i < count; i++)
	{
		int			n = i + 1;
		Jsonb	   *item = JsonbValueToJsonb(getIthJsonbValueFromContainer(&items->root, i));
		char	   *type = json_type_of(item);
		TaskRow		child = *parent;
		text	   *title;
		text	   *value;
		JsonbValue *context;

		if (strcmp(type, "string") == 0)
			item = one_member_object("title", getIthJsonbValueFromContainer(&items->root, i));
		else if (strcmp(type, "object") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_AT_BAD_INPUT),
					 errmsg("items must be objects or strings"),
					 errdetail("item %d is a JSON %s: %s", n, type, shown_json(item)),
					 errhint("Use {\"title\": ..., \"context\": {...} or \"...\", \"external_id\": ...} per item.")));

		set_column(&child, COL_ID, at_new_uuid_v7(), false);
		set_column(&child, COL_PARENT_ID, parent->values[COL_ID], false);
		set_column(&child, COL_IDEMPOTENCY_KEY, (Datum) 0, true);
		set_column(&child, COL_REQUEST_HASH, (Datum) 0, true);
		set_column(&child, COL_CALLBACK_URL, (Datum) 0, true);
		set_column(&child, COL_ITEM, JsonbPGetDatum(item), false);

		title = member_text(item, "title");
		set_column(&child, COL_TITLE_DERIVED, BoolGetDatum(title == NULL), false);
		if (title == NULL)
			title = cstring_to_text(psprintf("%s (%d/%d)", text_to_cstring(parent_title), n, count));
		set_text(&child, COL_TITLE,
				 trim_spaces(at_checked_text(psprintf("title of item %d", n), title, 500, true)));
		value = member_text(item, "prompt");
		set_text(&child, COL_PROMPT,
				 at_checked_text(psprintf("prompt of item %d", n), value ? value : parent_prompt, 100000, false));

		context = getKeyJsonValueFromContainer(&item->root, "context", strlen("context"), NULL);
		if (context != NULL)
		{
			Jsonb	   *own;
			char	   *field = psprintf("context of item %d", n);

			if (context->type == jbvString)
				own = one_member_object("text", context);
			else
				own = JsonbValueToJsonb(context);
			if (at_json_present(field, JsonbPGetDatum(own), "object", 65536))
				set_column(&child, COL_CONTEXT,
						   DirectFunctionCall2(jsonb_concat, parent->values[COL_CONTEXT], JsonbPGetDatum(own)),
						   false);
		}

		value = member_text(item, "external_id");
		if (has_key(item, "external_id") && has_key(item, "externalId") &&
			!same_text(value, member_text(item, "externalId")))
			ereport(ERROR,
					(errcode(ERRCODE_AT_BAD_INPUT),
					 errmsg("external_id and externalId of item %d differ", n),
					 errdetail("item %d: %s", n, shown_json(item)),
					 errhint("Pass one of them.")));
		if (value == NULL)
			value = member_text(item, "externalId");
		set_text(&child, COL_EXTERNAL_ID,
				 at_checked_text(psprintf("external_id of item %d", n), value, 200, false));

		insert_task(&child);
		MemoryContextReset(item_context);
	}
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(item_context);
}

/* Call fn(task, array) of the SQL API when the array has entries. */
static void
add_people(SPIPlanPtr *slot, const char *sql, Datum task, FunctionCallInfo fcinfo, int arg)
{
	Oid			types[2] = {UUIDOID, TEXTARRAYOID};
	Datum		values[2];
	ArrayType  *emails;

	if (PG_ARGISNULL(arg))
		return;
	emails = PG_GETARG_ARRAYTYPE_P(arg);
	if (ArrayGetNItems(ARR_NDIM(emails), ARR_DIMS(emails)) == 0)
		return;
	values[0] = task;
	values[1] = PointerGetDatum(emails);
	run(slot, sql, 2, types, values, NULL);
}

Datum
at_create_task(PG_FUNCTION_ARGS)
{
	TaskRow		t;
	TupleDesc	result_desc;
	Datum		account;
	text	   *prompt = text_arg(fcinfo, ARG_PROMPT);
	text	   *description = text_arg(fcinfo, ARG_DESCRIPTION);
	text	   *title = text_arg(fcinfo, ARG_TITLE);
	text	   *command;
	text	   *origin;
	text	   *owner;
	Jsonb	   *items = NULL;
	int			item_count = 0;
	bool		title_derived;
	bool		auto_process = !PG_ARGISNULL(ARG_AUTO_PROCESS) && PG_GETARG_BOOL(ARG_AUTO_PROCESS);
	bool		has_blockers;
	bool		isnull;
	Datum		value;
	Datum		result;

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "create_task must return a row type");
	memset(t.nulls, 'n', sizeof(t.nulls));
	memset(t.values, 0, sizeof(t.values));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	set_column(&t, COL_ID, at_new_uuid_v7(), false);
	account = DirectFunctionCall1(at_current_account, (Datum) 0);
	set_column(&t, COL_ACCOUNT, account, false);
	set_text(&t, COL_CREATED_BY, cstring_to_text(at_session_actor()));

	/* description is the prompt under the name PostHog and AGNT give it */
	if (prompt != NULL && description != NULL && !same_text(prompt, description))
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("prompt and description differ"),
				 errdetail("description is another name for prompt; both were given, with different values."),
				 errhint("Pass one of them.")));
	prompt = at_checked_text("prompt", prompt ? prompt : description, 100000, false);
	set_text(&t, COL_PROMPT, prompt);
	command = at_checked_text("command", text_arg(fcinfo, ARG_COMMAND), 100, false);
	set_text(&t, COL_COMMAND, command);
	title_derived = title == NULL &&
		((prompt != NULL && at_text_matches(prompt, "\\S")) ||
		 (command != NULL && at_text_matches(command, "\\S")));
	set_column(&t, COL_TITLE_DERIVED, BoolGetDatum(title_derived), false);
	if (title_derived)
		title = derived_title(prompt, command);
	else if (title == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("a title or a prompt is required"),
				 errdetail("title, prompt (or description) and command are all missing or blank."),
				 errhint("Pass a title, or a prompt to make the title from.")));
	else
		title = trim_spaces(at_checked_text("title", title, 500, true));
	set_text(&t, COL_TITLE, title);
	set_text(&t, COL_TYPE, at_checked_text("type", text_arg(fcinfo, ARG_TYPE), 100, false));
	set_column(&t, COL_CONTEXT, !PG_ARGISNULL(ARG_CONTEXT) &&
			   at_json_present("context", PG_GETARG_DATUM(ARG_CONTEXT), "object", 65536) ?
			   PG_GETARG_DATUM(ARG_CONTEXT) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")), false);
	set_column(&t, COL_METADATA, !PG_ARGISNULL(ARG_METADATA) &&
			   at_json_present("metadata", PG_GETARG_DATUM(ARG_METADATA), "object", 65536) ?
			   PG_GETARG_DATUM(ARG_METADATA) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")), false);
	if (!PG_ARGISNULL(ARG_OUTPUT_SCHEMA))
	{
		Oid			types[1] = {JSONBOID};

		value = PG_GETARG_DATUM(ARG_OUTPUT_SCHEMA);
		run(&output_schema_plan, "SELECT agent_tasks_internal.check_output_schema($1)",
			1, types, &value, NULL);
		value = first_value(&isnull);
		set_column(&t, COL_OUTPUT_SCHEMA, value, isnull);
	}
	set_column(&t, COL_SKILLS, PointerGetDatum(at_checked_tags("skills",
															   PG_ARGISNULL(ARG_SKILLS) ? NULL : PG_GETARG_ARRAYTYPE_P(ARG_SKILLS))), false);
	set_column(&t, COL_LABELS, PointerGetDatum(at_checked_tags("labels",
															   PG_ARGISNULL(ARG_LABELS) ? NULL : PG_GETARG_ARRAYTYPE_P(ARG_LABELS))), false);
	set_text(&t, COL_EXTERNAL_ID, at_checked_text("external_id", text_arg(fcinfo, ARG_EXTERNAL_ID), 200, false));
	origin = at_checked_text("origin", text_arg(fcinfo, ARG_ORIGIN), 100, false);
	if (origin == NULL)
		origin = DatumGetTextPP(DirectFunctionCall1(at_request_origin, (Datum) 0));
	set_text(&t, COL_ORIGIN, origin);
	set_text(&t, COL_IDEMPOTENCY_KEY,
			 at_checked_text("idempotency_key", text_arg(fcinfo, ARG_IDEMPOTENCY_KEY), 200, false));
	set_text(&t, COL_CALLBACK_URL, at_checked_url("callback_url", text_arg(fcinfo, ARG_CALLBACK_URL)));
	set_column(&t, COL_RUN_AFTER, PG_GETARG_DATUM(ARG_RUN_AFTER), PG_ARGISNULL(ARG_RUN_AFTER));
	set_column(&t, COL_BUDGET_TOKENS, PG_GETARG_DATUM(ARG_BUDGET_TOKENS), PG_ARGISNULL(ARG_BUDGET_TOKENS));
	set_column(&t, COL_BUDGET_COST, PG_GETARG_DATUM(ARG_BUDGET_COST), PG_ARGISNULL(ARG_BUDGET_COST));
	if (PG_ARGISNULL(ARG_PRIORITY) || PG_GETARG_INT32(ARG_PRIORITY) < -1000 || PG_GETARG_INT32(ARG_PRIORITY) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("priority is out of range"),
				 errdetail("priority = %s", PG_ARGISNULL(ARG_PRIORITY) ? "null" :
						   psprintf("%d", PG_GETARG_INT32(ARG_PRIORITY))),
				 errhint("Use an integer from -1000 to 1000 (higher runs first).")));
	set_column(&t, COL_PRIORITY, PG_GETARG_DATUM(ARG_PRIORITY), false);
	if ((!PG_ARGISNULL(ARG_BUDGET_TOKENS) && PG_GETARG_INT64(ARG_BUDGET_TOKENS) <= 0) ||
		(!PG_ARGISNULL(ARG_BUDGET_COST) &&
		 DatumGetBool(DirectFunctionCall2(numeric_le, PG_GETARG_DATUM(ARG_BUDGET_COST),
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(0))))))
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("budgets must be positive"),
				 errdetail("budget_tokens = %s, budget_cost = %s",
						   PG_ARGISNULL(ARG_BUDGET_TOKENS) ? "null" :
						   psprintf(INT64_FORMAT, PG_GETARG_INT64(ARG_BUDGET_TOKENS)),
						   PG_ARGISNULL(ARG_BUDGET_COST) ? "null" :
						   DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(ARG_BUDGET_COST)))),
				 errhint("Leave a budget null for no limit.")));

	if (!PG_ARGISNULL(ARG_ITEMS) &&
		at_json_present("items", PG_GETARG_DATUM(ARG_ITEMS), "array", 1048576))
	{
		items = PG_GETARG_JSONB_P(ARG_ITEMS);
		item_count = JB_ROOT_COUNT(items);
		if (command == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_AT_BAD_INPUT),
					 errmsg("items need a command"),
					 errdetail("%d items were given without a command.", item_count),
					 errhint("Pass command => '...' with the items (command mode), or omit items (prompt mode).")));
		if (item_count > agent_tasks_max_items)
			ereport(ERROR,
					(errcode(ERRCODE_AT_BAD_INPUT),
					 errmsg("too many items"),
					 errdetail("%d items were given; the limit is %d.", item_count, agent_tasks_max_items),
					 errhint("Split the work into several tasks, or raise agent_tasks.max_items.")));
	}

	value = agent_id(account, text_arg(fcinfo, ARG_AGENT), &isnull);
	set_column(&t, COL_AGENT_ID, value, isnull);
	owner = text_arg(fcinfo, ARG_OWNER);
	if (owner == NULL)
	{
		char	   *email = at_session_email();

		owner = email ? cstring_to_text(email) : NULL;
	}
	if (owner != NULL)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {account, PointerGetDatum(owner)};

		run(&user_plan, "SELECT agent_tasks_internal.user_id($1, $2)", 2, types, values, NULL);
		value = first_value(&isnull);
		set_column(&t, COL_OWNER_ID, value, isnull);
	}
	if (!PG_ARGISNULL(ARG_PARENT))
	{
		Oid			types[2] = {TEXTOID, UUIDOID};
		Datum		values[2] = {account, PG_GETARG_DATUM(ARG_PARENT)};

		if (run(&parent_plan,
				"SELECT 1 FROM agent_tasks_internal.tasks p WHERE p.account = $1 AND p.id = $2",
				2, types, values, NULL) == 0)
			refuse_not_found(values[1]);
		set_column(&t, COL_PARENT_ID, values[1], false);
	}

	/*
	 * auto_process of a task of its own (no parent, items or blockers): it
	 * is created queued with its first run, as process_task() would queue
	 * it, without being locked and checked again.
	 */
	has_blockers = !PG_ARGISNULL(ARG_DEPENDS_ON) &&
		ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(ARG_DEPENDS_ON)),
					   ARR_DIMS(PG_GETARG_ARRAYTYPE_P(ARG_DEPENDS_ON))) > 0;
	if (auto_process && PG_ARGISNULL(ARG_PARENT) && item_count == 0 && !has_blockers)
	{
		set_column(&t, COL_LATEST_RUN_ID, at_new_uuid_v7(), false);
		set_text(&t, COL_STATUS_REASON, cstring_to_text("user_request"));
	}

	if (t.nulls[COL_IDEMPOTENCY_KEY] == ' ')
	{
		Datum		hash_args[24] = {
			t.values[COL_TITLE], t.values[COL_PROMPT], t.values[COL_TYPE], t.values[COL_COMMAND],
			PG_GETARG_DATUM(ARG_ITEMS), t.values[COL_CONTEXT], PG_GETARG_DATUM(ARG_AGENT),
			t.values[COL_PRIORITY], t.values[COL_OUTPUT_SCHEMA], PG_GETARG_DATUM(ARG_OWNER),
			PG_GETARG_DATUM(ARG_ASSIGNEES), PG_GETARG_DATUM(ARG_FOLLOWERS), t.values[COL_SKILLS],
			t.values[COL_LABELS], t.values[COL_METADATA], t.values[COL_EXTERNAL_ID],
			t.values[COL_ORIGIN], t.values[COL_CALLBACK_URL], t.values[COL_PARENT_ID],
			t.values[COL_RUN_AFTER], PG_GETARG_DATUM(ARG_DEPENDS_ON), t.values[COL_BUDGET_TOKENS],
			t.values[COL_BUDGET_COST], PG_GETARG_DATUM(ARG_AUTO_PROCESS)
		};
		char		hash_nulls[24] = {
			t.nulls[COL_TITLE], t.nulls[COL_PROMPT], t.nulls[COL_TYPE], t.nulls[COL_COMMAND],
			PG_ARGISNULL(ARG_ITEMS) ? 'n' : ' ', t.nulls[COL_CONTEXT], PG_ARGISNULL(ARG_AGENT) ? 'n' : ' ',
			t.nulls[COL_PRIORITY], t.nulls[COL_OUTPUT_SCHEMA], PG_ARGISNULL(ARG_OWNER) ? 'n' : ' ',
			PG_ARGISNULL(ARG_ASSIGNEES) ? 'n' : ' ', PG_ARGISNULL(ARG_FOLLOWERS) ? 'n' : ' ',
			t.nulls[COL_SKILLS], t.nulls[COL_LABELS], t.nulls[COL_METADATA],
			t.nulls[COL_EXTERNAL_ID], t.nulls[COL_ORIGIN], t.nulls[COL_CALLBACK_URL],
			t.nulls[COL_PARENT_ID], t.nulls[COL_RUN_AFTER], PG_ARGISNULL(ARG_DEPENDS_ON) ? 'n' : ' ',
			t.nulls[COL_BUDGET_TOKENS], t.nulls[COL_BUDGET_COST], PG_ARGISNULL(ARG_AUTO_PROCESS) ? 'n' : ' '
		};
		Datum		existing;
		text	   *existing_hash;
		text	   *hash;
		bool		found;

		run(&request_hash_plan, request_hash_sql, 24, request_hash_types, hash_args, hash_nulls);
		hash = DatumGetTextPP(first_value(&isnull));
		set_text(&t, COL_REQUEST_HASH, hash);
		found = task_of_key(account, t.values[COL_IDEMPOTENCY_KEY], &existing, &existing_hash);
		if (!found && !insert_unless_duplicate(&t))
		{
			found = task_of_key(account, t.values[COL_IDEMPOTENCY_KEY], &existing, &existing_hash);
			/* a snapshot older than the other call's commit cannot see its task */
			if (!found)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("a concurrent call created a task with idempotency key %s",
								quote_literal_cstr(TextDatumGetCString(t.values[COL_IDEMPOTENCY_KEY]))),
						 errdetail("This transaction's snapshot was taken before that task was committed."),
						 errhint("Retry the transaction: it will get the task back.")));
		}
		if (found)
		{
			if (!same_text(existing_hash, hash))
				ereport(ERROR,
						(errcode(ERRCODE_AT_INVALID),
						 errmsg("idempotency key reused with a different request"),
						 errdetail("Key %s already created task %s with other parameters.",
								   quote_literal_cstr(TextDatumGetCString(t.values[COL_IDEMPOTENCY_KEY])),
								   DatumGetCString(DirectFunctionCall1(uuid_out, existing))),
						 errhint("Send the same parameters to get the same task back, or use a new idempotency key.")));
			set_column(&t, COL_ID, existing, false);
			auto_process = false;	/* what the first call did stands */
			goto result;
		}
	}
	else
		insert_task(&t);

	add_people(&assignees_plan, "SELECT agent_tasks.set_assignees($1, $2)", t.values[COL_ID],
			   fcinfo, ARG_ASSIGNEES);
	add_people(&followers_plan, "SELECT agent_tasks.add_followers($1, $2)", t.values[COL_ID],
			   fcinfo, ARG_FOLLOWERS);
	if (has_blockers)
	{
		ArrayIterator blockers = array_create_iterator(PG_GETARG_ARRAYTYPE_P(ARG_DEPENDS_ON), 0, NULL);
		Oid			types[2] = {UUIDOID, UUIDOID};
		Datum		values[2] = {t.values[COL_ID], (Datum) 0};
		char		nulls[2] = {' ', ' '};
		bool		blocker_null;

		while (array_iterate(blockers, &values[1], &blocker_null))
		{
			nulls[1] = blocker_null ? 'n' : ' ';
			run(&dependency_plan, "SELECT agent_tasks.add_dependency($1, $2)", 2, types, values, nulls);
		}
		array_free_iterator(blockers);
	}
	if (items != NULL)
		insert_items(&t, items);

result:
	if (auto_process && t.nulls[COL_LATEST_RUN_ID] == 'n')
	{
		Oid			types[1] = {UUIDOID};

		run(&process_plan, "SELECT agent_tasks.process_task($1)", 1, types, &t.values[COL_ID], NULL);
		result = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
								   false, -1);
	}
	else
	{
		Oid			types[2] = {TEXTOID, UUIDOID};
		Datum		values[2] = {account, t.values[COL_ID]};

		if (run(&view_plan, "SELECT * FROM agent_tasks.tasks v WHERE v.account = $1 AND v.id = $2",
				2, types, values, NULL) == 0)
			refuse_not_found(values[1]);
		result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], result_desc));
	}
	SPI_finish();
	PG_RETURN_DATUM(result);
}
