/* object.c - a response shared by its writer and its readers (see object.h). */
#include "config.h"

#include "object.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TRIM_MIN (64 * 1024)	/* drop read bytes in steps at least this big */

static void object_destroy(struct cache_entry *e)
{
	struct object *o = (struct object *)e;

	headers_free(&o->fields);
	free(o->body);
	free(o->vary_names);
	free(o->vary_key);
	if (o->validating)
		object_put(o->validating);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

struct object *object_new(const char *key, size_t key_len, size_t max_size, size_t window,
			  unsigned max_readers, cache_unlinked_fn *unlinked)
{
	struct object *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	if (cache_entry_init(&o->entry, key, key_len, object_destroy, unlinked)) {
		free(o);
		return NULL;
	}
	pthread_mutex_init(&o->lock, NULL);
	o->state = OBJECT_PENDING;
	o->length = -1;
	o->max_size = max_size;
	o->window = window;
	o->max_readers = max_readers;
	o->hit_age = -1;
	o->upstream_us = -1;
	o->primary_len = key_len;
	policy_cc_init(&o->cc);
	return o;
}

size_t object_size(const struct object *o)
{
	return sizeof(*o) + o->entry.key_len + o->fields.bytes +
	       o->fields.n * (sizeof(struct header) + 2) + o->cap;
}

/* ---- the reader list (lock held) -------------------------------------------------------- */

static void list_add(struct object *o, struct object_reader *r)
{
	r->prev = NULL;
	r->next = o->readers;
	if (o->readers)
		o->readers->prev = r;
	o->readers = r;
	r->attached = true;
	o->nreaders++;
}

static void list_del(struct object *o, struct object_reader *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		o->readers = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->attached = false;
	o->nreaders--;
}

/* A list of readers to wake once the lock is released, linked through a scratch array
 * so that waking does not walk the object's list without its lock. */
struct wake_list {
	struct object_reader *one[8];
	struct object_reader **many;
	size_t n, cap;
};

static void wake_add(struct wake_list *w, struct object_reader *r)
{
	r->waiting = false;
	if (w->n < 8) {
		w->one[w->n++] = r;
		return;
	}
	if (w->n - 8 == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct object_reader **m = realloc(w->many, cap * sizeof(*m));

		if (m == NULL) {
			/* cannot remember it: wake it now, under the lock. Its wake() only
			 * resumes a connection, which takes no lock of ours. */
			r->wake(r);
			return;
		}
		w->many = m;
		w->cap = cap;
	}
	w->many[w->n++ - 8] = r;
}

static void wake_all(struct wake_list *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct object_reader *r = i < 8 ? w->one[i] : w->many[i - 8];

		r->wake(r);
	}
	free(w->many);
}

static void collect_waiting(struct object *o, struct wake_list *w)
{
	for (struct object_reader *r = o->readers; r; r = r->next)
		if (r->waiting)
			wake_add(w, r);
}

/* Drops body bytes every reader has passed, for a body not kept. Returns true when a
 * paused writer may now go on. */
static bool trim(struct object *o)
{
	uint64_t min = UINT64_MAX;
	size_t drop;

	if (o->storable || o->readers == NULL)
		return false;
	for (struct object_reader *r = o->readers; r; r = r->next)
		if (r->pos < min)
			min = r->pos;
	drop = (size_t)(min - o->base);
	if (drop == 0 || (drop < TRIM_MIN && drop < o->len))
		return false;
	memmove(o->body, o->body + drop, o->len - drop);
	o->len -= drop;
	o->base += drop;
	if (o->paused && o->len <= o->window / 2) {
		o->paused = false;
		return true;
	}
	return false;
}

/* ---- readers ---------------------------------------------------------------------------- */

int object_attach(struct object *o, struct object_reader *r, uint64_t now_ms)
{
	int ret = 0;

	r->pos = 0;
	r->waiting = false;
	r->refused = false;
	r->joined_ms = now_ms;
	pthread_mutex_lock(&o->lock);
	/* a body not kept with no reader left is being abandoned; a kept one can always be
	 * read from its start, complete or not */
	if (o->base > 0 || o->state == OBJECT_FAILED || o->nreaders >= o->max_readers ||
	    (o->state != OBJECT_PENDING &&
	     (!o->shared || (!o->storable && o->readers == NULL))))
		ret = -EAGAIN;
	else
		list_add(o, r);
	pthread_mutex_unlock(&o->lock);
	return ret;
}

void object_detach(struct object *o, struct object_reader *r)
{
	const struct object_writer_ops *writer;
	bool abandoned = false, space = false;

	pthread_mutex_lock(&o->lock);
	writer = o->writer;
	if (r->attached) {
		list_del(o, r);
		r->waiting = false;
		if (o->readers == NULL && !o->storable &&
		    (o->state == OBJECT_PENDING || o->state == OBJECT_STREAMING))
			abandoned = writer != NULL;
		else
			space = trim(o);
	}
	pthread_mutex_unlock(&o->lock);
	/* the writer's callbacks cope with a fetch that has ended meanwhile */
	if (abandoned && writer->on_abandoned)
		writer->on_abandoned(o);
	else if (space && writer && writer->on_space)
		writer->on_space(o);
}

bool object_wait_fields(struct object *o, struct object_reader *r)
{
	bool waits = false;

	pthread_mutex_lock(&o->lock);
	if (o->state == OBJECT_PENDING && r->attached) {
		r->waiting = true;
		r->suspend(r);
		waits = true;
	}
	pthread_mutex_unlock(&o->lock);
	return waits;
}

ssize_t object_read(struct object *o, struct object_reader *r, char *buf, size_t max)
{
	const struct object_writer_ops *writer;
	ssize_t ret;
	bool space = false;

	pthread_mutex_lock(&o->lock);
	writer = o->writer;
	if (r->pos < o->base + o->len) {
		size_t n = (size_t)(o->base + o->len - r->pos);

		if (n > max)
			n = max;
		memcpy(buf, o->body + (r->pos - o->base), n);
		r->pos += n;
		space = trim(o);
		ret = (ssize_t)n;
	} else if (o->state == OBJECT_COMPLETE) {
		ret = OBJECT_EOF;
	} else if (o->state == OBJECT_FAILED || !r->attached) {
		ret = OBJECT_ERROR;
	} else {
		r->waiting = true;
		r->suspend(r);
		ret = OBJECT_WAIT;
	}
	pthread_mutex_unlock(&o->lock);
	if (space && writer && writer->on_space)
		writer->on_space(o);
	return ret;
}

/* ---- the writer ------------------------------------------------------------------------- */

bool object_fields_done(struct object *o, bool storable, bool shared)
{
	struct wake_list w = { 0 };
	bool read;

	pthread_mutex_lock(&o->lock);
	o->storable = storable;
	o->shared = shared;
	o->state = OBJECT_STREAMING;
	for (struct object_reader *r = o->readers, *next; r; r = next) {
		next = r->next;
		if (!shared && !r->owner) {
			bool waiting = r->waiting;

			list_del(o, r);
			r->refused = true;
			/* one that has not suspended yet sees r->refused itself */
			if (waiting)
				wake_add(&w, r);
		} else if (r->waiting) {
			wake_add(&w, r);
		}
	}
	read = storable || o->readers != NULL;
	pthread_mutex_unlock(&o->lock);
	wake_all(&w);
	return read;
}

/* Makes room for <n> more bytes of a kept body. Returns false when it may not grow. */
static bool reserve(struct object *o, size_t n)
{
	size_t want = o->len + n, cap;
	char *body;

	if (want <= o->cap)
		return true;
	if (o->storable && o->length >= 0 && (uint64_t)o->length >= want)
		cap = (size_t)o->length;	/* the announced size, at once */
	else
		cap = o->cap ? o->cap * 2 : 16384;
	while (cap < want)
		cap *= 2;
	body = realloc(o->body, cap);
	if (body == NULL)
		return false;
	o->body = body;
	o->cap = cap;
	return true;
}

/* The body is whole: COMPLETE, and a kept body gives back its spare room. Lock held. */
static void complete(struct object *o)
{
	o->state = OBJECT_COMPLETE;
	if (o->storable && o->cap > o->len) {
		char *body = realloc(o->body, o->len ? o->len : 1);

		if (body) {
			o->body = body;
			o->cap = o->len;
		}
	}
	if (o->storable && o->on_complete)
		o->on_complete(o, o->on_complete_data);
}

int object_append(struct object *o, const char *data, size_t n)
{
	struct wake_list w = { 0 };
	int ret = 0;

	pthread_mutex_lock(&o->lock);
	if (o->state != OBJECT_STREAMING) {
		/* more than the announced length: the writer must give up */
		pthread_mutex_unlock(&o->lock);
		return -EPIPE;
	}
	if (o->storable && o->len + n > o->max_size) {
		/* too big to keep: it streams through, and what was read can go */
		o->storable = false;
		trim(o);
	}
	if (!o->storable && o->readers == NULL) {
		ret = -EPIPE;
	} else if (!o->storable && o->len > 0 && o->len + n > o->window) {
		o->paused = true;
		ret = -EAGAIN;
	} else if (!reserve(o, n)) {
		ret = -ENOMEM;		/* the writer fails the fetch: nothing would wake it */
	} else {
		memcpy(o->body + o->len, data, n);
		o->len += n;
		/* complete with the last announced byte, in the same step: a reader never
		 * sees the whole body of an object that is not yet COMPLETE */
		if (o->length >= 0 && o->base + o->len == (uint64_t)o->length)
			complete(o);
		collect_waiting(o, &w);
	}
	pthread_mutex_unlock(&o->lock);
	wake_all(&w);
	return ret;
}

void object_finish(struct object *o, bool ok, int status, const char *reason)
{
	struct wake_list w = { 0 };

	pthread_mutex_lock(&o->lock);
	if (ok) {
		if (o->state != OBJECT_COMPLETE)
			complete(o);
	} else {
		if (o->state == OBJECT_PENDING) {
			o->error_status = status;
			o->error_reason = reason;
		}
		o->state = OBJECT_FAILED;
		o->storable = false;
	}
	o->writer = NULL;
	o->writer_data = NULL;
	collect_waiting(o, &w);
	pthread_mutex_unlock(&o->lock);
	wake_all(&w);
}

unsigned object_expire_waiters(struct object *o, uint64_t deadline_ms)
{
	struct wake_list w = { 0 };
	unsigned n = 0;

	pthread_mutex_lock(&o->lock);
	if (o->state == OBJECT_PENDING) {
		for (struct object_reader *r = o->readers, *next; r; r = next) {
			next = r->next;
			if (!r->owner && r->waiting && r->joined_ms < deadline_ms) {
				list_del(o, r);
				r->refused = true;
				wake_add(&w, r);
				n++;
			}
		}
	}
	pthread_mutex_unlock(&o->lock);
	wake_all(&w);
	return n;
}
