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

/* Settings, defined once in agent_tasks.c. */
extern char *agent_tasks_account;
extern char *agent_tasks_user;
extern int	agent_tasks_max_items;
extern int	agent_tasks_task_rate_limit;
extern int	agent_tasks_task_rate_window;
extern int	agent_tasks_retention_archived;
extern int	agent_tasks_retention_deliveries;
extern int	agent_tasks_artifact_max_bytes;
extern int	agent_tasks_presence_ttl;
extern char *agent_tasks_database;
extern int	agent_tasks_executor_workers;
extern int	agent_tasks_poll_interval;
extern int	agent_tasks_default_lease;
extern char *agent_tasks_worker;
extern bool agent_tasks_notify;
extern int	agent_tasks_http_max_in_flight;
extern bool agent_tasks_allow_insecure_loopback;
extern char *agent_tasks_http_allowed_cidrs;
extern char *agent_tasks_http_resolve;
extern double agent_tasks_webhook_retry_scale;

#endif							/* AGENT_TASKS_H */
