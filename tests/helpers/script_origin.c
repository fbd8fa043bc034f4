/* script_origin.c - a scripted HTTP/1.1 origin for integration tests; see script_origin.h.
 * One acceptor thread, one thread per connection; everything shared is under so->lock. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "check_main.h"
#include "http_client.h"
#include "proc.h"
#include "script_origin.h"

#define SO_BUF 65536
#define SO_PROXY_TIMEOUT_MS 60000	/* generous: the proxy may run under valgrind */

struct so_route {
	struct so_route *next;
	char *key;			/* "/path" or "METHOD /path" */
	int status;
	char *fields;
	char *body;
	bool cond;			/* so_set_304() */
	char *etag;
	char *last_modified;
	char *fields_304;
	bool cut;
	size_t cut_sent;
	bool stall;			/* after what it wrote, the connection stays silent */
	bool hang;			/* writes nothing at all (and stalls) */
};

/* What a connection does after writing an answer. */
enum so_after {
	SO_KEEP,			/* reads the next request */
	SO_CLOSE,			/* closes */
	SO_STALL,			/* says nothing more until the peer closes */
};

struct so_stat {
	struct so_stat *next;
	char *key;			/* "/path" or "METHOD /path" */
	unsigned count;
	char *last;			/* the head of the last request */
};

struct so_conn {
	struct so_conn *next;
	struct script_origin *so;
	int fd;
	unsigned epoch;			/* so->epoch when accepted */
	pthread_t thread;
};

struct script_origin {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a request arrived, a hold ended, or going down */
	int port;
	int listen_fd;			/* -1 while down */
	pthread_t acceptor;
	atomic_uint accepted;		/* connections accepted */
	/* lock */
	unsigned epoch;			/* +1 on every so_down(): connections of older epochs end */
	bool hold;
	int fail;
	unsigned total;
	struct so_route *routes;
	struct so_stat *stats;
	struct so_conn *conns;
};

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	ck_assert_ptr_nonnull(d);
	return d;
}

static bool write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* The value of field <name> in the head <head> (up to its blank line), lines joined with
 * ", ". Returns the number of lines. */
static int head_field(const char *head, const char *name, char *out, size_t len)
{
	const char *end = strstr(head, "\r\n\r\n");
	size_t nlen = strlen(name);
	int count = 0;

	if (len)
		out[0] = '\0';
	if (end == NULL)
		end = head + strlen(head);
	for (const char *p = strstr(head, "\r\n"); p && p < end; p = strstr(p, "\r\n")) {
		const char *eol, *v;

		p += 2;
		eol = strstr(p, "\r\n");
		if (eol == NULL)
			break;
		if (strncasecmp(p, name, nlen) != 0 || p[nlen] != ':')
			continue;
		v = p + nlen + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (len) {
			size_t used = strlen(out);

			snprintf(out + used, len - used, "%s%.*s", count ? ", " : "", (int)(eol - v),
				 v);
		}
		count++;
	}
	return count;
}

/* Whether the "Name: value\r\n" lines <fields> have a line named <name>. */
static bool fields_have(const char *fields, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = fields; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
			return true;
	return false;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 410: return "Gone";
	case 414: return "URI Too Long";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

char *so_http_date(long offset, char *out, size_t len)
{
	time_t t = time(NULL) + offset;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return out;
}

static struct so_route *route_find(struct script_origin *so, const char *key)
{
	for (struct so_route *r = so->routes; r; r = r->next)
		if (strcmp(r->key, key) == 0)
			return r;
	return NULL;
}

static struct so_stat *stat_get(struct script_origin *so, const char *key, bool create)
{
	struct so_stat *s;

	for (s = so->stats; s; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s;
	if (!create)
		return NULL;
	s = calloc(1, sizeof(*s));
	ck_assert_ptr_nonnull(s);
	s->key = xstrdup(key);
	s->next = so->stats;
	so->stats = s;
	return s;
}

/* Counts a request for <key>; returns how many there were for it, this one included. */
static unsigned stat_note(struct script_origin *so, const char *key, const char *head)
{
	struct so_stat *s = stat_get(so, key, true);

	s->count++;
	free(s->last);
	s->last = xstrdup(head);
	return s->count;
}

/* Whether the If-None-Match value <inm> lists <etag> or "*". */
static bool inm_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);

	for (const char *p = inm; *p;) {
		const char *end;
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if ((n == 1 && *p == '*') || (n == elen && strncmp(p, etag, n) == 0))
			return true;
		p = end;
	}
	return false;
}

/* Appends printf output to the growing buffer *buf (*len used, *cap allocated). */
static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = realloc(*buf, *cap);
		ck_assert_ptr_nonnull(*buf);
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static void append_str(char **buf, size_t *len, size_t *cap, const char *s)
{
	append(buf, len, cap, s, strlen(s));
}

/* Builds the answer to the request <head> (method <method>, target <target>, the <serial>th
 * request for that target). Lock held. Returns the bytes to write (malloc'ed, length in
 * *out_len) and in *after what the connection does after them. */
static char *build_reply(struct script_origin *so, const char *method, const char *target,
			 unsigned serial, const char *head, size_t *out_len, enum so_after *after)
{
	char key[2048], date[64], line[128], field[1024], *out = NULL;
	size_t len = 0, cap = 0;
	const struct so_route *r;
	const char *fields = "", *body = "";
	int status;
	bool is_head = strcmp(method, "HEAD") == 0, with_body = true, cut = false;
	size_t cut_sent = 0;
	char *bodybuf;

	*after = SO_KEEP;
	snprintf(key, sizeof(key), "%s %s", method, target);
	r = route_find(so, key);
	if (r == NULL)
		r = route_find(so, target);
	if (so->fail) {
		status = so->fail;
		fields = "Cache-Control: no-store\r\nContent-Type: text/plain\r\n";
		body = "failing\n";
	} else if (r == NULL) {
		status = 404;
		fields = "Cache-Control: no-store\r\nContent-Type: text/plain\r\n";
		body = "no route\n";
	} else {
		status = r->status;
		fields = r->fields;
		body = r->body;
		cut = r->cut;
		cut_sent = r->cut_sent;
		if (r->hang) {
			*after = SO_STALL;
			*out_len = 0;
			return xstrdup("");
		}
		if (r->cond) {
			bool match = false;

			if (r->etag && head_field(head, "If-None-Match", field, sizeof(field)) > 0)
				match = inm_matches(field, r->etag);
			if (!match && r->last_modified &&
			    head_field(head, "If-Modified-Since", field, sizeof(field)) > 0)
				match = strcmp(field, r->last_modified) == 0;
			if (match) {
				status = 304;
				fields = r->fields_304;
				body = "";
				cut = false;
			}
		}
	}

	/* the body, with the serial of this target's requests */
	bodybuf = xstrdup(body);
	for (char *p = bodybuf; (p = strstr(p, SO_SERIAL)) != NULL;) {
		char num[16];

		snprintf(num, sizeof(num), "%08u", serial % 100000000u);
		memcpy(p, num, 8);
	}
	if (status == 304 || status == 204 || (status >= 100 && status < 200))
		with_body = false;

	snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason(status));
	append_str(&out, &len, &cap, line);
	append_str(&out, &len, &cap, fields);
	if (!fields_have(fields, "Date")) {
		snprintf(line, sizeof(line), "Date: %s\r\n",
			 so_http_date(0, date, sizeof(date)));
		append_str(&out, &len, &cap, line);
	}
	if (with_body && !fields_have(fields, "Content-Length") &&
	    !fields_have(fields, "Transfer-Encoding")) {
		snprintf(line, sizeof(line), "Content-Length: %zu\r\n",
			 cut ? cut_sent + 1000 : strlen(bodybuf));
		append_str(&out, &len, &cap, line);
	}
	append_str(&out, &len, &cap, "\r\n");
	if (with_body && !is_head) {
		if (cut) {
			size_t have = strlen(bodybuf);

			append(&out, &len, &cap, bodybuf, have < cut_sent ? have : cut_sent);
			for (size_t i = have; i < cut_sent; i++)
				append_str(&out, &len, &cap, "x");
			*after = r->stall ? SO_STALL : SO_CLOSE;
		} else {
			append_str(&out, &len, &cap, bodybuf);
		}
	}
	free(bodybuf);
	if (*after == SO_KEEP && (strcasestr(fields, "\nConnection: close") ||
				  strncasecmp(fields, "Connection: close", 17) == 0))
		*after = SO_CLOSE;	/* as the reply says */
	*out_len = len;
	return out;
}

/* Reads one request (head and body) into buf; returns its total length, 0 on end. */
static size_t read_request(int fd, char *buf, size_t *have, size_t *head_len)
{
	const char *end;
	size_t total;
	ssize_t n;
	char te[256];

	while ((end = memmem(buf, *have, "\r\n\r\n", 4)) == NULL) {
		if (*have >= SO_BUF - 1)
			return 0;
		n = read(fd, buf + *have, SO_BUF - 1 - *have);
		if (n <= 0)
			return 0;
		*have += (size_t)n;
	}
	*head_len = (size_t)(end + 4 - buf);
	buf[*have] = '\0';
	{
		char save = buf[*head_len];

		buf[*head_len] = '\0';
		if (head_field(buf, "Transfer-Encoding", te, sizeof(te)) > 0 &&
		    strcasestr(te, "chunked")) {
			buf[*head_len] = save;
			/* a chunked body: read until its last chunk (no trailers expected) */
			for (;;) {
				const char *last = memmem(buf + *head_len - 2, *have - *head_len + 2,
							  "\r\n0\r\n\r\n", 7);

				if (last) {
					total = (size_t)(last + 7 - buf);
					return total;
				}
				if (*have >= SO_BUF - 1)
					return 0;
				n = read(fd, buf + *have, SO_BUF - 1 - *have);
				if (n <= 0)
					return 0;
				*have += (size_t)n;
			}
		}
		buf[*head_len] = save;
	}
	total = *head_len + http_head_content_length(buf, *head_len);
	if (total > SO_BUF - 1)
		return 0;
	while (*have < total) {
		n = read(fd, buf + *have, SO_BUF - 1 - *have);
		if (n <= 0)
			return 0;
		*have += (size_t)n;
	}
	return total;
}

static void *conn_main(void *arg)
{
	struct so_conn *c = arg;
	struct script_origin *so = c->so;
	char *buf = malloc(SO_BUF);
	size_t have = 0;

	ck_assert_ptr_nonnull(buf);
	for (;;) {
		size_t head_len = 0, total = read_request(c->fd, buf, &have, &head_len);
		char method[32] = "", target[2048] = "", key[2100], *head, *reply;
		size_t reply_len;
		enum so_after after;
		unsigned serial;
		bool gone;

		if (total == 0)
			break;
		head = strndup(buf, head_len);
		ck_assert_ptr_nonnull(head);
		if (sscanf(head, "%31s %2047s", method, target) != 2) {
			free(head);
			break;
		}
		pthread_mutex_lock(&so->lock);
		so->total++;
		serial = stat_note(so, target, head);
		snprintf(key, sizeof(key), "%s %s", method, target);
		stat_note(so, key, head);
		pthread_cond_broadcast(&so->cond);
		while (so->hold && c->epoch == so->epoch)
			pthread_cond_wait(&so->cond, &so->lock);
		gone = c->epoch != so->epoch;
		reply = gone ? NULL : build_reply(so, method, target, serial, head, &reply_len,
						  &after);
		pthread_mutex_unlock(&so->lock);
		free(head);
		if (gone)
			break;
		memmove(buf, buf + total, have - total);
		have -= total;
		if (!write_all(c->fd, reply, reply_len))
			after = SO_CLOSE;
		free(reply);
		if (after == SO_STALL)
			while (read(c->fd, buf, SO_BUF) > 0)
				;	/* until the peer closes, or so_down() */
		if (after != SO_KEEP)
			break;
	}
	shutdown(c->fd, SHUT_RDWR);	/* the descriptor is closed by whoever joins us */
	free(buf);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct script_origin *so = arg;

	for (;;) {
		int fd = accept4(so->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		struct so_conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;	/* so_down() shut the socket down */
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->so = so;
		c->fd = fd;
		pthread_mutex_lock(&so->lock);
		c->epoch = so->epoch;
		atomic_fetch_add(&so->accepted, 1);
		if (pthread_create(&c->thread, NULL, conn_main, c) == 0) {
			c->next = so->conns;
			so->conns = c;
		} else {
			close(fd);
			free(c);
		}
		pthread_mutex_unlock(&so->lock);
	}
}

static void so_listen(struct script_origin *so)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)so->port);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "script origin: cannot bind port %d: %s", so->port, strerror(errno));
	ck_assert_int_eq(listen(fd, 256), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	so->port = ntohs(sa.sin_port);
	so->listen_fd = fd;
	ck_assert_int_eq(pthread_create(&so->acceptor, NULL, accept_main, so), 0);
}

struct script_origin *so_start(void)
{
	struct script_origin *so = calloc(1, sizeof(*so));
	pthread_condattr_t ca;

	ck_assert_ptr_nonnull(so);
	pthread_mutex_init(&so->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&so->cond, &ca);
	pthread_condattr_destroy(&ca);
	so->listen_fd = -1;
	so_listen(so);
	return so;
}

int so_port(const struct script_origin *so)
{
	return so->port;
}

void so_down(struct script_origin *so)
{
	struct so_conn *conns;

	if (so->listen_fd < 0)
		return;
	shutdown(so->listen_fd, SHUT_RDWR);	/* wakes accept() */
	pthread_join(so->acceptor, NULL);
	close(so->listen_fd);
	so->listen_fd = -1;
	pthread_mutex_lock(&so->lock);
	so->epoch++;
	conns = so->conns;
	so->conns = NULL;
	pthread_cond_broadcast(&so->cond);
	pthread_mutex_unlock(&so->lock);
	while (conns) {
		struct so_conn *next = conns->next;

		shutdown(conns->fd, SHUT_RDWR);	/* wakes a read() */
		pthread_join(conns->thread, NULL);
		close(conns->fd);
		free(conns);
		conns = next;
	}
}

void so_up(struct script_origin *so)
{
	if (so->listen_fd < 0)
		so_listen(so);
}

static void route_free(struct so_route *r)
{
	free(r->key);
	free(r->fields);
	free(r->body);
	free(r->etag);
	free(r->last_modified);
	free(r->fields_304);
	free(r);
}

void so_free(struct script_origin *so)
{
	so_down(so);
	while (so->routes) {
		struct so_route *next = so->routes->next;

		route_free(so->routes);
		so->routes = next;
	}
	while (so->stats) {
		struct so_stat *next = so->stats->next;

		free(so->stats->key);
		free(so->stats->last);
		free(so->stats);
		so->stats = next;
	}
	pthread_cond_destroy(&so->cond);
	pthread_mutex_destroy(&so->lock);
	free(so);
}

void so_set(struct script_origin *so, const char *route, int status, const char *fields,
	    const char *body)
{
	struct so_route *r = calloc(1, sizeof(*r)), **pp;

	ck_assert_ptr_nonnull(r);
	r->key = xstrdup(route);
	r->status = status;
	r->fields = xstrdup(fields);
	r->body = xstrdup(body);
	pthread_mutex_lock(&so->lock);
	for (pp = &so->routes; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, route) == 0) {
			struct so_route *old = *pp;

			*pp = old->next;
			route_free(old);
			break;
		}
	r->next = so->routes;
	so->routes = r;
	pthread_mutex_unlock(&so->lock);
}

void so_set_304(struct script_origin *so, const char *route, const char *etag,
		const char *last_modified, const char *fields_304)
{
	struct so_route *r;

	pthread_mutex_lock(&so->lock);
	r = route_find(so, route);
	ck_assert_msg(r != NULL, "so_set_304(%s) before so_set()", route);
	free(r->etag);
	free(r->last_modified);
	free(r->fields_304);
	r->cond = true;
	r->etag = etag ? xstrdup(etag) : NULL;
	r->last_modified = last_modified ? xstrdup(last_modified) : NULL;
	r->fields_304 = xstrdup(fields_304);
	pthread_mutex_unlock(&so->lock);
}

void so_set_cut(struct script_origin *so, const char *route, size_t sent)
{
	struct so_route *r;

	pthread_mutex_lock(&so->lock);
	r = route_find(so, route);
	ck_assert_msg(r != NULL, "so_set_cut(%s) before so_set()", route);
	r->cut = true;
	r->cut_sent = sent;
	pthread_mutex_unlock(&so->lock);
}

void so_set_stall(struct script_origin *so, const char *route, size_t sent)
{
	struct so_route *r;

	so_set_cut(so, route, sent);
	pthread_mutex_lock(&so->lock);
	r = route_find(so, route);
	ck_assert_ptr_nonnull(r);
	r->stall = true;
	pthread_mutex_unlock(&so->lock);
}

void so_set_hang(struct script_origin *so, const char *route)
{
	struct so_route *r;

	pthread_mutex_lock(&so->lock);
	r = route_find(so, route);
	ck_assert_msg(r != NULL, "so_set_hang(%s) before so_set()", route);
	r->hang = true;
	pthread_mutex_unlock(&so->lock);
}

void so_fail(struct script_origin *so, int status)
{
	pthread_mutex_lock(&so->lock);
	so->fail = status;
	pthread_mutex_unlock(&so->lock);
}

void so_hold(struct script_origin *so, bool hold)
{
	pthread_mutex_lock(&so->lock);
	so->hold = hold;
	pthread_cond_broadcast(&so->cond);
	pthread_mutex_unlock(&so->lock);
}

static unsigned count_locked(struct script_origin *so, const char *path)
{
	const struct so_stat *s;

	if (path == NULL)
		return so->total;
	s = stat_get(so, path, false);
	return s ? s->count : 0;
}

unsigned so_count(struct script_origin *so, const char *path)
{
	unsigned n;

	pthread_mutex_lock(&so->lock);
	n = count_locked(so, path);
	pthread_mutex_unlock(&so->lock);
	return n;
}

unsigned so_connections(struct script_origin *so)
{
	return atomic_load(&so->accepted);
}

unsigned so_wait_count(struct script_origin *so, const char *path, unsigned n,
		       unsigned timeout_ms)
{
	struct timespec deadline;
	unsigned got;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&so->lock);
	while ((got = count_locked(so, path)) < n &&
	       pthread_cond_timedwait(&so->cond, &so->lock, &deadline) != ETIMEDOUT)
		;
	got = count_locked(so, path);
	pthread_mutex_unlock(&so->lock);
	return got;
}

int so_last_field(struct script_origin *so, const char *path, const char *name, char *out,
		  size_t len)
{
	const struct so_stat *s;
	int n = -1;

	if (len)
		out[0] = '\0';
	pthread_mutex_lock(&so->lock);
	s = stat_get(so, path, false);
	if (s && s->last)
		n = head_field(s->last, name, out, len);
	pthread_mutex_unlock(&so->lock);
	return n;
}

void so_last_line(struct script_origin *so, const char *path, char *out, size_t len)
{
	const struct so_stat *s;

	if (len)
		out[0] = '\0';
	pthread_mutex_lock(&so->lock);
	s = stat_get(so, path, false);
	if (s && s->last) {
		const char *eol = strstr(s->last, "\r\n");

		snprintf(out, len, "%.*s", (int)(eol ? eol - s->last : 0), s->last);
	}
	pthread_mutex_unlock(&so->lock);
}

void so_proxy_start(struct script_origin *so, struct proc *p, const char *const *args,
		    const char *const *more)
{
	char be[32];
	const char *argv[48] = { "--listen", "127.0.0.1:0", "--backend", be,
				 "--health-interval", "0", "--fall", "100" };
	const char *const *lists[] = { args, more };
	size_t n = 8;
	int r;

	snprintf(be, sizeof(be), "127.0.0.1:%d", so->port);
	for (size_t l = 0; l < ARRAY_LEN(lists); l++)
		for (size_t i = 0; lists[l] && lists[l][i]; i++) {
			ck_assert_msg(n < ARRAY_LEN(argv) - 1, "so_proxy_start: too many args");
			argv[n++] = lists[l][i];
		}
	argv[n] = NULL;
	r = proc_start(p, getenv("MTPS_PROXY"), argv, NULL, SO_PROXY_TIMEOUT_MS);
	ck_assert_msg(r == 0, "cannot start mtps-proxy: %d", r);
}
