/*-------------------------------------------------------------------------
 *
 * shared_state.c
 *	  The shared memory of agent_tasks: a registry of the background workers
 *	  (pid, latch, state, current run, counters, last error) and of sessions
 *	  blocked in wait_task().  Allocated only when the library is preloaded;
 *	  every user copes with at_shared == NULL.  Also worker_status(), the
 *	  registry as rows, and when the current server life began.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "agent_tasks.h"
#include "shared_state.h"

AtSharedState *at_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PG_FUNCTION_INFO_V1(at_worker_status);
PG_FUNCTION_INFO_V1(at_server_life_started_at);
PG_FUNCTION_INFO_V1(at_executor_holds);

static void
at_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AtSharedState)));
	RequestNamedLWLockTranche("agent_tasks", 1);
}

static void
at_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	at_shared = ShmemInitStruct("agent_tasks", sizeof(AtSharedState), &found);
	if (!found)
	{
		memset(at_shared, 0, sizeof(AtSharedState));
		at_shared->lock = &(GetNamedLWLockTranche("agent_tasks"))->lock;
		at_shared->life_started_at = GetCurrentTimestamp();
		ConditionVariableInit(&at_shared->overflow_cv);
		pg_atomic_init_u32(&at_shared->overflow_waiters, 0);
		pg_atomic_init_u64(&at_shared->task_generation, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The launcher's first start in this shared memory marks the beginning of
 * the server life; its restarts do not.  On a promoted standby this is the
 * promotion, so the runs the old primary's workers had in progress are
 * recovered at once instead of when their leases expire.
 */
void
at_mark_server_life(void)
{
	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	if (!at_shared->life_marked)
	{
		at_shared->life_started_at = GetCurrentTimestamp();
		at_shared->life_marked = true;
	}
	LWLockRelease(at_shared->lock);
}

void
at_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = at_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = at_shmem_startup;
}

static void
at_worker_slot_release(int code, Datum arg)
{
	AtWorkerSlot *slot = (AtWorkerSlot *) DatumGetPointer(arg);

	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	slot->pid = 0;
	slot->latch = NULL;
	slot->has_run = false;
	LWLockRelease(at_shared->lock);
}

/*
 * Take a free slot for this worker process; it is given back when the
 * process exits.  Counters survive a restart of the same worker number, so
 * that worker_status() shows the totals since the server started.
 */
AtWorkerSlot *
at_worker_slot_acquire(AtWorkerType type, int number)
{
	AtWorkerSlot *slot = NULL;
	int			i;

	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < AT_MAX_WORKERS && slot == NULL; i++)
		if (at_shared->workers[i].type == type && at_shared->workers[i].number == number &&
			at_shared->workers[i].pid == 0)
			slot = &at_shared->workers[i];
	for (i = 0; i < AT_MAX_WORKERS && slot == NULL; i++)
		if (at_shared->workers[i].type == AT_WORKER_NONE)
			slot = &at_shared->workers[i];
	if (slot != NULL)
	{
		slot->pid = MyProcPid;
		slot->type = type;
		slot->number = number;
		slot->state = AT_STATE_STARTING;
		slot->latch = &MyProc->procLatch;
		slot->has_run = false;
		slot->cancel_requested = false;
		slot->started_at = GetCurrentTimestamp();
		slot->state_since = slot->started_at;
	}
	LWLockRelease(at_shared->lock);

	if (slot == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("agent_tasks has no free worker slot"),
				 errdetail("At most %d agent_tasks workers can run at once.", AT_MAX_WORKERS)));

	before_shmem_exit(at_worker_slot_release, PointerGetDatum(slot));
	return slot;
}

void
at_worker_set_state(AtWorkerSlot *slot, AtWorkerState state, const pg_uuid_t *run)
{
	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	if (slot->state == AT_STATE_RUNNING && state != AT_STATE_RUNNING)
		slot->runs_done++;
	slot->state = state;
	slot->state_since = GetCurrentTimestamp();
	slot->has_run = (run != NULL);
	if (run != NULL)
		slot->current_run = *run;
	if (state != AT_STATE_RUNNING)
		slot->cancel_requested = false;
	LWLockRelease(at_shared->lock);
}

void
at_worker_set_error(AtWorkerSlot *slot, const char *message, bool run_failed)
{
	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	strlcpy(slot->last_error, message, AT_ERROR_LEN);
	slot->last_error_at = GetCurrentTimestamp();
	/* the run being worked on, if any: worker_status() shows the error to its account only */
	slot->last_error_has_run = slot->has_run;
	slot->last_error_run = slot->current_run;
	if (run_failed)
		slot->runs_failed++;
	LWLockRelease(at_shared->lock);
}

static const char *
worker_type_name(AtWorkerType type)
{
	switch (type)
	{
		case AT_WORKER_LAUNCHER:
			return "launcher";
		case AT_WORKER_EXECUTOR:
			return "executor";
		case AT_WORKER_DISPATCHER:
			return "dispatcher";
		default:
			return "unknown";
	}
}

static const char *
worker_state_name(AtWorkerState state)
{
	switch (state)
	{
		case AT_STATE_STARTING:
			return "starting";
		case AT_STATE_IDLE:
			return "idle";
		case AT_STATE_CLAIMING:
			return "claiming";
		case AT_STATE_RUNNING:
			return "running";
		case AT_STATE_RECORDING:
			return "recording";
	}
	return "unknown";
}

/*
 * Of these runs, the ones the caller's account has (agent_tasks.runs, under
 * row-level security): a bool per run.  None without an account.
 */
static bool *
runs_of_caller(pg_uuid_t *runs, int n)
{
	bool	   *mine = palloc0(sizeof(bool) * Max(n, 1));
	const char *account = at_session_account();
	Datum	   *ids;
	Oid			argtypes[2] = {UUIDARRAYOID, TEXTOID};
	Datum		args[2];
	uint64		i;
	int			k;

	if (n == 0 || account == NULL)
		return mine;
	ids = palloc(sizeof(Datum) * n);
	for (k = 0; k < n; k++)
		ids[k] = UUIDPGetDatum(&runs[k]);
	args[0] = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	args[1] = CStringGetTextDatum(account);
	SPI_connect();
	if (SPI_execute_with_args("SELECT x.i::integer FROM unnest($1) WITH ORDINALITY AS x(id, i) "
							  "WHERE EXISTS (SELECT 1 FROM agent_tasks.runs r WHERE r.account = $2 AND r.id = x.id)",
							  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "worker_status: reading runs failed");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			j = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (!isnull && j >= 1 && j <= n)
			mine[j - 1] = true;
	}
	SPI_finish();
	return mine;
}

/*
 * worker_status(): one row per live worker.  Superusers and members of
 * pg_monitor see everything; any other caller sees the workers, but a
 * current run and a last error only when they are its account's run, and
 * no counters (they add up every account's runs).
 */
Datum
at_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AtWorkerSlot *slots;
	int			n = 0;
	int			i;
	bool		everything;
	pg_uuid_t  *runs;
	int			n_runs = 0;
	bool	   *mine;
	int			k = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (at_shared == NULL)
		return (Datum) 0;

	/* a copy, so that no lock is held while runs are looked up */
	slots = palloc(sizeof(AtWorkerSlot) * AT_MAX_WORKERS);
	LWLockAcquire(at_shared->lock, LW_SHARED);
	for (i = 0; i < AT_MAX_WORKERS; i++)
		if (at_shared->workers[i].pid != 0)
			slots[n++] = at_shared->workers[i];
	LWLockRelease(at_shared->lock);

	everything = superuser() || has_privs_of_role(GetUserId(), ROLE_PG_MONITOR);
	runs = palloc(sizeof(pg_uuid_t) * Max(2 * n, 1));
	if (!everything)
		for (i = 0; i < n; i++)
		{
			if (slots[i].has_run)
				runs[n_runs++] = slots[i].current_run;
			if (slots[i].last_error[0] != '\0' && slots[i].last_error_has_run)
				runs[n_runs++] = slots[i].last_error_run;
		}
	mine = everything ? NULL : runs_of_caller(runs, n_runs);

	for (i = 0; i < n; i++)
	{
		AtWorkerSlot *slot = &slots[i];
		Datum		values[11];
		bool		nulls[11] = {0};
		bool		show_run = slot->has_run;
		bool		show_error = slot->last_error[0] != '\0';

		if (!everything)
		{
			if (slot->has_run)
				show_run = mine[k++];
			if (show_error)
				show_error = slot->last_error_has_run && mine[k++];
		}
		values[0] = Int32GetDatum(slot->pid);
		values[1] = CStringGetTextDatum(psprintf("%s-%d", worker_type_name(slot->type), slot->number));
		values[2] = CStringGetTextDatum(worker_state_name(slot->state));
		values[3] = TimestampTzGetDatum(slot->state_since);
		if (show_run)
		{
			pg_uuid_t  *run = palloc(sizeof(pg_uuid_t));

			*run = slot->current_run;
			values[4] = UUIDPGetDatum(run);
		}
		else
			nulls[4] = true;
		values[5] = Int64GetDatum(slot->runs_done);
		values[6] = Int64GetDatum(slot->runs_failed);
		nulls[5] = nulls[6] = !everything;
		if (show_error)
		{
			values[7] = CStringGetTextDatum(slot->last_error);
			values[8] = TimestampTzGetDatum(slot->last_error_at);
		}
		else
			nulls[7] = nulls[8] = true;
		values[9] = TimestampTzGetDatum(slot->started_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}

/*
 * When this server life began: shared memory is set up again after a crash
 * restart, while pg_postmaster_start_time() stays the same.  Runs started
 * by in-server workers before it have no worker any more.
 */
Datum
at_server_life_started_at(PG_FUNCTION_ARGS)
{
	if (at_shared == NULL)
		PG_RETURN_TIMESTAMPTZ(PgStartTime);
	PG_RETURN_TIMESTAMPTZ(at_shared->life_started_at);
}

/*
 * executor_holds(worker text, claimed_at timestamptz): whether the executor
 * of that name is alive in the process that claimed a run at claimed_at
 * (it started before the claim).  An executor runs its batch one run after
 * another, so a run waiting for its turn is not lost however long its lease
 * has run: only an executor that is gone, or was restarted since, loses it.
 */
Datum
at_executor_holds(PG_FUNCTION_ARGS)
{
	char	   *worker = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz claimed_at = PG_GETARG_TIMESTAMPTZ(1);
	int			number;
	char		rest;
	bool		holds = false;
	int			i;

	if (at_shared == NULL || sscanf(worker, "executor-%d%c", &number, &rest) != 1)
		PG_RETURN_BOOL(false);
	LWLockAcquire(at_shared->lock, LW_SHARED);
	for (i = 0; i < AT_MAX_WORKERS; i++)
	{
		AtWorkerSlot *slot = &at_shared->workers[i];

		if (slot->pid != 0 && slot->type == AT_WORKER_EXECUTOR && slot->number == number &&
			slot->started_at <= claimed_at)
			holds = true;
	}
	LWLockRelease(at_shared->lock);
	PG_RETURN_BOOL(holds);
}
