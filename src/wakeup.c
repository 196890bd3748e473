/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Commit-time signals from sessions to workers, waiters and listeners.
 *	  The transition path (transitions.c) and SQL that queues work call the
 *	  functions below; nothing happens until the transaction commits, and
 *	  nothing at all if it (or the savepoint that asked) aborts.  At commit
 *	  an idle worker's latch is set (no polling on the hot path), sessions in
 *	  wait_task() are woken, a worker executing a stopped or cancelled run
 *	  gets a query cancel, and each task changed sends one NOTIFY on its
 *	  account's channel.
 *
 *	  An account's channel is a random name handed out by
 *	  agent_tasks.notify_channel() (table account_channels): LISTEN needs no
 *	  privilege, so the name is what keeps another tenant from listening.  An
 *	  account nobody asked a channel for sends nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/wait_event.h"

#include "agent_tasks.h"
#include "shared_state.h"
#include "wakeup.h"
#include "worker.h"

/*
 * What this transaction asks for at commit; lives in TopTransactionContext.
 * Each remembered item starts with the nesting level of the (sub)transaction
 * that asked, so that a rolled-back savepoint takes its requests with it.
 */
typedef struct PendingId
{
	int			nest_level;
	pg_uuid_t	id;
} PendingId;

typedef struct PendingNotify
{
	int			nest_level;
	pg_uuid_t	task;
	char	   *channel;
	char	   *account;
	char	   *status;
	char	   *event;
} PendingNotify;

static int	pending_executor_wakeups = 0;
static int	pending_dispatcher_wakeups = 0;
static List *pending_tasks = NIL;		/* of PendingId *, for waiters */
static List *pending_interrupts = NIL;	/* of PendingId *, runs to stop */
static List *pending_notifies = NIL;	/* of PendingNotify *, in order */
static int	deepest_level = 0;		/* no item was asked for deeper */
static bool callback_registered = false;

/* At commit: the last change of each task notified about. */
typedef struct NotifyEntry
{
	pg_uuid_t	task;
	PendingNotify *last;
} NotifyEntry;
/* The transaction that was last told its run waits (notice_unserved_run). */
static LocalTransactionId notice_lxid = InvalidLocalTransactionId;

/* The waiter slot of this session while it is inside wait_task(). */
static AtWaiterSlot *my_waiter = NULL;
/* Or, when every slot was taken, the generation of task changes it saw. */
static bool my_overflow = false;
static uint64 my_generation = 0;

PG_FUNCTION_INFO_V1(at_wake_workers);
PG_FUNCTION_INFO_V1(at_notify_change);
PG_FUNCTION_INFO_V1(at_notify_account);
PG_FUNCTION_INFO_V1(at_run_signals);
PG_FUNCTION_INFO_V1(at_task_signals);
PG_FUNCTION_INFO_V1(at_watch_task);
PG_FUNCTION_INFO_V1(at_await_wakeup);

static void
release_waiter(void)
{
	if (my_overflow && at_shared != NULL)
		pg_atomic_fetch_sub_u32(&at_shared->overflow_waiters, 1);
	my_overflow = false;
	if (my_waiter == NULL || at_shared == NULL)
		return;
	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	my_waiter->pid = 0;
	my_waiter->latch = NULL;
	LWLockRelease(at_shared->lock);
	my_waiter = NULL;
}

static void
wake_idle(AtWorkerType type, int count)
{
	int			i;
	Latch	   *fallback = NULL;

	for (i = 0; i < AT_MAX_WORKERS && count > 0; i++)
	{
		AtWorkerSlot *slot = &at_shared->workers[i];

		if (slot->pid == 0 || slot->type != type || slot->latch == NULL)
			continue;
		if (slot->state == AT_STATE_IDLE)
		{
			SetLatch(slot->latch);
			count--;
		}
		else if (fallback == NULL)
			fallback = slot->latch;
	}
	/* every worker busy: they claim again before sleeping, but be sure */
	if (count > 0 && fallback != NULL)
		SetLatch(fallback);
}

static void
deliver(void)
{
	ListCell   *lc;
	int			i;

	/* exclusive only when a slot's cancel flag is to be written */
	LWLockAcquire(at_shared->lock, pending_interrupts != NIL ? LW_EXCLUSIVE : LW_SHARED);

	if (pending_executor_wakeups > 0)
		wake_idle(AT_WORKER_EXECUTOR, pending_executor_wakeups);
	if (pending_dispatcher_wakeups > 0)
		wake_idle(AT_WORKER_DISPATCHER, 1);

	if (pending_tasks != NIL)
	{
		pg_atomic_fetch_add_u64(&at_shared->task_generation, 1);
		if (pg_atomic_read_u32(&at_shared->overflow_waiters) > 0)
			ConditionVariableBroadcast(&at_shared->overflow_cv);
	}
	foreach(lc, pending_tasks)
	{
		pg_uuid_t  *task = &((PendingId *) lfirst(lc))->id;

		for (i = 0; i < AT_MAX_WAITERS; i++)
		{
			AtWaiterSlot *w = &at_shared->waiters[i];

			if (w->pid != 0 && w->latch != NULL &&
				memcmp(&w->task, task, sizeof(pg_uuid_t)) == 0)
				SetLatch(w->latch);
		}
	}

	foreach(lc, pending_interrupts)
	{
		pg_uuid_t  *run = &((PendingId *) lfirst(lc))->id;

		for (i = 0; i < AT_MAX_WORKERS; i++)
		{
			AtWorkerSlot *slot = &at_shared->workers[i];

			/* the dispatcher has many runs in flight: it checks which stopped */
			if (slot->pid != 0 && slot->type == AT_WORKER_DISPATCHER)
			{
				slot->cancel_requested = true;
				if (slot->latch != NULL)
					SetLatch(slot->latch);
				continue;
			}
			if (slot->pid == 0 || !slot->has_run ||
				memcmp(&slot->current_run, run, sizeof(pg_uuid_t)) != 0)
				continue;
			slot->cancel_requested = true;
			if (slot->type == AT_WORKER_EXECUTOR && slot->state == AT_STATE_RUNNING)
				kill(slot->pid, SIGINT);
			if (slot->latch != NULL)
				SetLatch(slot->latch);
		}
	}

	LWLockRelease(at_shared->lock);
}

/*
 * One NOTIFY per task changed in this transaction, in the order of their
 * first change: the event of that first change (a task created and queued
 * says "created") and the status the task ends the transaction with.
 */
static void
send_notifies(void)
{
	HASHCTL		ctl;
	HTAB	   *latest;
	List	   *first = NIL;
	ListCell   *lc;

	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(NotifyEntry);
	ctl.hcxt = CurrentMemoryContext;
	latest = hash_create("agent_tasks notifies", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	foreach(lc, pending_notifies)
	{
		PendingNotify *n = lfirst(lc);
		bool		found;
		NotifyEntry *entry = hash_search(latest, &n->task, HASH_ENTER, &found);

		if (!found)
			first = lappend(first, n);
		entry->last = n;
	}

	foreach(lc, first)
	{
		PendingNotify *n = lfirst(lc);
		PendingNotify *last = ((NotifyEntry *) hash_search(latest, &n->task, HASH_FIND, NULL))->last;
		StringInfoData payload;

		initStringInfo(&payload);
		appendStringInfoString(&payload, "{\"id\":\"");
		appendStringInfoString(&payload, DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&n->task))));
		appendStringInfoString(&payload, "\",\"account\":");
		escape_json(&payload, n->account);
		appendStringInfoString(&payload, ",\"status\":");
		escape_json(&payload, last->status);
		appendStringInfoString(&payload, ",\"event\":");
		escape_json(&payload, n->event);
		appendStringInfoChar(&payload, '}');
		Async_Notify(n->channel, payload.data);
	}
	hash_destroy(latest);
	pending_notifies = NIL;
}

static void
at_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			/* NOTIFY is queued before commit, as the NOTIFY command's is */
			if (pending_notifies != NIL)
				send_notifies();
			return;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (at_shared != NULL &&
				(pending_executor_wakeups > 0 || pending_dispatcher_wakeups > 0 ||
				 pending_tasks != NIL || pending_interrupts != NIL))
				deliver();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			break;
		default:
			return;
	}
	release_waiter();
	pending_executor_wakeups = 0;
	pending_dispatcher_wakeups = 0;
	pending_tasks = NIL;
	pending_interrupts = NIL;
	pending_notifies = NIL;
	deepest_level = 0;
}

/*
 * A savepoint ends: an aborted one forgets what it asked for; a released
 * one hands its requests to its parent, so that the parent's abort forgets
 * them too (and a later sibling's abort does not).  Items are kept in the
 * order asked; only those of the ending level are touched, and nothing at
 * all when it asked for nothing (deepest_level), so that a loop of
 * savepoints over a long transaction stays linear.
 */
static void
note_level(int nest_level)
{
	if (nest_level > deepest_level)
		deepest_level = nest_level;
}

List *
at_after_subxact(List *items, int nest_level, bool aborted)
{
	ListCell   *lc;

	foreach(lc, items)
	{
		int		   *item_level = lfirst(lc);	/* each item starts with it */

		if (*item_level < nest_level)
			continue;
		if (aborted)
			items = foreach_delete_current(items, lc);
		else
			*item_level = nest_level - 1;
	}
	return items;
}

static void
at_subxact_callback(SubXactEvent event, SubTransactionId subid,
					SubTransactionId parent_subid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	bool		aborted = (event == SUBXACT_EVENT_ABORT_SUB);

	if ((event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB) ||
		deepest_level < level)
		return;
	pending_tasks = at_after_subxact(pending_tasks, level, aborted);
	pending_interrupts = at_after_subxact(pending_interrupts, level, aborted);
	pending_notifies = at_after_subxact(pending_notifies, level, aborted);
	deepest_level = level - 1;
}

static void
ensure_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(at_xact_callback, NULL);
		RegisterSubXactCallback(at_subxact_callback, NULL);
		callback_registered = true;
	}
}

static void
remember_uuid(List **list, const pg_uuid_t *id)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingId  *pending = palloc(sizeof(PendingId));

	pending->id = *id;
	pending->nest_level = GetCurrentTransactionNestLevel();
	note_level(pending->nest_level);
	*list = lappend(*list, pending);
	MemoryContextSwitchTo(old);
}

/*
 * Say, once per transaction, when a queued run will wait for an external
 * worker although its queuer may expect it to execute in the server: the
 * task has no agent, the library is not preloaded, or the workers serve
 * another database.
 */
static void
notice_unserved_run(const char *kind, bool has_agent)
{
	char	   *dbname;

	if (notice_lxid == MyProc->lxid)
		return;
	if (!has_agent)
		ereport(NOTICE,
				(errmsg("this task has no agent, so its run waits for an external worker"),
				 errdetail("Only claim_runs() called without a list of agents takes runs of tasks without an agent."),
				 errhint("Give the task an agent: create_task(..., agent => 'name'), or update_task(task, '{\"agent\": \"name\"}') before processing it.")));
	else if (strcmp(kind, "external") == 0)
		return;
	else if (at_shared == NULL)
		ereport(NOTICE,
				(errmsg("agent_tasks background workers are not running, so this run waits for an external worker"),
				 errhint("Add agent_tasks to shared_preload_libraries and restart PostgreSQL to execute sql, http and openai agents inside the server.")));
	else if ((dbname = get_database_name(MyDatabaseId)) != NULL &&
			 strcmp(dbname, agent_tasks_database) != 0)
		ereport(NOTICE,
				(errmsg("agent_tasks background workers serve database \"%s\", not \"%s\", so this run waits for an external worker",
						agent_tasks_database, dbname),
				 errhint("Set agent_tasks.database = '%s' in postgresql.conf and restart PostgreSQL to execute sql, http and openai agents of this database inside the server.",
						 dbname)));
	else
		return;
	notice_lxid = MyProc->lxid;
}

/* A run of this agent kind was queued: wake a worker for it at commit. */
static void
request_worker_wakeup(const char *kind)
{
	if (at_shared == NULL)
		return;
	ensure_callback();
	if (strcmp(kind, "sql") == 0)
		pending_executor_wakeups++;
	else if (strcmp(kind, "http") == 0 || strcmp(kind, "openai") == 0)
		pending_dispatcher_wakeups++;
}

/* A run was queued: a worker of its kind claims it once we commit. */
void
at_signal_run_queued(const char *kind, bool has_agent)
{
	notice_unserved_run(kind, has_agent);
	request_worker_wakeup(kind);
}

/* A run left in_progress for on_hold or cancelled: interrupt it at commit. */
void
at_signal_run_stopped(const pg_uuid_t *run)
{
	if (at_shared == NULL)
		return;
	ensure_callback();
	remember_uuid(&pending_interrupts, run);
}

/* A task's status changed: wake its wait_task() callers at commit. */
void
at_signal_task_changed(const pg_uuid_t *task)
{
	if (at_shared == NULL)
		return;
	ensure_callback();
	remember_uuid(&pending_tasks, task);
}

/* A webhook delivery was queued: wake the dispatcher at commit. */
void
at_signal_dispatcher(void)
{
	request_worker_wakeup("http");
}

/*
 * The channel of an account, or NULL when nobody asked for one.  Names are
 * kept for the session; an account without one is asked again in the next
 * statement (a listener may ask for it meanwhile).
 */
typedef struct ChannelEntry
{
	char		account[NAMEDATALEN * 4];
	char		channel[NAMEDATALEN];
	bool		exists;
	LocalTransactionId lxid;
	TimestampTz statement;
} ChannelEntry;

static HTAB *channels = NULL;
static SPIPlanPtr channel_plan = NULL;

static const char *
channel_of(const char *account)
{
	ChannelEntry *entry;
	bool		found;
	TimestampTz statement = GetCurrentStatementStartTimestamp();
	Oid			types[] = {TEXTOID};
	Datum		values[1];

	if (strlen(account) >= sizeof(entry->account))
		return NULL;			/* longer than any account a key can carry */
	if (channels == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(entry->account);
		ctl.entrysize = sizeof(ChannelEntry);
		channels = hash_create("agent_tasks channels", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	entry = hash_search(channels, account, HASH_ENTER, &found);
	if (found && (entry->exists ||
				  (entry->lxid == MyProc->lxid && entry->statement == statement)))
		return entry->exists ? entry->channel : NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (channel_plan == NULL)
		channel_plan = at_keep_plan("SELECT c.channel FROM agent_tasks_internal.account_channels c"
									" WHERE c.account = $1", 1, types);
	values[0] = CStringGetTextDatum(account);
	if (SPI_execute_plan(channel_plan, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the account's channel");
	entry->exists = SPI_processed > 0;
	if (entry->exists)
		strlcpy(entry->channel, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
				sizeof(entry->channel));
	entry->lxid = MyProc->lxid;
	entry->statement = statement;
	SPI_finish();
	return entry->exists ? entry->channel : NULL;
}

/*
 * Tell the account's listeners that a task changed; sent at commit, once
 * per task (send_notifies), never with agent_tasks.notify off.
 */
void
at_notify_task(const char *account, const pg_uuid_t *task, const char *status,
			   const char *event)
{
	const char *setting = GetConfigOption("agent_tasks.notify", true, false);
	const char *channel;
	MemoryContext old;
	PendingNotify *n;

	if (setting != NULL && strcmp(setting, "off") == 0)
		return;
	if ((channel = channel_of(account)) == NULL)
		return;
	ensure_callback();
	old = MemoryContextSwitchTo(TopTransactionContext);
	n = palloc(sizeof(PendingNotify));
	n->nest_level = GetCurrentTransactionNestLevel();
	note_level(n->nest_level);
	n->task = *task;
	n->channel = pstrdup(channel);
	n->account = pstrdup(account);
	n->status = pstrdup(status);
	n->event = pstrdup(event);
	pending_notifies = lappend(pending_notifies, n);
	MemoryContextSwitchTo(old);
}

/* wake_workers(kind): for SQL that queues work of a worker kind. */
Datum
at_wake_workers(PG_FUNCTION_ARGS)
{
	request_worker_wakeup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * notify_account(account, payload): a NOTIFY on the account's channel now
 * (a run's progress: each report is news of its own).
 */
Datum
at_notify_account(PG_FUNCTION_ARGS)
{
	const char *setting = GetConfigOption("agent_tasks.notify", true, false);
	const char *channel;

	if (setting != NULL && strcmp(setting, "off") == 0)
		PG_RETURN_VOID();
	channel = channel_of(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (channel != NULL)
		Async_Notify(channel, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

/* notify_change(account, task, status, event): for changes made in SQL. */
Datum
at_notify_change(PG_FUNCTION_ARGS)
{
	at_notify_task(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_UUID_P(1),
				   text_to_cstring(PG_GETARG_TEXT_PP(2)), text_to_cstring(PG_GETARG_TEXT_PP(3)));
	PG_RETURN_VOID();
}

/* A column of a trigger tuple, by name; the tables declare them NOT NULL. */
static Datum
tuple_column(TriggerData *trigdata, HeapTuple tuple, const char *name)
{
	TupleDesc	tupdesc = trigdata->tg_relation->rd_att;
	bool		isnull;
	Datum		value = heap_getattr(tuple, SPI_fnumber(tupdesc, name), tupdesc, &isnull);

	if (isnull)
		elog(ERROR, "column \"%s\" of \"%s\" is null", name,
			 RelationGetRelationName(trigdata->tg_relation));
	return value;
}

/*
 * The triggers of 0.1.0 (its install script names them; 0.2.0 applies
 * their effects in transitions.c): on runs, a queued run wakes a worker
 * and a stopped one is interrupted; on tasks, waiters are woken.
 */
Datum
at_run_signals(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	newtuple;
	char	   *status;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "run_signals must be an AFTER ROW trigger");

	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	status = TextDatumGetCString(tuple_column(trigdata, newtuple, "status"));

	if (strcmp(status, "queued") == 0)
	{
		bool		no_agent;

		(void) heap_getattr(newtuple, SPI_fnumber(trigdata->tg_relation->rd_att, "agent_id"),
							trigdata->tg_relation->rd_att, &no_agent);
		at_signal_run_queued(TextDatumGetCString(tuple_column(trigdata, newtuple, "kind")), !no_agent);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
			 (strcmp(status, "on_hold") == 0 || strcmp(status, "cancelled") == 0) &&
			 strcmp(TextDatumGetCString(tuple_column(trigdata, trigdata->tg_trigtuple, "status")),
					"in_progress") == 0)
		at_signal_run_stopped(DatumGetUUIDP(tuple_column(trigdata, newtuple, "id")));
	return PointerGetDatum(NULL);
}

Datum
at_task_signals(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "task_signals must be an AFTER UPDATE ROW trigger");
	at_signal_task_changed(DatumGetUUIDP(tuple_column(trigdata, trigdata->tg_newtuple, "id")));
	return PointerGetDatum(NULL);
}

/*
 * watch_task(task): from now until the end of the transaction, commits that
 * change this task set our latch; when every slot is taken, commits that
 * change any task wake us through the overflow condition variable.
 * Returns false only when there is no shared memory (library not
 * preloaded); callers then poll.
 */
Datum
at_watch_task(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *task = PG_GETARG_UUID_P(0);
	int			i;

	if (at_shared == NULL)
		PG_RETURN_BOOL(false);

	ensure_callback();
	release_waiter();
	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < AT_MAX_WAITERS; i++)
	{
		AtWaiterSlot *w = &at_shared->waiters[i];

		if (w->pid == 0)
		{
			w->pid = MyProcPid;
			w->latch = MyLatch;
			w->task = *task;
			my_waiter = w;
			break;
		}
	}
	LWLockRelease(at_shared->lock);
	if (my_waiter == NULL)
	{
		my_overflow = true;
		pg_atomic_fetch_add_u32(&at_shared->overflow_waiters, 1);
		my_generation = pg_atomic_read_u64(&at_shared->task_generation);
	}
	PG_RETURN_BOOL(true);
}

/*
 * await_wakeup(timeout_ms): sleep until our latch is set (or, beyond the
 * slots, until some task changed since we last looked) or the time is up.
 */
Datum
at_await_wakeup(PG_FUNCTION_ARGS)
{
	int32		timeout_ms = PG_GETARG_INT32(0);

	if (my_overflow)
	{
		uint64		seen = my_generation;

		if (timeout_ms > 0)
		{
			ConditionVariablePrepareToSleep(&at_shared->overflow_cv);
			while (pg_atomic_read_u64(&at_shared->task_generation) == seen)
				if (ConditionVariableTimedSleep(&at_shared->overflow_cv, timeout_ms, PG_WAIT_EXTENSION))
					break;		/* timed out */
			ConditionVariableCancelSleep();
		}
		my_generation = pg_atomic_read_u64(&at_shared->task_generation);
		CHECK_FOR_INTERRUPTS();
		PG_RETURN_VOID();
	}
	if (timeout_ms > 0)
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms,
						 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	PG_RETURN_VOID();
}
