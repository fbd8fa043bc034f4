/* Integration tests: mtps-proxy in front of several backends - three real mtps-origin
 * processes, and, where a backend must misbehave on cue, a fake one that this program runs
 * on a thread (it accepts and never answers, or answers 503 to everything), or a port that
 * refuses connections. Misses spread over the pool by the policy (round-robin, weights,
 * hash); an origin stopped under a steady load costs no client request and comes back once
 * restarted; all down gives 503 with Retry-After; failed requests are retried on another
 * backend when the rules of the issue allow it, and not otherwise.
 *
 * Every test starts the origins it needs and its own proxy, whose log goes to a file:
 * "backend HOST:PORT is down" there is how a test learns that the proxy took a backend
 * out, instead of waiting for some time. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "load.h"
#include "proc.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: servers may run under valgrind */
#define ORIGINS 3

static struct proc origins[ORIGINS];
static char served_by[ORIGINS][32];	/* "origin-PORT": what each puts in X-Served-By */
static char log_dir[64];		/* the proxies' logs */
static const char *const json_ctype[] = { "Content-Type: application/json", NULL };

/* The bound on a state change the proxy makes within a few health intervals. */
static unsigned change_ms(void)
{
	return proc_wrapped() ? 60000 : 20000;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- origins and the proxy -------------------------------------------------------------- */

/* Starts origin <i> on <port> (0: a free one). */
static int origin_start(int i, int port)
{
	char p[16];
	const char *args[] = { "--threads", "2", "--port", p, NULL };
	int r;

	snprintf(p, sizeof(p), "%d", port);
	r = proc_start(&origins[i], getenv("MTPS_ORIGIN"), args, NULL, TIMEOUT_MS);
	if (r == 0)
		snprintf(served_by[i], sizeof(served_by[i]), "origin-%d", origins[i].port);
	return r;
}

/* Starts origins 0 to <n>-1 on free ports. */
static void origins_start(int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_msg(origin_start(i, 0) == 0, "cannot start mtps-origin %d", i);
}

/* Waits for origin <i>, already sent SIGTERM, to exit: it must exit 0 (a leak report under
 * the sanitizers or valgrind would not). */
static void origin_wait(int i)
{
	int port = origins[i].port, status = proc_wait(&origins[i], TIMEOUT_MS);

	ck_assert_msg(status == 0, "origin-%d exited with status %d", port, status);
}

/* Stops origin <i> with SIGTERM and waits for it. */
static void origin_stop(int i)
{
	kill(origins[i].pid, SIGTERM);
	origin_wait(i);
}

/* Once for all tests, in the process that forks them (so it runs even after a failed
 * test): the folder of the proxies' logs. */
static void log_dir_make(void)
{
	strcpy(log_dir, "/tmp/mtps-balance-XXXXXX");
	if (mkdtemp(log_dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void log_dir_remove(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/proxy.log", log_dir);
	unlink(path);
	rmdir(log_dir);
}

static void setup(void)
{
	memset(origins, 0, sizeof(origins));
	memset(served_by, 0, sizeof(served_by));
	/* before any thread: the load generator's run libcurl on several at once */
	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
}

/* After a test that passed; a failed one's servers die with it (proc.h). */
static void teardown(void)
{
	/* all at once: under valgrind each takes a while to exit */
	for (int i = 0; i < ORIGINS; i++)
		if (origins[i].pid > 0)
			kill(origins[i].pid, SIGTERM);
	for (int i = 0; i < ORIGINS; i++)
		if (origins[i].pid > 0)
			origin_wait(i);
	curl_global_cleanup();
}

/* "127.0.0.1:PORT" of origin <i>, in one of 8 rotating static buffers. */
static const char *origin_addr(int i)
{
	static char buf[8][32];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, 32, "127.0.0.1:%d", origins[i].port);
	return b;
}

/* Starts origins 0 to <n>-1 and returns their addresses, NULL-terminated: the --backend
 * values of a pool of them. */
static const char *const *origins_pool(int n)
{
	static const char *pool[ORIGINS + 1];

	origins_start(n);
	for (int i = 0; i < n; i++)
		pool[i] = origin_addr(i);
	pool[n] = NULL;
	return pool;
}

static const char *port_addr(int port)
{
	static char buf[8][32];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, 32, "127.0.0.1:%d", port);
	return b;
}

static const char *proxy_log(void)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/proxy.log", log_dir);
	return path;
}

/* Starts mtps-proxy in front of <backends> (specs for --backend, NULL-terminated) with
 * <extra> arguments (may be NULL); its log goes to proxy_log(). */
static void proxy_start(struct proc *p, const char *const *backends, const char *const *extra)
{
	const char *args[48] = { "--listen", "127.0.0.1:0", "--threads", "2" };
	size_t n = 4;
	int r;

	for (size_t i = 0; backends[i] && n < ARRAY_LEN(args) - 2; i++) {
		args[n++] = "--backend";
		args[n++] = backends[i];
	}
	for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(args) - 1; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	r = proc_start(p, getenv("MTPS_PROXY"), args, proxy_log(), TIMEOUT_MS);
	ck_assert_msg(r == 0, "cannot start mtps-proxy: %d", r);
}

static void proxy_stop(struct proc *p)
{
	int status = proc_stop(p, SIGTERM, TIMEOUT_MS);

	ck_assert_msg(status == 0, "mtps-proxy exited with status %d", status);
}

/* Says whether the proxy's log has <needle> in it. */
static bool log_has(const char *needle)
{
	static char buf[1 << 20];

	return proc_read_file(proxy_log(), buf, sizeof(buf)) > 0 && strstr(buf, needle);
}

/* How many times the proxy's log has <needle>. */
static int log_count(const char *needle)
{
	static char buf[1 << 20];
	int n = 0;

	if (proc_read_file(proxy_log(), buf, sizeof(buf)) <= 0)
		return 0;
	for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Waits up to change_ms() for the proxy to log that backend <addr> went down ("down") or
 * came back ("up"). */
static void wait_backend(const char *addr, const char *state)
{
	char needle[96];
	uint64_t deadline = now_ms() + change_ms();

	snprintf(needle, sizeof(needle), "backend %s is %s: ", addr, state);
	while (!log_has(needle)) {
		ck_assert_msg(now_ms() < deadline, "no \"%s\" in the proxy's log after %u ms",
			      needle, change_ms());
		poll(NULL, 0, 10);
	}
}

/* ---- replies ---------------------------------------------------------------------------- */

/* Which origin <r> came from (by X-Served-By), or -1. */
static int served_index(const struct http_reply *r)
{
	const char *by = http_reply_header(r, "X-Served-By");

	for (int i = 0; by && i < ORIGINS; i++)
		if (strcmp(by, served_by[i]) == 0)
			return i;
	return -1;
}

/* Sends <method> <path> through <p>; the caller frees *r. */
static void request(const struct proc *p, const char *method, const char *path,
		    const char *const *headers, const char *body, struct http_reply *r)
{
	char url[256];
	int ret;

	snprintf(url, sizeof(url), "%s%s", p->url, path);
	ret = http_request(method, url, headers, body, body ? strlen(body) : 0, r);
	ck_assert_msg(ret == 0, "%s %s: curl error %d", method, path, r->curl_code);
}

/* GETs <path> through <p>, which must answer 200 from one of the origins: returns which. */
static int get_served(const struct proc *p, const char *path)
{
	struct http_reply r;
	int i;

	request(p, "GET", path, NULL, NULL, &r);
	ck_assert_msg(r.status == 200, "GET %s: status %ld: %s", path, r.status, r.body);
	i = served_index(&r);
	ck_assert_msg(i >= 0, "GET %s: X-Served-By %s is none of the origins", path,
		      http_reply_header(&r, "X-Served-By") ? http_reply_header(&r, "X-Served-By")
							   : "(none)");
	http_reply_free(&r);
	return i;
}

/* A field of origin <i>'s status (GET /health, which the origin counts apart). */
static int64_t origin_status(int i, const char *key)
{
	struct http_reply r;
	struct json_object *j;
	int64_t v;

	ck_assert_int_eq(http_get(proc_url(&origins[i], "/health"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = expect_json(&r);
	v = expect_jint(j, key);
	json_object_put(j);
	http_reply_free(&r);
	return v;
}

/* ---- backends that misbehave ------------------------------------------------------------ */

/* A port that refuses connections: a socket bound to it that does not listen. Nobody else
 * can take the port while it is open. Returns the socket; its port goes to *port. */
static int refusing_port(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

enum fake_mode {
	FAKE_HANG = 0,		/* read the request, never answer */
	FAKE_503,		/* answer every request 503 */
};

#define FAKE_MAX_CONNS 62
#define FAKE_503_REPLY                                                                \
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"            \
	"X-Served-By: fake\r\nContent-Length: 9\r\n\r\noverload\n"

/* A backend on a thread of this test: one poll() loop over its listening socket and its
 * connections. The counters are written by that thread and read by the test's. */
struct fake {
	enum fake_mode mode;
	int listen_fd, port;
	int stop[2];			/* a pipe: writing to it ends the thread */
	pthread_t thread;
	atomic_int accepts;		/* connections accepted */
	atomic_int probes;		/* requests for /health: the proxy's checks */
	atomic_int traffic;		/* other requests: clients' */
	atomic_int posts;		/* of them, POSTs */
};

struct fake_conn {
	int fd;
	size_t have;
	char buf[4096];
};

/* Takes the whole requests (head and body) off <c>'s buffer: counts each, and answers it
 * in FAKE_503. */
static void fake_requests(struct fake *f, struct fake_conn *c)
{
	char *end;

	while ((end = memmem(c->buf, c->have, "\r\n\r\n", 4)) != NULL) {
		size_t head = (size_t)(end + 4 - c->buf);
		size_t total = head + http_head_content_length(c->buf, head);

		if (total > sizeof(c->buf)) {
			c->have = 0;	/* not from these tests: dropped */
			return;
		}
		if (c->have < total)
			return;		/* the rest of the body is on its way */
		if (strncmp(c->buf, "GET /health ", 12) == 0) {
			atomic_fetch_add(&f->probes, 1);
		} else {
			atomic_fetch_add(&f->traffic, 1);
			if (strncmp(c->buf, "POST ", 5) == 0)
				atomic_fetch_add(&f->posts, 1);
		}
		if (f->mode == FAKE_503)
			(void)!send(c->fd, FAKE_503_REPLY, strlen(FAKE_503_REPLY), MSG_NOSIGNAL);
		memmove(c->buf, c->buf + total, c->have - total);
		c->have -= total;
	}
	if (c->have == sizeof(c->buf))
		c->have = 0;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd pfd[2 + FAKE_MAX_CONNS];
	struct fake_conn *conns = calloc(FAKE_MAX_CONNS, sizeof(*conns));
	size_t n = 0;

	if (conns == NULL)
		return NULL;
	for (;;) {
		pfd[0] = (struct pollfd){ f->stop[0], POLLIN, 0 };
		pfd[1] = (struct pollfd){ f->listen_fd, POLLIN, 0 };
		for (size_t i = 0; i < n; i++)
			pfd[2 + i] = (struct pollfd){ conns[i].fd, POLLIN, 0 };
		if (poll(pfd, 2 + n, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		for (size_t i = n; i-- > 0;) {
			struct fake_conn *c = &conns[i];
			ssize_t got;

			if (pfd[2 + i].revents == 0)
				continue;
			got = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
			if (got <= 0) {
				close(c->fd);	/* the proxy gave up on it */
				conns[i] = conns[--n];
				continue;
			}
			c->have += (size_t)got;
			fake_requests(f, c);
		}
		if (pfd[1].revents & POLLIN) {
			int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				atomic_fetch_add(&f->accepts, 1);
				if (n < FAKE_MAX_CONNS) {
					conns[n].fd = fd;
					conns[n].have = 0;
					n++;
				} else {
					close(fd);
				}
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		close(conns[i].fd);
	free(conns);
	return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(f->listen_fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->listen_fd, 128), 0);
	ck_assert_int_eq(getsockname(f->listen_fd, (struct sockaddr *)&sa, &len), 0);
	f->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pipe2(f->stop, O_CLOEXEC), 0);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	ck_assert_int_eq(write(f->stop[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->stop[0]);
	close(f->stop[1]);
	close(f->listen_fd);
}

/* ---- spread ----------------------------------------------------------------------------- */

/* Round-robin with equal weights takes the origins in turn: any 3k requests in a row reach
 * each exactly k times, by X-Served-By and by the origins' own count. /api/test is
 * no-store at the origin, so every request is a miss, but the origin counts it apart from
 * "requests"; /api/users/1?rr=K is a user read the origin counts, and a new cache key, so a
 * miss, for each K. */
START_TEST(test_round_robin)
{
	const char *const *backends = origins_pool(3);
	const int rounds = proc_wrapped() ? 4 : 20;
	const char *const extra[] = { "--health-interval", "200ms", NULL };
	int count[ORIGINS] = { 0 };
	int64_t before[ORIGINS];
	struct proc proxy;

	proxy_start(&proxy, backends, extra);
	for (int k = 0; k < ORIGINS * rounds; k++)
		count[get_served(&proxy, "/api/test")]++;
	for (int i = 0; i < ORIGINS; i++)
		ck_assert_msg(count[i] == rounds, "origin %d served %d of %d, want %d", i, count[i],
			      ORIGINS * rounds, rounds);

	for (int i = 0; i < ORIGINS; i++)
		before[i] = origin_status(i, "requests");
	for (int k = 0; k < ORIGINS * rounds; k++) {
		char path[64];

		snprintf(path, sizeof(path), "/api/users/1?rr=%d", k);
		get_served(&proxy, path);
	}
	for (int i = 0; i < ORIGINS; i++)
		ck_assert_msg(origin_status(i, "requests") - before[i] == rounds,
			      "origin %d counted %lld requests, want %d", i,
			      (long long)(origin_status(i, "requests") - before[i]), rounds);
	proxy_stop(&proxy);
}
END_TEST

/* A request with "Cache-Control: no-cache" (or "Pragma: no-cache" without Cache-Control)
 * is validated with the origin though a fresh response is stored (RFC 9111 §5.2.1.4, §5.4; mtps-proxy(8),
 * "What is stored"), so it reaches the origin every time. This belongs with the cache's
 * tests; it is here because the balancing tests found it. */
START_TEST(test_no_cache_request_forwarded)
{
	static const char *const no_cache[][2] = {
		{ "Cache-Control: no-cache", NULL },
		{ "Pragma: no-cache", NULL },
	};
	const char *const *backends = origins_pool(1);
	const char *const extra[] = { "--health-interval", "200ms", NULL };
	int64_t before;
	struct proc proxy;
	struct http_reply r;

	proxy_start(&proxy, backends, extra);
	request(&proxy, "GET", "/api/users/2", NULL, NULL, &r);	/* stored: max-age=60 */
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
	before = origin_status(0, "requests");
	for (size_t h = 0; h < ARRAY_LEN(no_cache); h++) {
		for (int k = 0; k < 2; k++) {
			request(&proxy, "GET", "/api/users/2", no_cache[h], NULL, &r);
			ck_assert_int_eq(r.status, 200);
			/* the stored response has an ETag: it is revalidated (RFC 9111 §4.3.1) */
			ck_assert_msg(strcmp(http_reply_header(&r, "X-Cache"), "REVALIDATED") == 0,
				      "GET with %s: X-Cache %s, want REVALIDATED", no_cache[h][0],
				      http_reply_header(&r, "X-Cache"));
			http_reply_free(&r);
		}
	}
	ck_assert_int_eq(origin_status(0, "requests") - before, 4);
	proxy_stop(&proxy);
}
END_TEST

/* Weights: "--backend A,weight=2" next to two of weight 1 gets half the misses. Smooth
 * weighted round-robin repeats every 4 picks, so 4k requests split 2k, k, k exactly. */
START_TEST(test_weights)
{
	const char *const *pool = origins_pool(3);
	const int rounds = proc_wrapped() ? 3 : 15;
	char heavy[48];
	const char *const backends[] = { heavy, pool[1], pool[2], NULL };
	const char *const extra[] = { "--health-interval", "200ms", NULL };
	const int want[ORIGINS] = { 2 * rounds, rounds, rounds };
	int count[ORIGINS] = { 0 };
	struct proc proxy;

	snprintf(heavy, sizeof(heavy), "%s,weight=2", pool[0]);
	proxy_start(&proxy, backends, extra);
	for (int k = 0; k < 4 * rounds; k++)
		count[get_served(&proxy, "/api/test")]++;
	for (int i = 0; i < ORIGINS; i++)
		ck_assert_msg(count[i] == want[i], "origin %d served %d of %d, want %d", i, count[i],
			      4 * rounds, want[i]);
	proxy_stop(&proxy);
}
END_TEST

/* --balance hash: a URL always goes to the same origin (the cache key is hashed), and the
 * keys spread over more than one. When an origin leaves, only its keys move: every other
 * key stays where it was (consistent hashing). /api/test?k=N is a distinct, uncacheable
 * URL for each N (the origin ignores the query). */
START_TEST(test_hash)
{
	enum { KEYS = 30 };
	const char *const *backends = origins_pool(3);
	const int asks = proc_wrapped() ? 2 : 4, keys = proc_wrapped() ? 12 : KEYS;
	const char *const extra[] = { "--balance", "hash", "--health-interval", "200ms", NULL };
	int home[KEYS], used[ORIGINS] = { 0 }, moved = 0;
	char path[64];
	struct proc proxy;

	proxy_start(&proxy, backends, extra);
	for (int a = 0; a < asks; a++) {
		for (int k = 0; k < keys; k++) {
			int i;

			snprintf(path, sizeof(path), "/api/test?k=%d", k);
			i = get_served(&proxy, path);
			if (a == 0) {
				home[k] = i;
				used[i]++;
			}
			ck_assert_msg(i == home[k], "ask %d of %s went to origin %d, before to %d", a,
				      path, i, home[k]);
		}
	}
	ck_assert_msg((used[0] > 0) + (used[1] > 0) + (used[2] > 0) >= 2,
		      "%d keys all went to one origin (%d, %d, %d)", keys, used[0], used[1],
		      used[2]);

	/* the origin with the most keys leaves */
	{
		int gone = used[0] >= used[1] && used[0] >= used[2] ? 0 : used[1] >= used[2] ? 1 : 2;

		origin_stop(gone);
		wait_backend(origin_addr(gone), "down");
		for (int k = 0; k < keys; k++) {
			int i;

			snprintf(path, sizeof(path), "/api/test?k=%d", k);
			i = get_served(&proxy, path);
			ck_assert_msg(i != gone, "%s: served by the stopped origin", path);
			if (home[k] != gone)
				ck_assert_msg(i == home[k],
					      "%s moved from origin %d to %d though %d left", path,
					      home[k], i, gone);
			else
				moved++;
		}
		ck_assert_int_eq(moved, used[gone]);
	}
	proxy_stop(&proxy);
}
END_TEST

/* ---- failover --------------------------------------------------------------------------- */

/* Clients on threads of their own, each sending GETs one after another until told to stop,
 * and tallying what came back. */
#define LOAD_THREADS 4

/* An origin stopped (SIGTERM, then its exit) in the middle of a steady load of GETs costs
 * no client request: what was sent to it is retried on another. The proxy takes it out
 * and says so once; then nothing goes to it. Restarted on its port, it is taken back. */
START_TEST(test_failover_under_load)
{
	const char *const *backends = origins_pool(3);
	const long batch = proc_wrapped() ? 15 : 200;
	const char *const extra[] = { "--health-interval", "200ms", NULL };
	const int victim = 1, port = origins[1].port;
	char down[64];
	struct proc proxy;
	struct load l;
	uint64_t deadline, restarted;
	long mark;
	int i;

	proxy_start(&proxy, backends, extra);
	load_start(&l, proc_url(&proxy, "/api/test"), proc_wrapped() ? 2 : LOAD_THREADS, served_index);
	load_wait(&l, 0, batch, TIMEOUT_MS);
	origin_stop(victim);
	wait_backend(origin_addr(victim), "down");
	mark = atomic_load(&l.total);
	load_wait(&l, mark, batch, TIMEOUT_MS);	/* and on it goes, on two origins */
	load_stop(&l);
	ck_assert_msg(atomic_load(&l.failed) == 0, "%ld of %ld requests failed; the first: %s",
		      atomic_load(&l.failed), atomic_load(&l.total), l.first_failure);
	ck_assert_int_eq(atomic_load(&l.unknown), 0);
	for (i = 0; i < ORIGINS; i++)
		ck_assert_msg(atomic_load(&l.served[i]) > 0, "origin %d served none of %ld", i,
			      atomic_load(&l.total));
	fprintf(stderr, "failover: %ld requests, 0 failed; served %ld, %ld, %ld\n",
		atomic_load(&l.total), atomic_load(&l.served[0]), atomic_load(&l.served[1]),
		atomic_load(&l.served[2]));
	snprintf(down, sizeof(down), "backend %s is down: ", origin_addr(victim));
	ck_assert_int_eq(log_count(down), 1);

	/* it is out: 30 more requests, none to it */
	for (int k = 0; k < 30; k++)
		ck_assert_int_ne(get_served(&proxy, "/api/test"), victim);

	/* back on its port: requests reach it again, within a bound */
	ck_assert_msg(origin_start(victim, port) == 0, "cannot restart mtps-origin on %d", port);
	restarted = now_ms();
	deadline = restarted + change_ms();
	while (get_served(&proxy, "/api/test") != victim)
		ck_assert_msg(now_ms() < deadline, "origin %d not back after %u ms", victim,
			      change_ms());
	fprintf(stderr, "failover: origin back in rotation %llu ms after its restart\n",
		(unsigned long long)(now_ms() - restarted));
	wait_backend(origin_addr(victim), "up");
	proxy_stop(&proxy);
}
END_TEST

/* Every origin down: 503 with Retry-After (the health interval in whole seconds, at least
 * 1) and the proxy's JSON error, at once, without trying any. One back: served again. */
START_TEST(test_all_down)
{
	const char *const *backends = origins_pool(2);
	const char *const extra[] = { "--health-interval", "200ms", NULL };
	struct http_reply r;
	struct proc proxy;
	int port = origins[1].port;

	proxy_start(&proxy, backends, extra);
	for (int i = 0; i < 2; i++) {
		origin_stop(i);
		wait_backend(origin_addr(i), "down");
	}
	request(&proxy, "GET", "/api/test", NULL, NULL, &r);
	expect_error(&r, 503, "every one is down");
	ck_assert_str_eq(http_reply_header(&r, "Retry-After") ? http_reply_header(&r, "Retry-After")
							       : "(none)", "1");
	http_reply_free(&r);
	request(&proxy, "POST", "/api/users", json_ctype, "{\"name\":\"N\",\"email\":\"n@x.org\"}",
		&r);
	expect_error(&r, 503, "every one is down");
	ck_assert_ptr_nonnull(http_reply_header(&r, "Retry-After"));
	http_reply_free(&r);

	ck_assert_int_eq(origin_start(1, port), 0);
	wait_backend(origin_addr(1), "up");
	ck_assert_int_eq(get_served(&proxy, "/api/test"), 1);
	proxy_stop(&proxy);
}
END_TEST

/* A backend that accepts connections and never answers, among two origins, with
 * --upstream-timeout 1: a GET sent to it is retried on an origin after the timeout, so
 * every client gets 200; the proxy takes it out (its checks time out, and so do the
 * requests), and from then on no request goes to it - its count of clients' requests stops
 * growing. */
START_TEST(test_hanging_backend)
{
	const char *const extra[] = { "--health-interval", "200ms", "--upstream-timeout", "1",
				      NULL };
	struct fake hang;
	struct proc proxy;
	uint64_t deadline;
	int sent = 0, before;

	fake_start(&hang, FAKE_HANG);
	{
		const char *const *pool = origins_pool(2);
		const char *const backends[] = { port_addr(hang.port), pool[0], pool[1], NULL };
		char down[64];

		proxy_start(&proxy, backends, extra);
		snprintf(down, sizeof(down), "backend %s is down: ", port_addr(hang.port));
		deadline = now_ms() + change_ms();
		/* round-robin: the first request goes to the hanging backend */
		do {
			ck_assert_msg(now_ms() < deadline, "not taken out after %d requests", sent);
			ck_assert_int_le(get_served(&proxy, "/api/test"), 1);
			sent++;
		} while (!log_has(down));
		ck_assert_int_ge(atomic_load(&hang.traffic), 1);
		ck_assert_int_eq(log_count(down), 1);
	}
	before = atomic_load(&hang.traffic);
	for (int k = 0; k < 20; k++)
		ck_assert_int_le(get_served(&proxy, "/api/test"), 1);
	ck_assert_msg(atomic_load(&hang.traffic) == before,
		      "the hanging backend got %d more requests after it was taken out",
		      atomic_load(&hang.traffic) - before);
	fprintf(stderr, "hanging backend: taken out after %d requests (%d reached it, %d checks, "
		"%d connections)\n", sent, before, atomic_load(&hang.probes),
		atomic_load(&hang.accepts));
	proxy_stop(&proxy);
	fake_stop(&hang);
}
END_TEST

/* ---- retries and methods ---------------------------------------------------------------- */

/* A POST is not idempotent, but one whose connection was refused never reached a backend:
 * it is retried on another, and the user is created exactly once per request. Active
 * checks are off, so the refusing backend stays in the pool and round-robin sends it the
 * first and the third POST. */
START_TEST(test_post_retried_when_never_sent)
{
	const char *const *pool = origins_pool(1);
	const char *const extra[] = { "--health-interval", "0", NULL };
	int port, fd = refusing_port(&port);
	const char *const backends[] = { port_addr(port), pool[0], NULL };
	char retried[96];
	int64_t users = origin_status(0, "users");
	struct proc proxy;

	proxy_start(&proxy, backends, extra);
	for (int k = 0; k < 3; k++) {
		char body[96];
		struct http_reply r;

		snprintf(body, sizeof(body), "{\"name\":\"Retry %d\",\"email\":\"retry%d@x.org\"}", k,
			 k);
		request(&proxy, "POST", "/api/users", json_ctype, body, &r);
		ck_assert_msg(r.status == 201, "POST %d: %ld %s", k, r.status, r.body);
		ck_assert_int_eq(served_index(&r), 0);
		http_reply_free(&r);
	}
	ck_assert_int_eq(origin_status(0, "users"), users + 3);
	snprintf(retried, sizeof(retried), "POST /api/users: %s failed; trying",
		 port_addr(port));
	ck_assert_int_eq(log_count(retried), 2);
	proxy_stop(&proxy);
	close(fd);
}
END_TEST

/* A POST that reached a backend which then did not answer is not retried: the client gets
 * 504, and no other backend sees it. A GET in the same place is retried. */
START_TEST(test_post_not_retried_when_sent)
{
	const char *const *pool = origins_pool(1);
	const char *const extra[] = { "--health-interval", "0", "--upstream-timeout", "1", NULL };
	struct fake hang;
	struct proc proxy;
	struct http_reply r;
	int64_t users = origin_status(0, "users");

	fake_start(&hang, FAKE_HANG);
	{
		const char *const backends[] = { port_addr(hang.port), pool[0], NULL };

		proxy_start(&proxy, backends, extra);
	}
	/* round-robin: the hanging backend first, then the origin, in turn */
	request(&proxy, "POST", "/api/users", json_ctype,
		"{\"name\":\"Once\",\"email\":\"once@x.org\"}", &r);
	expect_error(&r, 504, NULL);
	http_reply_free(&r);
	ck_assert_int_eq(atomic_load(&hang.posts), 1);
	ck_assert_int_eq(origin_status(0, "users"), users);
	ck_assert_int_eq(get_served(&proxy, "/api/test"), 0);
	ck_assert_int_eq(get_served(&proxy, "/api/test"), 0);	/* the hanging one, retried */
	ck_assert_int_eq(atomic_load(&hang.traffic), 2);
	proxy_stop(&proxy);
	fake_stop(&hang);
}
END_TEST

/* A backend that answers 503: a GET is retried on another backend when one is healthy,
 * and the client gets its 200; a POST is not (the request reached the backend), and gets
 * the backend's own 503. With no other backend, the 503 is passed on as it is. */
START_TEST(test_5xx_retried_elsewhere)
{
	const char *const *pool = origins_pool(1);
	const char *const extra[] = { "--health-interval", "0", NULL };
	struct fake flaky;
	struct proc proxy;
	struct http_reply r;

	fake_start(&flaky, FAKE_503);
	{
		const char *const backends[] = { port_addr(flaky.port), pool[0], NULL };

		proxy_start(&proxy, backends, extra);
	}
	for (int k = 0; k < 4; k++)
		ck_assert_int_eq(get_served(&proxy, "/api/test"), 0);
	ck_assert_int_eq(atomic_load(&flaky.traffic), 2);
	/* round-robin: the next one goes to the fake first */
	request(&proxy, "POST", "/api/users", json_ctype,
		"{\"name\":\"Five\",\"email\":\"five@x.org\"}", &r);
	ck_assert_msg(r.status == 503, "POST: %ld %s", r.status, r.body);
	ck_assert_str_eq(http_reply_header(&r, "X-Served-By"), "fake");
	ck_assert_str_eq(r.body, "overload\n");
	http_reply_free(&r);
	proxy_stop(&proxy);

	{
		const char *const alone[] = { port_addr(flaky.port), NULL };

		proxy_start(&proxy, alone, extra);
	}
	request(&proxy, "GET", "/api/test", NULL, NULL, &r);
	ck_assert_msg(r.status == 503, "GET: %ld %s", r.status, r.body);
	ck_assert_str_eq(http_reply_header(&r, "X-Served-By"), "fake");
	ck_assert_str_eq(r.body, "overload\n");
	http_reply_free(&r);
	proxy_stop(&proxy);
	fake_stop(&flaky);
}
END_TEST

static Suite *balance_suite(void)
{
	Suite *s = suite_create("balance");
	TCase *tc = tcase_create("three-origins");

	tcase_add_unchecked_fixture(tc, log_dir_make, log_dir_remove);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_round_robin);
	tcase_add_test(tc, test_no_cache_request_forwarded);
	tcase_add_test(tc, test_weights);
	tcase_add_test(tc, test_hash);
	tcase_add_test(tc, test_failover_under_load);
	tcase_add_test(tc, test_all_down);
	tcase_add_test(tc, test_hanging_backend);
	tcase_add_test(tc, test_post_retried_when_never_sent);
	tcase_add_test(tc, test_post_not_retried_when_sent);
	tcase_add_test(tc, test_5xx_retried_elsewhere);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(balance_suite)
