/*-------------------------------------------------------------------------
 *
 * shared_state.h
 *	  The extension's shared memory: one slot per background worker (what
 *	  it is doing, for worker_status() and for wake-ups) and one slot per
 *	  session blocked in wait_task().
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_SHARED_STATE_H
#define AGENT_TASKS_SHARED_STATE_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#define AT_MAX_WORKERS		64
#define AT_MAX_WAITERS		128
#define AT_ERROR_LEN		256

typedef enum AtWorkerType
{
	AT_WORKER_NONE = 0,
	AT_WORKER_LAUNCHER,
	AT_WORKER_EXECUTOR,
	AT_WORKER_DISPATCHER
} AtWorkerType;

typedef enum AtWorkerState
{
	AT_STATE_STARTING = 0,
	AT_STATE_IDLE,
	AT_STATE_CLAIMING,
	AT_STATE_RUNNING,
	AT_STATE_RECORDING
} AtWorkerState;

typedef struct AtWorkerSlot
{
	pid_t		pid;			/* 0 when the slot is free */
	AtWorkerType type;
	int			number;			/* executor-N */
	AtWorkerState state;
	Latch	   *latch;
	bool		has_run;
	pg_uuid_t	current_run;
	bool		cancel_requested;	/* current_run was stopped or cancelled */
	TimestampTz started_at;
	TimestampTz state_since;
	int64		runs_done;
	int64		runs_failed;
	char		last_error[AT_ERROR_LEN];
	TimestampTz last_error_at;
	bool		last_error_has_run; /* the error is a run's (its account's) */
	pg_uuid_t	last_error_run;
} AtWorkerSlot;

/*
 * Whether the launcher could connect to agent_tasks.database: a launcher
 * that finds AT_DB_CONNECTING died connecting (the database is missing,
 * most likely) and checks for the database before it tries again.
 */
typedef enum AtLauncherDb
{
	AT_DB_UNKNOWN = 0,
	AT_DB_CONNECTING,
	AT_DB_CONNECTED,
	AT_DB_MISSING_LOGGED		/* missing, and said so once */
} AtLauncherDb;

typedef struct AtWaiterSlot
{
	pid_t		pid;
	Latch	   *latch;
	pg_uuid_t	task;
} AtWaiterSlot;

typedef struct AtSharedState
{
	LWLock	   *lock;
	/*
	 * When this server life began for the runs: the launcher's first start
	 * after shared memory was (re)initialized, i.e. once startup or crash
	 * recovery ended, or a standby was promoted.  Runs of in-server workers
	 * started before it belong to a previous life (or another primary).
	 */
	TimestampTz life_started_at;
	bool		life_marked;	/* the launcher has set life_started_at */
	AtWorkerSlot workers[AT_MAX_WORKERS];
	AtWaiterSlot waiters[AT_MAX_WAITERS];
	/*
	 * wait_task() callers beyond the slots sleep on this condition variable;
	 * each commit that changes tasks bumps the generation and, when any
	 * sleeps there, wakes them all to look again.
	 */
	ConditionVariable overflow_cv;
	pg_atomic_uint32 overflow_waiters;
	pg_atomic_uint64 task_generation;
	/* The launcher's connection to agent_tasks.database (launcher.c). */
	AtLauncherDb launcher_db;
} AtSharedState;

extern AtSharedState *at_shared;

extern void at_mark_server_life(void);

extern void at_shmem_install_hooks(void);
extern AtWorkerSlot *at_worker_slot_acquire(AtWorkerType type, int number);
extern void at_worker_set_state(AtWorkerSlot *slot, AtWorkerState state, const pg_uuid_t *run);
extern void at_worker_set_error(AtWorkerSlot *slot, const char *message, bool run_failed);

#endif							/* AGENT_TASKS_SHARED_STATE_H */
