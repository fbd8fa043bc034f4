/* Integration tests: mtps-proxy in front of a scripted origin - a thread of this program
 * that listens on a free loopback port, records every request it reads and answers with
 * canned bytes, or not at all. It shows what reached the origin (hop-by-hop fields dropped,
 * X-Forwarded-* and Via added), and it fails on cue: refused, hanging, cut mid-body. Also
 * here: uncacheable responses are never shared, and malformed requests get a 400. Each test
 * starts its own proxy (and scripted origin), so no test sees another's cache. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "proc.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: servers may run under valgrind */

/* ---- the scripted origin ---------------------------------------------------------------- */

enum script_action {
	SCRIPT_REPLY = 0,	/* write the reply; the connection stays open for more requests */
	SCRIPT_REPLY_CLOSE,	/* write the reply, then close the connection */
	SCRIPT_HANG,		/* never answer; hold the connection until the peer closes it */
	SCRIPT_REPLY_HANG,	/* write the reply, then hold the connection without a word */
};

#define SCRIPT_MAX_CONNS 256
#define SCRIPT_MAX_SEEN 256
#define SCRIPT_SERIAL "########"	/* in a reply: replaced by the request's number */

struct script_conn {
	struct script *script;
	int fd;
	pthread_t thread;
};

/* One acceptor thread and one thread per connection. The test thread sets the fields
 * marked "lock" under the lock, at any time: each request uses the values of the moment
 * it was read. */
struct script {
	int listen_fd;
	int port;
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a request arrived, or stopping */
	/* lock */
	enum script_action action;
	const char *reply;		/* bytes to write (a string) */
	unsigned gate;			/* replies wait until this many requests arrived... */
	unsigned gate_ms;		/* ...or this long after the first: only to make
					 * concurrent requests overlap, never needed for a result */
	unsigned requests;		/* requests read */
	uint64_t first_ms;		/* when the first one was */
	char *seen[SCRIPT_MAX_SEEN];	/* the first requests, head and body, as read */
	bool stopping;
	struct script_conn conns[SCRIPT_MAX_CONNS];
	unsigned nconns;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

/* Waits until the gate opens: enough requests arrived, the gate time passed, or the
 * script stops. Lock held. */
static void gate_wait(struct script *s)
{
	uint64_t first_ms = s->first_ms;

	while (!s->stopping && s->requests < s->gate && mono_ms() < first_ms + s->gate_ms) {
		uint64_t left = first_ms + s->gate_ms - mono_ms();
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(left / 1000);
		ts.tv_nsec += (long)(left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
}

static void *script_conn_main(void *arg)
{
	struct script_conn *c = arg;
	struct script *s = c->script;
	char buf[65536];
	size_t have = 0;

	for (;;) {
		const char *end;
		size_t head_len, total;
		enum script_action action;
		char *reply;
		unsigned serial;
		ssize_t n;

		while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
			if (have == sizeof(buf))
				goto out;
			n = read(c->fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		head_len = (size_t)(end + 4 - buf);
		total = head_len + http_head_content_length(buf, head_len);
		if (total > sizeof(buf))
			goto out;
		while (have < total) {
			n = read(c->fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}

		pthread_mutex_lock(&s->lock);
		serial = ++s->requests;
		if (serial == 1)
			s->first_ms = mono_ms();
		if (serial <= SCRIPT_MAX_SEEN)
			s->seen[serial - 1] = strndup(buf, total);
		pthread_cond_broadcast(&s->cond);
		gate_wait(s);
		action = s->action;
		reply = strdup(s->reply ? s->reply : "");
		pthread_mutex_unlock(&s->lock);

		memmove(buf, buf + total, have - total);
		have -= total;
		for (char *p = reply; (p = strstr(p, SCRIPT_SERIAL)) != NULL;) {
			char num[16];

			snprintf(num, sizeof(num), "%08u", serial);
			memcpy(p, num, 8);
		}
		if (action != SCRIPT_HANG && !write_all(c->fd, reply, strlen(reply)))
			action = SCRIPT_REPLY_CLOSE;
		free(reply);
		if (action == SCRIPT_HANG || action == SCRIPT_REPLY_HANG) {
			while (read(c->fd, buf, sizeof(buf)) > 0)
				;	/* until the proxy gives up, or the script stops */
			goto out;
		}
		if (action == SCRIPT_REPLY_CLOSE)
			goto out;
	}
out:
	/* the end of the connection for the peer; the descriptor is closed by script_stop() */
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static void *script_accept_main(void *arg)
{
	struct script *s = arg;

	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		struct script_conn *c = NULL;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;	/* script_stop() shut the socket down */
		}
		pthread_mutex_lock(&s->lock);
		if (!s->stopping && s->nconns < SCRIPT_MAX_CONNS) {
			c = &s->conns[s->nconns];
			c->script = s;
			c->fd = fd;
			if (pthread_create(&c->thread, NULL, script_conn_main, c) == 0)
				s->nconns++;
			else
				c = NULL;
		}
		pthread_mutex_unlock(&s->lock);
		if (c == NULL)
			close(fd);
	}
}

/* Binds 127.0.0.1:0 and returns the socket (listening when <listening>), its port in
 * *port. */
static int bind_loopback(int *port, bool listening)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 256), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void script_start(struct script *s, enum script_action action, const char *reply)
{
	pthread_condattr_t ca;

	memset(s, 0, sizeof(*s));
	s->action = action;
	s->reply = reply;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->listen_fd = bind_loopback(&s->port, true);
	ck_assert_int_eq(pthread_create(&s->acceptor, NULL, script_accept_main, s), 0);
}

/* Changes what the next requests get. */
static void script_set(struct script *s, enum script_action action, const char *reply)
{
	pthread_mutex_lock(&s->lock);
	s->action = action;
	s->reply = reply;
	pthread_mutex_unlock(&s->lock);
}

/* Holds replies until <n> requests arrived, or <ms> after the first. */
static void script_gate(struct script *s, unsigned n, unsigned ms)
{
	pthread_mutex_lock(&s->lock);
	s->gate = n;
	s->gate_ms = ms;
	pthread_mutex_unlock(&s->lock);
}

static unsigned script_requests(struct script *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->requests;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Request number <i> (from 0) as it was read; valid until script_stop(). */
static const char *script_seen(struct script *s, unsigned i)
{
	const char *r;

	pthread_mutex_lock(&s->lock);
	r = i < SCRIPT_MAX_SEEN ? s->seen[i] : NULL;
	pthread_mutex_unlock(&s->lock);
	ck_assert_msg(r != NULL, "the origin never saw request %u", i);
	return r;
}

static void script_stop(struct script *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	shutdown(s->listen_fd, SHUT_RDWR);	/* wakes accept() */
	pthread_join(s->acceptor, NULL);
	pthread_mutex_lock(&s->lock);
	n = s->nconns;
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < n; i++) {
		shutdown(s->conns[i].fd, SHUT_RDWR);	/* wakes a hanging read() */
		pthread_join(s->conns[i].thread, NULL);
		close(s->conns[i].fd);
	}
	close(s->listen_fd);
	for (unsigned i = 0; i < SCRIPT_MAX_SEEN; i++)
		free(s->seen[i]);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

/* The values of field <name> in the request <req>, joined with ", " into <out> in order;
 * returns how many lines had that name. */
static int request_field(const char *req, const char *name, char *out, size_t len)
{
	const char *end = strstr(req, "\r\n\r\n");
	size_t nlen = strlen(name);
	int count = 0;

	out[0] = '\0';
	for (const char *p = strstr(req, "\r\n"); p && p < end; p = strstr(p, "\r\n")) {
		const char *eol = strstr(p + 2, "\r\n");

		p += 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1, *sep = count ? ", " : "";
			size_t used = strlen(out);

			while (*v == ' ' || *v == '\t')
				v++;
			snprintf(out + used, len - used, "%s%.*s", sep, (int)(eol - v), v);
			count++;
		}
	}
	return count;
}

/* ---- the proxy -------------------------------------------------------------------------- */

/* Starts mtps-proxy in front of 127.0.0.1:<port> with <extra> arguments (may be NULL). */
static void proxy_start(struct proc *p, int port, const char *const *extra)
{
	char be[32];
	/* no health checks (they would be counted as requests), and no ejection: these tests
	 * are about one backend's answers; test_balance.c covers the pool */
	const char *args[32] = { "--listen", "127.0.0.1:0", "--backend", be, "--threads", "2",
				 "--health-interval", "0", "--fall", "100" };
	size_t n = 10;
	int r;

	snprintf(be, sizeof(be), "127.0.0.1:%d", port);
	for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(args) - 1; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	r = proc_start(p, getenv("MTPS_PROXY"), args, NULL, TIMEOUT_MS);
	ck_assert_msg(r == 0, "cannot start mtps-proxy: %d", r);
}

static void proxy_stop(struct proc *p)
{
	ck_assert_int_eq(proc_stop(p, SIGTERM, TIMEOUT_MS), 0);
}

static void request(const struct proc *p, const char *method, const char *path,
		    const char *const *headers, struct http_reply *r)
{
	int ret = http_request(method, proc_url(p, path), headers, NULL, 0, r);

	ck_assert_msg(ret == 0, "%s %s: curl error %d", method, path, r->curl_code);
}

static void expect_x_cache(const struct http_reply *r, const char *want, const char *what)
{
	const char *got = http_reply_header(r, "X-Cache");

	ck_assert_msg(got && strcmp(got, want) == 0, "%s: X-Cache %s, want %s", what,
		      got ? got : "(none)", want);
}

static const char ok_reply[] =
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
	"Cache-Control: no-store\r\n\r\nok";

/* ---- headers ---------------------------------------------------------------------------- */

/* RFC 9110 §7.6.1: hop-by-hop fields, and those a Connection field names, stay on the
 * client's hop; end-to-end fields pass, repeated ones too; the proxy adds Via (§7.6.3)
 * and X-Forwarded-For (appended to the client's), -Proto and -Host; Host is kept. */
START_TEST(test_request_fields)
{
	static const char *const headers[] = {
		"Host: www.example.test",
		"Connection: keep-alive, X-Private",
		"Keep-Alive: timeout=5",
		"TE: trailers",
		"Upgrade: websocket",
		"Proxy-Authorization: Basic Zm9vOmJhcg==",
		"Proxy-Connection: keep-alive",
		"X-Private: only for the proxy",
		"X-Forwarded-For: 203.0.113.7",
		"Via: 1.0 fred",
		"X-End-To-End: kept",
		"X-Repeated: one",
		"X-Repeated: two",
		"Accept: text/plain",
		NULL,
	};
	static const char *const dropped[] = {
		"Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization",
		"Proxy-Connection", "X-Private",
	};
	static const struct {
		const char *name, *value;
	} forwarded[] = {
		{ "Host", "www.example.test" },
		{ "X-Forwarded-For", "203.0.113.7, 127.0.0.1" },
		{ "X-Forwarded-Proto", "http" },
		{ "X-Forwarded-Host", "www.example.test" },
		{ "Via", "1.0 fred, 1.1 mtps" },
		{ "X-End-To-End", "kept" },
		{ "X-Repeated", "one, two" },
		{ "Accept", "text/plain" },
	};
	struct script origin;
	struct proc proxy;
	struct http_reply r;
	const char *seen;
	char value[1024];

	script_start(&origin, SCRIPT_REPLY, ok_reply);
	proxy_start(&proxy, origin.port, NULL);
	request(&proxy, "GET", "/fields?x=1", headers, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok");
	http_reply_free(&r);
	ck_assert_uint_eq(script_requests(&origin), 1);
	seen = script_seen(&origin, 0);
	ck_assert_msg(strncmp(seen, "GET /fields?x=1 HTTP/1.1\r\n", 26) == 0, "request line: %.60s",
		      seen);
	for (size_t i = 0; i < ARRAY_LEN(dropped); i++)
		ck_assert_msg(request_field(seen, dropped[i], value, sizeof(value)) == 0,
			      "%s reached the origin (%s) in:\n%s", dropped[i], value, seen);
	for (size_t i = 0; i < ARRAY_LEN(forwarded); i++) {
		int n = request_field(seen, forwarded[i].name, value, sizeof(value));

		ck_assert_msg(n > 0, "no %s reached the origin in:\n%s", forwarded[i].name, seen);
		ck_assert_msg(strcmp(value, forwarded[i].value) == 0, "%s: \"%s\", want \"%s\"",
			      forwarded[i].name, value, forwarded[i].value);
	}
	ck_assert_int_eq(request_field(seen, "Host", value, sizeof(value)), 1);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* The response's repeated fields all reach the client; its hop-by-hop ones do not, and
 * the origin's Connection: close ends the origin's connection, not the client's. */
START_TEST(test_response_fields)
{
	static const char reply[] =
		"HTTP/1.1 200 OK\r\n"
		"Content-Type: text/plain\r\n"
		"Content-Length: 5\r\n"
		"Set-Cookie: a=1; Path=/\r\n"
		"Set-Cookie: b=2; Path=/\r\n"
		"Connection: close, X-Hop-Resp\r\n"
		"X-Hop-Resp: for the proxy only\r\n"
		"Keep-Alive: timeout=5\r\n"
		"Proxy-Authenticate: Basic realm=\"x\"\r\n"
		"X-End: yes\r\n"
		"Cache-Control: no-store\r\n"
		"\r\n"
		"hello";
	struct script origin;
	struct proc proxy;
	void *conn = NULL;

	script_start(&origin, SCRIPT_REPLY_CLOSE, reply);
	proxy_start(&proxy, origin.port, NULL);
	for (int i = 0; i < 2; i++) {
		const char *cookies[2] = { NULL, NULL }, *connection;
		struct http_reply r;
		int ncookies = 0;

		ck_assert_int_eq(http_request_reuse(&conn, "GET", proc_url(&proxy, "/cookies"), NULL,
						    NULL, 0, &r), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "hello");
		for (size_t k = 0; k < r.nheaders; k++)
			if (strcasecmp(r.headers[k].name, "Set-Cookie") == 0 && ncookies < 2)
				cookies[ncookies++] = r.headers[k].value;
		ck_assert_int_eq(ncookies, 2);
		ck_assert_str_eq(cookies[0], "a=1; Path=/");
		ck_assert_str_eq(cookies[1], "b=2; Path=/");
		ck_assert_str_eq(http_reply_header(&r, "X-End"), "yes");
		ck_assert_ptr_nonnull(strstr(http_reply_header(&r, "Via"), "mtps"));
		ck_assert_ptr_null(http_reply_header(&r, "X-Hop-Resp"));
		ck_assert_ptr_null(http_reply_header(&r, "Keep-Alive"));
		ck_assert_ptr_null(http_reply_header(&r, "Proxy-Authenticate"));
		connection = http_reply_header(&r, "Connection");
		ck_assert_msg(connection == NULL || (!strcasestr(connection, "X-Hop-Resp") &&
						     !strcasestr(connection, "close")),
			      "Connection: %s", connection);
		ck_assert_msg(r.connects == (i == 0 ? 1 : 0), "request %d opened %ld connections",
			      i, r.connects);
		http_reply_free(&r);
	}
	http_reuse_free(&conn);
	ck_assert_uint_eq(script_requests(&origin), 2);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* A chunked response is passed on whole, and kept when it may be: the cache does not
 * need a Content-Length. */
START_TEST(test_chunked_response)
{
	static const char reply[] =
		"HTTP/1.1 200 OK\r\n"
		"Content-Type: text/plain\r\n"
		"Transfer-Encoding: chunked\r\n"
		"Cache-Control: max-age=60\r\n"
		"\r\n"
		"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	struct script origin;
	struct proc proxy;
	struct http_reply r;

	script_start(&origin, SCRIPT_REPLY, reply);
	proxy_start(&proxy, origin.port, NULL);
	request(&proxy, "GET", "/chunked", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world");
	expect_x_cache(&r, "MISS", "first GET");
	http_reply_free(&r);
	request(&proxy, "GET", "/chunked", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world");
	ck_assert_uint_eq(script_requests(&origin), 1);
	expect_x_cache(&r, "HIT", "second GET");
	http_reply_free(&r);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* RFC 9112 §3.2.2: a request in absolute-form goes upstream in origin-form, with the
 * URL's authority as Host. */
START_TEST(test_absolute_form)
{
	static const char req[] = "GET http://www.example.test/abs?q=1 HTTP/1.1\r\n"
				  "Host: ignored.example\r\nConnection: close\r\n\r\n";
	struct script origin;
	struct proc proxy;
	char buf[4096], value[256];
	const char *seen;
	size_t got = 0;
	ssize_t n;
	int fd;

	script_start(&origin, SCRIPT_REPLY, ok_reply);
	proxy_start(&proxy, origin.port, NULL);
	fd = http_raw_connect(proxy.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "got %.60s", buf);
	seen = script_seen(&origin, 0);
	ck_assert_msg(strncmp(seen, "GET /abs?q=1 HTTP/1.1\r\n", 23) == 0, "request line: %.60s",
		      seen);
	ck_assert_int_eq(request_field(seen, "Host", value, sizeof(value)), 1);
	ck_assert_str_eq(value, "www.example.test");
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* The origin's own errors are answers, not failures: status, fields and body pass. */
START_TEST(test_origin_error_passes)
{
	static const char reply[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n"
				    "Retry-After: 5\r\nContent-Type: text/plain\r\n\r\nbusy";
	struct script origin;
	struct proc proxy;
	struct http_reply r;

	script_start(&origin, SCRIPT_REPLY, reply);
	proxy_start(&proxy, origin.port, NULL);
	request(&proxy, "GET", "/busy", NULL, &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.body, "busy");
	ck_assert_str_eq(http_reply_header(&r, "Retry-After"), "5");
	http_reply_free(&r);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* Connections to the origin are kept alive and reused: requests one after the other,
 * from different clients, travel on one origin connection. */
START_TEST(test_origin_connection_reused)
{
	struct script origin;
	struct proc proxy;
	unsigned conns;

	script_start(&origin, SCRIPT_REPLY, ok_reply);
	proxy_start(&proxy, origin.port, NULL);
	for (int i = 0; i < 5; i++) {
		struct http_reply r;

		request(&proxy, "GET", "/again", NULL, &r);
		ck_assert_int_eq(r.status, 200);
		http_reply_free(&r);
	}
	ck_assert_uint_eq(script_requests(&origin), 5);
	pthread_mutex_lock(&origin.lock);
	conns = origin.nconns;
	pthread_mutex_unlock(&origin.lock);
	ck_assert_msg(conns == 1, "5 requests came on %u origin connections", conns);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* ---- responses not for sharing ---------------------------------------------------------- */

static const char *const not_shared[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nCache-Control: private, max-age=60\r\n\r\n"
	SCRIPT_SERIAL,
	"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nCache-Control: no-store\r\n\r\n" SCRIPT_SERIAL,
	/* not explicitly fresh: nothing to store */
	"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" SCRIPT_SERIAL,
};

/* RFC 9111 §3, §5.2.2.3, §5.2.2.7: a private or no-store response is neither stored nor
 * handed to other clients waiting for the same URL: concurrent requests each reach the
 * origin and each get their own answer, and so do later ones. */
START_TEST(test_uncacheable_not_shared)
{
	enum { CLIENTS = 8, LATER = 3 };
	struct http_batch *b = http_batch_new();
	char bodies[CLIENTS + LATER][16];
	struct script origin;
	struct proc proxy;

	script_start(&origin, SCRIPT_REPLY, not_shared[_i]);
	script_gate(&origin, CLIENTS, 1000);	/* hold the first answer while others come */
	proxy_start(&proxy, origin.port, NULL);
	for (int i = 0; i < CLIENTS; i++)
		http_batch_add(b, "GET", proc_url(&proxy, "/mine"), NULL, NULL);
	ck_assert_int_eq(http_batch_run(b, 4 * TIMEOUT_MS), 0);
	for (int i = 0; i < CLIENTS; i++) {
		const struct http_reply *r = http_batch_reply(b, i);

		ck_assert_msg(r->status == 200, "client %d: status %ld (curl %d)", i, r->status,
			      r->curl_code);
		ck_assert_uint_eq(r->len, 8);
		expect_x_cache(r, "MISS", "a concurrent request");
		snprintf(bodies[i], sizeof(bodies[i]), "%s", r->body);
	}
	http_batch_free(b);
	for (int i = 0; i < LATER; i++) {
		struct http_reply r;

		request(&proxy, "GET", "/mine", NULL, &r);
		ck_assert_int_eq(r.status, 200);
		expect_x_cache(&r, "BYPASS", "a later request (the URL is hit-for-miss)");
		snprintf(bodies[CLIENTS + i], sizeof(bodies[0]), "%s", r.body);
		http_reply_free(&r);
	}
	for (int i = 0; i < CLIENTS + LATER; i++)
		for (int k = 0; k < i; k++)
			ck_assert_msg(strcmp(bodies[i], bodies[k]) != 0,
				      "clients %d and %d got the same answer %s", k, i, bodies[i]);
	ck_assert_uint_eq(script_requests(&origin), CLIENTS + LATER);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* ---- the origin fails ------------------------------------------------------------------- */

/* Nothing listens on the backend's port: 502 with a reason, for every request and method,
 * and the proxy still stops cleanly. */
START_TEST(test_origin_down)
{
	static const char *const paths[] = { "/api/users/1", "/api/users/1", "/other" };
	struct proc proxy;
	struct http_reply r;
	int port, fd = bind_loopback(&port, false);

	close(fd);	/* the port is free now: connecting to it is refused */
	proxy_start(&proxy, port, NULL);
	for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
		request(&proxy, "GET", paths[i], NULL, &r);
		expect_error(&r, 502, NULL);
		http_reply_free(&r);
	}
	ck_assert_int_eq(http_request("POST", proc_url(&proxy, "/api/users"), NULL, "{}", 2, &r), 0);
	expect_error(&r, 502, NULL);
	http_reply_free(&r);
	proxy_stop(&proxy);
}
END_TEST

/* The origin accepts and never answers: 504 after --upstream-timeout; the proxy serves
 * on, and asks the origin again for the same URL. */
START_TEST(test_origin_hangs)
{
	const char *const args[] = { "--upstream-timeout", "1", NULL };
	struct script origin;
	struct proc proxy;
	struct http_reply r;

	script_start(&origin, SCRIPT_HANG, NULL);
	proxy_start(&proxy, origin.port, args);
	request(&proxy, "GET", "/slow", NULL, &r);
	expect_error(&r, 504, NULL);
	http_reply_free(&r);
	ck_assert_uint_eq(script_requests(&origin), 1);
	script_set(&origin, SCRIPT_REPLY, ok_reply);
	request(&proxy, "GET", "/slow", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok");
	http_reply_free(&r);
	ck_assert_uint_eq(script_requests(&origin), 2);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* Replies that end 1000 bytes into a body announced longer (by Content-Length, or by
 * chunked coding without its last chunk), and then the connection closes. */
static char cut_replies[2][2048];

static void make_cut_replies(void)
{
	static const char *const heads[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nCache-Control: max-age=60\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n\r\n"
		"3e8\r\n",
	};

	for (size_t i = 0; i < ARRAY_LEN(heads); i++) {
		size_t n = strlen(heads[i]);

		memcpy(cut_replies[i], heads[i], n);
		memset(cut_replies[i] + n, 'x', 1000);
		cut_replies[i][n + 1000] = '\0';
	}
}

static const struct {
	int reply;			/* in cut_replies */
	enum script_action action;
	const char *name;
} cuts[] = {
	{ 0, SCRIPT_REPLY_CLOSE, "closes after 1000 of 1000000 bytes" },
	{ 1, SCRIPT_REPLY_CLOSE, "closes after a chunk, without the last one" },
	{ 0, SCRIPT_REPLY_HANG, "stalls after 1000 of 1000000 bytes" },
	{ 1, SCRIPT_REPLY_HANG, "stalls after a chunk" },
};

/* The origin dies or stalls mid-body: the client's transfer fails (never a short body
 * presented as complete), nothing is stored - the next request for the URL is a MISS that
 * reaches the origin - and the proxy serves on. */
START_TEST(test_origin_fails_mid_body)
{
	static const char whole[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\n\r\nwhole";
	const char *const args[] = { "--upstream-timeout", "1", NULL };
	struct script origin;
	struct proc proxy;
	struct http_reply r;
	int ret;

	make_cut_replies();
	script_start(&origin, cuts[_i].action, cut_replies[cuts[_i].reply]);
	proxy_start(&proxy, origin.port, args);
	ret = http_request("GET", proc_url(&proxy, "/cut"), NULL, NULL, 0, &r);
	ck_assert_msg(ret != 0, "the origin %s, yet the client got a complete %ld of %zu bytes",
		      cuts[_i].name, r.status, r.len);
	ck_assert_msg(r.len < 1000000, "%zu bytes", r.len);
	http_reply_free(&r);
	ck_assert_uint_eq(script_requests(&origin), 1);

	script_set(&origin, SCRIPT_REPLY, whole);
	request(&proxy, "GET", "/cut", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "whole");
	expect_x_cache(&r, "MISS", "after the cut");
	http_reply_free(&r);
	ck_assert_uint_eq(script_requests(&origin), 2);
	request(&proxy, "GET", "/cut", NULL, &r);
	ck_assert_str_eq(r.body, "whole");
	ck_assert_uint_eq(script_requests(&origin), 2);
	expect_x_cache(&r, "HIT", "the complete answer");
	http_reply_free(&r);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* The waiting list is bounded in time (--coalesce-timeout): a request that joined a fetch
 * whose origin does not answer gives up waiting and fetches on its own, before the
 * stuck fetch times out (--upstream-timeout). */
START_TEST(test_coalesce_timeout)
{
	/* the stuck fetch outlives the test: the drain on SIGTERM cuts it short */
	const char *const args[] = { "--coalesce-timeout", "1", "--upstream-timeout", "20",
				     "--drain-timeout", "1", NULL };
	struct http_batch *b = http_batch_new();
	struct script origin;
	struct proc proxy;
	int tries;

	script_start(&origin, SCRIPT_HANG, NULL);
	proxy_start(&proxy, origin.port, args);
	http_batch_add(b, "GET", proc_url(&proxy, "/stuck"), NULL, NULL);
	for (tries = 0; tries < TIMEOUT_MS && script_requests(&origin) == 0; tries++)
		http_batch_run(b, 1);
	ck_assert_uint_eq(script_requests(&origin), 1);
	script_set(&origin, SCRIPT_REPLY, ok_reply);	/* the next request gets an answer */
	http_batch_add(b, "GET", proc_url(&proxy, "/stuck"), NULL, NULL);
	/* the second is answered on its own fetch; the first still waits */
	for (tries = 0; tries < TIMEOUT_MS && http_batch_reply(b, 1)->status == 0 &&
			http_batch_reply(b, 1)->curl_code == 0; tries++)
		http_batch_run(b, 1);
	ck_assert_int_eq(http_batch_reply(b, 1)->status, 200);
	ck_assert_str_eq(http_batch_reply(b, 1)->body, "ok");
	ck_assert_int_eq(http_batch_reply(b, 0)->status, 0);
	ck_assert_uint_eq(script_requests(&origin), 2);
	http_batch_free(b);	/* the first client leaves */
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

/* ---- malformed requests ----------------------------------------------------------------- */

/* Sends <req> on a new connection and returns the status of the answer (0 when the proxy
 * closed without one). Reads the status line only, so it does not depend on whether the
 * proxy keeps the connection open. */
static int raw_status(const struct proc *p, const char *req)
{
	int fd = http_raw_connect(p->port);
	char buf[4096];
	size_t got = 0;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		ck_assert_msg(poll(&pfd, 1, TIMEOUT_MS) == 1, "no answer to %s", req);
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (got == 0)
		return 0;
	return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
}

static const struct {
	const char *req;
	int status;
} malformed[] = {
	/* RFC 9112 §3.2: origin-form or absolute-form, nothing else */
	{ "GET users/1 HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http://user@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	/* §3.2: exactly one Host in HTTP/1.1 */
	{ "GET /a HTTP/1.1\r\n\r\n", 400 },
	{ "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
	/* §6.1, §6.3: framing that could be read two ways */
	{ "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}", 400 },
	{ "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400 },
	/* §5: a field line without a colon */
	{ "GET /a HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400 },
};

/* Malformed requests get a 400 from the proxy, never reach the origin, and cost nothing
 * else: the next request is served. */
START_TEST(test_malformed_request)
{
	struct script origin;
	struct proc proxy;
	struct http_reply r;
	int status;

	script_start(&origin, SCRIPT_REPLY, ok_reply);
	proxy_start(&proxy, origin.port, NULL);
	status = raw_status(&proxy, malformed[_i].req);
	ck_assert_msg(status == malformed[_i].status, "%s: status %d, want %d", malformed[_i].req,
		      status, malformed[_i].status);
	ck_assert_uint_eq(script_requests(&origin), 0);
	request(&proxy, "GET", "/after", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
	ck_assert_uint_eq(script_requests(&origin), 1);
	proxy_stop(&proxy);
	script_stop(&origin);
}
END_TEST

static Suite *scripted_suite(void)
{
	Suite *s = suite_create("proxy-scripted");
	TCase *tc = tcase_create("scripted-origin");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_request_fields);
	tcase_add_test(tc, test_response_fields);
	tcase_add_test(tc, test_chunked_response);
	tcase_add_test(tc, test_absolute_form);
	tcase_add_test(tc, test_origin_error_passes);
	tcase_add_test(tc, test_origin_connection_reused);
	tcase_add_loop_test(tc, test_uncacheable_not_shared, 0, ARRAY_LEN(not_shared));
	tcase_add_test(tc, test_origin_down);
	tcase_add_test(tc, test_origin_hangs);
	tcase_add_loop_test(tc, test_origin_fails_mid_body, 0, ARRAY_LEN(cuts));
	tcase_add_test(tc, test_coalesce_timeout);
	tcase_add_loop_test(tc, test_malformed_request, 0, ARRAY_LEN(malformed));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(scripted_suite)
