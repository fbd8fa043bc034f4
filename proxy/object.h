/* object.h - one response as the proxy holds it: status, fields and body, shared by the
 * upstream thread that fills it and the client connections that read it.
 *
 * An object is born PENDING when a fetch starts. The upstream thread sets its status and
 * fields and moves it to STREAMING, appends the body as it arrives, and ends it COMPLETE
 * or FAILED. Readers (client connections) attach at any time while the body is still held
 * from its first byte, read at their own pace and are suspended when they catch up; the
 * writer wakes them. A complete, storable object goes into the cache as it is: its
 * struct cache_entry is the first member and its reference count keeps it alive while
 * readers remain, whether or not the cache still holds it.
 *
 * A storable object keeps its whole body (it is at most the max object size). Any other
 * body is held in a window: bytes every reader has passed are dropped, and when the window
 * is full the writer is told to pause (on_space is called once readers make room), so a
 * slow client holds the proxy's memory for that response to about the window.
 *
 * Threads: fields marked "upstream" are written only by the upstream thread before the
 * state leaves PENDING and are read-only afterwards; fields marked "lock" are guarded by
 * the object's mutex.
 */
#ifndef MTPS_OBJECT_H
#define MTPS_OBJECT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"
#include "headers.h"
#include "policy.h"

enum object_state {
	OBJECT_PENDING = 0,	/* request sent, no response fields yet */
	OBJECT_STREAMING,	/* status and fields known, body arriving */
	OBJECT_COMPLETE,	/* the whole body is here */
	OBJECT_FAILED,		/* the fetch failed; before STREAMING see error_status */
};

/* object_read() results besides a byte count */
#define OBJECT_WAIT 0		/* nothing yet; the reader was suspended */
#define OBJECT_EOF (-1)		/* the body is complete and all read */
#define OBJECT_ERROR (-2)	/* the body will never be complete */

struct object_reader;

/* Called under the object's lock when the reader must wait; it must not call back into
 * the object. */
typedef void object_suspend_fn(struct object_reader *r);
/* Called with no lock held when a waiting reader may go on. */
typedef void object_wake_fn(struct object_reader *r);

struct object_reader {
	object_suspend_fn *suspend;
	object_wake_fn *wake;
	uint64_t pos;		/* next body offset to read; the reader's own */
	uint64_t joined_ms;	/* when it attached */
	/* lock */
	struct object_reader *prev, *next;
	bool attached;
	bool waiting;
	bool owner;		/* started the fetch */
	bool refused;		/* detached: the response may not be shared, or waited too long */
};

struct object;

/* How an object asks its writer for more: set by the writer, called with no lock held. */
struct object_writer_ops {
	void (*on_space)(struct object *o);	/* a paused writer may go on */
	void (*on_abandoned)(struct object *o);	/* no reader is left for a body not kept */
};

struct object {
	struct cache_entry entry;	/* first: the cache's view */
	pthread_mutex_t lock;

	/* set by the creator before the fetch starts */
	bool candidate;			/* a GET the cache may keep: a complete storable
					 * response goes into the cache */
	/* called under the object's lock the moment a storable body is complete, before any
	 * reader can see the end of it: the front end stores it there, so a client that read
	 * the last byte and asks again finds it. Takes no lock but the cache's. May be NULL. */
	void (*on_complete)(struct object *o, void *data);
	void *on_complete_data;
	bool plain;			/* others could share its response (no conditional,
					 * Range or Authorization): an unshareable one marks
					 * the key hit-for-miss */
	bool unsafe;			/* an unsafe method: a success invalidates (§4.4) */
	size_t primary_len;		/* entry.key[0..primary_len) is the URL's key; a
					 * Vary variant's key goes on with "\x01" and its
					 * secondary key */
	struct object *validating;	/* the stored response this fetch revalidates, with
					 * a reference; NULL for a plain fetch */
	uint64_t inflight_hash;		/* inflight.c's own */
	uint64_t born;			/* the front end's invalidation clock when created */

	/* upstream */
	int status;
	struct header_list fields;	/* as clients get them: no hop-by-hop, no Content-Length */
	int64_t length;			/* Content-Length, or -1 when unknown */
	bool head;			/* the response to a HEAD: no body follows */
	time_t response_time;
	long long initial_age;		/* corrected_initial_age, seconds */
	long long lifetime;		/* freshness lifetime, seconds */
	struct cache_control cc;	/* the response's Cache-Control */
	bool validator;			/* has ETag or Last-Modified */
	bool store;			/* goes into the cache when complete */
	bool revalidated;		/* a 304 validated <validating>: this is it, refreshed */
	char *vary_names;		/* policy_vary_names() of its Vary, or NULL */
	char *vary_key;			/* the owner request's secondary key for vary_names */
	bool marker;			/* no response: the Vary names of a URL's variants */
	bool validator_mismatch;	/* the backend's 304 named another representation:
					 * the stored one is dropped */
	uint64_t gen;			/* a marker's generation; a variant's, its marker's:
					 * a variant of another generation is not used */
	char backend[272];		/* "host:port" that answered (BALANCER_MAX_NAME) */
	int64_t upstream_us;		/* request sent to fields received */
	int error_status;		/* FAILED before STREAMING: 502, 503 or 504 */
	const char *error_reason;	/* static string */

	/* lock */
	enum object_state state;
	bool storable;			/* keeps the whole body, for the cache */
	bool shared;			/* readers other than the owner may attach */
	bool paused;			/* the writer was told to wait for room */
	bool unlinked;			/* left the cache: no new hit responses are kept */
	bool in_cache;			/* was inserted: only then is a prebuilt hit response
					 * kept (object_unlinked() lets go of it) */
	bool invalidated;		/* an unsafe request changed the resource: not stored */
	char *body;
	size_t len, cap;		/* bytes held, bytes allocated */
	uint64_t base;			/* offset of body[0]; > 0 once bytes were dropped */
	size_t max_size;		/* most a storable body may grow to */
	size_t window;			/* most bytes held of a body not kept */
	unsigned nreaders, max_readers;
	struct object_reader *readers;
	const struct object_writer_ops *writer;
	void *writer_data;		/* the writer's: upstream's fetch while it runs */

	/* lock; the front end's prebuilt answer for hits (see frontend.c) */
	void *hit_response;
	long long hit_age;
};

/* Creates a PENDING object for cache key <key> with one reference. Bodies kept for the
 * cache may grow to <max_size>; others are held in <window> bytes. At most <max_readers>
 * readers attach. <unlinked> is called when the cache lets go of it (may be NULL).
 * Returns NULL when out of memory. */
struct object *object_new(const char *key, size_t key_len, size_t max_size, size_t window,
			  unsigned max_readers, cache_unlinked_fn *unlinked);

static inline void object_get(struct object *o)
{
	cache_entry_get(&o->entry);
}

static inline void object_put(struct object *o)
{
	cache_entry_put(&o->entry);
}

/* ---- readers (client threads) ----------------------------------------------------------- */

/* Attaches <r> at body offset 0. Returns 0, or -EAGAIN when the first bytes were already
 * dropped, the fetch failed, the response may not be shared or the reader limit is
 * reached: the caller then fetches on its own. */
int object_attach(struct object *o, struct object_reader *r, uint64_t now_ms);

/* Detaches <r> (no-op when not attached). When no reader is left and the body is not being
 * kept, the writer is told to give up (on_abandoned). */
void object_detach(struct object *o, struct object_reader *r);

/* Suspends <r> until the status and fields are known. Returns true when it waits, false
 * when they are already known (or the fetch failed). */
bool object_wait_fields(struct object *o, struct object_reader *r);

/* Copies up to <max> body bytes at r->pos into <buf>, advancing r->pos. Returns the count,
 * OBJECT_WAIT after suspending <r> (it is woken when there is more), OBJECT_EOF or
 * OBJECT_ERROR. */
ssize_t object_read(struct object *o, struct object_reader *r, char *buf, size_t max);

/* ---- the writer (upstream thread) ------------------------------------------------------- */

/* Moves a PENDING object to STREAMING after status, fields, length and times were set.
 * <storable> says whether the body is kept for the cache; <shared> whether readers other
 * than the owner may have this response - those that may not are detached with r->refused
 * set and woken, so they fetch on their own. Every waiting reader is woken. Returns false
 * when no reader is left and the body is not kept: the writer should give up. */
bool object_fields_done(struct object *o, bool storable, bool shared);

/* Appends body bytes; the byte that completes a known Content-Length makes the object
 * COMPLETE at once. Returns 0; -EAGAIN when the window is full: nothing was taken, the
 * object is marked paused and on_space() will be called when readers make room; or -EPIPE
 * when nobody reads a body that is not kept or the object is already complete, or
 * -ENOMEM: the writer should give up. A storable body
 * that outgrows max_size stops being kept (it streams through). */
int object_append(struct object *o, const char *data, size_t n);

/* Ends the fetch: COMPLETE when <ok>, else FAILED with <status> and <reason> (static)
 * for readers still waiting for fields. Wakes every waiting reader. */
void object_finish(struct object *o, bool ok, int status, const char *reason);

/* Detaches, with r->refused set, every waiter that has waited for the fields since before
 * <deadline_ms>, except the owner, and wakes them. Returns how many. */
unsigned object_expire_waiters(struct object *o, uint64_t deadline_ms);

/* Bytes the object charges to the cache. */
size_t object_size(const struct object *o);

#endif
