/* inflight.h - request coalescing: the fetches in flight by cache key, and the keys whose
 * responses turned out not to be shareable ("hit-for-miss").
 *
 * A GET that misses asks inflight_claim(): it either joins the fetch already running for
 * its key (and reads that response as it streams in), or becomes the owner of a new one,
 * or - when the key was recently found uncacheable - is told to go to the origin on its
 * own, so such requests run in parallel instead of queueing behind each other.
 * Thread-safe: one mutex, taken only on misses.
 */
#ifndef MTPS_INFLIGHT_H
#define MTPS_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "object.h"

enum inflight_claim {
	INFLIGHT_OWNER = 0,	/* a new fetch: *op is a new object the caller starts */
	INFLIGHT_JOINED,	/* *op is the running fetch's object; the reader is attached */
	INFLIGHT_PASS,		/* fetch alone, uncoalesced (the fetch is full, out of memory) */
	INFLIGHT_MARKED,	/* fetch alone: the key is hit-for-miss */
	INFLIGHT_STORED,	/* *op is what <stored> found: the fetch ended meanwhile */
};

struct inflight;

/* A table holding at most <max_markers> hit-for-miss keys. NULL when out of memory. */
struct inflight *inflight_new(size_t max_markers);
void inflight_free(struct inflight *t);

/* Claims <key> for the reader <r> at <now_ms>. When no fetch runs for the key, <stored>
 * (may be NULL) is asked first, under the table's lock: a fetch that ends is stored before
 * it leaves the table, so a caller that missed the store before claiming finds it here
 * (INFLIGHT_STORED, *op referenced, <r> not attached). Otherwise, for INFLIGHT_OWNER,
 * <make> is called (under the lock; neither callback may call back) to create the
 * object, which is entered in the table, gets <r> attached as its owner and is returned in
 * *op with a reference for the caller. For INFLIGHT_JOINED *op is referenced too.
 * <r> may be NULL (a background revalidation): then a running fetch is not joined
 * (INFLIGHT_JOINED with *op NULL) and a new object has no reader. */
enum inflight_claim inflight_claim(struct inflight *t, const char *key, size_t key_len,
				   struct object_reader *r, uint64_t now_ms,
				   struct object *(*stored)(void *arg),
				   struct object *(*make)(void *arg), void *arg,
				   struct object **op);

/* Takes <o> out of the table (if it is still there): later requests will not join it. */
void inflight_remove(struct inflight *t, struct object *o);

/* Remembers until <until_ms> that <key>'s response may not be shared (one mark per key;
 * marks expired by <now_ms> are dropped on the way, so they do not count against the
 * table's bound). */
void inflight_mark_pass(struct inflight *t, const char *key, size_t key_len,
			uint64_t now_ms, uint64_t until_ms);

/* An unsafe request changed <key>'s resource: the fetch running for it leaves the table and
 * is marked invalidated (object.h: it will not be stored), and its mark is forgotten. */
void inflight_invalidate(struct inflight *t, const char *key, size_t key_len);

/* Forgets a hit-for-miss mark (a cacheable response arrived, or a purge). */
void inflight_unmark(struct inflight *t, const char *key, size_t key_len);

#endif
