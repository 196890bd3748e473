/*-------------------------------------------------------------------------
 *
 * transitions.c
 *	  What a change of a task or of a run sets off, in one place.
 *
 *	  The state machine (state_machine.c) has already allowed the change in
 *	  a BEFORE trigger; two AFTER ROW triggers here then apply, in order:
 *
 *	  1. run_transition: a task follows its latest run (status, reason,
 *		 output, error), and the run's worker is signalled at commit (a
 *		 queued run wakes a worker of its kind, a stopped one is
 *		 interrupted).  An earlier run that ends later is logged on its own.
 *	  2. task_transition, for the task row:
 *		 a. the audit trail: one activity per change (created, status
 *			changed, archived, feedback, updated fields), and a queued run
 *			following its task's new agent, priority or run_after;
 *		 b. the webhook outbox: one delivery per subscribed endpoint, and
 *			the task's callback when it completes or fails;
 *		 c. the NOTIFY (once per transaction and task) and the wake-up of
 *			wait_task() callers, both at commit (wakeup.c);
 *		 d. the account's task hooks for the event (hooks.c);
 *		 e. consequences for other tasks: dependents released when the task
 *			completes or cancelled when it fails or is cancelled, and a
 *			command-mode parent started by its first child and finished by
 *			its last.
 *
 *	  Consequences change other tasks, whose own transitions have
 *	  consequences again.  They are not applied where they arise: the
 *	  outermost transition keeps a work list and applies its items one
 *	  after another, so a chain of any length costs a bounded trigger depth.
 *
 *	  Whoever changes the rows -- API functions, workers, external workers,
 *	  schedules, a superuser's UPDATE -- gets the same effects.  The
 *	  functions are SECURITY DEFINER: API roles may not write activities or
 *	  deliveries themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "agent_tasks.h"
#include "hooks.h"
#include "wakeup.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(at_run_transition);
PG_FUNCTION_INFO_V1(at_task_transition);
PG_FUNCTION_INFO_V1(at_queue_run);

/* A consequence waiting in the work list. */
typedef struct Consequence
{
	int			nest_level;		/* of the (sub)transaction that changed the task */
	char	   *account;
	pg_uuid_t	task;
	char	   *status;
	bool		dependents_done;	/* changed by cancel_dependents() itself */
	bool		has_parent;
	pg_uuid_t	parent;
} Consequence;

/* The work list, while the outermost transition applies it. */
static bool applying_consequences = false;
static bool cancelling_dependents = false;
static List *consequences = NIL;	/* in TopTransactionContext */
static bool subxact_callback_registered = false;

/*
 * The statements, planned once per session.  Those that take a task row
 * are planned for the row type they were made with: recreating the
 * extension makes them again.
 */
static SPIPlanPtr follow_new_run;
static SPIPlanPtr insert_run;
static SPIPlanPtr follow_run;
static SPIPlanPtr add_activity;
static SPIPlanPtr endpoints_for;
static SPIPlanPtr release_dependents;
static SPIPlanPtr cancel_dependents;
static SPIPlanPtr move_parent;
static SPIPlanPtr enqueue_event;
static SPIPlanPtr enqueue_callback;
static SPIPlanPtr updated_fields;
static SPIPlanPtr reschedule_queued_run;
static Oid	task_plans_rowtype = InvalidOid;

/* The fields of tracked_values(): a change of any is logged as "updated". */
static const char *const tracked_fields[] = {
	"title", "prompt", "type", "context", "agent_id", "priority",
	"output_schema", "owner_id", "skills", "labels", "metadata",
	"external_id", "callback_url", "run_after", "budget_tokens", "budget_cost"
};

/* A row seen by a trigger, with its columns read by name. */
typedef struct Row
{
	TupleDesc	desc;
	HeapTuple	tuple;
} Row;

static Datum
row_get(Row *row, const char *name, bool *isnull)
{
	int			attnum = SPI_fnumber(row->desc, name);

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" not found", name);
	return heap_getattr(row->tuple, attnum, row->desc, isnull);
}

/* A text column as a C string, or NULL. */
static char *
row_text(Row *row, const char *name)
{
	bool		isnull;
	Datum		value = row_get(row, name, &isnull);

	return isnull ? NULL : TextDatumGetCString(value);
}

static pg_uuid_t *
row_uuid(Row *row, const char *name)
{
	bool		isnull;
	Datum		value = row_get(row, name, &isnull);

	return isnull ? NULL : DatumGetUUIDP(value);
}

/* A column's value, for a statement's parameter (nulls marked 'n'). */
static Datum
row_param(Row *row, const char *name, char *nulls, int i)
{
	bool		isnull;
	Datum		value = row_get(row, name, &isnull);

	nulls[i] = isnull ? 'n' : ' ';
	return value;
}

static bool
same_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
is_terminal(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
		strcmp(status, "cancelled") == 0;
}

/* Are two values of a column equal by their type's "=" (jsonb 1.0 = 1)? */
static bool
column_equal(Row *a, Row *b, const char *name)
{
	int			attnum = SPI_fnumber(a->desc, name);
	Form_pg_attribute att = TupleDescAttr(a->desc, attnum - 1);
	bool		a_null;
	bool		b_null;
	Datum		a_value = heap_getattr(a->tuple, attnum, a->desc, &a_null);
	Datum		b_value = heap_getattr(b->tuple, attnum, b->desc, &b_null);
	TypeCacheEntry *type;

	if (a_null || b_null)
		return a_null == b_null;
	if (datumIsEqual(a_value, b_value, att->attbyval, att->attlen))
		return true;
	type = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR_FINFO);
	if (!OidIsValid(type->eq_opr_finfo.fn_oid))
		return false;
	return DatumGetBool(FunctionCall2Coll(&type->eq_opr_finfo, att->attcollation,
										  a_value, b_value));
}

static SPIPlanPtr
plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
		*slot = at_keep_plan(sql, nargs, argtypes);
	return *slot;
}

static void
execute(SPIPlanPtr p, Datum *values, const char *nulls, bool read_only)
{
	int			rc = SPI_execute_plan(p, values, nulls, read_only, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

/* Plans that take a task row are remade when the row type is new. */
static void
check_task_plans(Oid rowtype)
{
	SPIPlanPtr *plans[] = {&enqueue_event, &enqueue_callback, &updated_fields};
	int			i;

	if (rowtype == task_plans_rowtype)
		return;
	for (i = 0; i < lengthof(plans); i++)
	{
		if (*plans[i] != NULL)
			SPI_freeplan(*plans[i]);
		*plans[i] = NULL;
	}
	task_plans_rowtype = rowtype;
}

/* ---------------------------------------------------------------------------
 * The trail
 * ---------------------------------------------------------------------------
 */

/* A small JSON object built as text: json_open, json_add..., json_close. */
static void
json_key(StringInfo buf, const char *key)
{
	if (buf->len > 1)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
}

/* A string member; a NULL value is written as null unless strip is set. */
static void
json_add_text(StringInfo buf, const char *key, const char *value, bool strip)
{
	if (value == NULL && strip)
		return;
	json_key(buf, key);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

/* A member whose value is a jsonb column (skipped when null). */
static void
json_add_jsonb(StringInfo buf, const char *key, Row *row, const char *column)
{
	bool		isnull;
	Datum		value = row_get(row, column, &isnull);

	if (isnull)
		return;
	json_key(buf, key);
	appendStringInfoString(buf, JsonbToCString(NULL, &DatumGetJsonbP(value)->root, 0));
}

static Datum
json_close(StringInfo buf)
{
	appendStringInfoChar(buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf->data));
}

/* The same, without null members at any depth (as jsonb_strip_nulls). */
static Datum
json_close_stripped(StringInfo buf)
{
	return DirectFunctionCall1(jsonb_strip_nulls, json_close(buf));
}

static void
json_open(StringInfo buf)
{
	initStringInfo(buf);
	appendStringInfoChar(buf, '{');
}

/* Add one activity to a task's trail. */
static void
log_activity(const char *account, pg_uuid_t *task, pg_uuid_t *run, const char *event,
			 Datum data, const char *from_status, const char *to_status, const char *reason)
{
	Oid			types[] = {TEXTOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, JSONBOID};
	Datum		values[9];
	char		nulls[9];

	values[0] = CStringGetTextDatum(account);
	values[1] = UUIDPGetDatum(task);
	values[2] = run ? UUIDPGetDatum(run) : (Datum) 0;
	values[3] = CStringGetTextDatum(event);
	values[4] = CStringGetTextDatum(at_session_actor());
	values[5] = from_status ? CStringGetTextDatum(from_status) : (Datum) 0;
	values[6] = to_status ? CStringGetTextDatum(to_status) : (Datum) 0;
	values[7] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	values[8] = data;
	memset(nulls, ' ', sizeof(nulls));
	nulls[2] = run ? ' ' : 'n';
	nulls[5] = from_status ? ' ' : 'n';
	nulls[6] = to_status ? ' ' : 'n';
	nulls[7] = reason ? ' ' : 'n';

	execute(plan(&add_activity,
				 "INSERT INTO agent_tasks_internal.activities"
				 " (account, task_id, run_id, event, actor, from_status, to_status, reason, data)"
				 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
				 9, types),
			values, nulls, false);
}

/* ---------------------------------------------------------------------------
 * The webhook outbox
 * ---------------------------------------------------------------------------
 */

/* Queue a webhook event about this task for the endpoints that want it. */
static void
enqueue_webhook_event(Row *task, Oid rowtype, const char *account, const char *event,
					  const char *extra_key, const char *extra_value)
{
	Oid			check_types[] = {TEXTOID, TEXTOID};
	Datum		check_values[2];
	Oid			types[3];
	Datum		values[3];
	StringInfoData extra;

	check_values[0] = CStringGetTextDatum(account);
	check_values[1] = CStringGetTextDatum(event);
	execute(plan(&endpoints_for,
				 "SELECT 1 FROM agent_tasks_internal.webhook_endpoints e"
				 " WHERE e.account = $1 AND e.enabled AND e.events && ARRAY[$2, '*'] LIMIT 1",
				 2, check_types),
			check_values, NULL, true);
	if (SPI_processed == 0)
		return;

	json_open(&extra);
	if (extra_key != NULL)
		json_add_text(&extra, extra_key, extra_value, false);
	types[0] = rowtype;
	types[1] = TEXTOID;
	types[2] = JSONBOID;
	values[0] = heap_copy_tuple_as_datum(task->tuple, task->desc);
	values[1] = CStringGetTextDatum(event);
	values[2] = json_close(&extra);
	execute(plan(&enqueue_event,
				 "SELECT agent_tasks_internal.enqueue_webhook_event($1, $2, $3)", 3, types),
			values, NULL, false);
}

/* The Flint-style callback of a task that completed or failed. */
static void
enqueue_task_callback(Row *task, Oid rowtype, const char *status)
{
	Oid			types[] = {rowtype, TEXTOID};
	Datum		values[2];

	values[0] = heap_copy_tuple_as_datum(task->tuple, task->desc);
	values[1] = CStringGetTextDatum(psprintf("task.%s", status));
	execute(plan(&enqueue_callback,
				 "INSERT INTO agent_tasks_internal.webhook_deliveries"
				 " (account, kind, task_id, event, url, body)"
				 " VALUES (($1).account, 'callback', ($1).id, $2, ($1).callback_url,"
				 "         agent_tasks_internal.callback_body($1))",
				 2, types),
			values, NULL, false);
	at_signal_dispatcher();
}

static const char *
webhook_event_of(const char *status)
{
	if (strcmp(status, "queued") == 0)
		return "task.queued";
	if (strcmp(status, "in_progress") == 0)
		return "task.started";
	if (strcmp(status, "needs_clarification") == 0)
		return "task.needs_clarification";
	if (strcmp(status, "on_hold") == 0)
		return "task.on_hold";
	if (strcmp(status, "completed") == 0)
		return "task.completed";
	if (strcmp(status, "failed") == 0)
		return "task.failed";
	if (strcmp(status, "cancelled") == 0)
		return "task.cancelled";
	return NULL;
}

/* ---------------------------------------------------------------------------
 * Queueing a run
 * ---------------------------------------------------------------------------
 */

/*
 * Queue a new run of a task (attempt, due no earlier than now, reason and
 * input); run_transition then makes it the task's latest.  id is the run's
 * id when the task names it already (a task created queued), else NULL.
 */
static Datum
queue_run(Row *task, int32 attempt, NullableDatum due_at, NullableDatum reason,
		  NullableDatum input, NullableDatum id)
{
	Oid			types[] = {TEXTOID, UUIDOID, UUIDOID, UUIDOID, INT4OID, TEXTOID, INT4OID,
	TIMESTAMPTZOID, JSONBOID};
	Datum		values[9];
	char		nulls[9];

	values[0] = row_param(task, "account", nulls, 0);
	if (id.isnull)
		id.value = at_new_uuid_v7();
	values[1] = id.value;
	nulls[1] = ' ';
	values[2] = row_param(task, "id", nulls, 2);
	values[3] = row_param(task, "agent_id", nulls, 3);
	values[4] = Int32GetDatum(attempt);
	nulls[4] = ' ';
	values[5] = reason.value;
	nulls[5] = reason.isnull ? 'n' : ' ';
	values[6] = row_param(task, "priority", nulls, 6);
	values[7] = due_at.value;
	nulls[7] = due_at.isnull ? 'n' : ' ';
	values[8] = input.value;
	nulls[8] = input.isnull ? 'n' : ' ';
	execute(plan(&insert_run,
				 "INSERT INTO agent_tasks_internal.runs"
				 " (account, id, task_id, agent_id, kind, attempt, status_reason, priority, due_at, input)"
				 " VALUES ($1, $2, $3, $4,"
				 "  coalesce((SELECT a.kind FROM agent_tasks_internal.agents a"
				 "             WHERE a.account = $1 AND a.id = $4), 'external'),"
				 "  $5, $6, $7, greatest(coalesce($8, pg_catalog.now()), pg_catalog.now()), $9)",
				 9, types),
			values, nulls, false);
	return id.value;
}

static NullableDatum
row_nullable(Row *row, const char *name)
{
	NullableDatum d;

	d.value = row_get(row, name, &d.isnull);
	return d;
}

/*
 * The first run of a task inserted as queued: the run its latest_run_id
 * names, queued here so that such a task never lacks it.  The run's own
 * transition finds the task already following it.
 */
static void
queue_first_run(Row *task)
{
	NullableDatum no_input = {DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")), false};

	(void) queue_run(task, 1, row_nullable(task, "run_after"), row_nullable(task, "status_reason"),
					 no_input, row_nullable(task, "latest_run_id"));
}

/*
 * queue_run(t tasks, attempt integer, due_at timestamptz, reason text,
 *			 input jsonb DEFAULT NULL, id uuid DEFAULT NULL) RETURNS uuid
 */
Datum
at_queue_run(PG_FUNCTION_ARGS)
{
	HeapTupleHeader header;
	HeapTupleData tuple;
	Row			task;
	NullableDatum args[4];
	Datum		id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "queue_run needs a task and an attempt");
	header = PG_GETARG_HEAPTUPLEHEADER(0);
	tuple.t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = header;
	task.tuple = &tuple;
	task.desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(header), HeapTupleHeaderGetTypMod(header));
	for (int i = 0; i < 4; i++)
		args[i] = fcinfo->args[i + 2];

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	id = queue_run(&task, PG_GETARG_INT32(1), args[0], args[1], args[2], args[3]);
	id = SPI_datumTransfer(id, false, UUID_LEN);
	SPI_finish();
	ReleaseTupleDesc(task.desc);
	PG_RETURN_DATUM(id);
}

/* ---------------------------------------------------------------------------
 * Consequences
 * ---------------------------------------------------------------------------
 */

/* A savepoint ends: its consequences go with it, or pass to its parent. */
static void
forget_consequences(SubXactEvent event, SubTransactionId subid,
					SubTransactionId parent_subid, void *arg)
{
	if ((event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB) ||
		consequences == NIL)
		return;
	consequences = at_after_subxact(consequences, GetCurrentTransactionNestLevel(),
									event == SUBXACT_EVENT_ABORT_SUB);
}

static void
add_consequence(const char *account, pg_uuid_t *task, const char *status, pg_uuid_t *parent)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	Consequence *c = palloc0(sizeof(Consequence));

	if (!subxact_callback_registered)
	{
		RegisterSubXactCallback(forget_consequences, NULL);
		subxact_callback_registered = true;
	}
	c->nest_level = GetCurrentTransactionNestLevel();
	c->account = pstrdup(account);
	c->task = *task;
	c->status = pstrdup(status);
	c->dependents_done = cancelling_dependents;
	if (parent != NULL)
	{
		c->has_parent = true;
		c->parent = *parent;
	}
	consequences = lappend(consequences, c);
	MemoryContextSwitchTo(old);
}

/*
 * What a task's change means for others: its dependents when it finished,
 * its command-mode parent when it started or finished.  The statements
 * change other tasks; their transitions add to the work list.
 */
static void
apply_consequence(Consequence *c)
{
	Oid			types[] = {TEXTOID, UUIDOID, TEXTOID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(c->account);
	values[1] = UUIDPGetDatum(&c->task);
	values[2] = CStringGetTextDatum(c->status);

	if (strcmp(c->status, "completed") == 0)
		execute(plan(&release_dependents,
					 "SELECT agent_tasks_internal.release_if_ready(x.t) FROM"
					 " (SELECT t FROM agent_tasks_internal.task_dependencies d"
					 "   JOIN agent_tasks_internal.tasks t ON t.account = d.account AND t.id = d.task_id"
					 "  WHERE d.account = $1 AND d.depends_on = $2"
					 "    AND t.status = 'pending' AND t.status_reason = 'blocked'"
					 "  ORDER BY t.id FOR UPDATE OF t) x",
					 2, types),
				values, NULL, false);
	else if (is_terminal(c->status) && !c->dependents_done)
	{
		/*
		 * cancel_dependents() cancels the whole closure at once: the tasks it
		 * cancels have no dependents left to look at.
		 */
		cancelling_dependents = true;
		execute(plan(&cancel_dependents,
					 "SELECT agent_tasks_internal.cancel_dependents(b)"
					 "  FROM agent_tasks_internal.tasks b"
					 " WHERE b.account = $1 AND b.id = $2 AND EXISTS ("
					 "  SELECT 1 FROM agent_tasks_internal.task_dependencies d"
					 "    JOIN agent_tasks_internal.tasks t ON t.account = d.account AND t.id = d.task_id"
					 "   WHERE d.account = $1 AND d.depends_on = $2"
					 "     AND t.status NOT IN ('completed', 'failed', 'cancelled'))",
					 2, types),
				values, NULL, false);
		cancelling_dependents = false;
	}

	if (c->has_parent)
	{
		values[1] = UUIDPGetDatum(&c->parent);
		execute(plan(&move_parent,
					 "SELECT agent_tasks_internal.child_moved(x.p, $3) FROM"
					 " (SELECT p FROM agent_tasks_internal.tasks p"
					 "   WHERE p.account = $1 AND p.id = $2 AND p.command IS NOT NULL"
					 "     AND p.status NOT IN ('completed', 'failed', 'cancelled')"
					 "     FOR UPDATE) x",
					 3, types),
				values, NULL, false);
	}
}

/*
 * The outermost transition applies the work list until it is empty; items
 * added meanwhile (by the transitions its statements cause) come last.
 */
static void
apply_consequences(void)
{
	applying_consequences = true;
	PG_TRY();
	{
		while (consequences != NIL)
		{
			Consequence *c = linitial(consequences);

			consequences = list_delete_first(consequences);
			apply_consequence(c);
		}
	}
	PG_FINALLY();
	{
		applying_consequences = false;
		cancelling_dependents = false;
		consequences = NIL;
	}
	PG_END_TRY();
}

/*
 * A queued run waits in its agent's queue in the task's priority order from
 * its due time: when the task's agent, priority or run_after change, its
 * queued run follows (a retry keeps its backoff unless run_after changed).
 */
static void
reschedule_run(Row *task, Row *old)
{
	bool		run_after_changed = !column_equal(task, old, "run_after");
	Oid			types[] = {TEXTOID, UUIDOID, UUIDOID, INT4OID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	if (row_uuid(task, "latest_run_id") == NULL ||
		(column_equal(task, old, "agent_id") && column_equal(task, old, "priority") && !run_after_changed))
		return;
	values[0] = row_param(task, "account", nulls, 0);
	values[1] = row_param(task, "latest_run_id", nulls, 1);
	values[2] = row_param(task, "agent_id", nulls, 2);
	values[3] = row_param(task, "priority", nulls, 3);
	values[4] = row_param(task, "run_after", nulls, 4);
	values[5] = BoolGetDatum(run_after_changed);
	execute(plan(&reschedule_queued_run,
				 "UPDATE agent_tasks_internal.runs r"
				 "   SET agent_id = $3, priority = $4,"
				 "       due_at = CASE WHEN $6 THEN greatest(coalesce($5, now()), now()) ELSE r.due_at END"
				 " WHERE r.account = $1 AND r.id = $2 AND r.status = 'queued'"
				 "   AND (r.agent_id IS DISTINCT FROM $3 OR r.priority <> $4 OR $6)",
				 6, types),
			values, nulls, false);
}

/* ---------------------------------------------------------------------------
 * The triggers
 * ---------------------------------------------------------------------------
 */

static TriggerData *
check_trigger(FunctionCallInfo fcinfo, const char *name)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as an AFTER ROW trigger", name)));
	return trigdata;
}

/*
 * AFTER INSERT OR UPDATE OF status ON runs: the task follows its latest
 * run, and the run's worker is signalled at commit.
 */
Datum
at_run_transition(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = check_trigger(fcinfo, "run_transition");
	bool		inserted = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	Row			run = {trigdata->tg_relation->rd_att,
	inserted ? trigdata->tg_trigtuple : trigdata->tg_newtuple};
	Row			old = {trigdata->tg_relation->rd_att, trigdata->tg_trigtuple};
	char	   *status = row_text(&run, "status");
	char	   *old_status = inserted ? NULL : row_text(&old, "status");
	Oid			types[] = {TEXTOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID};
	Datum		values[7];
	char		nulls[7];

	if (!inserted && strcmp(status, old_status) == 0)
		return PointerGetDatum(NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	memset(nulls, ' ', sizeof(nulls));
	values[0] = row_param(&run, "account", nulls, 0);
	values[1] = row_param(&run, "task_id", nulls, 1);
	values[2] = row_param(&run, "id", nulls, 2);
	values[3] = row_param(&run, "status", nulls, 3);
	values[4] = row_param(&run, "status_reason", nulls, 4);
	values[5] = row_param(&run, "output", nulls, 5);
	values[6] = row_param(&run, "error", nulls, 6);

	if (inserted)
		execute(plan(&follow_new_run,
					 "UPDATE agent_tasks_internal.tasks t"
					 "   SET latest_run_id = $3, status = $4, status_reason = $5,"
					 "       output = NULL, error = NULL, updated_at = now()"
					 " WHERE t.account = $1 AND t.id = $2"
					 "   AND t.latest_run_id IS DISTINCT FROM $3",
					 5, types),
				values, nulls, false);
	else
	{
		execute(plan(&follow_run,
					 "UPDATE agent_tasks_internal.tasks t"
					 "   SET status = $4, status_reason = $5,"
					 "       output = CASE WHEN $4 = 'completed' THEN $6 ELSE t.output END,"
					 "       error = CASE WHEN $4 IN ('failed', 'cancelled') THEN $7 ELSE t.error END,"
					 "       updated_at = now()"
					 " WHERE t.account = $1 AND t.id = $2 AND t.latest_run_id = $3",
					 7, types),
				values, nulls, false);
		if (SPI_processed == 0)
		{
			StringInfoData data;
			bool		isnull;
			Datum		attempt = row_get(&run, "attempt", &isnull);

			json_open(&data);
			json_key(&data, "attempt");
			appendStringInfo(&data, "%d", DatumGetInt32(attempt));
			json_add_jsonb(&data, "error", &run, "error");
			log_activity(row_text(&run, "account"), row_uuid(&run, "task_id"),
						 row_uuid(&run, "id"), psprintf("run_%s", status), json_close_stripped(&data),
						 old_status, status, row_text(&run, "status_reason"));
		}
	}

	if (strcmp(status, "queued") == 0)
		at_signal_run_queued(row_text(&run, "kind"), row_uuid(&run, "agent_id") != NULL);
	else if (!inserted && strcmp(old_status, "in_progress") == 0 &&
			 (strcmp(status, "on_hold") == 0 || strcmp(status, "cancelled") == 0))
		at_signal_run_stopped(row_uuid(&run, "id"));

	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * AFTER INSERT OR UPDATE OR DELETE ON tasks: the trail, the outbox, the
 * signals and the consequences of a task's change.
 */
Datum
at_task_transition(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = check_trigger(fcinfo, "task_transition");
	TupleDesc	desc = trigdata->tg_relation->rd_att;
	Oid			rowtype = trigdata->tg_relation->rd_rel->reltype;
	Row			old = {desc, trigdata->tg_trigtuple};
	Row			task = {desc, TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
	trigdata->tg_newtuple : trigdata->tg_trigtuple};
	char	   *account = row_text(&task, "account");
	pg_uuid_t  *id = row_uuid(&task, "id");
	char	   *status = row_text(&task, "status");
	const char *first_event = NULL;
	bool		status_changed = false;
	bool		feedback_changed = false;
	char	   *old_status = NULL;
	char	   *old_feedback = NULL;

	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		at_notify_task(account, id, status, "deleted");
		return PointerGetDatum(NULL);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	check_task_plans(rowtype);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		StringInfoData data;
		pg_uuid_t  *parent = row_uuid(&task, "parent_id");
		/* born queued: by the state machine, with its first run named */
		bool		queued = strcmp(status, "queued") == 0 &&
			row_uuid(&task, "latest_run_id") != NULL;

		json_open(&data);
		json_add_text(&data, "title", row_text(&task, "title"), true);
		if (parent != NULL)
			json_add_text(&data, "parent_id",
						  DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(parent))), true);
		json_add_text(&data, "origin", row_text(&task, "origin"), true);
		if (queued)
			queue_first_run(&task);
		log_activity(account, id, row_uuid(&task, "latest_run_id"), "created",
					 json_close_stripped(&data), NULL, status, row_text(&task, "status_reason"));
		enqueue_webhook_event(&task, rowtype, account, "task.created", NULL, NULL);
		if (queued)
			enqueue_webhook_event(&task, rowtype, account, "task.queued", "previous_status", NULL);
		at_notify_task(account, id, status, "created");
		at_fire_hooks(account, id, "task.created", NULL, (Datum) 0);
		if (queued)
		{
			StringInfoData extra;

			json_open(&extra);
			json_add_text(&extra, "previous_status", NULL, false);
			at_fire_hooks(account, id, "task.queued", NULL, json_close(&extra));
		}
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	/* an UPDATE */
	{
		char	   *feedback = row_text(&task, "feedback");
		int			i;

		old_status = row_text(&old, "status");
		old_feedback = row_text(&old, "feedback");

		if (strcmp(status, old_status) != 0)
		{
			StringInfoData data;
			const char *event = webhook_event_of(status);

			status_changed = true;
			json_open(&data);
			json_add_jsonb(&data, "error", &task, "error");
			log_activity(account, id, row_uuid(&task, "latest_run_id"), "status_changed",
						 json_close_stripped(&data), old_status, status, row_text(&task, "status_reason"));
			if (event != NULL)
				enqueue_webhook_event(&task, rowtype, account, event, "previous_status", old_status);
			if ((strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0) &&
				row_text(&task, "callback_url") != NULL)
				enqueue_task_callback(&task, rowtype, status);
			first_event = "status_changed";
		}

		if (!column_equal(&task, &old, "archived_at"))
		{
			StringInfoData data;
			bool		unarchived;
			const char *event;

			(void) row_get(&task, "archived_at", &unarchived);
			event = unarchived ? "unarchived" : "archived";

			json_open(&data);
			log_activity(account, id, NULL, event, json_close(&data), NULL, NULL, NULL);
			if (first_event == NULL)
				first_event = event;
		}

		if (!same_text(feedback, old_feedback))
		{
			StringInfoData data;

			feedback_changed = true;

			json_open(&data);
			json_add_text(&data, "feedback", feedback, false);
			json_add_text(&data, "previous", old_feedback, false);
			log_activity(account, id, NULL, "feedback", json_close(&data), NULL, NULL, NULL);
			enqueue_webhook_event(&task, rowtype, account, "task.feedback", "previous_feedback", old_feedback);
			if (first_event == NULL)
				first_event = "feedback";
		}

		for (i = 0; i < lengthof(tracked_fields); i++)
			if (!column_equal(&task, &old, tracked_fields[i]))
				break;
		if (i < lengthof(tracked_fields))
		{
			Oid			types[] = {rowtype, rowtype};
			Datum		values[2];
			bool		isnull;

			values[0] = heap_copy_tuple_as_datum(old.tuple, desc);
			values[1] = heap_copy_tuple_as_datum(task.tuple, desc);
			execute(plan(&updated_fields,
						 "SELECT jsonb_build_object('changes', jsonb_object_agg(n.key, n.value))"
						 "  FROM jsonb_each(agent_tasks_internal.tracked_values($2)) AS n"
						 " WHERE n.value IS DISTINCT FROM agent_tasks_internal.tracked_values($1) -> n.key",
						 2, types),
					values, NULL, true);
			log_activity(account, id, NULL, "updated",
						 SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
						 NULL, NULL, NULL);
			if (first_event == NULL)
				first_event = "updated";
			reschedule_run(&task, &old);
		}
	}

	if (first_event != NULL)
		at_notify_task(account, id, status, first_event);

	if (status_changed && webhook_event_of(status) != NULL)
	{
		StringInfoData extra;

		json_open(&extra);
		json_add_text(&extra, "previous_status", old_status, false);
		at_fire_hooks(account, id, webhook_event_of(status), old_status, json_close(&extra));
	}
	if (feedback_changed)
	{
		StringInfoData extra;

		json_open(&extra);
		json_add_text(&extra, "previous_feedback", old_feedback, false);
		at_fire_hooks(account, id, "task.feedback", status, json_close(&extra));
	}

	if (status_changed)
	{
		pg_uuid_t  *parent = row_uuid(&task, "parent_id");

		at_signal_task_changed(id);
		if (is_terminal(status) || parent != NULL)
			add_consequence(account, id, status, parent);
		if (!applying_consequences && consequences != NIL)
			apply_consequences();
	}

	SPI_finish();
	return PointerGetDatum(NULL);
}
