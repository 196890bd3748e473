/*-------------------------------------------------------------------------
 *
 * url_policy.c
 *	  The outbound URL policy: which URLs agents, callbacks and webhooks may
 *	  point at, and which addresses the dispatcher may connect to (SSRF
 *	  protection).
 *
 *	  At registration (agent_tasks_internal.url_policy_violation, used by
 *	  check_url): https only; no user information; no host that is a
 *	  literal address in a blocked range, in any spelling getaddrinfo()
 *	  accepts (decimal, octal, hex, shortened IPv4; IPv4-mapped, -compatible,
 *	  NAT64 and 6to4 IPv6); no "localhost".  At connect time the dispatcher
 *	  checks every resolved address again (CURLOPT_OPENSOCKETFUNCTION), so a
 *	  name that resolves to 127.0.0.1 or 10.x is refused even though it
 *	  looked public (DNS rebinding).
 *
 *	  Exceptions, all superuser-only settings: agent_tasks.allow_insecure_loopback
 *	  allows http:// and https:// to loopback literals and "localhost" (tests,
 *	  local development); agent_tasks.http_allowed_cidrs lists ranges an
 *	  operator wants reachable (e.g. an internal agent at 10.1.2.3);
 *	  agent_tasks.http_plain_allowed lists private ranges and host names that
 *	  may be called over plain http too (agents on a compose network).  A
 *	  plain http request to a listed name connects only to an address in a
 *	  listed range, checked at connect time like every address.
 *
 *	  Everything except the SQL function and the GUC hooks is plain C with
 *	  no palloc and no ereport, so libcurl callbacks can use it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "agent_tasks.h"
#include "url_policy.h"

PG_FUNCTION_INFO_V1(at_url_policy_violation);

typedef struct Cidr
{
	int			family;			/* AF_INET or AF_INET6 */
	uint8		addr[16];		/* network order; IPv4 in the first 4 bytes */
	int			bits;
} Cidr;

typedef struct CidrList
{
	int			n;
	Cidr		items[FLEXIBLE_ARRAY_MEMBER];
} CidrList;

/* The parsed agent_tasks.http_allowed_cidrs (GUC "extra", malloc'd). */
static CidrList *allowed_cidrs = NULL;

/*
 * The parsed agent_tasks.http_plain_allowed (GUC "extra": one malloc'd
 * block, the arrays and the names' text after the header).
 */
typedef struct PlainAllowed
{
	int			n_cidrs;
	int			n_names;
	Cidr	   *cidrs;
	char	  **names;			/* lower case, without a final dot; "*.x"
								 * matches the names under x */
} PlainAllowed;

static PlainAllowed *plain_allowed = NULL;

/* The only ranges plain http may be allowed to: private and loopback. */
static const char *const plain_ranges[] = {
	"10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
	"fc00::/7", "::1/128",
};

typedef struct Range4
{
	uint32		net;
	int			bits;
	const char *text;
	const char *what;
} Range4;

static const Range4 blocked4[] = {
	{0x00000000, 8, "0.0.0.0/8", "\"this\" network"},
	{0x0A000000, 8, "10.0.0.0/8", "private network"},
	{0x64400000, 10, "100.64.0.0/10", "shared address space"},
	{0x7F000000, 8, "127.0.0.0/8", "loopback"},
	{0xA9FE0000, 16, "169.254.0.0/16", "link-local, cloud metadata"},
	{0xAC100000, 12, "172.16.0.0/12", "private network"},
	{0xC0000000, 24, "192.0.0.0/24", "IETF protocol assignments"},
	{0xC0000200, 24, "192.0.2.0/24", "documentation"},
	{0xC0A80000, 16, "192.168.0.0/16", "private network"},
	{0xC6120000, 15, "198.18.0.0/15", "benchmarking"},
	{0xC6336400, 24, "198.51.100.0/24", "documentation"},
	{0xCB007100, 24, "203.0.113.0/24", "documentation"},
	{0xE0000000, 4, "224.0.0.0/4", "multicast"},
	{0xF0000000, 4, "240.0.0.0/4", "reserved"},
};

typedef struct Range6
{
	uint8		net[16];
	int			bits;
	const char *text;
	const char *what;
} Range6;

/* Checked after the forms that embed an IPv4 address. */
static const Range6 blocked6[] = {
	{{0}, 128, "::/128", "unspecified"},
	{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "::1/128", "loopback"},
	{{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "64:ff9b:1::/48", "local-use NAT64"},
	{{0x01, 0x00}, 64, "100::/64", "discard-only"},
	{{0x20, 0x01, 0x0d, 0xb8}, 32, "2001:db8::/32", "documentation"},
	{{0xfc}, 7, "fc00::/7", "unique local"},
	{{0xfe, 0x80}, 10, "fe80::/10", "link-local"},
	{{0xfe, 0xc0}, 10, "fec0::/10", "site-local"},
	{{0xff}, 8, "ff00::/8", "multicast"},
};

static bool
prefix_match(const uint8 *addr, const uint8 *net, int bits)
{
	int			full = bits / 8;
	int			rest = bits % 8;

	if (memcmp(addr, net, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((addr[full] ^ net[full]) & (uint8) (0xff << (8 - rest))) == 0;
}

static bool
in_cidrs(const Cidr *cidrs, int n, int family, const uint8 *addr)
{
	int			i;

	for (i = 0; i < n; i++)
		if (cidrs[i].family == family && prefix_match(addr, cidrs[i].addr, cidrs[i].bits))
			return true;
	return false;
}

/* In a range of http_plain_allowed (an IPv4-mapped IPv6 address as IPv4)? */
static bool
plain_cidr_allowed(int family, const uint8 *addr)
{
	static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (plain_allowed == NULL)
		return false;
	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0)
		return in_cidrs(plain_allowed->cidrs, plain_allowed->n_cidrs, AF_INET, addr + 12);
	return in_cidrs(plain_allowed->cidrs, plain_allowed->n_cidrs, family, addr);
}

/* Reachable although blocked: in http_allowed_cidrs or http_plain_allowed. */
static bool
cidr_allowed(int family, const uint8 *addr)
{
	if (allowed_cidrs != NULL && in_cidrs(allowed_cidrs->items, allowed_cidrs->n, family, addr))
		return true;
	return plain_cidr_allowed(family, addr);
}

/* Is the host name (lower case, no final dot) one of http_plain_allowed? */
static bool
plain_name_allowed(const char *host)
{
	size_t		len = strlen(host);
	int			i;

	if (plain_allowed == NULL)
		return false;
	for (i = 0; i < plain_allowed->n_names; i++)
	{
		const char *name = plain_allowed->names[i];

		if (name[0] == '*')
		{
			size_t		suffix = strlen(name + 1);	/* ".domain" */

			if (len > suffix && strcmp(host + len - suffix, name + 1) == 0)
				return true;
		}
		else if (strcmp(host, name) == 0)
			return true;
	}
	return false;
}

/* IPv4 address in host order: NULL when allowed, else the reason in buf. */
static const char *
check_v4(uint32 a, bool loopback_ok, const char *shown_as, char *buf, size_t buflen)
{
	uint8		bytes[4];
	char		text[INET_ADDRSTRLEN];
	int			i;

	bytes[0] = a >> 24;
	bytes[1] = a >> 16;
	bytes[2] = a >> 8;
	bytes[3] = a;
	if (cidr_allowed(AF_INET, bytes))
		return NULL;
	if (loopback_ok && (a >> 24) == 127)
		return NULL;
	for (i = 0; i < lengthof(blocked4); i++)
	{
		uint32		mask = blocked4[i].bits == 0 ? 0 : 0xFFFFFFFFu << (32 - blocked4[i].bits);

		if ((a & mask) == blocked4[i].net)
		{
			snprintf(text, sizeof(text), "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
			if (shown_as != NULL)
				snprintf(buf, buflen, "address %s (%s) is in a blocked range (%s, %s)",
						 shown_as, text, blocked4[i].text, blocked4[i].what);
			else
				snprintf(buf, buflen, "address %s is in a blocked range (%s, %s)",
						 text, blocked4[i].text, blocked4[i].what);
			return buf;
		}
	}
	return NULL;
}

static uint32
v4_at(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

static const char *
check_v6(const uint8 *a, bool loopback_ok, char *buf, size_t buflen)
{
	static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8 nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8 zero[12] = {0};
	char		text[INET6_ADDRSTRLEN];
	int			i;

	if (cidr_allowed(AF_INET6, a))
		return NULL;
	if (inet_ntop(AF_INET6, a, text, sizeof(text)) == NULL)
		strlcpy(text, "?", sizeof(text));

	/* forms that carry an IPv4 address: judged by that address */
	if (memcmp(a, mapped, 12) == 0)
		return check_v4(v4_at(a + 12), loopback_ok, text, buf, buflen);
	if (memcmp(a, nat64, 12) == 0)
		return check_v4(v4_at(a + 12), loopback_ok, text, buf, buflen);
	if (a[0] == 0x20 && a[1] == 0x02)	/* 6to4, 2002::/16 */
		return check_v4(v4_at(a + 2), loopback_ok, text, buf, buflen);
	if (memcmp(a, zero, 12) == 0 && v4_at(a + 12) > 1)	/* IPv4-compatible ::a.b.c.d */
		return check_v4(v4_at(a + 12), loopback_ok, text, buf, buflen);

	if (loopback_ok && memcmp(a, zero, 12) == 0 && v4_at(a + 12) == 1)
		return NULL;
	for (i = 0; i < lengthof(blocked6); i++)
		if (prefix_match(a, blocked6[i].net, blocked6[i].bits))
		{
			snprintf(buf, buflen, "address %s is in a blocked range (%s, %s)",
					 text, blocked6[i].text, blocked6[i].what);
			return buf;
		}
	return NULL;
}

/*
 * The IPv4 spellings inet_aton() (and so getaddrinfo()) accepts: one to four
 * parts, each decimal, octal (leading 0) or hex (0x); the last part fills
 * the remaining bytes.  True and *out (host order) when s is one.
 */
static bool
parse_inet_aton(const char *s, uint32 *out)
{
	uint64		parts[4];
	int			n = 0;
	const char *p = s;

	if (*p == '\0')
		return false;
	for (;;)
	{
		uint64		v = 0;
		int			base = 10;
		int			digits = 0;

		if (n == 4)
			return false;
		if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		{
			base = 16;
			p += 2;
		}
		else if (p[0] == '0' && p[1] >= '0' && p[1] <= '9')
		{
			base = 8;
			p++;
		}
		for (;; p++)
		{
			int			d;

			if (*p >= '0' && *p <= '9')
				d = *p - '0';
			else if (base == 16 && *p >= 'a' && *p <= 'f')
				d = *p - 'a' + 10;
			else if (base == 16 && *p >= 'A' && *p <= 'F')
				d = *p - 'A' + 10;
			else
				break;
			if (d >= base)
				return false;
			v = v * base + d;
			if (v > 0xFFFFFFFFu)
				return false;
			digits++;
		}
		if (digits == 0 && base == 10)
			return false;		/* "0x" alone is 0, as inet_aton has it */
		parts[n++] = v;
		if (*p == '\0')
			break;
		if (*p != '.')
			return false;
		p++;
	}
	switch (n)
	{
		case 1:
			*out = (uint32) parts[0];
			return true;
		case 2:
			if (parts[0] > 0xFF || parts[1] > 0xFFFFFF)
				return false;
			*out = (uint32) (parts[0] << 24 | parts[1]);
			return true;
		case 3:
			if (parts[0] > 0xFF || parts[1] > 0xFF || parts[2] > 0xFFFF)
				return false;
			*out = (uint32) (parts[0] << 24 | parts[1] << 16 | parts[2]);
			return true;
		default:
			if (parts[0] > 0xFF || parts[1] > 0xFF || parts[2] > 0xFF || parts[3] > 0xFF)
				return false;
			*out = (uint32) (parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]);
			return true;
	}
}

const char *
at_url_violation(const char *url, AtUrlInfo *info, char *buf, size_t buflen)
{
	const char *p;
	const char *authority;
	const char *end;
	const char *host_start;
	const char *host_end;
	const char *port = NULL;
	char		host[256];
	size_t		host_len;
	size_t		i;
	bool		http = false;
	bool		is_localhost;
	bool		plain_ok = false;	/* the host is in http_plain_allowed */

	info->loopback_ok = false;
	info->plain_http = false;
	info->plain_private = false;
	if (url == NULL)
		return NULL;
	if (strlen(url) > 2000)
		return "the URL is longer than 2000 characters";
	for (p = url; *p; p++)
		if ((unsigned char) *p <= 0x20 || *p == 0x7f)
			return "the URL contains spaces or control characters";

	if (pg_strncasecmp(url, "https://", 8) == 0)
		authority = url + 8;
	else if (pg_strncasecmp(url, "http://", 7) == 0)
	{
		authority = url + 7;
		http = true;
	}
	else if (strstr(url, "://") != NULL)
		return "only https URLs are allowed";
	else
		return "not an absolute URL (https://host/path)";

	end = authority + strcspn(authority, "/?#\\");
	if (*end == '\\')
		return "the URL contains a backslash";
	if (memchr(authority, '@', end - authority) != NULL)
		return "URLs with user information (user:password@host) are not allowed";
	if (end == authority)
		return "the URL has no host";

	if (authority[0] == '[')
	{
		host_start = authority + 1;
		host_end = memchr(host_start, ']', end - host_start);
		if (host_end == NULL)
			return "invalid IPv6 address in the URL";
		if (host_end + 1 < end)
		{
			if (host_end[1] != ':')
				return "invalid host in the URL";
			port = host_end + 2;
		}
	}
	else
	{
		host_start = authority;
		host_end = memchr(authority, ':', end - authority);
		if (host_end == NULL)
			host_end = end;
		else
			port = host_end + 1;
	}
	if (port != NULL)
	{
		long		v = 0;

		if (port == end)
			return "invalid port in the URL";
		for (p = port; p < end; p++)
		{
			if (*p < '0' || *p > '9' || v > 65535)
				return "invalid port in the URL";
			v = v * 10 + (*p - '0');
		}
		if (v < 1 || v > 65535)
			return "invalid port in the URL";
	}

	host_len = host_end - host_start;
	if (host_len == 0)
		return "the URL has no host";
	if (host_len >= sizeof(host))
		return "the host name is too long";
	for (i = 0; i < host_len; i++)
		host[i] = pg_ascii_tolower(host_start[i]);
	host[host_len] = '\0';

	if (authority[0] == '[')
	{
		uint8		a6[16];

		if (strchr(host, '%') != NULL)
			return "IPv6 zone identifiers are not allowed";
		if (inet_pton(AF_INET6, host, a6) != 1)
			return "invalid IPv6 address in the URL";
		info->loopback_ok = agent_tasks_allow_insecure_loopback &&
			memcmp(a6, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
		if (check_v6(a6, info->loopback_ok, buf, buflen) != NULL)
			return buf;
		plain_ok = plain_cidr_allowed(AF_INET6, a6);
	}
	else
	{
		uint32		a4;
		bool		numeric = true;

		/* a fully qualified name may end with a dot */
		if (host_len > 1 && host[host_len - 1] == '.')
			host[--host_len] = '\0';
		for (i = 0; i < host_len; i++)
		{
			char		c = host[i];

			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
				return "the host name may only contain letters, digits, '-', '_' and '.' (use the xn-- form of international names)";
			if (!((c >= '0' && c <= '9') || c == '.' || c == 'x' || (c >= 'a' && c <= 'f')))
				numeric = false;
		}
		if (numeric && parse_inet_aton(host, &a4))
		{
			char		canon[INET_ADDRSTRLEN];
			uint8		bytes[4];

			info->loopback_ok = agent_tasks_allow_insecure_loopback && (a4 >> 24) == 127;
			/* name the canonical form too when the URL spelt it differently */
			snprintf(canon, sizeof(canon), "%u.%u.%u.%u",
					 a4 >> 24, (a4 >> 16) & 0xff, (a4 >> 8) & 0xff, a4 & 0xff);
			if (check_v4(a4, info->loopback_ok, strcmp(canon, host) == 0 ? NULL : host,
						 buf, buflen) != NULL)
				return buf;
			bytes[0] = a4 >> 24;
			bytes[1] = a4 >> 16;
			bytes[2] = a4 >> 8;
			bytes[3] = a4;
			plain_ok = plain_cidr_allowed(AF_INET, bytes);
		}
		else if (strspn(host, "0123456789.") == host_len)
			return "invalid IPv4 address in the URL";
		else
		{
			is_localhost = strcmp(host, "localhost") == 0 ||
				(host_len > 10 && strcmp(host + host_len - 10, ".localhost") == 0);
			if (is_localhost)
			{
				if (!agent_tasks_allow_insecure_loopback)
					return "localhost is not allowed";
				info->loopback_ok = true;
			}
			else
				plain_ok = plain_name_allowed(host);
		}
	}

	if (http && !info->loopback_ok)
	{
		if (!plain_ok)
			return "only https URLs are allowed (plain http only to the ranges and host names of agent_tasks.http_plain_allowed)";
		info->plain_private = true;
	}
	info->plain_http = http;
	return NULL;
}

const char *
at_address_violation(const struct sockaddr *addr, const AtUrlInfo *info, const char *host,
					 char *buf, size_t buflen)
{
	const char *reason = NULL;
	char		inner[AT_POLICY_REASON_LEN];

	if (addr == NULL)
		return "no address";
	if (info->plain_private && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6))
	{
		/* plain http: only to the ranges the operator listed for it */
		const uint8 *bytes;
		char		text[INET6_ADDRSTRLEN];

		if (addr->sa_family == AF_INET)
			bytes = (const uint8 *) &((const struct sockaddr_in *) addr)->sin_addr.s_addr;
		else
			bytes = ((const struct sockaddr_in6 *) addr)->sin6_addr.s6_addr;
		if (plain_cidr_allowed(addr->sa_family, bytes))
			return NULL;
		if (inet_ntop(addr->sa_family, bytes, text, sizeof(text)) == NULL)
			strlcpy(text, "?", sizeof(text));
		snprintf(inner, sizeof(inner),
				 "plain http to address %s, which is not in a range of agent_tasks.http_plain_allowed", text);
		reason = inner;
	}
	else if (addr->sa_family == AF_INET)
		reason = check_v4(ntohl(((const struct sockaddr_in *) addr)->sin_addr.s_addr),
						  info->loopback_ok, NULL, inner, sizeof(inner));
	else if (addr->sa_family == AF_INET6)
		reason = check_v6(((const struct sockaddr_in6 *) addr)->sin6_addr.s6_addr,
						  info->loopback_ok, inner, sizeof(inner));
	else
		reason = "not an IP address";
	if (reason == NULL)
		return NULL;
	snprintf(buf, buflen, "refused to connect to %s: %s", host ? host : "the host", reason);
	return buf;
}

/* agent_tasks.http_allowed_cidrs: "10.1.0.0/16, fd00:1::/64" */

static bool
parse_cidr(const char *s, Cidr *out)
{
	char		addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t		len = slash ? (size_t) (slash - s) : strlen(s);
	int			max;
	char	   *endp;
	long		bits;

	if (len == 0 || len >= sizeof(addr))
		return false;
	memcpy(addr, s, len);
	addr[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, out->addr) == 1)
	{
		out->family = AF_INET;
		max = 32;
	}
	else if (inet_pton(AF_INET6, addr, out->addr) == 1)
	{
		out->family = AF_INET6;
		max = 128;
	}
	else
		return false;
	if (slash == NULL)
		bits = max;
	else
	{
		errno = 0;
		bits = strtol(slash + 1, &endp, 10);
		if (errno != 0 || *endp != '\0' || endp == slash + 1 || bits < 0 || bits > max)
			return false;
	}
	out->bits = (int) bits;
	return true;
}

bool
at_allowed_cidrs_check(char **newval, void **extra, GucSource source)
{
	char	   *copy;
	char	   *tok;
	char	   *save = NULL;
	int			n = 0;
	CidrList   *list;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = NULL;
		return true;
	}
	list = malloc(offsetof(CidrList, items) + sizeof(Cidr) * (strlen(*newval) / 2 + 1));
	if (list == NULL)
		return false;
	copy = pstrdup(*newval);
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save))
	{
		if (!parse_cidr(tok, &list->items[n]))
		{
			GUC_check_errdetail("\"%s\" is not an IPv4 or IPv6 address range (like 10.1.0.0/16 or fd00::/8).", tok);
			free(list);
			pfree(copy);
			return false;
		}
		n++;
	}
	pfree(copy);
	list->n = n;
	*extra = list;
	return true;
}

void
at_allowed_cidrs_assign(const char *newval, void *extra)
{
	allowed_cidrs = (CidrList *) extra;
}

/*
 * agent_tasks.http_plain_allowed: "172.18.0.0/16, agent, *.internal".  Each
 * range must lie inside a private or loopback range (plain http to a public
 * address could be read and changed on the way); a name needs a range to
 * resolve into, since the connection is checked against the ranges.
 */
bool
at_plain_allowed_check(char **newval, void **extra, GucSource source)
{
	char	   *copy;
	char	   *tok;
	char	   *save = NULL;
	int			n;
	size_t		header;
	PlainAllowed *list;
	char	   *text;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = NULL;
		return true;
	}
	/*
	 * One block: the header, the arrays (an entry takes two characters of
	 * the value at least, with its separator) and the names' text.
	 */
	n = strlen(*newval) / 2 + 1;
	header = MAXALIGN(sizeof(PlainAllowed)) + MAXALIGN(sizeof(Cidr) * n) + MAXALIGN(sizeof(char *) * n);
	list = malloc(header + strlen(*newval) + 1);
	if (list == NULL)
		return false;
	list->n_cidrs = 0;
	list->n_names = 0;
	list->cidrs = (Cidr *) ((char *) list + MAXALIGN(sizeof(PlainAllowed)));
	list->names = (char **) ((char *) list->cidrs + MAXALIGN(sizeof(Cidr) * n));
	text = (char *) list + header;

	copy = pstrdup(*newval);
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save))
	{
		size_t		len = strlen(tok);
		size_t		i;
		const char *name;

		if (parse_cidr(tok, &list->cidrs[list->n_cidrs]))
		{
			Cidr	   *c = &list->cidrs[list->n_cidrs];
			bool		inside = false;

			for (i = 0; i < lengthof(plain_ranges) && !inside; i++)
			{
				Cidr		range;

				if (parse_cidr(plain_ranges[i], &range) && range.family == c->family &&
					c->bits >= range.bits && prefix_match(c->addr, range.addr, range.bits))
					inside = true;
			}
			if (!inside)
			{
				GUC_check_errdetail("\"%s\" is not inside a private range: plain http is allowed only within "
									"10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7 and ::1.",
									tok);
				goto fail;
			}
			list->n_cidrs++;
			continue;
		}

		/* a host name, or "*." and a domain */
		if (len > 1 && tok[len - 1] == '.')
			tok[--len] = '\0';
		name = strncmp(tok, "*.", 2) == 0 ? tok + 2 : tok;
		for (i = 0; name[i] != '\0'; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
				  (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '.' || name[i] == '_'))
				break;
		if (name[0] == '\0' || name[0] == '.' || name[i] != '\0' || len > 253 ||
			strspn(name, "0123456789.") == strlen(name))
		{
			GUC_check_errdetail("\"%s\" is neither an address range (like 172.18.0.0/16) nor a host name (like agent or *.internal).", tok);
			goto fail;
		}
		for (i = 0; i < len; i++)
			text[i] = pg_ascii_tolower(tok[i]);
		text[len] = '\0';
		list->names[list->n_names++] = text;
		text += len + 1;
	}
	if (list->n_names > 0 && list->n_cidrs == 0)
	{
		GUC_check_errdetail("Host names are connected to only at an address in a listed range, and none is listed.");
		GUC_check_errhint("Add the range the names resolve to, e.g. '172.18.0.0/16, %s'.", list->names[0]);
		goto fail;
	}
	pfree(copy);
	*extra = list;
	return true;

fail:
	free(list);
	pfree(copy);
	return false;
}

void
at_plain_allowed_assign(const char *newval, void *extra)
{
	plain_allowed = (PlainAllowed *) extra;
}

/*
 * agent_tasks_internal.url_policy_violation(url text) RETURNS text:
 * NULL when the dispatcher may call the URL, else why not.
 */
Datum
at_url_policy_violation(PG_FUNCTION_ARGS)
{
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char		buf[AT_POLICY_REASON_LEN];
	AtUrlInfo	info;
	const char *reason = at_url_violation(url, &info, buf, sizeof(buf));

	if (reason == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(reason));
}
