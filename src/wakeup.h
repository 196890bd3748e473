/*-------------------------------------------------------------------------
 *
 * wakeup.h
 *	  Commit-time signals (src/wakeup.c) asked for by the transition path
 *	  (src/transitions.c): worker wake-ups, run interrupts, wait_task()
 *	  waiters and the NOTIFY of task changes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_WAKEUP_H
#define AGENT_TASKS_WAKEUP_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/uuid.h"

extern void at_signal_run_queued(const char *kind, bool has_agent);
extern void at_signal_run_stopped(const pg_uuid_t *run);
extern void at_signal_task_changed(const pg_uuid_t *task);
extern void at_signal_dispatcher(void);
extern List *at_after_subxact(List *items, int nest_level, bool aborted);
extern void at_notify_task(const char *account, const pg_uuid_t *task,
						   const char *status, const char *event);

#endif							/* AGENT_TASKS_WAKEUP_H */
