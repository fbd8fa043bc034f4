/* inflight.c - the coalescing table of inflight.h: a chained hash map behind one mutex.
 * Entries are either a running fetch's object (referenced) or a hit-for-miss mark with an
 * expiry time; expired marks are dropped when their bucket is next walked. */
#include "config.h"

#include "inflight.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096		/* a power of two */

struct slot {
	struct slot *next;
	uint64_t hash;
	struct object *obj;	/* a running fetch, or NULL for a mark */
	uint64_t pass_until_ms;	/* a mark: until when */
	size_t key_len;
	char key[];		/* a copy: a Vary variant's object changes its own key */
};

struct inflight {
	pthread_mutex_t lock;
	size_t markers, max_markers;
	struct slot *buckets[BUCKETS];
};

struct inflight *inflight_new(size_t max_markers)
{
	struct inflight *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->max_markers = max_markers;
	return t;
}

void inflight_free(struct inflight *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		for (struct slot *s = t->buckets[i], *next; s; s = next) {
			next = s->next;
			if (s->obj)
				object_put(s->obj);
			free(s);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Finds the slot for <key> - a mark if there is one, else a running fetch - dropping
 * expired marks on the way. Lock held. */
static struct slot **find(struct inflight *t, const char *key, size_t len, uint64_t hash,
			  uint64_t now_ms)
{
	struct slot **pp = &t->buckets[hash & (BUCKETS - 1)], **fetch = NULL;

	while (*pp) {
		struct slot *s = *pp;

		if (s->obj == NULL && s->pass_until_ms <= now_ms) {
			*pp = s->next;
			t->markers--;
			free(s);
			continue;
		}
		if (s->hash == hash && s->key_len == len && memcmp(s->key, key, len) == 0) {
			if (s->obj == NULL)
				return pp;
			if (fetch == NULL)
				fetch = pp;
		}
		pp = &s->next;
	}
	return fetch ? fetch : pp;
}

enum inflight_claim inflight_claim(struct inflight *t, const char *key, size_t key_len,
				   struct object_reader *r, uint64_t now_ms,
				   struct object *(*stored)(void *arg),
				   struct object *(*make)(void *arg), void *arg,
				   struct object **op)
{
	uint64_t hash = cache_hash(key, key_len);
	enum inflight_claim ret = INFLIGHT_PASS;
	struct slot **pp, *s;

	*op = NULL;
	pthread_mutex_lock(&t->lock);
	pp = find(t, key, key_len, hash, now_ms);
	s = *pp;
	if (s && s->obj == NULL) {
		ret = INFLIGHT_MARKED;	/* hit-for-miss */
		goto out;
	}
	if (s && r == NULL) {
		ret = INFLIGHT_JOINED;	/* running already; nobody to attach */
		goto out;
	}
	if (s && object_attach(s->obj, r, now_ms) == 0) {
		object_get(s->obj);
		*op = s->obj;
		ret = INFLIGHT_JOINED;
		goto out;
	}
	if (s) {
		/* that fetch can take no more readers: this one goes alone */
		goto out;
	}
	if (stored && (*op = stored(arg)) != NULL) {
		ret = INFLIGHT_STORED;
		goto out;
	}
	s = calloc(1, sizeof(*s) + key_len + 1);
	if (s == NULL)
		goto out;
	s->obj = make(arg);
	if (s->obj == NULL) {
		free(s);
		goto out;
	}
	if (r) {
		r->owner = true;
		object_attach(s->obj, r, now_ms);	/* a new object always takes its owner */
	}
	s->hash = hash;
	s->key_len = key_len;
	memcpy(s->key, key, key_len);
	s->obj->inflight_hash = hash;
	s->next = t->buckets[hash & (BUCKETS - 1)];
	t->buckets[hash & (BUCKETS - 1)] = s;
	object_get(s->obj);	/* one for the table, one for the caller */
	*op = s->obj;
	ret = INFLIGHT_OWNER;
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void inflight_remove(struct inflight *t, struct object *o)
{
	struct slot **pp, *s = NULL;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->buckets[o->inflight_hash & (BUCKETS - 1)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->obj == o) {
			s = *pp;
			*pp = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (s) {
		object_put(o);
		free(s);
	}
}

void inflight_mark_pass(struct inflight *t, const char *key, size_t key_len,
			uint64_t now_ms, uint64_t until_ms)
{
	uint64_t hash = cache_hash(key, key_len);
	struct slot **pp, *s;

	pthread_mutex_lock(&t->lock);
	pp = find(t, key, key_len, hash, now_ms);
	s = *pp;
	if (s && s->obj == NULL) {
		s->pass_until_ms = until_ms;
	} else if (t->markers < t->max_markers) {
		s = malloc(sizeof(*s) + key_len + 1);
		if (s) {
			memset(s, 0, sizeof(*s));
			s->hash = hash;
			s->key_len = key_len;
			s->pass_until_ms = until_ms;
			memcpy(s->key, key, key_len);
			s->key[key_len] = '\0';
			pp = &t->buckets[hash & (BUCKETS - 1)];
			s->next = *pp;
			*pp = s;
			t->markers++;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

void inflight_unmark(struct inflight *t, const char *key, size_t key_len)
{
	uint64_t hash = cache_hash(key, key_len);
	struct slot **pp;

	pthread_mutex_lock(&t->lock);
	pp = &t->buckets[hash & (BUCKETS - 1)];
	while (*pp) {
		struct slot *s = *pp;

		if (s->obj == NULL && s->hash == hash && s->key_len == key_len &&
		    memcmp(s->key, key, key_len) == 0) {
			*pp = s->next;
			t->markers--;
			free(s);
			continue;
		}
		pp = &s->next;
	}
	pthread_mutex_unlock(&t->lock);
}

void inflight_invalidate(struct inflight *t, const char *key, size_t key_len)
{
	uint64_t hash = cache_hash(key, key_len);
	struct slot **pp, *gone = NULL;

	pthread_mutex_lock(&t->lock);
	pp = &t->buckets[hash & (BUCKETS - 1)];
	while (*pp) {
		struct slot *s = *pp;

		if (s->hash == hash && s->key_len == key_len && memcmp(s->key, key, key_len) == 0) {
			*pp = s->next;
			if (s->obj == NULL) {
				t->markers--;
				free(s);
			} else {
				s->next = gone;
				gone = s;
			}
			continue;
		}
		pp = &s->next;
	}
	pthread_mutex_unlock(&t->lock);
	while (gone) {
		struct slot *s = gone;

		gone = s->next;
		pthread_mutex_lock(&s->obj->lock);
		s->obj->invalidated = true;
		pthread_mutex_unlock(&s->obj->lock);
		object_put(s->obj);
		free(s);
	}
}
