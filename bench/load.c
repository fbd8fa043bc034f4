/* load.c - closed- and open-loop load on libcurl multi handles (see load.h). */
#include "config.h"

#include "load.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "pace.h"
#include "zipf.h"

#define POLL_MAX_MS 100
#define UNSENT_GRACE_US 5000

struct load_shared {
	const struct load_config *c;
	struct zipf zipf;
	uint64_t t0_us, deadline_us;	/* deadline 0: none */
	atomic_uint_fast64_t issued;
};

struct conn {
	CURL *easy;
	bool busy;
	uint64_t due_us;		/* latency counts from here */
	uint64_t bytes;
	enum stats_cache cache;
	char backend[STATS_MAX_NAME];
	char url[URLS_MAX_LEN];
};

struct worker {
	struct load_shared *sh;
	unsigned index;
	CURLM *multi;
	struct conn *conns;
	unsigned nconns;
	struct stats *stats;
	struct zipf_rng rng;
	struct pace pace;
	bool paced;
	pthread_t tid;
	int error;
};

uint64_t load_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct conn *cn = arg;

	(void)ptr;
	cn->bytes += size * nmemb;
	return size * nmemb;
}

/* Copies the value of header line <line> into <out> when its name is <name>. */
static bool header_value(const char *line, size_t len, const char *name, char *out,
			 size_t outlen)
{
	size_t nlen = strlen(name), vlen;

	if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
		return false;
	line += nlen + 1;
	len -= nlen + 1;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
			   line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	vlen = len < outlen - 1 ? len : outlen - 1;
	memcpy(out, line, vlen);
	out[vlen] = '\0';
	return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct conn *cn = arg;
	size_t len = size * nitems;
	char value[STATS_MAX_NAME];

	if (len > 7 && strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after a 100 Continue or a redirect) starts afresh */
		cn->cache = STATS_CACHE_NONE;
		cn->backend[0] = '\0';
	} else if (header_value(line, len, "X-Cache", value, sizeof(value))) {
		cn->cache = stats_cache_parse(value);
	} else {
		header_value(line, len, "X-Served-By", cn->backend, sizeof(cn->backend));
	}
	return len;
}

static enum stats_error error_kind(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return STATS_ERR_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return STATS_ERR_TIMEOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return STATS_ERR_IO;
	default:
		return STATS_ERR_OTHER;
	}
}

/* Takes one request from the run's count. */
static bool take_ticket(struct load_shared *sh)
{
	if (sh->c->count == 0)
		return true;
	return atomic_fetch_add(&sh->issued, 1) < sh->c->count;
}

static int start_request(struct worker *w, struct conn *cn, uint64_t due_us)
{
	const struct load_config *c = w->sh->c;
	uint64_t rank = zipf_next(&w->sh->zipf, &w->rng);

	if (urls_get(c->urls, rank - 1, cn->url, sizeof(cn->url)) < 0)
		return -EINVAL;
	curl_easy_setopt(cn->easy, CURLOPT_URL, cn->url);
	cn->due_us = due_us;
	cn->bytes = 0;
	cn->cache = STATS_CACHE_NONE;
	cn->backend[0] = '\0';
	if (curl_multi_add_handle(w->multi, cn->easy) != CURLM_OK)
		return -ENOMEM;
	cn->busy = true;
	return 0;
}

static void finish_request(struct worker *w, CURLMsg *msg)
{
	struct conn *cn = NULL;
	uint64_t now = load_now_us(), at;
	long status = 0;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&cn);
	curl_multi_remove_handle(w->multi, msg->easy_handle);
	cn->busy = false;
	at = now - w->sh->t0_us;
	if (w->sh->deadline_us && now > w->sh->deadline_us)
		return;		/* after the end: not counted, as wrk does */
	if (msg->data.result != CURLE_OK) {
		stats_record_error(w->stats, at, error_kind(msg->data.result));
		return;
	}
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	stats_record(w->stats, at, now > cn->due_us ? now - cn->due_us : 0, status, cn->bytes,
		     cn->cache, cn->backend);
}

/* Records every finished transfer; returns how many there were. */
static unsigned drain(struct worker *w)
{
	unsigned n = 0;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(w->multi, &left)))
		if (msg->msg == CURLMSG_DONE) {
			finish_request(w, msg);
			n++;
		}
	return n;
}

static bool any_busy(const struct worker *w)
{
	for (unsigned i = 0; i < w->nconns; i++)
		if (w->conns[i].busy)
			return true;
	return false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct load_shared *sh = w->sh;
	bool exhausted = false;
	int running = 0;

	for (;;) {
		uint64_t now = load_now_us(), due = now;
		long timeout_ms = POLL_MAX_MS;
		bool idle_conn = false;

		if (sh->deadline_us && now >= sh->deadline_us)
			break;
		for (unsigned i = 0; i < w->nconns && !exhausted; i++) {
			if (w->conns[i].busy)
				continue;
			if (w->paced && !pace_take(&w->pace, now, &due)) {
				idle_conn = true;
				break;
			}
			if (!take_ticket(sh)) {
				exhausted = true;
				break;
			}
			if (start_request(w, &w->conns[i], w->paced ? due : now)) {
				w->error = -ENOMEM;
				exhausted = true;
				break;
			}
		}
		curl_multi_perform(w->multi, &running);
		if (drain(w))
			continue;	/* free connections: give them work before waiting */
		if (exhausted && !any_busy(w))
			break;
		if (idle_conn) {
			uint64_t next = pace_next_due(&w->pace);

			now = load_now_us();
			timeout_ms = next > now ? (long)((next - now + 999) / 1000) : 0;
			if (timeout_ms > POLL_MAX_MS)
				timeout_ms = POLL_MAX_MS;
		}
		if (sh->deadline_us) {
			now = load_now_us();
			if (now >= sh->deadline_us)
				break;
			if ((long)((sh->deadline_us - now + 999) / 1000) < timeout_ms)
				timeout_ms = (long)((sh->deadline_us - now + 999) / 1000);
		}
		if (timeout_ms > 0 && running > 0) {
			curl_multi_poll(w->multi, NULL, 0, (int)timeout_ms, NULL);
		} else if (timeout_ms > 0) {
			struct timespec ts = { 0, timeout_ms * 1000000L };

			nanosleep(&ts, NULL);	/* paced: nothing in flight, next one due later */
		}
		curl_multi_perform(w->multi, &running);
		drain(w);
	}
	for (unsigned i = 0; i < w->nconns; i++)
		if (w->conns[i].busy) {
			curl_multi_remove_handle(w->multi, w->conns[i].easy);
			w->conns[i].busy = false;
		}
	if (w->paced && !exhausted) {
		uint64_t end = load_now_us();

		if (sh->deadline_us && end > sh->deadline_us)
			end = sh->deadline_us;
		/* what fell due in the last moments had no chance to go out: not counted */
		w->stats->unsent = pace_backlog(&w->pace, end - UNSENT_GRACE_US);
	}
	return NULL;
}

static int worker_init(struct worker *w, struct load_shared *sh, unsigned index,
		       unsigned nconns, double rate)
{
	const struct load_config *c = sh->c;

	w->sh = sh;
	w->index = index;
	w->nconns = nconns;
	w->stats = stats_new();
	w->multi = curl_multi_init();
	w->conns = calloc(nconns, sizeof(*w->conns));
	if (w->stats == NULL || w->multi == NULL || w->conns == NULL)
		return -ENOMEM;
	curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)nconns);
	zipf_rng_seed(&w->rng, c->seed * 1000003 + index);
	w->paced = rate > 0;
	/* thread i's schedule starts i / (total rate) later: the threads' sends interleave
	 * instead of falling due together */
	if (w->paced && pace_init(&w->pace, rate, sh->t0_us + (uint64_t)(index * 1e6 / c->rate)))
		return -EINVAL;
	for (unsigned i = 0; i < nconns; i++) {
		CURL *e = curl_easy_init();

		if (e == NULL)
			return -ENOMEM;
		w->conns[i].easy = e;
		curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)&w->conns[i]);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &w->conns[i]);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, &w->conns[i]);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
		curl_easy_setopt(e, CURLOPT_USERAGENT, "mtps-bench/" PACKAGE_VERSION);
	}
	return 0;
}

static void worker_free(struct worker *w)
{
	for (unsigned i = 0; w->conns && i < w->nconns; i++)
		if (w->conns[i].easy)
			curl_easy_cleanup(w->conns[i].easy);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	free(w->conns);
	stats_free(w->stats);
}

int load_run(const struct load_config *c, struct stats *out, char *err, size_t errlen)
{
	struct load_shared sh = { .c = c };
	struct worker *w;
	unsigned threads = c->threads ? c->threads : 1, started = 0;
	uint64_t end;
	int r = 0;

	if (c->urls == NULL || c->urls->total == 0) {
		snprintf(err, errlen, "no URL to ask for");
		return -EINVAL;
	}
	if (c->connections < 1 || c->connections > LOAD_MAX_CONNECTIONS) {
		snprintf(err, errlen, "connections must be 1 to %d", LOAD_MAX_CONNECTIONS);
		return -EINVAL;
	}
	if (threads > LOAD_MAX_THREADS || threads > c->connections) {
		snprintf(err, errlen, "threads must be 1 to %d and at most the connections (%u)",
			 LOAD_MAX_THREADS, c->connections);
		return -EINVAL;
	}
	if (c->duration_ms == 0 && c->count == 0) {
		snprintf(err, errlen, "give a duration or a request count");
		return -EINVAL;
	}
	if (zipf_init(&sh.zipf, c->urls->total, c->zipf_s)) {
		snprintf(err, errlen, "the Zipf exponent must be 0 to 100");
		return -EINVAL;
	}
	if (c->rate < 0 || c->rate > 1e9) {
		snprintf(err, errlen, "the rate must be 0 (closed loop) to 1e9 requests/s");
		return -EINVAL;
	}
	w = calloc(threads, sizeof(*w));
	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sh.t0_us = load_now_us();
	sh.deadline_us = c->duration_ms ? sh.t0_us + c->duration_ms * 1000 : 0;
	for (unsigned i = 0; i < threads && r == 0; i++) {
		unsigned n = c->connections / threads + (i < c->connections % threads);

		r = worker_init(&w[i], &sh, i, n, c->rate / threads);
	}
	if (r) {
		snprintf(err, errlen, "%s", r == -ENOMEM ? "out of memory" : "bad rate");
		goto out;
	}
	for (; started < threads; started++)
		if (pthread_create(&w[started].tid, NULL, worker_main, &w[started])) {
			snprintf(err, errlen, "cannot start a thread: %s", strerror(errno));
			r = -EAGAIN;
			break;
		}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	end = load_now_us();
	for (unsigned i = 0; i < started; i++) {
		stats_merge(out, w[i].stats);
		if (w[i].error && r == 0) {
			snprintf(err, errlen, "out of memory during the run");
			r = w[i].error;
		}
	}
	if (sh.deadline_us && end > sh.deadline_us)
		end = sh.deadline_us;
	out->elapsed_us = end - sh.t0_us;
out:
	for (unsigned i = 0; i < threads; i++)
		worker_free(&w[i]);
	free(w);
	return r;
}
