/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Entry points of the background workers and the helpers they share
 *	  for running SQL in short transactions of their own, with plans kept
 *	  for the session (also used by the claims they make).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_WORKER_H
#define AGENT_TASKS_WORKER_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/palloc.h"

extern void at_register_launcher(void);
extern void at_worker_init(const char *role_name);
extern void at_worker_begin(const char *activity);
extern void at_worker_commit(void);
extern ErrorData *at_worker_abort(MemoryContext keep_in);
extern bool at_extension_installed(void);
extern SPIPlanPtr at_keep_plan(const char *sql, int nargs, Oid *argtypes);

extern PGDLLEXPORT void at_launcher_main(Datum main_arg);
extern PGDLLEXPORT void at_executor_main(Datum main_arg);
extern PGDLLEXPORT void at_dispatcher_main(Datum main_arg);

#endif							/* AGENT_TASKS_WORKER_H */
