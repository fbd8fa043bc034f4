/* reload.c - applying new settings to the running proxy (see reload.h). */
#include "config.h"

#include "reload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "daemon.h"
#include "log.h"
#include "upstream.h"

int reload_error_log(struct reload_target *t, const char *path, char *err, size_t errlen)
{
	if (path)
		return daemon_redirect(STDERR_FILENO, path, err, errlen);
	if (t->saved_stderr >= 0 && dup2(t->saved_stderr, STDERR_FILENO) < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot go back to standard error: %s", strerror(errno));
		return r;
	}
	return 0;
}

static int format_of(const struct settings *s)
{
	return strcmp(s->access_log_format, "json") == 0 ? ACCESSLOG_JSON : ACCESSLOG_COMBINED;
}

static bool same_string(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

struct swap {
	struct upstream_config cfg;
	int result;
};

/* On the upstream thread: the new pool and settings go in. */
static void swap_upstream(struct upstream *u, void *arg)
{
	struct swap *sw = arg;

	sw->result = upstream_reconfigure(u, &sw->cfg);
}

/* Keeps the running value of every option a reload cannot change, in <next>; logs the
 * ones that differ. (<cur> gets the new values, which the caller frees with it.) */
static void keep_restart_only(struct settings *cur, struct settings *next)
{
	for (const struct opt_def *o = settings_options; o->name; o++) {
		if (!(o->flags & OPT_RESTART) || opts_equal(o, cur, next))
			continue;
		log_warn("reload: '%s' changed, which needs a restart; keeping the running value",
			 o->name);
		opts_swap(o, cur, next);
	}
}

/* The front end's limits: plain fields the workers read without a lock; each is one
 * aligned word, stored atomically, and a request sees the old value or the new one. */
static void apply_frontend(struct frontend *fe, const struct settings *s)
{
	struct frontend_config *c = &fe->cfg;
	unsigned retry_after = s->health_interval_ms >= 1000 ?
		(unsigned)(s->health_interval_ms / 1000) : 1;

	__atomic_store_n(&c->max_body, s->max_body, __ATOMIC_RELAXED);
	__atomic_store_n(&c->max_object_size, settings_max_object(s), __ATOMIC_RELAXED);
	__atomic_store_n(&c->stream_window, (size_t)s->stream_buffer, __ATOMIC_RELAXED);
	__atomic_store_n(&c->coalesce_max, (unsigned)s->coalesce_max, __ATOMIC_RELAXED);
	__atomic_store_n(&c->hit_for_miss_ms, s->hit_for_miss_ms, __ATOMIC_RELAXED);
	__atomic_store_n(&c->preserve_host, strcmp(s->host_header, "client") == 0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&c->retry_after_s, retry_after, __ATOMIC_RELAXED);
	__atomic_store_n(&c->stale_if_error_s, (long long)(s->stale_if_error_ms / 1000),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&c->cache_status_key, s->cache_status_key, __ATOMIC_RELAXED);
}

int reload_apply(struct reload_target *t, struct settings *cur, struct settings *next)
{
	struct settings old;
	struct swap sw;
	char err[512];
	int r;

	/* first what may fail, so that a failure leaves everything as it was */
	sw.cfg = (struct upstream_config){
		.balancer = settings_make_pool(next),
		.health_path = next->health_path,
		.health_interval_ms = next->health_interval_ms,
		.health_timeout_ms = next->health_timeout_ms,
		.retries = (unsigned)next->retries,
		.connect_timeout_ms = next->connect_timeout_ms,
		.timeout_ms = next->upstream_timeout_ms,
		.coalesce_timeout_ms = next->coalesce_timeout_ms,
		.policy = settings_policy(next),
	};
	if (sw.cfg.balancer == NULL) {
		log_error("reload failed: out of memory; the old configuration stays");
		return -ENOMEM;
	}
	r = accesslog_open(t->accesslog, next->access_log, format_of(next));
	if (r) {
		log_error("reload failed: cannot open the access log %s: %s; the old "
			  "configuration stays", next->access_log, strerror(-r));
		balancer_free(sw.cfg.balancer);
		return r;
	}
	if (!same_string(cur->error_log, next->error_log)) {
		r = reload_error_log(t, next->error_log, err, sizeof(err));
		if (r) {
			log_error("reload failed: %s; the old configuration stays", err);
			accesslog_open(t->accesslog, cur->access_log, format_of(cur));
			balancer_free(sw.cfg.balancer);
			return r;
		}
	}
	sw.result = -ESHUTDOWN;
	if (upstream_call(t->fe->upstream, swap_upstream, &sw) || sw.result) {
		log_error("reload failed: the upstream thread did not take the new backends: %s; "
			  "the old configuration stays", strerror(-sw.result));
		balancer_free(sw.cfg.balancer);
		accesslog_open(t->accesslog, cur->access_log, format_of(cur));
		reload_error_log(t, cur->error_log, err, sizeof(err));
		return sw.result ? sw.result : -ESHUTDOWN;
	}

	/* from here on nothing fails */
	keep_restart_only(cur, next);
	if (next->cache_size != cur->cache_size) {
		size_t evicted = cache_set_capacity(t->fe->cache, (size_t)next->cache_size);

		log_info("reload: cache size %" PRIu64 " bytes (was %" PRIu64 "); %zu objects "
			 "evicted", next->cache_size, cur->cache_size, evicted);
	}
	apply_frontend(t->fe, next);
	log_set_level((enum log_level)log_level_parse(next->log_level));
	old = *cur;		/* the caller frees the old settings */
	*cur = *next;
	*next = old;
	log_info("reload: %zu backends (%s), cache %" PRIu64 " bytes, objects up to %zu bytes",
		 cur->backends.n, cur->balance, cur->cache_size, settings_max_object(cur));
	return 0;
}

void reload_reopen_logs(struct reload_target *t, const struct settings *cur)
{
	char err[512];
	int r;

	if (cur->error_log && reload_error_log(t, cur->error_log, err, sizeof(err)))
		log_error("SIGUSR1: %s; still writing to the old file", err);
	r = accesslog_reopen(t->accesslog);
	if (r)
		log_error("SIGUSR1: cannot reopen the access log %s: %s; still writing to the "
			  "old file", cur->access_log, strerror(-r));
	log_info("SIGUSR1: log files reopened");
}
