/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  The executor background worker: claims queued runs of `sql` agents and
 *	  executes each in a transaction of its own.  The agent function runs as
 *	  the role that created the agent, in a security-restricted operation,
 *	  with the agent's timeout; its result and the run's completion commit
 *	  together.  When the function raises, times out, or the run is stopped
 *	  under it, the transaction rolls back and the outcome is recorded in a
 *	  new one.  Everything about what an outcome means (retries, backoff,
 *	  validation, clarification) is decided in SQL, shared with external
 *	  workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/uuid.h"
#include "utils/wait_event.h"

#include "agent_tasks.h"
#include "shared_state.h"
#include "worker.h"

typedef struct ClaimedRun
{
	char	   *account;
	pg_uuid_t	run_id;
	char	   *call;			/* SELECT agent_function(task, run) ... */
	Oid			run_as;
	int			timeout_ms;
} ClaimedRun;

static AtWorkerSlot *my_slot;
static char *my_name;

/* Claim one runnable run of a `sql` agent; false when there is none. */
static bool
claim_run(ClaimedRun *run, MemoryContext loop_context)
{
	bool		found = false;
	Datum		arg = CStringGetTextDatum(my_name);
	Oid			argtype = TEXTOID;

	at_worker_begin("agent_tasks: claiming");
	if (at_extension_installed())
	{
		int			ret = SPI_execute_with_args(
											   "SELECT account, run_id, call, run_as, timeout_ms "
											   "FROM agent_tasks_internal.claim_sql_run($1)",
											   1, &argtype, &arg, NULL, false, 1);

		if (ret != SPI_OK_SELECT)
			elog(ERROR, "claim_sql_run failed: %s", SPI_result_code_string(ret));
		if (SPI_processed == 1)
		{
			HeapTuple	tuple = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			/* copy out of SPI memory, which goes away at commit */
			MemoryContext spi = MemoryContextSwitchTo(loop_context);

			run->account = SPI_getvalue(tuple, desc, 1);
			run->run_id = *DatumGetUUIDP(SPI_getbinval(tuple, desc, 2, &isnull));
			run->call = SPI_getvalue(tuple, desc, 3);
			run->run_as = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
			run->timeout_ms = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
			MemoryContextSwitchTo(spi);
			found = true;
		}
	}
	at_worker_commit();
	return found;
}

static void
set_local(const char *name, const char *value)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {CStringGetTextDatum(name), CStringGetTextDatum(value)};

	if (SPI_execute_with_args("SELECT pg_catalog.set_config($1, $2, true)",
							  2, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not set %s", name);
}

/*
 * Call the agent function and record its result, in one transaction.
 * Errors propagate to the caller, which rolls back.
 */
static void
execute_run(ClaimedRun *run)
{
	Oid			argtypes[3] = {TEXTOID, UUIDOID, JSONBOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	Oid			saved_user;
	int			saved_context;
	bool		isnull;
	int			ret;

	at_worker_begin("agent_tasks: running an sql agent");
	set_local("agent_tasks.account", run->account);

	args[0] = CStringGetTextDatum(run->account);
	args[1] = UUIDPGetDatum(&run->run_id);

	GetUserIdAndSecContext(&saved_user, &saved_context);
	SetUserIdAndSecContext(run->run_as,
						   saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	if (run->timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, run->timeout_ms);

	ret = SPI_execute_with_args(run->call, 2, argtypes, args, NULL, false, 1);

	disable_timeout(STATEMENT_TIMEOUT, false);
	SetUserIdAndSecContext(saved_user, saved_context);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_AT_NOT_FOUND),
				 errmsg("the run disappeared while its agent was working"),
				 errdetail("run %s", DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&run->run_id))))));

	args[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		nulls[2] = 'n';

	at_worker_set_state(my_slot, AT_STATE_RECORDING, &run->run_id);
	ret = SPI_execute_with_args("SELECT agent_tasks_internal.finish_sql_run($1, $2, $3)",
								3, argtypes, args, nulls, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "finish_sql_run failed: %s", SPI_result_code_string(ret));
	at_worker_commit();
}

/* Record why the run's transaction rolled back, in a new transaction. */
static void
record_failure(ClaimedRun *run, ErrorData *edata, bool cancel_requested)
{
	Oid			argtypes[4] = {TEXTOID, UUIDOID, JSONBOID, TEXTOID};
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

	at_worker_begin("agent_tasks: recording a failed run");
	if (SPI_execute_with_args("SELECT agent_tasks_internal.run_errored($1, $2, $3, $4)",
							  4, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "run_errored failed");
	at_worker_commit();
}

/* Run one claimed run to an outcome; never lets an error escape. */
static void
process_run(ClaimedRun *run, MemoryContext loop_context)
{
	ErrorData  *edata = NULL;
	bool		cancel_requested;

	at_worker_set_state(my_slot, AT_STATE_RUNNING, &run->run_id);
	PG_TRY();
	{
		execute_run(run);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		disable_timeout(STATEMENT_TIMEOUT, false);
	}
	PG_END_TRY();

	LWLockAcquire(at_shared->lock, LW_SHARED);
	cancel_requested = my_slot->cancel_requested;
	LWLockRelease(at_shared->lock);
	/* a cancel that came after the function returned is moot */
	QueryCancelPending = false;

	if (edata == NULL)
	{
		at_worker_set_state(my_slot, AT_STATE_IDLE, NULL);
		return;
	}

	at_worker_set_state(my_slot, AT_STATE_RECORDING, &run->run_id);
	at_worker_set_error(my_slot, edata->message ? edata->message : "unknown error", true);
	PG_TRY();
	{
		record_failure(run, edata, cancel_requested);
	}
	PG_CATCH();
	{
		ErrorData  *second;

		MemoryContextSwitchTo(loop_context);
		second = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		/* the lease runs out and recovery takes the run over */
		ereport(LOG,
				(errmsg("agent_tasks %s could not record the failure of a run: %s",
						my_name, second->message)));
	}
	PG_END_TRY();
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
		ClaimedRun	run;
		bool		claimed = false;

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
			claimed = claim_run(&run, loop_context);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(loop_context);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			at_worker_set_error(my_slot, edata->message, false);
			ereport(LOG, (errmsg("agent_tasks %s could not claim a run: %s", my_name, edata->message)));
		}
		PG_END_TRY();

		if (claimed)
			process_run(&run, loop_context);

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);

		/* after a run, look for the next one before sleeping */
		if (claimed)
			continue;

		at_worker_set_state(my_slot, AT_STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 agent_tasks_poll_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
