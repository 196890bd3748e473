/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher background worker: registered from _PG_init when the
 *	  library is preloaded, it connects to agent_tasks.database, starts the
 *	  executors and the HTTP dispatcher (and restarts any that die), and
 *	  recovers runs whose worker
 *	  is gone: expired leases, and runs that a previous server life (before
 *	  a restart, a crash restart or the promotion of this standby) left in
 *	  progress.  It also analyzes the extension's tables when they first
 *	  fill up.  Also the transaction helpers every worker uses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "agent_tasks.h"
#include "shared_state.h"
#include "worker.h"

void
at_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "agent_tasks", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "at_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "agent_tasks launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "agent_tasks launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* Signals, database connection and name, common to every worker. */
void
at_worker_init(const char *role_name)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, StatementCancelHandler);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(agent_tasks_database, NULL, 0);
	pgstat_report_appname(psprintf("agent_tasks %s", role_name));
	SetConfigOption("application_name", psprintf("agent_tasks %s", role_name),
					PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("agent_tasks.worker", role_name, PGC_USERSET, PGC_S_SESSION);
}

static MemoryContext caller_context = NULL;

/*
 * A short transaction with SPI and a snapshot; end it with at_worker_commit,
 * which returns to the caller's memory context.
 */
void
at_worker_begin(const char *activity)
{
	caller_context = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
at_worker_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_context);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Prepare a statement and keep its plan for the rest of the session.  The
 * plan is generic from the first call: every kept statement looks rows up
 * by key, and left to choose, the plan cache re-planned some of them at
 * every call (a claim's UPDATE of the runs it starts, planned for the
 * length of its arrays, took 1.2 ms to plan and 0.1 ms to run).
 */
SPIPlanPtr
at_keep_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep a plan");
	return plan;
}

/*
 * In the PG_CATCH of a worker's transaction: keep the error (copied into
 * keep_in), roll the transaction back, and carry on in keep_in.
 */
ErrorData *
at_worker_abort(MemoryContext keep_in)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(keep_in);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(keep_in);
	return edata;
}

/*
 * Inside a transaction: is the extension installed in this database?  Asked
 * before every claim, so pg_extension is scanned once per incarnation of
 * the extension's schema, and the schema looked up in the syscache
 * otherwise: DROP EXTENSION drops the schema, CREATE EXTENSION makes a new
 * one.  (The scan took 40 microseconds of an idle executor's 1 ms claim.)
 */
bool
at_extension_installed(void)
{
	static Oid	schema_of_installed = InvalidOid;
	Oid			schema = get_namespace_oid("agent_tasks_internal", true);

	if (!OidIsValid(schema))
		return false;
	if (schema == schema_of_installed)
		return true;
	if (!OidIsValid(get_extension_oid("agent_tasks", true)))
		return false;
	schema_of_installed = schema;
	return true;
}

static void
start_executor(int number, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher does it */
	strlcpy(worker.bgw_library_name, "agent_tasks", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "at_executor_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "agent_tasks executor-%d", number);
	strlcpy(worker.bgw_type, "agent_tasks executor", BGW_MAXLEN);
	worker.bgw_main_arg = Int32GetDatum(number);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, handle))
	{
		*handle = NULL;
		ereport(WARNING,
				(errmsg("agent_tasks could not start executor-%d", number),
				 errhint("Raise max_worker_processes (agent_tasks needs agent_tasks.executor_workers + 2).")));
	}
}

/* The HTTP dispatcher (src/http_dispatcher.c): one per database. */
static void
start_dispatcher(BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher does it */
	strlcpy(worker.bgw_library_name, "agent_tasks", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "at_dispatcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "agent_tasks dispatcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "agent_tasks dispatcher", BGW_MAXLEN);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, handle))
	{
		*handle = NULL;
		ereport(WARNING,
				(errmsg("agent_tasks could not start the HTTP dispatcher"),
				 errhint("Raise max_worker_processes (agent_tasks needs agent_tasks.executor_workers + 2).")));
	}
}

static bool
worker_is_running(BackgroundWorkerHandle *handle)
{
	pid_t		pid;

	return handle != NULL && GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED;
}

/*
 * A run can be lost before its lease runs out only when its executor is
 * gone: recovery looks at every run in progress for a while after the
 * launcher started an executor (the first round included), and once a
 * minute besides; at the runs whose lease has run out otherwise.
 */
#define RECOVER_EVERYTHING_AFTER_START_MS	10000
#define RECOVER_EVERYTHING_EVERY_MS			60000

/*
 * Re-queue or fail the runs whose worker is gone; errors are logged and
 * retried on the next round.  Returns whether it looked at everything.
 */
static bool
recover_runs(MemoryContext loop_context, bool everything)
{
	bool		recovered = false;

	PG_TRY();
	{
		at_worker_begin("agent_tasks: recovering runs");
		if (at_extension_installed())
		{
			Oid			argtypes[1] = {BOOLOID};
			Datum		args[1] = {BoolGetDatum(everything)};
			int			ret = SPI_execute_with_args("SELECT agent_tasks_internal.recover_runs($1)",
													1, argtypes, args, NULL, false, 0);

			if (ret != SPI_OK_SELECT)
				elog(ERROR, "recover_runs failed: %s", SPI_result_code_string(ret));
		}
		at_worker_commit();
		recovered = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		edata = at_worker_abort(loop_context);
		ereport(LOG,
				(errmsg("agent_tasks launcher could not recover runs: %s", edata->message)));
	}
	PG_END_TRY();
	return recovered && everything;
}

/*
 * Tables of the extension never analyzed but no longer nearly empty
 * (8 pages): ANALYZE them now.  Until a table has statistics, the planner
 * cannot tell a look-up by key from a scan of all of an account's rows
 * through another index that starts with the account; the plans workers
 * and triggers keep for their life are made that way on a new install, and
 * read more with every row added until autovacuum's first ANALYZE, up to a
 * minute later (at 4,000 tasks, a claim read 4,000 pages).  ANALYZE
 * invalidates those plans, and the next ones are made with statistics.
 * Once per table: any statistics end the ties, and autovacuum keeps them
 * from then on.
 */
static void
analyze_new_tables(MemoryContext loop_context)
{
	PG_TRY();
	{
		at_worker_begin("agent_tasks: analyzing new tables");
		if (at_extension_installed())
		{
			int			ret = SPI_execute("SELECT pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_class c"
										  " WHERE c.relnamespace = 'agent_tasks_internal'::pg_catalog.regnamespace"
										  "   AND c.relkind = 'r' AND c.reltuples < 0"
										  "   AND pg_catalog.pg_relation_size(c.oid) >= 8 * pg_catalog.current_setting('block_size')::integer",
										  true, 0);
			uint64		n = SPI_processed;
			char	  **tables;

			if (ret != SPI_OK_SELECT)
				elog(ERROR, "finding new tables failed: %s", SPI_result_code_string(ret));
			tables = palloc(sizeof(char *) * (n + 1));
			for (uint64 i = 0; i < n; i++)
				tables[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
			for (uint64 i = 0; i < n; i++)
				if (SPI_execute(psprintf("ANALYZE agent_tasks_internal.%s", tables[i]), false, 0) != SPI_OK_UTILITY)
					elog(ERROR, "ANALYZE agent_tasks_internal.%s failed", tables[i]);
		}
		at_worker_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		edata = at_worker_abort(loop_context);
		ereport(LOG,
				(errmsg("agent_tasks launcher could not analyze new tables: %s", edata->message)));
	}
	PG_END_TRY();
}

/*
 * Stop the executors and dispatcher of a previous launcher of this server
 * life (it died, they did not), so that they do not run next to ours.
 */
static void
stop_orphaned_workers(void)
{
	int			waited_ms = 0;

	for (;;)
	{
		bool		any = false;
		int			i;

		LWLockAcquire(at_shared->lock, LW_SHARED);
		for (i = 0; i < AT_MAX_WORKERS; i++)
		{
			AtWorkerSlot *worker = &at_shared->workers[i];

			if (worker->pid != 0 &&
				(worker->type == AT_WORKER_EXECUTOR || worker->type == AT_WORKER_DISPATCHER))
			{
				kill(worker->pid, SIGTERM);
				any = true;
			}
		}
		LWLockRelease(at_shared->lock);

		if (!any)
			return;
		if (waited_ms >= 30000)
		{
			ereport(WARNING,
					(errmsg("agent_tasks launcher: workers of a previous launcher do not stop; starting anyway")));
			return;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 100;
	}
}

static AtLauncherDb
launcher_db_state(void)
{
	AtLauncherDb state;

	LWLockAcquire(at_shared->lock, LW_SHARED);
	state = at_shared->launcher_db;
	LWLockRelease(at_shared->lock);
	return state;
}

static void
set_launcher_db_state(AtLauncherDb state)
{
	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	at_shared->launcher_db = state;
	LWLockRelease(at_shared->lock);
}

/*
 * The previous launcher died connecting to agent_tasks.database: connected
 * to no database (shared catalogs only), look for it.  Missing: say so once
 * (with the setting to fix), and wait, checking every poll interval, instead
 * of failing to connect every second.  There: exit, and the launcher is
 * started again (bgw_restart_time) and connects.  Never returns.
 */
static void
wait_for_database(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("agent_tasks launcher");

	for (;;)
	{
		bool		exists;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		exists = OidIsValid(get_database_oid(agent_tasks_database, true));
		CommitTransactionCommand();
		if (exists)
		{
			set_launcher_db_state(AT_DB_UNKNOWN);
			proc_exit(1);
		}
		if (launcher_db_state() != AT_DB_MISSING_LOGGED)
		{
			set_launcher_db_state(AT_DB_MISSING_LOGGED);
			ereport(WARNING,
					(errcode(ERRCODE_UNDEFINED_DATABASE),
					 errmsg("agent_tasks background workers are waiting for database \"%s\", which does not exist",
							agent_tasks_database),
					 errdetail("No sql, http or openai agent runs and no webhook is sent until it exists."),
					 errhint("Set agent_tasks.database in postgresql.conf to the database where CREATE EXTENSION "
							 "agent_tasks was run, and restart PostgreSQL; or create database \"%s\".",
							 agent_tasks_database)));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(agent_tasks_poll_interval, 1000), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
at_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle **executors;
	BackgroundWorkerHandle *dispatcher = NULL;
	MemoryContext loop_context;
	AtWorkerSlot *slot;
	TimestampTz executor_started_at = 0;
	TimestampTz looked_at_everything_at = 0;
	int			i;

	/*
	 * A launcher that dies connecting leaves AT_DB_CONNECTING behind; its
	 * FATAL for a missing database is left out of the log (log_filter.c):
	 * the next launcher looks and says it once, with a hint.
	 */
	if (launcher_db_state() != AT_DB_UNKNOWN && launcher_db_state() != AT_DB_CONNECTED)
		wait_for_database();
	set_launcher_db_state(AT_DB_CONNECTING);
	at_log_hide_missing_database = true;
	at_worker_init("launcher");
	at_log_hide_missing_database = false;
	set_launcher_db_state(AT_DB_CONNECTED);
	at_mark_server_life();
	slot = at_worker_slot_acquire(AT_WORKER_LAUNCHER, 0);
	stop_orphaned_workers();
	executors = palloc0(sizeof(BackgroundWorkerHandle *) * agent_tasks_executor_workers);
	loop_context = AllocSetContextCreate(TopMemoryContext, "agent_tasks launcher loop",
										 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		MemoryContext old = MemoryContextSwitchTo(loop_context);

		/* a query cancel means nothing to the launcher: it must not die of it */
		QueryCancelPending = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (!worker_is_running(dispatcher))
		{
			if (dispatcher != NULL)
				pfree(dispatcher);
			MemoryContextSwitchTo(TopMemoryContext);
			start_dispatcher(&dispatcher);
			MemoryContextSwitchTo(loop_context);
		}
		for (i = 0; i < agent_tasks_executor_workers; i++)
			if (!worker_is_running(executors[i]))
			{
				if (executors[i] != NULL)
					pfree(executors[i]);
				MemoryContextSwitchTo(TopMemoryContext);
				start_executor(i + 1, &executors[i]);
				MemoryContextSwitchTo(loop_context);
				executor_started_at = GetCurrentTimestamp();
			}

		at_worker_set_state(slot, AT_STATE_RECORDING, NULL);
		{
			TimestampTz now = GetCurrentTimestamp();
			bool		everything =
				!TimestampDifferenceExceeds(executor_started_at, now, RECOVER_EVERYTHING_AFTER_START_MS) ||
				TimestampDifferenceExceeds(looked_at_everything_at, now, RECOVER_EVERYTHING_EVERY_MS);

			if (recover_runs(loop_context, everything))
				looked_at_everything_at = now;
		}
		analyze_new_tables(loop_context);
		at_worker_set_state(slot, AT_STATE_IDLE, NULL);

		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 agent_tasks_poll_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
