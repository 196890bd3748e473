/*-------------------------------------------------------------------------
 *
 * agent_tasks.h
 *	  Declarations shared by the C files of the agent_tasks extension:
 *	  the SQLSTATEs of the public error catalogue and the settings (GUCs)
 *	  defined in agent_tasks.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENT_TASKS_H
#define AGENT_TASKS_H

#include "postgres.h"

#include "fmgr.h"

/*
 * The error catalogue.  PostgREST maps an SQLSTATE "PTxyz" to HTTP status
 * xyz, so SQL and REST callers see the same classification.
 */
#define ERRCODE_AT_BAD_INPUT		MAKE_SQLSTATE('P','T','4','0','0')
#define ERRCODE_AT_FORBIDDEN		MAKE_SQLSTATE('P','T','4','0','3')
#define ERRCODE_AT_NOT_FOUND		MAKE_SQLSTATE('P','T','4','0','4')
#define ERRCODE_AT_CONFLICT			MAKE_SQLSTATE('P','T','4','0','9')
#define ERRCODE_AT_INVALID			MAKE_SQLSTATE('P','T','4','2','2')
#define ERRCODE_AT_RATE_LIMITED		MAKE_SQLSTATE('P','T','4','2','9')
#define ERRCODE_AT_LOOP				MAKE_SQLSTATE('P','T','5','0','8')

/* The settings C code reads elsewhere; all are defined in agent_tasks.c. */
extern char *agent_tasks_database;
extern int	agent_tasks_executor_workers;
extern int	agent_tasks_poll_interval;
extern int	agent_tasks_max_items;
extern int	agent_tasks_http_max_in_flight;
extern bool agent_tasks_allow_insecure_loopback;
extern char *agent_tasks_http_resolve;

/* Identity of a session (accounts.c). */
extern char *agent_tasks_account;
extern char *agent_tasks_bound_account;
extern bool agent_tasks_account_choice;
extern const char *at_session_account(void);
extern char *at_session_email(void);
extern char *at_session_actor(void);
extern const char *at_nonempty_setting(const char *name);
extern PGDLLEXPORT Datum at_current_account(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum at_request_origin(PG_FUNCTION_ARGS);
extern Oid	at_executing_as;
extern Oid	at_caller_role(void);
extern Oid	at_lookup_function(const char *signature);

/* Time-ordered ids (uuid_v7.c). */
extern Datum at_new_uuid_v7(void);

/* What stays out of the server log (log_filter.c). */
extern bool at_log_hide_missing_database;
extern bool at_text_carries_secret(const char *s);
extern void at_log_filter_install(void);

#endif							/* AGENT_TASKS_H */
