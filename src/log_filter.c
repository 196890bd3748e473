/*-------------------------------------------------------------------------
 *
 * log_filter.c
 *	  What agent_tasks keeps out of the server log (an emit_log_hook,
 *	  installed from _PG_init in every process that loads the library).
 *
 *	  Secrets.  A statement that passes a secret (set_agent_secret,
 *	  create_webhook, rotate_webhook_secret by name, or any literal shaped
 *	  like one of the extension's secrets: "whsec_...", an API key
 *	  "at_...", a run token "rt_...") is never written to the log as text:
 *	  - an error, warning or notice it raises (or that is raised inside
 *	    such a call a function of the user's made: the CONTEXT shows it)
 *	    goes to the log without its STATEMENT line (log_min_error_statement)
 *	    and its CONTEXT lines, and, for errors that are not the extension's own
 *	    (not PTxxx: "Failing row contains (...)" and the like), without its
 *	    detail (the client still gets all of it);
 *	  - the lines of log_statement, log_min_duration_statement and
 *	    log_duration name the statement but not its text or parameters.
 *	  The hook sees only what passes through ereport in a process that has
 *	  loaded the library: preloaded (shared_preload_libraries), that is
 *	  every session; otherwise from the session's first call of a C
 *	  function of the extension.  README (Security) lists what remains.
 *
 *	  A missing agent_tasks.database.  The launcher's first attempt to
 *	  connect to it fails with PostgreSQL's FATAL "database ... does not
 *	  exist"; that message is left out (at_log_hide_missing_database), and
 *	  the launcher says it once itself, with a hint, and waits
 *	  (src/launcher.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "tcop/tcopprot.h"
#include "utils/elog.h"

#include "agent_tasks.h"

bool		at_log_hide_missing_database = false;

static emit_log_hook_type prev_emit_log_hook = NULL;

/* Functions that take a secret as an argument. */
static const char *const secret_functions[] = {
	"set_agent_secret",
	"create_webhook",
	"rotate_webhook_secret",
};

/* Prefixes of the extension's secrets: webhook secrets, API keys, run tokens. */
static const char *const secret_prefixes[] = {
	"whsec_",
	"at_",
	"rt_",
};

#define SECRET_MIN_BODY		20	/* characters after at_ / rt_ that make a token */

static bool
is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '_' || c == '-';
}

/* Does the text name a secret-taking function or hold a secret-shaped literal? */
bool
at_text_carries_secret(const char *s)
{
	const char *p;
	int			i;

	if (s == NULL)
		return false;
	for (i = 0; i < lengthof(secret_functions); i++)
		if (strcasestr(s, secret_functions[i]) != NULL)
			return true;
	for (i = 0; i < lengthof(secret_prefixes); i++)
	{
		const char *prefix = secret_prefixes[i];
		size_t		plen = strlen(prefix);

		for (p = strstr(s, prefix); p != NULL; p = strstr(p + 1, prefix))
		{
			const char *q = p + plen;
			int			body = 0;

			/* whsec_ anywhere; at_ / rt_ only as the start of a word */
			if (i > 0 && p > s && is_token_char(p[-1]))
				continue;
			if (i == 0)
				return true;
			while (is_token_char(*q) && body < SECRET_MIN_BODY)
			{
				q++;
				body++;
			}
			if (body >= SECRET_MIN_BODY)
				return true;
		}
	}
	return false;
}

/* Is this one of PostgreSQL's statement-logging lines (log_statement, durations)? */
static bool
is_statement_log(const ErrorData *edata)
{
	const char *id = edata->message_id;

	if (edata->elevel != LOG || id == NULL)
		return false;
	return strncmp(id, "statement: ", 11) == 0 ||
		strncmp(id, "execute ", 8) == 0 ||
		strncmp(id, "parse ", 6) == 0 ||
		strncmp(id, "bind ", 5) == 0 ||
		strncmp(id, "duration: ", 10) == 0;
}

#define HIDDEN "(hidden by agent_tasks: the statement passes a secret)"

static void
at_emit_log_hook(ErrorData *edata)
{
	if (at_log_hide_missing_database && edata->elevel == FATAL &&
		edata->sqlerrcode == ERRCODE_UNDEFINED_DATABASE)
		edata->output_to_server = false;

	if (edata->output_to_server)
	{
		bool		statement_secret = at_text_carries_secret(debug_query_string);

		/* raised inside a secret-taking call that a function of the user's made */
		if (!statement_secret && edata->context != NULL && at_text_carries_secret(edata->context))
			statement_secret = true;
		if (statement_secret)
		{
			edata->hide_stmt = true;
			edata->hide_ctx = true;
		}
		if (is_statement_log(edata) &&
			(statement_secret || at_text_carries_secret(edata->message)))
		{
			/* keep "duration: 1.2 ms  statement: " and the like, not the text */
			const char *m = edata->message;
			const char *cut = debug_query_string ? strstr(m, debug_query_string) : NULL;

			if (cut == NULL)
				edata->message = pstrdup("statement " HIDDEN);
			else
				edata->message = psprintf("%.*s" HIDDEN, (int) (cut - m), m);
			if (edata->detail != NULL)
				edata->detail = NULL;	/* "parameters: $1 = '...'" */
			if (edata->detail_log != NULL)
				edata->detail_log = NULL;
		}
		else if (statement_secret && edata->elevel >= ERROR &&
				 !(PGUNSIXBIT(edata->sqlerrcode) == 'P' && PGUNSIXBIT(edata->sqlerrcode >> 6) == 'T') &&
				 (edata->detail != NULL || edata->detail_log != NULL))
		{
			/* not one of ours: its detail may quote a row or a value */
			edata->detail_log = pstrdup("detail " HIDDEN);
		}
	}

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
at_log_filter_install(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = at_emit_log_hook;
}
