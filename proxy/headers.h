/* headers.h - header field lists and the proxy's rules for them (RFC 9110 §7.6).
 *
 * A struct header_list holds a response's fields as the upstream thread read them, in
 * order, repeated names kept (several Set-Cookie stay several fields). It is bounded in
 * count and bytes. The rest are pure helpers: which fields are hop-by-hop (not forwarded),
 * and how Via and X-Forwarded-For grow by one member. No locks: a list belongs to one
 * thread at a time.
 */
#ifndef MTPS_HEADERS_H
#define MTPS_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#define HEADERS_MAX_COUNT 128		/* fields in one message */
#define HEADERS_MAX_BYTES (64 * 1024)	/* names plus values */

struct header {
	char *name;
	char *value;
};

struct header_list {
	struct header *v;
	size_t n, cap;
	size_t bytes;
};

/* Appends a field, trimming blanks around the value. Returns 0, -E2BIG past the bounds,
 * -ENOMEM, or -EINVAL for an empty or malformed name. */
int headers_add(struct header_list *l, const char *name, size_t name_len, const char *value,
		size_t value_len);

/* Parses one raw field line "Name: value\r\n" as libcurl's header callback delivers it. A
 * line starting with a blank continues the previous field (obs-fold, RFC 9112 §5.2: joined
 * with one space). Returns as headers_add() does. */
int headers_add_line(struct header_list *l, const char *line, size_t len);

/* Returns the value of the first field named <name> (case-insensitive), or NULL. */
const char *headers_get(const struct header_list *l, const char *name);

/* Removes every field named <name>. */
void headers_remove(struct header_list *l, const char *name);

/* Removes the hop-by-hop fields: the fixed set (Connection, Keep-Alive, Proxy-Connection,
 * TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization) and
 * every field a Connection field names. */
void headers_strip_hop_by_hop(struct header_list *l);

void headers_free(struct header_list *l);

/* Says whether <name> is hop-by-hop by itself (the fixed set above). */
bool headers_is_hop_by_hop(const char *name);

/* Says whether the comma-separated list <list> (a Connection value) has the token <name>,
 * case-insensitively. */
bool headers_list_has(const char *list, const char *name);

/* Writes "<existing>, <add>", or just <add> when <existing> is NULL or blank, into <buf>.
 * Returns 0, or -E2BIG when it does not fit (buf then holds <add> alone if that fits). */
int headers_join(char *buf, size_t len, const char *existing, const char *add);

#endif
