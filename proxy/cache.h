/* cache.h - the in-memory store: reference-counted entries in a sharded hash table, bounded
 * in bytes, evicting by a pluggable policy (SIEVE by default, LRU for comparison).
 *
 * The store knows keys, sizes and references, nothing of HTTP: an entry is embedded in the
 * caller's object (struct object in object.h) and the store calls back the owner's
 * destructor when the last reference goes. A lookup takes one shard lock and, with SIEVE,
 * no other: a hit only sets the entry's visited bit. Inserts and evictions take the shard
 * lock and then the queue lock, in that order. Every function is thread-safe.
 */
#ifndef MTPS_CACHE_H
#define MTPS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_MAX_KEY 8192	/* longest key, bytes */

enum cache_policy {
	CACHE_SIEVE = 0,
	CACHE_LRU,
};

/* The policy names by enum cache_policy, NULL-terminated (an option's choices). */
extern const char *const cache_policy_names[];

struct cache_entry;

/* Called once, with no lock held, when the entry's last reference is dropped; frees the
 * object the entry is embedded in. */
typedef void cache_destroy_fn(struct cache_entry *e);
/* Called once, with no lock held, when the entry leaves the table (evicted, replaced or
 * removed); the entry is still referenced. May be NULL. */
typedef void cache_unlinked_fn(struct cache_entry *e);

struct cache_entry {
	/* set by cache_entry_init(); constant afterwards */
	char *key;
	size_t key_len;
	uint64_t hash;
	size_t size;		/* bytes charged to the store; set before cache_insert() */
	cache_destroy_fn *destroy;
	cache_unlinked_fn *unlinked;
	atomic_uint refs;
	atomic_bool visited;	/* SIEVE: hit since the hand last passed */
	/* guarded by the shard lock */
	struct cache_entry *bucket_next;
	bool in_table;
	/* guarded by the queue lock; prev is the newer neighbour, next the older */
	struct cache_entry *qprev, *qnext;
	bool queued;
};

struct cache_stats {
	size_t capacity;	/* bytes */
	size_t bytes;		/* charged by stored entries */
	size_t objects;
	uint64_t inserts;
	uint64_t evictions;
	uint64_t lookups;
	uint64_t hits;
};

struct cache;

/* Creates a store of <capacity> bytes. Returns NULL when out of memory. */
struct cache *cache_new(size_t capacity, enum cache_policy policy);
/* Drops the store's references; entries still referenced elsewhere live on. */
void cache_free(struct cache *c);

/* Initialises <e> with one reference (the caller's), a copy of <key> and the callbacks.
 * Returns 0 or -ENOMEM, -ENAMETOOLONG when the key exceeds CACHE_MAX_KEY. */
int cache_entry_init(struct cache_entry *e, const char *key, size_t key_len,
		     cache_destroy_fn *destroy, cache_unlinked_fn *unlinked);
/* Gives <e>, which was never inserted, a new key (a Vary variant learns its key only when
 * its response arrives). The caller makes sure no other thread reads e->key meanwhile.
 * Returns 0, -ENOMEM or -ENAMETOOLONG (the old key is kept). */
int cache_entry_rekey(struct cache_entry *e, const char *key, size_t key_len);

/* Releases what cache_entry_init() allocated, for an entry never shared (error paths). */
void cache_entry_fini(struct cache_entry *e);

static inline void cache_entry_get(struct cache_entry *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

/* Drops a reference; the last one calls the destructor. */
void cache_entry_put(struct cache_entry *e);

/* Hashes a key as the store does (FNV-1a, 64 bits). */
uint64_t cache_hash(const char *key, size_t len);

/* Returns the entry stored under <key> with a reference the caller must drop with
 * cache_entry_put(), and records the hit with the eviction policy; NULL when absent. */
struct cache_entry *cache_lookup(struct cache *c, const char *key, size_t key_len);

/* Stores <e> (its size set), replacing any entry with the same key, and evicts until the
 * store fits its capacity again. The store takes a reference of its own. Returns 0, or
 * -E2BIG when e->size exceeds the whole capacity (nothing is stored). */
int cache_insert(struct cache *c, struct cache_entry *e);

/* Removes the entry stored under <key>. Returns true when there was one. */
bool cache_remove(struct cache *c, const char *key, size_t key_len);

/* Says whether the entry with <key> should go; called under a shard lock: it must not call
 * into the store. */
typedef bool cache_match_fn(const char *key, size_t key_len, void *arg);

/* Removes every entry whose key <match> accepts (purges, bans, and the variants of one URL,
 * whose keys begin with its primary key). Walks the whole store, one shard at a time.
 * Returns how many were removed. */
size_t cache_remove_matching(struct cache *c, cache_match_fn *match, void *arg);

/* Sets the store's capacity (a reload) and, when it shrank below what is stored, evicts by
 * the store's policy until the rest fits. Entries still referenced elsewhere live on until
 * their readers are done. Returns how many entries were evicted. */
size_t cache_set_capacity(struct cache *c, size_t capacity);

void cache_get_stats(struct cache *c, struct cache_stats *st);

#endif
