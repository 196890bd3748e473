/*-------------------------------------------------------------------------
 *
 * state_machine.c
 *	  The one place that decides which status changes of tasks and runs are
 *	  allowed.  A BEFORE trigger on both tables calls into the transition
 *	  table below, so that every path -- API functions, workers, external
 *	  agents, even direct DML on the internal tables -- is checked the same
 *	  way.  It also forbids any change to a run once it is terminal (but
 *	  for losing the reference to a dropped agent).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datum.h"

#include "agent_tasks.h"

typedef enum AtStatus
{
	AT_PENDING,
	AT_QUEUED,
	AT_IN_PROGRESS,
	AT_NEEDS_CLARIFICATION,
	AT_ON_HOLD,
	AT_COMPLETED,
	AT_FAILED,
	AT_CANCELLED,
	AT_NUM_STATUSES
} AtStatus;

static const char *const status_names[AT_NUM_STATUSES] = {
	"pending",
	"queued",
	"in_progress",
	"needs_clarification",
	"on_hold",
	"completed",
	"failed",
	"cancelled"
};

/* 'idle' (no run requested), 'active', 'waiting' (for a person), 'terminal' */
static const char *const status_kinds[AT_NUM_STATUSES] = {
	"idle", "active", "active", "waiting", "waiting",
	"terminal", "terminal", "terminal"
};

/* Which entity a transition applies to. */
#define T_TASK	0x01
#define T_RUN	0x02
#define T_BOTH	(T_TASK | T_RUN)

/*
 * transitions[from][to].  A task follows the status of its latest run, and
 * may in addition start over (a retry or follow-up is a new run, so a
 * terminal task can go back to queued) or wait for its dependencies
 * (pending).  A run never leaves a terminal status.
 */
static const uint8 transitions[AT_NUM_STATUSES][AT_NUM_STATUSES] = {
	/* to:       pend    queued  in_prog needs_c on_hold compl   failed  cancel */
	[AT_PENDING] = {0, T_TASK, 0, 0, T_TASK, 0, 0, T_TASK},
	[AT_QUEUED] = {T_TASK, 0, T_BOTH, 0, T_BOTH, 0, T_BOTH, T_BOTH},
	[AT_IN_PROGRESS] = {0, T_TASK, 0, T_BOTH, T_BOTH, T_BOTH, T_BOTH, T_BOTH},
	[AT_NEEDS_CLARIFICATION] = {0, T_BOTH, 0, 0, T_BOTH, 0, T_BOTH, T_BOTH},
	[AT_ON_HOLD] = {0, T_BOTH, 0, 0, 0, 0, T_BOTH, T_BOTH},
	[AT_COMPLETED] = {0, T_TASK, 0, 0, 0, 0, 0, 0},
	[AT_FAILED] = {0, T_TASK, 0, 0, 0, 0, 0, 0},
	[AT_CANCELLED] = {0, T_TASK, 0, 0, 0, 0, 0, 0},
};

PG_FUNCTION_INFO_V1(at_enforce_status_transition);
PG_FUNCTION_INFO_V1(at_status_transitions);
PG_FUNCTION_INFO_V1(at_status_kind);

static bool
status_is_terminal(AtStatus s)
{
	return s == AT_COMPLETED || s == AT_FAILED || s == AT_CANCELLED;
}

static AtStatus
parse_status(const char *name)
{
	int			i;

	for (i = 0; i < AT_NUM_STATUSES; i++)
		if (strcmp(name, status_names[i]) == 0)
			return (AtStatus) i;

	ereport(ERROR,
			(errcode(ERRCODE_AT_BAD_INPUT),
			 errmsg("unknown status \"%s\"", name),
			 errdetail("Valid statuses are pending, queued, in_progress, "
					   "needs_clarification, on_hold, completed, failed and cancelled.")));
	pg_unreachable();
}

/*
 * Is the only change that the run's agent reference went away?  Dropping an
 * agent sets agent_id to NULL in its runs (the foreign key's ON DELETE SET
 * NULL), finished ones included; that is the one change a finished run
 * accepts.
 */
static bool
only_agent_dropped(HeapTuple oldtuple, HeapTuple newtuple, TupleDesc tupdesc)
{
	int			agent_att = SPI_fnumber(tupdesc, "agent_id");
	int			att;

	if (agent_att <= 0 || !heap_attisnull(newtuple, agent_att, tupdesc))
		return false;
	for (att = 1; att <= tupdesc->natts; att++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, att - 1);
		bool		oldnull;
		bool		newnull;
		Datum		oldvalue;
		Datum		newvalue;

		if (att == agent_att || attr->attisdropped)
			continue;
		oldvalue = heap_getattr(oldtuple, att, tupdesc, &oldnull);
		newvalue = heap_getattr(newtuple, att, tupdesc, &newnull);
		if (oldnull != newnull ||
			(!oldnull && !datumIsEqual(oldvalue, newvalue, attr->attbyval, attr->attlen)))
			return false;
	}
	return true;
}

/* The status column of a trigger tuple, which the table declares NOT NULL. */
static AtStatus
tuple_status(HeapTuple tuple, TupleDesc tupdesc, int attnum)
{
	char	   *value = SPI_getvalue(tuple, tupdesc, attnum);

	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_AT_BAD_INPUT),
				 errmsg("status must not be null")));
	return parse_status(value);
}

/* Whether a new task row names a latest run. */
static bool
names_latest_run(HeapTuple tuple, TupleDesc tupdesc)
{
	int			attnum = SPI_fnumber(tupdesc, "latest_run_id");
	bool		isnull = true;

	if (attnum > 0)
		(void) heap_getattr(tuple, attnum, tupdesc, &isnull);
	return !isnull;
}

/*
 * BEFORE INSERT OR UPDATE trigger on tasks (argument 'task') and runs
 * (argument 'run').
 */
Datum
at_enforce_status_transition(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	bool		is_run;
	uint8		entity;
	int			status_att;
	int			id_att;
	HeapTuple	newtuple;
	AtStatus	to;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "enforce_status_transition must be a BEFORE ROW trigger with one argument");

	is_run = strcmp(trigdata->tg_trigger->tgargs[0], "run") == 0;
	entity = is_run ? T_RUN : T_TASK;
	tupdesc = trigdata->tg_relation->rd_att;
	status_att = SPI_fnumber(tupdesc, "status");
	id_att = SPI_fnumber(tupdesc, "id");
	if (status_att <= 0 || id_att <= 0)
		elog(ERROR, "enforce_status_transition needs columns \"id\" and \"status\"");

	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	to = tuple_status(newtuple, tupdesc, status_att);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		AtStatus	initial = is_run ? AT_QUEUED : AT_PENDING;

		/*
		 * A task may also start queued when it names its first run, which
		 * its transition then creates (transitions.c).
		 */
		if (to != initial &&
			!(!is_run && to == AT_QUEUED && names_latest_run(newtuple, tupdesc)))
			ereport(ERROR,
					(errcode(ERRCODE_AT_CONFLICT),
					 errmsg("a new %s must start as %s", is_run ? "run" : "task",
							status_names[initial]),
					 errdetail("(new) -> %s", status_names[to]),
					 is_run ?
					 errhint("Create it as queued, then move it through the state machine.") :
					 errhint("Create it as pending (or queued, with latest_run_id set to the id of its first run), then move it through the state machine.")));
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		AtStatus	from = tuple_status(trigdata->tg_trigtuple, tupdesc, status_att);
		char	   *id = SPI_getvalue(newtuple, tupdesc, id_att);

		if (is_run && status_is_terminal(from) &&
			!only_agent_dropped(trigdata->tg_trigtuple, newtuple, tupdesc))
			ereport(ERROR,
					(errcode(ERRCODE_AT_CONFLICT),
					 errmsg("run %s is finished and can no longer change", id),
					 errdetail("%s -> %s", status_names[from], status_names[to]),
					 errhint("Start a new run with agent_tasks.retry_task() or agent_tasks.process_task().")));

		if (from != to && (transitions[from][to] & entity) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_AT_CONFLICT),
					 errmsg("%s %s cannot move from %s to %s",
							is_run ? "run" : "task", id,
							status_names[from], status_names[to]),
					 errdetail("%s -> %s", status_names[from], status_names[to]),
					 status_is_terminal(from) ?
					 errhint("The task is finished; start a new run with agent_tasks.retry_task() or agent_tasks.process_task().") :
					 errhint("The allowed moves are listed in the view agent_tasks.status_transitions.")));
	}
	else
		elog(ERROR, "enforce_status_transition fires on INSERT or UPDATE only");

	return PointerGetDatum(newtuple);
}

/* The transition table as rows, for the view agent_tasks.status_transitions. */
Datum
at_status_transitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			from;
	int			to;

	InitMaterializedSRF(fcinfo, 0);

	for (from = 0; from < AT_NUM_STATUSES; from++)
		for (to = 0; to < AT_NUM_STATUSES; to++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			if (transitions[from][to] == 0)
				continue;
			values[0] = CStringGetTextDatum(status_names[from]);
			values[1] = CStringGetTextDatum(status_names[to]);
			values[2] = BoolGetDatum((transitions[from][to] & T_TASK) != 0);
			values[3] = BoolGetDatum((transitions[from][to] & T_RUN) != 0);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}

	return (Datum) 0;
}

/* 'idle', 'active', 'waiting' or 'terminal'; PT400 for an unknown status. */
Datum
at_status_kind(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_TEXT_P(cstring_to_text(status_kinds[parse_status(name)]));
}
