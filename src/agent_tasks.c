/*-------------------------------------------------------------------------
 *
 * agent_tasks.c
 *	  Module entry point: the extension's settings (GUCs), all defined here
 *	  and nowhere else, under a reserved "agent_tasks." prefix.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "agent_tasks.h"
#include "shared_state.h"
#include "url_policy.h"
#include "worker.h"

PG_MODULE_MAGIC;

/* Settings read only through the GUC machinery or from SQL. */
static char *agent_tasks_email = NULL;
static char *agent_tasks_user = NULL;
static int	agent_tasks_task_rate_limit = 100;
static int	agent_tasks_task_rate_window = 3600;
static int	agent_tasks_retention_archived = 30 * 24 * 3600;
static int	agent_tasks_retention_deliveries = 30 * 24 * 3600;
static int	agent_tasks_artifact_max_bytes = 10 * 1024 * 1024;
static int	agent_tasks_presence_ttl = 60;
static int	agent_tasks_default_lease = 300;
static char *agent_tasks_worker = NULL;
static bool agent_tasks_notify = true;
static char *agent_tasks_http_allowed_cidrs = NULL;
static char *agent_tasks_http_plain_allowed = NULL;
static double agent_tasks_webhook_retry_scale = 1.0;

/* Identity (src/accounts.c). */
char	   *agent_tasks_account = NULL;
char	   *agent_tasks_bound_account = NULL;
bool		agent_tasks_account_choice = true;

/* Task creation (src/tasks.c). */
int			agent_tasks_max_items = 10;

/* Settings the workers read (agent_tasks.h). */
char	   *agent_tasks_database = NULL;
int			agent_tasks_executor_workers = 2;
int			agent_tasks_poll_interval = 1000;
int			agent_tasks_http_max_in_flight = 64;
bool		agent_tasks_allow_insecure_loopback = false;
char	   *agent_tasks_http_resolve = NULL;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("agent_tasks.account",
							   "Account (tenant) of SQL callers.",
							   "Row-level security shows and changes only this account's rows. "
							   "PostgREST callers take it from the JWT claim \"account\" instead.",
							   &agent_tasks_account,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("agent_tasks.bound_account",
							   "Account a role is bound to (set per role by agent_tasks.bind_account).",
							   "A session of a bound role has this account whatever agent_tasks.account or "
							   "the JWT claim \"account\" say (another one is refused with PT403). "
							   "Set with ALTER ROLE ... IN DATABASE ... SET, which bind_account does.",
							   &agent_tasks_bound_account,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("agent_tasks.account_choice",
							 "Whether sessions that are not bound to an account may choose it by setting.",
							 "on: agent_tasks.account and request.jwt.claims choose it (0.1.0's behaviour). "
							 "off (ALTER DATABASE ... SET): only superusers and roles the DBA allows "
							 "(agent_tasks.allow_account_choice) may; others get PT403.",
							 &agent_tasks_account_choice,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("agent_tasks.email",
							   "E-mail address of the person acting in SQL sessions.",
							   "Used for \"mine\", owners, created_by and the actor of activities. "
							   "PostgREST callers take it from the JWT claim \"email\" (or \"sub\").",
							   &agent_tasks_email,
							   NULL,
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	/*
	 * The name of agent_tasks.email in 0.1.0, which SET accepts only quoted
	 * (user is a keyword).  Still read, when agent_tasks.email is empty, so
	 * that sessions and scripts written for 0.1.0 keep their person.
	 */
	DefineCustomStringVariable("agent_tasks.user",
							   "Deprecated: former name of agent_tasks.email.",
							   "Read only when agent_tasks.email is empty.",
							   &agent_tasks_user,
							   NULL,
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.max_items",
							"Maximum number of items of a command-mode task.",
							"Each item becomes a child task; more items are refused with PT400.",
							&agent_tasks_max_items,
							10,
							1, 10000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("agent_tasks.notify",
							 "Send NOTIFY agent_tasks for every task change.",
							 "PostgreSQL serializes the commits of notifying transactions; "
							 "turn this off where nobody LISTENs and throughput matters.",
							 &agent_tasks_notify,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("agent_tasks.worker",
							   "Name of the worker acting in this session.",
							   "Set by the extension's background workers and by external workers "
							   "(claim_runs and friends); activities name it as their actor.",
							   &agent_tasks_worker,
							   NULL,
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.poll_interval",
							"Longest sleep of an idle worker.",
							"Workers are woken at commit when work is queued; this backstop "
							"catches scheduled runs (run_after, backoff) and expired leases.",
							&agent_tasks_poll_interval,
							1000,
							10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.default_lease",
							"Lease of a claimed run when the claimer names none.",
							"A run whose lease expires without a heartbeat is re-queued (or failed "
							"with worker_lost after max_attempts).",
							&agent_tasks_default_lease,
							300,
							1, 7 * 24 * 3600,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	/* Rate limits, retention, artifacts and presence (82_api_keys.sql, 84_schedules.sql, 86_artifacts.sql). */
	DefineCustomIntVariable("agent_tasks.task_rate_limit",
							"Task creations allowed per account per window (0 = no limit).",
							"Counts root tasks (command-mode children are part of their parent). "
							"An account's own limit (agent_tasks.set_rate_limit) overrides it; "
							"over the limit create_task fails with PT429 (HTTP 429).",
							&agent_tasks_task_rate_limit,
							100,
							0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.task_rate_window",
							"Length of the fixed window of agent_tasks.task_rate_limit.",
							NULL,
							&agent_tasks_task_rate_window,
							3600,
							1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.retention_archived",
							"How long archived tasks are kept before the maintenance job deletes them (-1 = forever).",
							NULL,
							&agent_tasks_retention_archived,
							30 * 24 * 3600,
							-1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.retention_deliveries",
							"How long finished webhook deliveries and their attempts are kept (-1 = forever).",
							NULL,
							&agent_tasks_retention_deliveries,
							30 * 24 * 3600,
							-1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.artifact_max_bytes",
							"Largest artifact stored in the database (bigger files must be attached by URL).",
							NULL,
							&agent_tasks_artifact_max_bytes,
							10 * 1024 * 1024,
							0, 1024 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("agent_tasks.presence_ttl",
							"How long a touch_presence() call keeps a watcher present.",
							NULL,
							&agent_tasks_presence_ttl,
							60,
							1, 24 * 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomRealVariable("agent_tasks.webhook_retry_scale",
							 "Factor applied to every webhook and callback retry delay (1 = the documented schedule; tests use less).",
							 "Retry-After sent by a receiver is honoured as it is, not scaled.",
							 &agent_tasks_webhook_retry_scale,
							 1.0,
							 0.0, 1.0,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	/* HTTP dispatcher and URL policy (src/http_dispatcher.c, src/url_policy.c). */
	DefineCustomIntVariable("agent_tasks.http_max_in_flight",
							"Most HTTP requests (http and openai agents, webhooks) the dispatcher has in flight at once.",
							NULL,
							&agent_tasks_http_max_in_flight,
							64,
							1, 10000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("agent_tasks.allow_insecure_loopback",
							 "Allow agent, callback and webhook URLs on loopback (127.0.0.0/8, ::1, localhost), also over plain http.",
							 "For tests and local development.  Superuser only; set it in the server "
							 "configuration (ALTER SYSTEM + pg_reload_conf()) for the dispatcher to see it.",
							 &agent_tasks_allow_insecure_loopback,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("agent_tasks.http_allowed_cidrs",
							   "Address ranges outbound requests may reach although they are private or reserved.",
							   "Comma-separated CIDRs, e.g. '10.1.0.0/16, fd00:1::/64'.  Superuser only.",
							   &agent_tasks_http_allowed_cidrs,
							   "",
							   PGC_SUSET,
							   0,
							   at_allowed_cidrs_check, at_allowed_cidrs_assign, NULL);

	DefineCustomStringVariable("agent_tasks.http_plain_allowed",
							   "Private address ranges and host names that outbound requests may reach over plain http.",
							   "Comma-separated CIDRs inside 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 172.16.0.0/12, "
							   "192.168.0.0/16, fc00::/7 or ::1, and host names (a leading \"*.\" matches the names "
							   "under a domain), e.g. '172.18.0.0/16, agent, ollama'.  The ranges are reachable over "
							   "https too; a listed name is connected to only at an address in a listed range.  "
							   "Superuser only.",
							   &agent_tasks_http_plain_allowed,
							   "",
							   PGC_SUSET,
							   0,
							   at_plain_allowed_check, at_plain_allowed_assign, NULL);

	DefineCustomStringVariable("agent_tasks.http_resolve",
							   "Fixed name resolutions for the dispatcher, like curl --resolve.",
							   "Comma-separated host:port:address entries (CURLOPT_RESOLVE).  Every resolved "
							   "address is still checked against the URL policy.  Superuser only.",
							   &agent_tasks_http_resolve,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	/*
	 * The workers' settings are fixed at server start, and PostgreSQL accepts
	 * such settings only from a preloaded library: without preloading there
	 * are no workers to configure.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("agent_tasks.database",
								   "Database whose queued runs the background workers execute.",
								   NULL,
								   &agent_tasks_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);

		DefineCustomIntVariable("agent_tasks.executor_workers",
								"Number of executor workers running sql agents.",
								NULL,
								&agent_tasks_executor_workers,
								2,
								0, 32,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

		at_shmem_install_hooks();
		at_register_launcher();
	}

	MarkGUCPrefixReserved("agent_tasks");

	/* Secrets stay out of the server log (src/log_filter.c). */
	at_log_filter_install();
}
