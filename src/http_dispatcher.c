/*-------------------------------------------------------------------------
 *
 * http_dispatcher.c
 *	  The HTTP dispatcher background worker: one process that drives
 *	  libcurl's multi interface with up to agent_tasks.http_max_in_flight
 *	  requests in flight, for runs of `http` and `openai` agents
 *	  (agent_tasks_internal.claim_http_runs / finish_http_run) and for
 *	  webhook deliveries (claim_webhook_deliveries / finish_webhook_delivery,
 *	  src/sql/install/85_webhooks.sql, used when installed).
 *
 *	  A request's life: claimed and committed in a short transaction, sent
 *	  with no transaction open, its outcome (response, timeout, connection
 *	  error, refusal by the URL policy) recorded in another short
 *	  transaction, batched with the other requests that ended meanwhile:
 *	  webhook deliveries in one call (finish_webhook_deliveries, in a
 *	  subtransaction, one by one if it fails), runs each in a subtransaction,
 *	  so that one bad row cannot lose the others.  Claims and records are
 *	  batched (see CLAIM_DELAY_MS): a transaction costs about the same for
 *	  one request as for sixteen.  What an outcome means is decided in SQL.
 *
 *	  Event loop: one WaitEventSet holds our latch, postmaster death and
 *	  every socket libcurl asks us to watch (CURLMOPT_SOCKETFUNCTION); its
 *	  timeout is libcurl's next timer (CURLMOPT_TIMERFUNCTION), bounded by
 *	  agent_tasks.poll_interval.  So the process sleeps in one place and
 *	  reacts at once to both a commit that queued work (wake_workers sets
 *	  the latch) and network activity, without polling.  The set is rebuilt
 *	  when libcurl's socket set changes (PostgreSQL 15's WaitEventSet
 *	  cannot remove a socket).
 *
 *	  libcurl callbacks are plain C: they use malloc, never palloc or
 *	  ereport, and report failures through the request they belong to.
 *	  Each request's handle, header list and buffers are freed when it ends;
 *	  the multi handle at process exit.  SSRF: every address libcurl is
 *	  about to connect to passes through CURLOPT_OPENSOCKETFUNCTION and the
 *	  URL policy (src/url_policy.c), and no connection made before a change
 *	  of that policy carries a request started after it; only https (http
 *	  for allowed loopback and agent_tasks.http_plain_allowed), no
 *	  redirects, no proxy from the environment, TLS verification on.
 *
 *	  File descriptors: at start the process raises its soft RLIMIT_NOFILE
 *	  to the hard limit and keeps the requests in flight within what that
 *	  limit holds (fd_budget); a request that still cannot get a socket
 *	  (EMFILE, ENFILE: something else holds descriptors) is not failed but
 *	  put aside and started again once others have ended.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/wait_event.h"

#include "agent_tasks.h"
#include "shared_state.h"
#include "url_policy.h"
#include "worker.h"

#define HEADER_BUFFER_MAX	16384
#define CONNECT_TIMEOUT_MS	10000

typedef enum RequestKind
{
	REQ_RUN,					/* a run of an http or openai agent */
	REQ_DELIVERY				/* a webhook delivery attempt */
} RequestKind;

/* One request, from claim to record.  malloc'd: callbacks touch it. */
typedef struct Request
{
	struct Request *next;
	RequestKind kind;
	char	   *account;
	pg_uuid_t	id;
	CURL	   *easy;
	struct curl_slist *headers;
	struct curl_slist *resolve;
	char	   *url;
	char	   *body;
	size_t		body_len;
	int			timeout_ms;
	AtUrlInfo	url_info;
	char		host[256];
	TimestampTz started;

	/* response, filled by the callbacks */
	char	   *resp;
	size_t		resp_len;
	size_t		resp_cap;
	size_t		resp_max;
	bool		truncated;
	char	   *hdrs;
	size_t		hdrs_len;
	char		policy_error[AT_POLICY_REASON_LEN];
	char		errbuf[CURL_ERROR_SIZE];
	int			socket_errno;	/* socket() failed with this (EMFILE, ...) */

	/* outcome */
	long		status;			/* 0 when no response */
	char	   *error;			/* malloc'd; NULL when a response came */
	int			latency_ms;
} Request;

typedef struct SockEntry
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} SockEntry;

static AtWorkerSlot *my_slot;
static const char *my_name = "dispatcher";

static CURLM *multi = NULL;
static Request *in_flight = NULL;	/* linked list */
static int	n_in_flight = 0;
static Request *done = NULL;	/* ended, to be recorded */

/* Easy handles of ended requests, reset, for the next ones (saves libcurl's
 * per-handle setup; connections live in the multi handle's cache anyway). */
static CURL **easy_pool = NULL;
static int	n_easy_pool = 0;
static int	easy_pool_cap = 0;

static SockEntry *socks = NULL;
static int	n_socks = 0;
static int	socks_cap = 0;
static bool socks_changed = true;
static bool curl_failed = false;	/* a callback could not allocate */

/*
 * Descriptors.  max_in_flight is agent_tasks.http_max_in_flight capped by
 * what the open-file limit holds (see fd_budget).  Requests that could not
 * get a socket wait on the list deferred (still claimed, not failed) and
 * are started again before anything new is claimed; meanwhile no more than
 * shortage_ceiling requests are in flight (-1: no shortage).
 */
static int	max_in_flight = 64;
static int	fd_capacity = INT_MAX;	/* requests the descriptors hold */
static int	fd_capped_logged = -1;	/* the cap last logged */
static long curl_max_connects = 256;
static Request *deferred = NULL;
static int	n_deferred = 0;
static int	shortage_ceiling = -1;
static TimestampTz shortage_at = 0;
static bool shortage_logged = false;

static void set_max_in_flight(void);

/*
 * The URL policy's settings (allow_insecure_loopback, http_allowed_cidrs,
 * http_plain_allowed) as last seen.  libcurl reuses cached connections
 * without opening a socket, so CURLOPT_OPENSOCKETFUNCTION checks only new
 * ones: a connection checked under an earlier policy must never carry a
 * request started under a later one.  So when the policy changes, the
 * connection cache goes with the multi handle, at once when nothing is in
 * flight, else as soon as nothing is (drop_stale_connections); until then
 * stale_connections is set and every request opens a fresh connection.
 * No clock is involved: libcurl's CURLOPT_MAXLIFETIME_CONN compares whole
 * seconds and reuses a connection made just before a change.
 */
static char *policy_seen = NULL;	/* malloc'd */
static bool stale_connections = false;

static long curl_timer_ms = -1; /* -1: no timer */
static TimestampTz curl_timer_at = 0;

/* Saved plans (kept across transactions; dropped after an error). */
static SPIPlanPtr plan_claim_runs = NULL;
static SPIPlanPtr plan_claim_deliveries = NULL;
static SPIPlanPtr plan_finish_run = NULL;
static SPIPlanPtr plan_finish_delivery = NULL;
static SPIPlanPtr plan_finish_deliveries = NULL;

/*
 * What the installed SQL side offers: a newly installed library can run
 * against the SQL objects of an older extension version until ALTER
 * EXTENSION UPDATE.  Looked up once per process and again after an error,
 * not in every transaction.
 */
static bool sql_side_known = false;
static bool have_deliveries = false;	/* claim_webhook_deliveries */
static bool have_finish_delivery = false;	/* finish_webhook_delivery */
static bool have_finish_deliveries = false; /* finish_webhook_deliveries (batch) */

/*
 * Claiming: a claim transaction costs about the same for 1 request as for
 * 16, so the dispatcher claims when a quarter of its slots are free, when
 * nothing is in flight, or when CLAIM_DELAY_MS passed since the last claim
 * (so new work waits at most that long behind slow requests).  Runs are
 * asked for only when some may be waiting: after a wake-up or the poll
 * interval, or while the last claim of runs filled its share.
 */
#define CLAIM_DELAY_MS	10
static bool runs_wanted = true;

/* Outcomes are recorded in batches too: when as many ended as a claim
 * takes, when nothing is in flight, or RECORD_DELAY_MS after the first. */
#define RECORD_DELAY_MS	10
static int	n_done = 0;
static TimestampTz done_since = 0;

/* ---------------------------------------------------------------------
 * libcurl callbacks: plain C, no palloc, no ereport.
 * --------------------------------------------------------------------- */

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	Request    *req = (Request *) userp;
	size_t		n = size * nmemb;
	size_t		room = req->resp_max - req->resp_len;

	if (n > room)
	{
		/* keep what fits, then stop reading: the body is capped */
		n = room;
		req->truncated = true;
	}
	if (req->resp_len + n + 1 > req->resp_cap)
	{
		size_t		cap = Max(req->resp_cap * 2, 4096);
		char	   *p;

		while (cap < req->resp_len + n + 1)
			cap *= 2;
		p = realloc(req->resp, cap);
		if (p == NULL)
			return 0;			/* aborts the transfer: CURLE_WRITE_ERROR */
		req->resp = p;
		req->resp_cap = cap;
	}
	memcpy(req->resp + req->resp_len, data, n);
	req->resp_len += n;
	req->resp[req->resp_len] = '\0';
	return req->truncated ? 0 : size * nmemb;
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	Request    *req = (Request *) userp;
	size_t		n = size * nmemb;

	/* a new status line (after 100 Continue, say) starts the headers over */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
		req->hdrs_len = 0;
	if (req->hdrs == NULL)
	{
		req->hdrs = malloc(HEADER_BUFFER_MAX + 1);
		if (req->hdrs == NULL)
			return n;			/* headers are a nicety: go on without */
		req->hdrs_len = 0;
	}
	if (req->hdrs_len + n <= HEADER_BUFFER_MAX)
	{
		memcpy(req->hdrs + req->hdrs_len, data, n);
		req->hdrs_len += n;
		req->hdrs[req->hdrs_len] = '\0';
	}
	return n;
}

/* Every connection: is this resolved address allowed?  (DNS rebinding) */
static curl_socket_t
opensocket_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	Request    *req = (Request *) clientp;
	curl_socket_t fd;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (at_address_violation(&address->addr, &req->url_info, req->host,
							 req->policy_error, sizeof(req->policy_error)) != NULL)
		return CURL_SOCKET_BAD;
	fd = socket(address->family, address->socktype, address->protocol);
	if (fd == CURL_SOCKET_BAD)
		req->socket_errno = errno;	/* EMFILE, ENFILE: put aside, not failed */
	return fd;
}

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < n_socks; i++)
		if (socks[i].fd == fd)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < n_socks)
		{
			socks[i] = socks[n_socks - 1];
			n_socks--;
			socks_changed = true;
		}
		return 0;
	}
	if (i == n_socks)
	{
		if (n_socks == socks_cap)
		{
			int			cap = Max(socks_cap * 2, 64);
			SockEntry  *p = realloc(socks, sizeof(SockEntry) * cap);

			if (p == NULL)
			{
				curl_failed = true;
				return -1;
			}
			socks = p;
			socks_cap = cap;
		}
		socks[n_socks].fd = fd;
		socks[n_socks].what = 0;
		n_socks++;
	}
	if (socks[i].what != what)
	{
		socks[i].what = what;
		socks_changed = true;
	}
	return 0;
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	curl_timer_ms = timeout_ms;
	if (timeout_ms >= 0)
		curl_timer_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	return 0;
}

/* ---------------------------------------------------------------------
 * Requests
 * --------------------------------------------------------------------- */

/* A handle no longer in the multi handle: keep it for reuse, or free it. */
static void
easy_release(CURL *easy)
{
	if (n_easy_pool == easy_pool_cap && easy_pool_cap < max_in_flight)
	{
		int			cap = Min(Max(easy_pool_cap * 2, 16), max_in_flight);
		CURL	  **p = realloc(easy_pool, sizeof(CURL *) * cap);

		if (p != NULL)
		{
			easy_pool = p;
			easy_pool_cap = cap;
		}
	}
	if (n_easy_pool < easy_pool_cap && n_easy_pool < max_in_flight)
	{
		curl_easy_reset(easy);
		easy_pool[n_easy_pool++] = easy;
	}
	else
		curl_easy_cleanup(easy);
}

static void
request_free(Request *req)
{
	if (req->easy != NULL)
		easy_release(req->easy);
	curl_slist_free_all(req->headers);
	curl_slist_free_all(req->resolve);
	free(req->account);
	free(req->url);
	free(req->body);
	free(req->resp);
	free(req->hdrs);
	free(req->error);
	free(req);
}

static void
request_end(Request *req, const char *error)
{
	req->latency_ms = (int) Min((GetCurrentTimestamp() - req->started) / 1000, INT_MAX);
	if (error != NULL && req->error == NULL)
		req->error = strdup(error);
	if (done == NULL)
		done_since = GetCurrentTimestamp();
	n_done++;
	req->next = done;
	done = req;
}

static void
unlink_in_flight(Request *req)
{
	Request   **p;

	for (p = &in_flight; *p != NULL; p = &(*p)->next)
		if (*p == req)
		{
			*p = req->next;
			n_in_flight--;
			return;
		}
}

/* Host of an allowed URL, for messages (the URL policy parsed it already). */
static void
url_host(const char *url, char *host, size_t len)
{
	const char *p = strstr(url, "://");
	size_t		n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/?#");
	if (n >= len)
		n = len - 1;
	memcpy(host, p, n);
	host[n] = '\0';
}

static struct curl_slist *
resolve_list(void)
{
	struct curl_slist *list = NULL;
	char	   *copy;
	char	   *tok;
	char	   *save = NULL;

	if (agent_tasks_http_resolve == NULL || agent_tasks_http_resolve[0] == '\0')
		return NULL;
	copy = strdup(agent_tasks_http_resolve);
	if (copy == NULL)
		return NULL;
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save))
	{
		struct curl_slist *next = curl_slist_append(list, tok);

		if (next != NULL)
			list = next;
	}
	free(copy);
	return list;
}

/* A new multi handle, with an empty connection cache. */
static void
multi_create(void)
{
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR, (errmsg("agent_tasks dispatcher could not create a libcurl multi handle")));
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, curl_max_connects);
}

/*
 * Close every cached connection once none is in use: libcurl has no call
 * to empty the connection cache, so the multi handle is replaced.  Its
 * sockets and timer were only for transfers, and none is left.
 */
static void
drop_stale_connections(void)
{
	if (!stale_connections || n_in_flight > 0)
		return;
	curl_multi_cleanup(multi);
	multi = NULL;
	n_socks = 0;
	socks_changed = true;
	curl_timer_ms = -1;
	multi_create();
	stale_connections = false;
}

/* Note when the URL policy's settings change (after a configuration reload). */
static void
note_policy(void)
{
	char	   *policy = psprintf("%d|%s|%s", agent_tasks_allow_insecure_loopback,
								  GetConfigOption("agent_tasks.http_allowed_cidrs", true, false),
								  GetConfigOption("agent_tasks.http_plain_allowed", true, false));

	if (policy_seen == NULL || strcmp(policy_seen, policy) != 0)
	{
		if (policy_seen != NULL)
			stale_connections = true;
		free(policy_seen);
		policy_seen = strdup(policy);
		drop_stale_connections();
	}
	pfree(policy);
}

/*
 * A configuration reload: taken in right before requests are started, so
 * that none started after the signal arrived goes by the earlier settings.
 */
static void
absorb_reload(void)
{
	if (!ConfigReloadPending)
		return;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	set_max_in_flight();
	note_policy();
}

/* Hand a claimed request to libcurl, or end it at once with the reason. */
static void
request_start(Request *req)
{
	char		reason[AT_POLICY_REASON_LEN];
	const char *violation;
	CURL	   *easy;

	req->started = GetCurrentTimestamp();
	violation = at_url_violation(req->url, &req->url_info, reason, sizeof(reason));
	if (violation != NULL)
	{
		char		msg[AT_POLICY_REASON_LEN + 32];

		snprintf(msg, sizeof(msg), "URL not allowed: %s", violation);
		request_end(req, msg);
		return;
	}
	url_host(req->url, req->host, sizeof(req->host));
	req->resolve = resolve_list();

	easy = n_easy_pool > 0 ? easy_pool[--n_easy_pool] : curl_easy_init();
	if (easy == NULL)
	{
		request_end(req, "could not create a libcurl handle");
		return;
	}
	req->easy = easy;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "agent_tasks/0.1");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, req->url_info.plain_http ? "http,https" : "https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(easy, CURLOPT_PROXY, "");	/* never a proxy from the environment */
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) req->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(req->timeout_ms, CONNECT_TIMEOUT_MS));
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, req);
	/* cached connections may predate the policy: reuse none (note_policy) */
	curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, stale_connections ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->errbuf);
	if (req->resolve != NULL)
		curl_easy_setopt(easy, CURLOPT_RESOLVE, req->resolve);

	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
	{
		request_end(req, "could not start the request (libcurl)");
		return;
	}
	req->next = in_flight;
	in_flight = req;
	n_in_flight++;
}

/*
 * Did a request fail for want of a descriptor of this process (or of the
 * system)?  Its socket() said so, or libcurl's message (the resolver's
 * socket pair), or a descriptor cannot be had right now.
 */
static bool
out_of_descriptors(Request *req, CURLcode rc)
{
	int			probe;

	if (req->socket_errno == EMFILE || req->socket_errno == ENFILE)
		return true;
	if (rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST &&
		rc != CURLE_OUT_OF_MEMORY && rc != CURLE_FAILED_INIT)
		return false;
	if (strstr(req->errbuf, "Too many open files") != NULL)
		return true;
	probe = dup(2);
	if (probe < 0)
		return errno == EMFILE || errno == ENFILE;
	close(probe);
	return false;
}

/* Requests in flight allowed now: the cap, lowered during a shortage. */
static int
in_flight_limit(void)
{
	return shortage_ceiling >= 0 ? Min(max_in_flight, shortage_ceiling) : max_in_flight;
}

/*
 * A request that could not get a descriptor: not an outcome.  It goes back
 * to the state it was claimed in, waits on the list deferred, and is
 * started again when fewer requests are in flight.
 */
static void
request_defer(Request *req)
{
	Request   **tail;

	easy_release(req->easy);
	req->easy = NULL;
	curl_slist_free_all(req->resolve);
	req->resolve = NULL;
	req->resp_len = 0;
	req->truncated = false;
	req->hdrs_len = 0;
	req->status = 0;
	req->socket_errno = 0;
	req->policy_error[0] = '\0';
	req->errbuf[0] = '\0';
	for (tail = &deferred; *tail != NULL; tail = &(*tail)->next)
		;
	req->next = NULL;
	*tail = req;
	n_deferred++;

	shortage_ceiling = n_in_flight;
	shortage_at = GetCurrentTimestamp();
	if (!shortage_logged)
	{
		shortage_logged = true;
		ereport(LOG,
				(errmsg("agent_tasks dispatcher ran out of file descriptors with %d requests in flight",
						n_in_flight),
				 errdetail("Requests that cannot get a socket wait until others end; none fails for it."),
				 errhint("Raise the open-file limit of the PostgreSQL server (LimitNOFILE, ulimit -n) "
						 "or lower agent_tasks.http_max_in_flight.")));
	}
}

/* Start the requests put aside for want of descriptors, as room allows. */
static void
start_deferred(void)
{
	while (deferred != NULL && n_in_flight < in_flight_limit())
	{
		Request    *req = deferred;

		deferred = req->next;
		n_deferred--;
		request_start(req);
	}
}

/* A transfer ended: take it out of libcurl and note its outcome. */
static void
request_finished(Request *req, CURLcode rc)
{
	char		msg[AT_POLICY_REASON_LEN + CURL_ERROR_SIZE + 64];

	curl_multi_remove_handle(multi, req->easy);
	unlink_in_flight(req);
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);

	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && req->truncated && req->status > 0))
	{
		request_end(req, NULL);
		return;
	}
	if (out_of_descriptors(req, rc))
	{
		request_defer(req);
		return;
	}
	req->status = 0;
	if (req->policy_error[0] != '\0' &&
		(rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT))
		snprintf(msg, sizeof(msg), "%s", req->policy_error);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(msg, sizeof(msg), "timed out after %d ms%s%s", req->timeout_ms,
				 req->errbuf[0] ? ": " : "", req->errbuf);
	else
		snprintf(msg, sizeof(msg), "%s%s%s", curl_easy_strerror(rc),
				 req->errbuf[0] ? ": " : "", req->errbuf);
	request_end(req, msg);
}

static void
collect_finished(void)
{
	CURLMsg    *m;
	int			left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL)
	{
		Request    *req = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &req);
		if (req != NULL)
			request_finished(req, m->data.result);
	}
}

/* Abort a request whose run was stopped or cancelled: nothing to record. */
static void
request_abort(Request *req)
{
	curl_multi_remove_handle(multi, req->easy);
	unlink_in_flight(req);
	request_free(req);
}

/* At process exit: let go of every handle. */
static void
dispatcher_cleanup(int code, Datum arg)
{
	Request    *req;

	while (in_flight != NULL)
	{
		req = in_flight;
		in_flight = req->next;
		curl_multi_remove_handle(multi, req->easy);
		request_free(req);
	}
	while (done != NULL)
	{
		req = done;
		done = req->next;
		request_free(req);
	}
	while (deferred != NULL)
	{
		req = deferred;
		deferred = req->next;
		request_free(req);
	}
	while (n_easy_pool > 0)
		curl_easy_cleanup(easy_pool[--n_easy_pool]);
	free(easy_pool);
	easy_pool = NULL;
	easy_pool_cap = 0;
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	free(socks);
	socks = NULL;
	curl_global_cleanup();
}

/* ---------------------------------------------------------------------
 * SQL side: claim, record, check for stopped runs
 * --------------------------------------------------------------------- */

static void
forget_plans(void)
{
	/* after an error they may be stale (extension dropped); prepare again */
	if (plan_claim_runs)
		SPI_freeplan(plan_claim_runs);
	if (plan_claim_deliveries)
		SPI_freeplan(plan_claim_deliveries);
	if (plan_finish_run)
		SPI_freeplan(plan_finish_run);
	if (plan_finish_delivery)
		SPI_freeplan(plan_finish_delivery);
	if (plan_finish_deliveries)
		SPI_freeplan(plan_finish_deliveries);
	plan_claim_runs = plan_claim_deliveries = plan_finish_run = plan_finish_delivery = NULL;
	plan_finish_deliveries = NULL;
	sql_side_known = false;
}

static bool
function_exists(const char *name, int nargs, Oid *argtypes)
{
	List	   *names = list_make2(makeString("agent_tasks_internal"), makeString(pstrdup(name)));

	return OidIsValid(LookupFuncName(names, nargs, argtypes, true));
}

/* Inside a transaction, with the extension installed: which functions exist. */
static void
check_sql_side(void)
{
	Oid			claim_args[2] = {TEXTOID, INT4OID};
	Oid			finish_args[7] = {TEXTOID, UUIDOID, INT4OID, JSONBOID, TEXTOID, TEXTOID, INT4OID};
	Oid			batch_args[7] = {TEXTARRAYOID, UUIDARRAYOID, INT4ARRAYOID, JSONBARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID};

	if (sql_side_known)
		return;
	have_deliveries = function_exists("claim_webhook_deliveries", 2, claim_args);
	have_finish_delivery = function_exists("finish_webhook_delivery", 7, finish_args);
	have_finish_deliveries = have_finish_delivery &&
		function_exists("finish_webhook_deliveries", 7, batch_args);
	sql_side_known = true;
}

static char *
malloc_copy(const char *s, size_t len)
{
	char	   *p = malloc(len + 1);

	if (p == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* "Name: value" lines from a jsonb object; CR/LF never pass. */
static struct curl_slist *
header_list(Jsonb *headers)
{
	struct curl_slist *list = NULL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;

	list = curl_slist_append(list, "Expect:");	/* no 100-continue round trip */
	if (headers == NULL || !JB_ROOT_IS_OBJECT(headers))
		return list;
	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && name != NULL && v.type == jbvString)
		{
			char	   *value = pnstrdup(v.val.string.val, v.val.string.len);

			if (strpbrk(name, "\r\n:") == NULL && strpbrk(value, "\r\n") == NULL)
			{
				char	   *line = psprintf("%s: %s", name, value);
				struct curl_slist *next = curl_slist_append(list, line);

				if (next == NULL)
				{
					curl_slist_free_all(list);
					ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
				}
				list = next;
			}
		}
	}
	return list;
}

/* Rows of a claim query become requests (on the list *out). */
static int
take_claimed(RequestKind kind, Request **out)
{
	uint64		i;
	TupleDesc	desc = SPI_tuptable->tupdesc;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		bool		isnull;
		Datum		d;
		Request    *req = calloc(1, sizeof(Request));
		char	   *s;

		if (req == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		req->kind = kind;
		req->next = *out;
		*out = req;

		s = SPI_getvalue(tuple, desc, 1);
		req->account = malloc_copy(s ? s : "", s ? strlen(s) : 0);
		d = SPI_getbinval(tuple, desc, 2, &isnull);
		if (!isnull)
			req->id = *DatumGetUUIDP(d);
		s = SPI_getvalue(tuple, desc, 3);
		req->url = malloc_copy(s ? s : "", s ? strlen(s) : 0);
		d = SPI_getbinval(tuple, desc, 4, &isnull);
		req->headers = header_list(isnull ? NULL : DatumGetJsonbP(d));
		d = SPI_getbinval(tuple, desc, 5, &isnull);
		if (isnull)
			req->body = malloc_copy("", 0);
		else
		{
			text	   *t = DatumGetTextPP(d);

			req->body_len = VARSIZE_ANY_EXHDR(t);
			req->body = malloc_copy(VARDATA_ANY(t), req->body_len);
		}
		d = SPI_getbinval(tuple, desc, 6, &isnull);
		req->timeout_ms = isnull ? 15000 : Max(DatumGetInt32(d), 1);
		d = SPI_getbinval(tuple, desc, 7, &isnull);
		req->resp_max = isnull ? 1048576 : (size_t) Max(DatumGetInt32(d), 1024);
	}
	return (int) SPI_processed;
}

/*
 * Claim up to room requests (runs, then deliveries, sharing the room) and
 * start them after the claim has committed.  Returns how many were claimed.
 * Runs are asked for only when runs_wanted; it stays set while the claims of
 * runs fill their share.
 */
static int
claim_and_start(int room, MemoryContext loop_context)
{
	Request    *volatile claimed = NULL;
	volatile int n = 0;

	PG_TRY();
	{
		Oid			argtypes[2] = {TEXTOID, INT4OID};
		Datum		args[2];

		at_worker_begin("agent_tasks: claiming http requests");
		if (at_extension_installed())
		{
			int			for_runs;
			int			got;

			check_sql_side();
			for_runs = have_deliveries ? Max(room / 2, 1) : room;
			args[0] = CStringGetTextDatum(my_name);
			if (runs_wanted)
			{
				if (plan_claim_runs == NULL)
					plan_claim_runs = at_keep_plan("SELECT account, id, url, headers, body, timeout_ms, max_response_bytes "
												"FROM agent_tasks_internal.claim_http_runs($1, $2)", 2, argtypes);
				args[1] = Int32GetDatum(for_runs);
				if (SPI_execute_plan(plan_claim_runs, args, NULL, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "claim_http_runs failed");
				got = take_claimed(REQ_RUN, (Request **) &claimed);
				n += got;
				runs_wanted = (got == for_runs);
			}

			if (have_deliveries && room - n > 0)
			{
				if (plan_claim_deliveries == NULL)
					plan_claim_deliveries = at_keep_plan("SELECT account, id, url, headers, body, timeout_ms, max_response_bytes "
													  "FROM agent_tasks_internal.claim_webhook_deliveries($1, $2)",
													  2, argtypes);
				args[1] = Int32GetDatum(room - n);
				if (SPI_execute_plan(plan_claim_deliveries, args, NULL, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "claim_webhook_deliveries failed");
				n += take_claimed(REQ_DELIVERY, (Request **) &claimed);
			}
			/* deliveries left room: more runs */
			if (n < room && runs_wanted && have_deliveries)
			{
				args[1] = Int32GetDatum(room - n);
				if (SPI_execute_plan(plan_claim_runs, args, NULL, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "claim_http_runs failed");
				got = take_claimed(REQ_RUN, (Request **) &claimed);
				runs_wanted = (got == room - n);
				n += got;
			}
		}
		at_worker_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		edata = at_worker_abort(loop_context);
		forget_plans();
		/* nothing was claimed: the transaction rolled back */
		runs_wanted = true;
		while (claimed != NULL)
		{
			Request    *next = claimed->next;

			request_free(claimed);
			claimed = next;
		}
		n = 0;
		at_worker_set_error(my_slot, edata->message, false);
		ereport(LOG, (errmsg("agent_tasks dispatcher could not claim requests: %s", edata->message)));
	}
	PG_END_TRY();

	/* committed: every claimed request is started or ends with a reason */
	absorb_reload();
	while (claimed != NULL)
	{
		Request    *next = claimed->next;

		request_start(claimed);
		claimed = next;
	}
	return n;
}

/* Response bytes as text of the database encoding: bad bytes become '?'. */
static text *
response_text(const char *data, size_t len)
{
	char	   *s = palloc(len + 1);
	size_t		i = 0;
	int			enc = GetDatabaseEncoding();

	memcpy(s, data, len);
	s[len] = '\0';
	while (i < len)
	{
		int			l;

		if (s[i] == '\0')
		{
			s[i++] = ' ';
			continue;
		}
		if (!IS_HIGHBIT_SET(s[i]))
		{
			i++;
			continue;
		}
		l = pg_encoding_verifymbchar(enc, s + i, (int) (len - i));
		if (l <= 0)
			s[i++] = '?';
		else
			i += l;
	}
	return cstring_to_text_with_len(s, (int) len);
}

/* Response headers as a jsonb object {"lower-case-name": "value"}. */
static Datum
response_headers(Request *req)
{
	StringInfoData buf;
	char	   *p;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (req->hdrs != NULL)
	{
		char	   *copy = pnstrdup(req->hdrs, req->hdrs_len);
		char	   *save = NULL;

		for (p = strtok_r(copy, "\r\n", &save); p != NULL; p = strtok_r(NULL, "\r\n", &save))
		{
			char	   *colon = strchr(p, ':');
			char	   *q;
			char	   *value;

			if (colon == NULL || colon == p)
				continue;
			*colon = '\0';
			for (q = p; *q; q++)
				*q = pg_ascii_tolower(*q);
			value = colon + 1;
			while (*value == ' ' || *value == '\t')
				value++;
			if (!first)
				appendStringInfoString(&buf, ", ");
			first = false;
			escape_json(&buf, text_to_cstring(response_text(p, strlen(p))));
			appendStringInfoString(&buf, ": ");
			escape_json(&buf, text_to_cstring(response_text(value, strlen(value))));
		}
	}
	appendStringInfoChar(&buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

static char *
uuid_text(pg_uuid_t *id)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)));
}

/* A delivery's response body as passed to SQL: only its first 1 KB is
 * kept, so 4 KB of bytes (at least 1024 characters) are enough. */
#define DELIVERY_BODY_PASSED	4096

static Datum
body_datum(Request *req)
{
	size_t		len = req->resp_len;

	if (req->kind == REQ_DELIVERY && len > DELIVERY_BODY_PASSED)
		len = DELIVERY_BODY_PASSED;
	return PointerGetDatum(response_text(req->resp ? req->resp : "", len));
}

static Datum
array_datum(Datum *elems, bool *nulls, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type, typlen, typbyval, typalign));
}

/*
 * Inside record_done's transaction: the outcomes of every delivery of the
 * batch in one call of finish_webhook_deliveries, in a subtransaction.
 * False when it failed (rolled back): the caller records them one by one.
 */
static bool
record_deliveries_batch(Request *batch, MemoryContext loop_context)
{
	MemoryContext outer = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Request    *req;
	int			n = 0;
	int			i;
	Datum	   *v[7];
	bool	   *isnull[7];
	volatile bool ok = true;

	for (req = batch; req != NULL; req = req->next)
		if (req->kind == REQ_DELIVERY)
			n++;
	if (n == 0)
		return true;
	for (i = 0; i < 7; i++)
	{
		v[i] = palloc0(sizeof(Datum) * n);
		isnull[i] = palloc0(sizeof(bool) * n);
	}
	i = 0;
	for (req = batch; req != NULL; req = req->next)
	{
		if (req->kind != REQ_DELIVERY)
			continue;
		v[0][i] = CStringGetTextDatum(req->account);
		v[1][i] = UUIDPGetDatum(&req->id);
		v[2][i] = Int32GetDatum((int32) req->status);
		v[6][i] = Int32GetDatum(req->latency_ms);
		if (req->error != NULL)
		{
			isnull[2][i] = isnull[3][i] = isnull[4][i] = true;
			v[5][i] = CStringGetTextDatum(text_to_cstring(response_text(req->error, strlen(req->error))));
		}
		else
		{
			/* the headers matter only for a retry (Retry-After) */
			if (req->status >= 200 && req->status < 300)
				isnull[3][i] = true;
			else
				v[3][i] = response_headers(req);
			v[4][i] = body_datum(req);
			isnull[5][i] = true;
		}
		i++;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(outer);
	PG_TRY();
	{
		Oid			argtypes[7] = {TEXTARRAYOID, UUIDARRAYOID, INT4ARRAYOID, JSONBARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID};
		Oid			elemtypes[7] = {TEXTOID, UUIDOID, INT4OID, JSONBOID, TEXTOID, TEXTOID, INT4OID};
		Datum		args[7];

		for (i = 0; i < 7; i++)
			args[i] = array_datum(v[i], isnull[i], n, elemtypes[i]);
		if (plan_finish_deliveries == NULL)
			plan_finish_deliveries = at_keep_plan("SELECT agent_tasks_internal.finish_webhook_deliveries($1, $2, $3, $4, $5, $6, $7)",
											   7, argtypes);
		if (SPI_execute_plan(plan_finish_deliveries, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "recording the outcomes failed");
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(outer);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(loop_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(outer);
		CurrentResourceOwner = owner;
		if (plan_finish_deliveries != NULL)
		{
			SPI_freeplan(plan_finish_deliveries);
			plan_finish_deliveries = NULL;
		}
		ereport(LOG,
				(errmsg("agent_tasks dispatcher could not record %d delivery outcomes at once, recording them one by one: %s",
						n, edata->message)));
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Record every ended request in one transaction: the deliveries in one call
 * (in a subtransaction; one by one if that fails), each run in a
 * subtransaction.  A request whose recording fails is logged; its run or
 * delivery is taken over by lease recovery.
 */
static void
record_done(MemoryContext loop_context)
{
	Request    *batch = done;
	Request    *volatile req;
	volatile int ok = 0;
	volatile int failed = 0;

	if (batch == NULL)
		return;
	done = NULL;
	n_done = 0;

	PG_TRY();
	{
		Oid			argtypes[7] = {TEXTOID, UUIDOID, INT4OID, JSONBOID, TEXTOID, TEXTOID, INT4OID};
		bool		webhooks = false;
		bool		batched = false;

		at_worker_begin("agent_tasks: recording http outcomes");
		if (at_extension_installed())
		{
			check_sql_side();
			webhooks = have_finish_delivery;
			if (have_finish_deliveries)
				batched = record_deliveries_batch(batch, loop_context);
		}
		for (req = batch; req != NULL; req = req->next)
		{
			MemoryContext outer = CurrentMemoryContext;
			ResourceOwner owner = CurrentResourceOwner;
			SPIPlanPtr	plan;

			if (req->kind == REQ_DELIVERY && !webhooks)
				continue;
			if (req->error == NULL && req->status >= 200 && req->status < 300)
				ok++;
			else
				failed++;
			if (req->kind == REQ_DELIVERY && batched)
				continue;

			BeginInternalSubTransaction(NULL);
			MemoryContextSwitchTo(outer);
			PG_TRY();
			{
				Datum		args[7];
				char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

				if (req->kind == REQ_RUN)
				{
					if (plan_finish_run == NULL)
						plan_finish_run = at_keep_plan("SELECT agent_tasks_internal.finish_http_run($1, $2, $3, $4, $5, $6, $7)",
													7, argtypes);
					plan = plan_finish_run;
				}
				else
				{
					if (plan_finish_delivery == NULL)
						plan_finish_delivery = at_keep_plan("SELECT agent_tasks_internal.finish_webhook_delivery($1, $2, $3, $4, $5, $6, $7)",
														 7, argtypes);
					plan = plan_finish_delivery;
				}
				args[0] = CStringGetTextDatum(req->account);
				args[1] = UUIDPGetDatum(&req->id);
				args[2] = Int32GetDatum((int32) req->status);
				if (req->error != NULL)
				{
					nulls[2] = 'n';
					nulls[3] = 'n';
					nulls[4] = 'n';
					args[5] = CStringGetTextDatum(text_to_cstring(response_text(req->error, strlen(req->error))));
				}
				else
				{
					args[3] = response_headers(req);
					args[4] = body_datum(req);
					nulls[5] = 'n';
				}
				args[6] = Int32GetDatum(req->latency_ms);
				if (SPI_execute_plan(plan, args, nulls, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "recording the outcome failed");
				ReleaseCurrentSubTransaction();
				MemoryContextSwitchTo(outer);
				CurrentResourceOwner = owner;
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				MemoryContextSwitchTo(loop_context);
				edata = CopyErrorData();
				FlushErrorState();
				RollbackAndReleaseCurrentSubTransaction();
				MemoryContextSwitchTo(outer);
				CurrentResourceOwner = owner;
				/* the plan may be what failed: prepare it again next time */
				if (req->kind == REQ_RUN && plan_finish_run != NULL)
				{
					SPI_freeplan(plan_finish_run);
					plan_finish_run = NULL;
				}
				else if (req->kind == REQ_DELIVERY && plan_finish_delivery != NULL)
				{
					SPI_freeplan(plan_finish_delivery);
					plan_finish_delivery = NULL;
				}
				at_worker_set_error(my_slot, edata->message, false);
				ereport(LOG,
						(errmsg("agent_tasks dispatcher could not record the outcome of %s %s: %s",
								req->kind == REQ_RUN ? "run" : "delivery", uuid_text(&req->id),
								edata->message)));
			}
			PG_END_TRY();
		}
		at_worker_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		edata = at_worker_abort(loop_context);
		forget_plans();
		at_worker_set_error(my_slot, edata->message, false);
		ereport(LOG, (errmsg("agent_tasks dispatcher could not record outcomes: %s", edata->message)));
	}
	PG_END_TRY();

	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	my_slot->runs_done += ok;
	my_slot->runs_failed += failed;
	LWLockRelease(at_shared->lock);

	while (batch != NULL)
	{
		req = batch->next;
		request_free(batch);
		batch = req;
	}
}

/* Some run was stopped or cancelled: abort the requests of those in flight. */
static void
abort_stopped_runs(MemoryContext loop_context)
{
	Request    *req;
	Datum	   *accounts;
	Datum	   *ids;
	Request   **reqs;
	int			n = 0;

	for (req = in_flight; req != NULL; req = req->next)
		if (req->kind == REQ_RUN)
			n++;
	if (n == 0)
		return;
	accounts = palloc(sizeof(Datum) * n);
	ids = palloc(sizeof(Datum) * n);
	reqs = palloc(sizeof(Request *) * n);
	n = 0;
	for (req = in_flight; req != NULL; req = req->next)
		if (req->kind == REQ_RUN)
		{
			accounts[n] = CStringGetTextDatum(req->account);
			ids[n] = UUIDPGetDatum(&req->id);
			reqs[n] = req;
			n++;
		}

	PG_TRY();
	{
		Oid			argtypes[2] = {TEXTARRAYOID, UUIDARRAYOID};
		Datum		args[2];
		uint64		i;
		bool	   *stop = palloc0(sizeof(bool) * n);

		args[0] = PointerGetDatum(construct_array(accounts, n, TEXTOID, -1, false, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		at_worker_begin("agent_tasks: checking for stopped runs");
		if (at_extension_installed())
		{
			if (SPI_execute_with_args(
									  "SELECT x.i::integer FROM unnest($1, $2) WITH ORDINALITY AS x(account, id, i) "
									  "WHERE NOT EXISTS (SELECT 1 FROM agent_tasks_internal.runs r "
									  "WHERE r.account = x.account AND r.id = x.id AND r.status = 'in_progress')",
									  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "checking for stopped runs failed");
			for (i = 0; i < SPI_processed; i++)
			{
				bool		isnull;
				int			k = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

				if (k >= 1 && k <= n)
					stop[k - 1] = true;
			}
		}
		at_worker_commit();
		for (i = 0; i < n; i++)
			if (stop[i])
				request_abort(reqs[i]);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		edata = at_worker_abort(loop_context);
		ereport(LOG, (errmsg("agent_tasks dispatcher could not check for stopped runs: %s", edata->message)));
	}
	PG_END_TRY();
}

/* On start: runs the previous dispatcher had in flight are retried. */
static void
recover_own_runs(MemoryContext loop_context)
{
	PG_TRY();
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(my_name)};

		at_worker_begin("agent_tasks: recovering http runs");
		if (at_extension_installed() && function_exists("recover_http_runs", 1, argtypes))
		{
			if (SPI_execute_with_args("SELECT agent_tasks_internal.recover_http_runs($1)",
									  1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "recover_http_runs failed");
		}
		at_worker_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		edata = at_worker_abort(loop_context);
		ereport(LOG, (errmsg("agent_tasks dispatcher could not recover runs: %s", edata->message)));
	}
	PG_END_TRY();
}

/* ---------------------------------------------------------------------
 * File descriptors
 * --------------------------------------------------------------------- */

#define FD_RESERVED			10	/* PostgreSQL's NUM_RESERVED_FDS (fd.c) */
#define FD_MARGIN			32	/* the wait set, libcurl's own, logging, ... */
#define FDS_PER_REQUEST		3	/* its connection, the resolver's socket pair */
#define CURL_CACHE_MAX		256 /* idle connections libcurl keeps */
#define DISPATCHER_MIN_FILES 64 /* PostgreSQL's own files, when squeezed */
#define SHORTAGE_PAUSE_MS	1000	/* after a shortage, before more start */

static rlim_t fd_soft_limit = 0;	/* 0: unknown */
static int	pg_max_safe_fds = -1;	/* max_safe_fds as the postmaster set it */

/*
 * At start: raise the soft open-file limit to the hard one (the usual soft
 * limit of 1024 holds far fewer sockets than agent_tasks.http_max_in_flight
 * allows).
 */
static void
raise_open_file_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && (rl.rlim_max == RLIM_INFINITY || rl.rlim_cur < rl.rlim_max))
	{
		struct rlimit want = rl;

		want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
		else
			ereport(LOG,
					(errmsg("agent_tasks dispatcher could not raise its open-file limit from %lu to %lu: %m",
							(unsigned long) rl.rlim_cur, (unsigned long) want.rlim_cur)));
	}
	fd_soft_limit = rl.rlim_cur == RLIM_INFINITY ? (rlim_t) INT_MAX : rl.rlim_cur;
	pg_max_safe_fds = max_safe_fds;
}

/*
 * How many requests the descriptors hold, with agent_tasks.http_max_in_flight
 * wanted.  PostgreSQL's files in this process may use max_safe_fds
 * descriptors (its VFD cache, computed by the postmaster for a whole
 * backend); when the sockets need more room the dispatcher, which reads few
 * relations, lowers that for itself (never below DISPATCHER_MIN_FILES): the
 * VFD cache then closes its least recently used files, as it always does at
 * its limit.  What remains is for sockets: FDS_PER_REQUEST per request plus
 * libcurl's connection cache.
 */
static void
fd_budget(int wanted)
{
	long		soft;
	long		sockets;
	long		need;
	long		n;

	if (fd_soft_limit == 0 || pg_max_safe_fds < 0)
	{
		fd_capacity = INT_MAX;
		return;
	}
	soft = (long) Min(fd_soft_limit, (rlim_t) INT_MAX);
	need = (long) wanted * FDS_PER_REQUEST + Min(wanted, CURL_CACHE_MAX);
	max_safe_fds = (int) Max(Min((long) pg_max_safe_fds, soft - FD_RESERVED - FD_MARGIN - need),
							 Min((long) pg_max_safe_fds, DISPATCHER_MIN_FILES));
	sockets = soft - FD_RESERVED - FD_MARGIN - max_safe_fds;
	n = sockets / (FDS_PER_REQUEST + 1);
	if (n > CURL_CACHE_MAX)
		n = (sockets - CURL_CACHE_MAX) / FDS_PER_REQUEST;
	fd_capacity = (int) Max(Min(n, (long) INT_MAX), 1);
}

/* The effective cap, from the setting and the descriptors; logged once when it bites. */
static void
set_max_in_flight(void)
{
	int			wanted = agent_tasks_http_max_in_flight;

	fd_budget(wanted);
	max_in_flight = Min(wanted, fd_capacity);
	curl_max_connects = Min(CURL_CACHE_MAX, max_in_flight);
	if (multi != NULL)
		curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, curl_max_connects);
	if (max_in_flight < wanted && fd_capped_logged != max_in_flight)
	{
		fd_capped_logged = max_in_flight;
		ereport(LOG,
				(errmsg("agent_tasks dispatcher keeps at most %d requests in flight, not agent_tasks.http_max_in_flight = %d",
						max_in_flight, wanted),
				 errdetail("Its open-file limit is %lu (the hard limit); each request may need %d descriptors.",
						   (unsigned long) fd_soft_limit, FDS_PER_REQUEST),
				 errhint("Raise the open-file limit of the PostgreSQL server (LimitNOFILE, ulimit -n) "
						 "or lower agent_tasks.http_max_in_flight.")));
	}
	else if (max_in_flight >= wanted)
		fd_capped_logged = -1;
}

/* ---------------------------------------------------------------------
 * Main loop
 * --------------------------------------------------------------------- */

static WaitEventSet *
build_wait_set(MemoryContext context)
{
	WaitEventSet *set = CreateWaitEventSet(context, n_socks + 2);
	int			i;

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < n_socks; i++)
	{
		uint32		events = 0;

		if (socks[i].what & CURL_POLL_IN)
			events |= WL_SOCKET_READABLE;
		if (socks[i].what & CURL_POLL_OUT)
			events |= WL_SOCKET_WRITEABLE;
		if (events != 0)
			AddWaitEventToSet(set, events, socks[i].fd, NULL, NULL);
	}
	socks_changed = false;
	return set;
}

/*
 * The wait set, or NULL when it cannot be made now (its epoll descriptor:
 * EMFILE).  Never an error that ends the process.
 */
static WaitEventSet *
build_wait_set_or_null(MemoryContext context, MemoryContext loop_context)
{
	static bool logged = false;
	WaitEventSet *volatile set = NULL;
	MemoryContext old = CurrentMemoryContext;

	PG_TRY();
	{
		set = build_wait_set(context);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(loop_context);
		edata = CopyErrorData();
		FlushErrorState();
		MemoryContextSwitchTo(old);
		set = NULL;
		socks_changed = true;
		if (!logged)
		{
			logged = true;
			ereport(LOG,
					(errmsg("agent_tasks dispatcher could not make its wait set, retrying: %s", edata->message),
					 errhint("Raise the open-file limit of the PostgreSQL server (LimitNOFILE, ulimit -n) "
							 "or lower agent_tasks.http_max_in_flight.")));
		}
	}
	PG_END_TRY();
	return set;
}

/* Milliseconds from since to now, at least 0. */
static long
ms_since(TimestampTz since, TimestampTz now)
{
	return since >= now ? 0 : (long) ((now - since) / 1000);
}

/* A batch worth a transaction: a quarter of the slots, or nothing in flight. */
static int
batch_size(void)
{
	return Max(max_in_flight / 4, 1);
}

/* Claim now (there is work and room)?  See CLAIM_DELAY_MS. */
static bool
claim_due(int room, TimestampTz last_claim, TimestampTz now)
{
	return room >= batch_size() || n_in_flight == 0 ||
		ms_since(last_claim, now) >= CLAIM_DELAY_MS;
}

/* Record the ended requests now?  See RECORD_DELAY_MS. */
static bool
record_due(TimestampTz now)
{
	return done != NULL &&
		(n_done >= batch_size() || n_in_flight == 0 || ms_since(done_since, now) >= RECORD_DELAY_MS);
}

/*
 * Our state in worker_status().  Not at_worker_set_state: that clears the
 * cancel flag, which for the dispatcher means "some run in flight was
 * stopped", and counts runs by state changes, while we count requests.
 */
static void
set_state(AtWorkerState state)
{
	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	my_slot->state = state;
	my_slot->state_since = GetCurrentTimestamp();
	my_slot->has_run = false;
	LWLockRelease(at_shared->lock);
}

static bool
take_cancel_flag(void)
{
	bool		flag;

	LWLockAcquire(at_shared->lock, LW_EXCLUSIVE);
	flag = my_slot->cancel_requested;
	my_slot->cancel_requested = false;
	LWLockRelease(at_shared->lock);
	return flag;
}

void
at_dispatcher_main(Datum main_arg)
{
	MemoryContext loop_context;
	MemoryContext set_context;
	WaitEventSet *set = NULL;
	WaitEvent  *events = NULL;
	int			events_cap = 0;
	bool		claim_now = true;	/* latch set, backlog, or poll interval */
	TimestampTz last_claim = 0;
	bool		busy = false;
	int			running;

	at_worker_init(my_name);
	my_slot = at_worker_slot_acquire(AT_WORKER_DISPATCHER, 0);
	loop_context = AllocSetContextCreate(TopMemoryContext, "agent_tasks dispatcher loop",
										 ALLOCSET_DEFAULT_SIZES);
	set_context = AllocSetContextCreate(TopMemoryContext, "agent_tasks dispatcher wait set",
										ALLOCSET_SMALL_SIZES);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR, (errmsg("agent_tasks dispatcher could not initialize libcurl")));
	raise_open_file_limit();
	set_max_in_flight();
	multi_create();
	before_shmem_exit(dispatcher_cleanup, (Datum) 0);
	note_policy();

	MemoryContextSwitchTo(loop_context);
	recover_own_runs(loop_context);
	set_state(AT_STATE_IDLE);

	for (;;)
	{
		int			room;
		long		timeout;
		int			nevents;
		int			i;
		TimestampTz now;

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);
		MemoryContextSwitchTo(loop_context);

		CHECK_FOR_INTERRUPTS();
		if (take_cancel_flag())
			abort_stopped_runs(loop_context);
		absorb_reload();
		drop_stale_connections();

		now = GetCurrentTimestamp();
		if (TimestampDifferenceExceeds(last_claim, now, agent_tasks_poll_interval))
		{
			claim_now = true;
			runs_wanted = true;
		}
		/* after a shortage of descriptors: a pause, then the full cap again */
		if (shortage_ceiling >= 0 && ms_since(shortage_at, now) >= SHORTAGE_PAUSE_MS)
			shortage_ceiling = -1;
		start_deferred();
		room = in_flight_limit() - n_in_flight - n_deferred;
		if (claim_now && room > 0 && claim_due(room, last_claim, now))
		{
			int			n = claim_and_start(room, loop_context);

			last_claim = now;
			/* a full batch: there may be more waiting once room frees up */
			claim_now = (n == room);
		}

		/* new handles want a kick; expired timers their due */
		if (curl_timer_ms == 0 ||
			(curl_timer_ms > 0 && GetCurrentTimestamp() >= curl_timer_at))
		{
			curl_timer_ms = -1;
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		collect_finished();
		if (record_due(GetCurrentTimestamp()))
		{
			record_done(loop_context);
			MemoryContextReset(loop_context);
		}

		if ((n_in_flight > 0) != busy)
		{
			busy = n_in_flight > 0;
			set_state(busy ? AT_STATE_RUNNING : AT_STATE_IDLE);
		}

		/*
		 * sleep until the latch, a socket, libcurl's timer, the poll
		 * interval, or when a claim or the recording of outcomes is due
		 */
		now = GetCurrentTimestamp();
		room = in_flight_limit() - n_in_flight - n_deferred;
		timeout = Max(agent_tasks_poll_interval - ms_since(last_claim, now), 0);
		if (deferred != NULL)
			timeout = n_in_flight < in_flight_limit() ? 0 :
				Min(timeout, shortage_ceiling >= 0 ?
					Max(SHORTAGE_PAUSE_MS - ms_since(shortage_at, now), 0) : 10);
		if (curl_timer_ms >= 0)
			timeout = Min(timeout, ms_since(now, curl_timer_at));
		if (claim_now && room > 0)
			timeout = claim_due(room, last_claim, now) ? 0 :
				Min(timeout, Max(CLAIM_DELAY_MS - ms_since(last_claim, now), 0));
		if (done != NULL)
			timeout = record_due(now) ? 0 :
				Min(timeout, Max(RECORD_DELAY_MS - ms_since(done_since, now), 0));
		if (curl_failed)
		{
			/* a callback could not allocate: give libcurl a moment */
			curl_failed = false;
			timeout = Min(timeout, 10);
		}

		if (set == NULL || socks_changed)
		{
			if (set != NULL)
				FreeWaitEventSet(set);
			set = NULL;
			MemoryContextReset(set_context);
			set = build_wait_set_or_null(set_context, loop_context);
			if (set == NULL)
			{
				/* no descriptor for the wait set now: wait a moment, go on */
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 Min(Max(timeout, 1), 10), PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				claim_now = true;
				if (curl_timer_ms >= 0)
				{
					curl_timer_ms = -1;
					curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
				}
				for (i = 0; i < n_socks; i++)
					curl_multi_socket_action(multi, socks[i].fd,
											 ((socks[i].what & CURL_POLL_IN) ? CURL_CSELECT_IN : 0) |
											 ((socks[i].what & CURL_POLL_OUT) ? CURL_CSELECT_OUT : 0),
											 &running);
				collect_finished();
				continue;
			}
			events_cap = n_socks + 2;
			events = MemoryContextAlloc(set_context, sizeof(WaitEvent) * events_cap);
		}

		nevents = WaitEventSetWait(set, timeout, events, events_cap, PG_WAIT_EXTENSION);
		for (i = 0; i < nevents; i++)
		{
			WaitEvent  *ev = &events[i];

			if (ev->events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				claim_now = true;
				runs_wanted = true;
			}
			else if (ev->events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
			{
				int			flags = 0;

				if (ev->events & WL_SOCKET_READABLE)
					flags |= CURL_CSELECT_IN;
				if (ev->events & WL_SOCKET_WRITEABLE)
					flags |= CURL_CSELECT_OUT;
				curl_multi_socket_action(multi, ev->fd, flags, &running);
			}
		}
		if (curl_timer_ms >= 0 && GetCurrentTimestamp() >= curl_timer_at)
		{
			curl_timer_ms = -1;
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		collect_finished();
	}
}
