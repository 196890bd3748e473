/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  The executor background worker: claims queued runs of `sql` agents in
 *	  batches and executes them.  Each agent function runs in a
 *	  subtransaction of its own, as the role that created the agent, in a
 *	  security-restricted operation, with the agent's timeout; its result and
 *	  the run's completion are recorded in the same subtransaction.  When
 *	  the function raises, times out, or the run is stopped under it, only
 *	  that subtransaction rolls back and the outcome is recorded instead.
 *	  A batch commits once, so one commit serves many runs; it commits early
 *	  when its runs take long, so that results become visible promptly.
 *	  What an answer does to the run is outcomes.c's business, shared with
 *	  external workers and http agents.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/acl.h"
#include "utils/timeout.h"
#include "utils/uuid.h"
#include "utils/wait_event.h"

#include "agent_tasks.h"
#include "claims.h"
#include "outcomes.h"
#include "shared_state.h"
#include "worker.h"

/* Runs claimed at once, and how long a batch may run before it commits. */
#define EXECUTOR_BATCH_SIZE		16
#define EXECUTOR_BATCH_MS		50

static AtWorkerSlot *my_slot;
static char *my_name;

/*
 * Plans kept for the session: an agent's call joins two wide views, and
 * planning it cost more than running a no-op agent.  One plan per agent
 * function; a renamed function gets a new call text and so a new plan.
 * Plan invalidation (the views or the function replaced) is the plan
 * cache's business.
 */
typedef struct CallPlan
{
	Oid			function;		/* hash key */
	char	   *call;
	SPIPlanPtr	plan;
} CallPlan;

static HTAB *call_plans;
static SPIPlanPtr errored_plan;

/*
 * Claim up to EXECUTOR_BATCH_SIZE runnable runs of `sql` agents, straight
 * from claims.c (*runs in loop_context), under the search_path the
 * extension's functions pin.
 */
static int
claim_runs(AtSqlRun **runs, MemoryContext loop_context)
{
	int			n = 0;

	at_worker_begin("agent_tasks: claiming");
	if (at_extension_installed())
	{
		MemoryContext spi_context;

		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		spi_context = MemoryContextSwitchTo(loop_context);
		n = at_claim_sql_batch(my_name, EXECUTOR_BATCH_SIZE, runs);
		MemoryContextSwitchTo(spi_context);
	}
	at_worker_commit();
	return n;
}

/* The kept plan of a run's call, prepared as the role the agent runs as. */
static SPIPlanPtr
call_plan(AtSqlRun *run)
{
	static Oid	argtypes[3] = {TEXTOID, UUIDOID, UUIDOID};
	CallPlan   *entry;
	SPIPlanPtr	plan;

	if (call_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CallPlan);
		call_plans = hash_create("agent_tasks executor call plans", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(call_plans, &run->function, HASH_FIND, NULL);
	if (entry != NULL)
	{
		if (strcmp(entry->call, run->call) == 0)
			return entry->plan;
		SPI_freeplan(entry->plan);
		pfree(entry->call);
		hash_search(call_plans, &run->function, HASH_REMOVE, NULL);
	}

	/* prepared before it is entered: an error leaves no half-made entry */
	plan = at_keep_plan(run->call, 3, argtypes);
	entry = hash_search(call_plans, &run->function, HASH_ENTER, NULL);
	entry->plan = plan;
	entry->call = MemoryContextStrdup(TopMemoryContext, run->call);
	return plan;
}

/*
 * The agent function may run as the agent's role only while its owner could
 * already act as that role (the role itself, a member of it, a superuser):
 * otherwise the owner could replace the body and run code with the rights
 * of another.  The claim (claims.c) checked this; look again just before
 * the call, since ownership may have changed since.
 */
static void
check_agent_function(AtSqlRun *run)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(run->function));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_AT_NOT_FOUND),
				 errmsg("the agent function no longer exists"),
				 errdetail("function %u", run->function)));
	owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	if (!has_privs_of_role(owner, run->run_as))
		ereport(ERROR,
				(errcode(ERRCODE_AT_FORBIDDEN),
				 errmsg("the agent function is not owned by the role the agent runs as"),
				 errdetail("Function %s is owned by role \"%s\"; the agent runs as role \"%s\". The function was not executed.",
						   format_procedure(run->function),
						   GetUserNameFromId(owner, true) ? GetUserNameFromId(owner, true) : "?",
						   GetUserNameFromId(run->run_as, true) ? GetUserNameFromId(run->run_as, true) : "?"),
				 errhint("ALTER FUNCTION ... OWNER TO the agent's role, or have the function's owner alter the agent's target.")));
}

/* Call the agent function and record its result; errors propagate. */
static void
execute_run(AtSqlRun *run)
{
	Datum		args[3];
	Oid			saved_user;
	int			saved_context;
	int			guc_nest_level;
	bool		isnull;
	Datum		result;
	int			ret;

	/*
	 * Settings the agent changes (SET LOCAL, set_config) end with its call:
	 * the batch's next run may belong to another account.
	 */
	guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("agent_tasks.account", run->account, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	args[0] = CStringGetTextDatum(run->account);
	args[1] = UUIDPGetDatum(&run->run_id);
	args[2] = UUIDPGetDatum(&run->task_id);

	check_agent_function(run);
	GetUserIdAndSecContext(&saved_user, &saved_context);
	at_executing_as = run->run_as;
	SetUserIdAndSecContext(run->run_as,
						   saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	if (run->timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, run->timeout_ms);

	ret = SPI_execute_plan(call_plan(run), args, NULL, false, 1);

	disable_timeout(STATEMENT_TIMEOUT, false);
	at_executing_as = InvalidOid;
	SetUserIdAndSecContext(saved_user, saved_context);
	AtEOXact_GUC(false, guc_nest_level);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_AT_NOT_FOUND),
				 errmsg("the run disappeared while its agent was working"),
				 errdetail("run %s", DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&run->run_id))))));

	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	at_worker_set_state(my_slot, AT_STATE_RECORDING, &run->run_id);
	at_finish_sql_run(args[0], args[1], args[2], result, isnull);
}

/* Record why the run's subtransaction rolled back. */
static void
record_failure(AtSqlRun *run, ErrorData *edata, bool cancel_requested)
{
	static Oid	argtypes[4] = {TEXTOID, UUIDOID, JSONBOID, TEXTOID};
	Datum		args[4];
	const char *reason;
	StringInfoData error;

	if (cancel_requested)
		reason = "interrupted";
	else if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		reason = "timeout";
	else
		reason = "error";

	initStringInfo(&error);
	appendStringInfoString(&error, "{\"message\": ");
	escape_json(&error, edata->message ? edata->message : "unknown error");
	appendStringInfo(&error, ", \"sqlstate\": \"%s\"", unpack_sql_state(edata->sqlerrcode));
	if (edata->detail)
	{
		appendStringInfoString(&error, ", \"detail\": ");
		escape_json(&error, edata->detail);
	}
	if (edata->hint)
	{
		appendStringInfoString(&error, ", \"hint\": ");
		escape_json(&error, edata->hint);
	}
	appendStringInfoChar(&error, '}');

	args[0] = CStringGetTextDatum(run->account);
	args[1] = UUIDPGetDatum(&run->run_id);
	args[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(error.data));
	args[3] = CStringGetTextDatum(reason);

	if (errored_plan == NULL)
		errored_plan = at_keep_plan("SELECT agent_tasks_internal.run_errored($1, $2, $3, $4)",
									4, argtypes);
	if (SPI_execute_plan(errored_plan, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "run_errored failed");
}

/*
 * Run fn(run) in a subtransaction of the batch's transaction.  Returns the
 * error (copied into loop_context) when it rolled back, else NULL.
 */
static ErrorData *
in_subtransaction(void (*fn) (AtSqlRun *), AtSqlRun *run, MemoryContext loop_context)
{
	MemoryContext outer_context = CurrentMemoryContext;
	ResourceOwner outer_owner = CurrentResourceOwner;
	ErrorData  *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(outer_context);
	PG_TRY();
	{
		fn(run);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
		at_executing_as = InvalidOid;
		MemoryContextSwitchTo(loop_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(outer_context);
	CurrentResourceOwner = outer_owner;
	return edata;
}

/* The failure record_current_failure() writes, set just before the call. */
static ErrorData *failed_error;
static bool failed_cancel_requested;

static void
record_current_failure(AtSqlRun *run)
{
	record_failure(run, failed_error, failed_cancel_requested);
}

/* Execute one run of the batch to an outcome; never lets an error escape. */
static void
process_run(AtSqlRun *run, MemoryContext loop_context)
{
	ErrorData  *edata;
	ErrorData  *second;

	at_worker_set_state(my_slot, AT_STATE_RUNNING, &run->run_id);
	edata = in_subtransaction(execute_run, run, loop_context);
	if (edata == NULL)
		return;

	LWLockAcquire(at_shared->lock, LW_SHARED);
	failed_cancel_requested = my_slot->cancel_requested;
	LWLockRelease(at_shared->lock);
	QueryCancelPending = false;

	at_worker_set_state(my_slot, AT_STATE_RECORDING, &run->run_id);
	at_worker_set_error(my_slot, edata->message ? edata->message : "unknown error", true);
	failed_error = edata;
	second = in_subtransaction(record_current_failure, run, loop_context);
	if (second != NULL)
		/* the lease runs out and recovery takes the run over */
		ereport(LOG,
				(errmsg("agent_tasks %s could not record the failure of a run: %s",
						my_name, second->message)));
}

/* Execute a claimed batch, committing every EXECUTOR_BATCH_MS or so. */
static void
process_batch(AtSqlRun *runs, int n, MemoryContext loop_context)
{
	volatile int i = 0;

	while (i < n)
	{
		TimestampTz started = GetCurrentTimestamp();

		PG_TRY();
		{
			at_worker_begin("agent_tasks: running sql agents");
			do
			{
				process_run(&runs[i++], loop_context);
			} while (i < n && !TimestampDifferenceExceeds(started, GetCurrentTimestamp(), EXECUTOR_BATCH_MS));
			at_worker_set_state(my_slot, AT_STATE_RECORDING, NULL);
			at_worker_commit();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/* the commit failed: the runs stay leased and are recovered */
			edata = at_worker_abort(loop_context);
			at_worker_set_error(my_slot, edata->message, false);
			ereport(LOG,
					(errmsg("agent_tasks %s could not commit a batch of runs: %s",
							my_name, edata->message)));
		}
		PG_END_TRY();
	}
	at_worker_set_state(my_slot, AT_STATE_IDLE, NULL);
}

void
at_executor_main(Datum main_arg)
{
	int			number = DatumGetInt32(main_arg);
	MemoryContext loop_context;

	my_name = psprintf("executor-%d", number);
	at_worker_init(my_name);
	my_slot = at_worker_slot_acquire(AT_WORKER_EXECUTOR, number);
	loop_context = AllocSetContextCreate(TopMemoryContext, "agent_tasks executor loop",
										 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		AtSqlRun   *runs = NULL;
		int			claimed = 0;

		MemoryContextSwitchTo(loop_context);
		QueryCancelPending = false;		/* a late cancel of a finished run */
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		at_worker_set_state(my_slot, AT_STATE_CLAIMING, NULL);
		PG_TRY();
		{
			claimed = claim_runs(&runs, loop_context);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			edata = at_worker_abort(loop_context);
			at_worker_set_error(my_slot, edata->message, false);
			ereport(LOG, (errmsg("agent_tasks %s could not claim runs: %s", my_name, edata->message)));
		}
		PG_END_TRY();

		if (claimed > 0)
			process_batch(runs, claimed, loop_context);

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);

		/* after a batch, look for more before sleeping */
		if (claimed > 0)
			continue;

		at_worker_set_state(my_slot, AT_STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 agent_tasks_poll_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
