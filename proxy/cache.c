/* cache.c - the sharded, byte-bounded store of cache.h.
 *
 * Eviction: SIEVE (Zhang et al., NSDI '24). Entries sit in one FIFO queue, newest at the
 * head. A hit only sets the entry's visited bit - no list surgery, so the hit path needs
 * no queue lock. To evict, a hand walks from the tail (oldest) towards the head: a visited
 * entry has its bit cleared and is passed over (it stays where it is, unlike CLOCK's
 * move-to-head), the first unvisited one is the victim, and the hand stays there for the
 * next eviction. Popular entries survive; one-hit wonders leave quickly. LRU (a hit moves
 * the entry to the head, under the queue lock) is here to compare against in benchmarks.
 *
 * Locks: each shard's mutex guards its buckets and the entries' table fields; the queue
 * mutex guards the queue, the byte count and the entries' queue fields. Order: shard, then
 * queue. Evicted entries are unlinked from their shards after the queue lock is released,
 * each held by a reference of the evicting thread until then.
 */
#include "config.h"

#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64		/* a power of two */
#define MIN_BUCKETS 64

const char *const cache_policy_names[] = { "sieve", "lru", NULL };

struct shard {
	pthread_mutex_t lock;
	struct cache_entry **buckets;
	size_t nbuckets;	/* a power of two */
	size_t count;
} __attribute__((aligned(64)));

struct cache {
	struct shard shards[SHARDS];
	enum cache_policy policy;
	pthread_mutex_t qlock;
	struct cache_entry *head, *tail, *hand;
	size_t capacity;
	size_t bytes;
	size_t objects;
	uint64_t inserts;
	uint64_t evictions;
	atomic_uint_fast64_t lookups;
	atomic_uint_fast64_t hits;
};

uint64_t cache_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct shard *shard_of(struct cache *c, uint64_t hash)
{
	/* FNV-1a's top bits barely change with a key's last bytes ("/page=1" ... "/page=9"
	 * shared a shard); murmur3's finaliser spreads them. The low bits pick the bucket. */
	hash ^= hash >> 33;
	hash *= 0xff51afd7ed558ccdULL;
	hash ^= hash >> 33;
	return &c->shards[hash >> 58];
}

struct cache *cache_new(size_t capacity, enum cache_policy policy)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	for (int i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];

		s->buckets = calloc(MIN_BUCKETS, sizeof(*s->buckets));
		if (s->buckets == NULL) {
			while (i-- > 0)
				free(c->shards[i].buckets);
			free(c);
			return NULL;
		}
		s->nbuckets = MIN_BUCKETS;
		pthread_mutex_init(&s->lock, NULL);
	}
	pthread_mutex_init(&c->qlock, NULL);
	c->capacity = capacity;
	c->policy = policy;
	return c;
}

void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];

		for (size_t b = 0; b < s->nbuckets; b++) {
			struct cache_entry *e = s->buckets[b], *next;

			for (; e; e = next) {
				next = e->bucket_next;
				e->in_table = false;
				e->queued = false;
				if (e->unlinked)
					e->unlinked(e);
				cache_entry_put(e);
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	pthread_mutex_destroy(&c->qlock);
	free(c);
}

int cache_entry_init(struct cache_entry *e, const char *key, size_t key_len,
		     cache_destroy_fn *destroy, cache_unlinked_fn *unlinked)
{
	memset(e, 0, sizeof(*e));
	if (key_len > CACHE_MAX_KEY)
		return -ENAMETOOLONG;
	e->key = malloc(key_len + 1);
	if (e->key == NULL)
		return -ENOMEM;
	memcpy(e->key, key, key_len);
	e->key[key_len] = '\0';
	e->key_len = key_len;
	e->hash = cache_hash(key, key_len);
	e->destroy = destroy;
	e->unlinked = unlinked;
	atomic_init(&e->refs, 1);
	atomic_init(&e->visited, false);
	return 0;
}

int cache_entry_rekey(struct cache_entry *e, const char *key, size_t key_len)
{
	char *k;

	if (key_len > CACHE_MAX_KEY)
		return -ENAMETOOLONG;
	k = malloc(key_len + 1);
	if (k == NULL)
		return -ENOMEM;
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	free(e->key);
	e->key = k;
	e->key_len = key_len;
	e->hash = cache_hash(key, key_len);
	return 0;
}

void cache_entry_fini(struct cache_entry *e)
{
	free(e->key);
	e->key = NULL;
}

void cache_entry_put(struct cache_entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
		return;
	cache_entry_fini(e);
	e->destroy(e);
}

/* ---- the eviction queue (queue lock held) ------------------------------------------------ */

static void queue_push_head(struct cache *c, struct cache_entry *e)
{
	e->qprev = NULL;
	e->qnext = c->head;
	if (c->head)
		c->head->qprev = e;
	else
		c->tail = e;
	c->head = e;
}

static void queue_unlink(struct cache *c, struct cache_entry *e)
{
	if (c->hand == e)
		c->hand = e->qprev;	/* the hand moves on towards the head */
	if (e->qprev)
		e->qprev->qnext = e->qnext;
	else
		c->head = e->qnext;
	if (e->qnext)
		e->qnext->qprev = e->qprev;
	else
		c->tail = e->qprev;
	e->qprev = e->qnext = NULL;
}

/* Picks the next victim by the store's policy. The queue is not empty. */
static struct cache_entry *queue_victim(struct cache *c)
{
	struct cache_entry *e;

	if (c->policy == CACHE_LRU)
		return c->tail;
	e = c->hand ? c->hand : c->tail;
	while (atomic_load_explicit(&e->visited, memory_order_relaxed)) {
		atomic_store_explicit(&e->visited, false, memory_order_relaxed);
		e = e->qprev ? e->qprev : c->tail;
	}
	c->hand = e;		/* dequeue() moves it on to the victim's newer neighbour */
	return e;
}

/* Takes <e> off the queue and uncharges it. Returns whether it was queued. */
static bool dequeue(struct cache *c, struct cache_entry *e)
{
	if (!e->queued)
		return false;
	queue_unlink(c, e);
	e->queued = false;
	c->bytes -= e->size;
	c->objects--;
	return true;
}

/* ---- the table (shard lock held) -------------------------------------------------------- */

static struct cache_entry **bucket_find(struct shard *s, const char *key, size_t len,
					uint64_t hash)
{
	struct cache_entry **pp = &s->buckets[hash & (s->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->bucket_next) {
		struct cache_entry *e = *pp;

		if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0)
			break;
	}
	return pp;
}

/* Doubles the bucket array when the shard holds more entries than buckets. Failure to grow
 * only makes chains longer. */
static void shard_grow(struct shard *s)
{
	size_t n = s->nbuckets * 2;
	struct cache_entry **b;

	if (s->count <= s->nbuckets)
		return;
	b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct cache_entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->bucket_next;
			e->bucket_next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/* Unlinks <e> from its shard, if it is still there. Returns whether it was. */
static bool table_unlink(struct cache *c, struct cache_entry *e)
{
	struct shard *s = shard_of(c, e->hash);
	bool was = false;

	pthread_mutex_lock(&s->lock);
	if (e->in_table) {
		struct cache_entry **pp = bucket_find(s, e->key, e->key_len, e->hash);

		if (*pp == e) {
			*pp = e->bucket_next;
			e->bucket_next = NULL;
			s->count--;
		}
		e->in_table = false;
		was = true;
	}
	pthread_mutex_unlock(&s->lock);
	return was;
}

/* The store lets go of an entry it no longer holds. */
static void release(struct cache_entry *e)
{
	if (e->unlinked)
		e->unlinked(e);
	cache_entry_put(e);
}

/* ---- the operations --------------------------------------------------------------------- */

struct cache_entry *cache_lookup(struct cache *c, const char *key, size_t key_len)
{
	uint64_t hash = cache_hash(key, key_len);
	struct shard *s = shard_of(c, hash);
	struct cache_entry *e;

	atomic_fetch_add_explicit(&c->lookups, 1, memory_order_relaxed);
	pthread_mutex_lock(&s->lock);
	e = *bucket_find(s, key, key_len, hash);
	if (e)
		cache_entry_get(e);
	pthread_mutex_unlock(&s->lock);
	if (e == NULL)
		return NULL;
	atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
	if (c->policy == CACHE_SIEVE) {
		/* a plain load first: most hits find the bit set and write nothing */
		if (!atomic_load_explicit(&e->visited, memory_order_relaxed))
			atomic_store_explicit(&e->visited, true, memory_order_relaxed);
	} else {
		pthread_mutex_lock(&c->qlock);
		if (e->queued && c->head != e) {
			queue_unlink(c, e);
			queue_push_head(c, e);
		}
		pthread_mutex_unlock(&c->qlock);
	}
	return e;
}

int cache_insert(struct cache *c, struct cache_entry *e)
{
	struct shard *s = shard_of(c, e->hash);
	struct cache_entry **pp, *old, *victims = NULL;

	/* unlocked: cache_set_capacity() may change it; the loop below reads it locked */
	if (e->size > __atomic_load_n(&c->capacity, __ATOMIC_RELAXED))
		return -E2BIG;
	cache_entry_get(e);
	pthread_mutex_lock(&s->lock);
	pp = bucket_find(s, e->key, e->key_len, e->hash);
	old = *pp;
	if (old) {
		*pp = old->bucket_next;
		old->bucket_next = NULL;
		old->in_table = false;
		s->count--;
	}
	e->bucket_next = s->buckets[e->hash & (s->nbuckets - 1)];
	s->buckets[e->hash & (s->nbuckets - 1)] = e;
	e->in_table = true;
	s->count++;
	shard_grow(s);

	pthread_mutex_lock(&c->qlock);
	if (old)
		dequeue(c, old);
	/* evict first, then insert (SIEVE's order): the newcomer is never its own victim
	 * and the hand never rests on it */
	while (c->head && c->bytes + e->size > c->capacity) {
		struct cache_entry *v = queue_victim(c);

		dequeue(c, v);
		c->evictions++;
		/* our own reference: once the locks are gone another thread may remove
		 * the victim from its shard and drop the store's */
		cache_entry_get(v);
		v->qnext = victims;	/* off the queue: the link is free for our list */
		victims = v;
	}
	atomic_store_explicit(&e->visited, false, memory_order_relaxed);
	queue_push_head(c, e);
	e->queued = true;
	c->bytes += e->size;
	c->objects++;
	c->inserts++;
	pthread_mutex_unlock(&c->qlock);
	pthread_mutex_unlock(&s->lock);

	if (old)
		release(old);
	while (victims) {
		struct cache_entry *v = victims;

		victims = v->qnext;
		v->qnext = NULL;
		if (table_unlink(c, v))
			release(v);
		cache_entry_put(v);
	}
	return 0;
}

bool cache_remove(struct cache *c, const char *key, size_t key_len)
{
	uint64_t hash = cache_hash(key, key_len);
	struct shard *s = shard_of(c, hash);
	struct cache_entry **pp, *e;

	pthread_mutex_lock(&s->lock);
	pp = bucket_find(s, key, key_len, hash);
	e = *pp;
	if (e) {
		*pp = e->bucket_next;
		e->bucket_next = NULL;
		e->in_table = false;
		s->count--;
		pthread_mutex_lock(&c->qlock);
		dequeue(c, e);
		pthread_mutex_unlock(&c->qlock);
	}
	pthread_mutex_unlock(&s->lock);
	if (e)
		release(e);
	return e != NULL;
}

size_t cache_remove_matching(struct cache *c, cache_match_fn *match, void *arg)
{
	size_t removed = 0;

	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		struct cache_entry *gone = NULL;

		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b < s->nbuckets; b++) {
			struct cache_entry **pp = &s->buckets[b];

			while (*pp) {
				struct cache_entry *e = *pp;

				if (!match(e->key, e->key_len, arg)) {
					pp = &e->bucket_next;
					continue;
				}
				*pp = e->bucket_next;
				e->in_table = false;
				s->count--;
				pthread_mutex_lock(&c->qlock);
				dequeue(c, e);
				pthread_mutex_unlock(&c->qlock);
				e->bucket_next = gone;	/* released with no lock held */
				gone = e;
			}
		}
		pthread_mutex_unlock(&s->lock);
		while (gone) {
			struct cache_entry *e = gone;

			gone = e->bucket_next;
			e->bucket_next = NULL;
			release(e);
			removed++;
		}
	}
	return removed;
}

size_t cache_set_capacity(struct cache *c, size_t capacity)
{
	struct cache_entry *victims = NULL;
	size_t evicted = 0;

	pthread_mutex_lock(&c->qlock);
	__atomic_store_n(&c->capacity, capacity, __ATOMIC_RELAXED);
	while (c->head && c->bytes > capacity) {
		struct cache_entry *v = queue_victim(c);

		dequeue(c, v);
		c->evictions++;
		cache_entry_get(v);	/* as in cache_insert(): ours until unlinked */
		v->qnext = victims;
		victims = v;
		evicted++;
	}
	pthread_mutex_unlock(&c->qlock);
	while (victims) {
		struct cache_entry *v = victims;

		victims = v->qnext;
		v->qnext = NULL;
		if (table_unlink(c, v))
			release(v);
		cache_entry_put(v);
	}
	return evicted;
}

void cache_get_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->qlock);
	st->capacity = c->capacity;
	st->bytes = c->bytes;
	st->objects = c->objects;
	st->inserts = c->inserts;
	st->evictions = c->evictions;
	pthread_mutex_unlock(&c->qlock);
	st->lookups = atomic_load_explicit(&c->lookups, memory_order_relaxed);
	st->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
}
