/* Unit tests for proxy/object.c: a response shared by the upstream thread that writes it
 * and the client connections that read it. Most tests are scripts: each row is one call,
 * what it returns, and which readers it suspended or woke and which writer callbacks it
 * made, checked against counters. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_main.h"
#include "object.h"

#define NREADERS 4

struct test_reader {
	struct object_reader r;	/* first: the callbacks get this */
	int suspended, woken;
};

struct writer_counts {
	int space, abandoned;
};

static void count_suspend(struct object_reader *r)
{
	((struct test_reader *)r)->suspended++;
}

static void count_wake(struct object_reader *r)
{
	((struct test_reader *)r)->woken++;
}

static void count_space(struct object *o)
{
	((struct writer_counts *)o->writer_data)->space++;
}

static void count_abandoned(struct object *o)
{
	((struct writer_counts *)o->writer_data)->abandoned++;
}

static const struct object_writer_ops count_ops = {
	.on_space = count_space,
	.on_abandoned = count_abandoned,
};

/* ---- the script interpreter --------------------------------------------------------------- */

enum op {
	ATTACH_OWNER = 0,	/* arg: now_ms */
	ATTACH,			/* arg: now_ms */
	WAIT,			/* object_wait_fields(): ret 1 when it waits */
	FIELDS,			/* arg: STORABLE | SHARED */
	APPEND,			/* data, or arg bytes of 'x' */
	READ,			/* arg: max; data: the bytes expected */
	FINISH,			/* arg: ok */
	DETACH,
	EXPIRE,			/* arg: deadline_ms */
	STORABLE,		/* checks o->storable == arg */
	STATE,			/* checks o->state == arg */
	ERROR_STATUS,		/* checks o->error_status == arg */
	READERS,		/* checks o->nreaders == arg */
};

#define STORABLE_F 1
#define SHARED_F 2
#define ANY (-999)		/* any return */

enum { A = 0, B, C, D };

struct ostep {
	enum op op;
	int who;
	long long arg;
	const char *data;
	long long ret;
	const char *suspends;	/* readers suspended by this step, e.g. "AB" */
	const char *wakes;	/* readers woken by this step */
	int space, abandoned;	/* writer callbacks made by this step */
	const char *refused;	/* when set: the readers refused after this step */
	const char *rule;
};

struct script {
	const char *name;
	size_t max_size, window;
	unsigned max_readers;
	const struct ostep *steps;
	size_t n;
};

static void letters(const int *counts, const int *before, char *out)
{
	int k = 0;

	for (int i = 0; i < NREADERS; i++)
		if (counts[i] != before[i])
			out[k++] = (char)('A' + i);
	out[k] = '\0';
}

static void run_script(const struct script *sc)
{
	struct object *o = object_new("GET example.org /x", 18, sc->max_size, sc->window,
				      sc->max_readers, NULL);
	struct test_reader rd[NREADERS];
	struct writer_counts wc = { 0, 0 };

	ck_assert_ptr_nonnull(o);
	o->writer = &count_ops;
	o->writer_data = &wc;
	memset(rd, 0, sizeof(rd));
	for (int i = 0; i < NREADERS; i++) {
		rd[i].r.suspend = count_suspend;
		rd[i].r.wake = count_wake;
	}
	for (size_t k = 0; k < sc->n; k++) {
		const struct ostep *s = &sc->steps[k];
		struct object_reader *r = &rd[s->who].r;
		int sus0[NREADERS], wok0[NREADERS], sus1[NREADERS], wok1[NREADERS];
		struct writer_counts wc0 = wc;
		char buf[4096], got_s[8], got_w[8];
		long long ret = 0;

		for (int i = 0; i < NREADERS; i++) {
			sus0[i] = rd[i].suspended;
			wok0[i] = rd[i].woken;
		}
		switch (s->op) {
		case ATTACH_OWNER:
			r->owner = true;
			ret = object_attach(o, r, (uint64_t)s->arg);
			break;
		case ATTACH:
			ret = object_attach(o, r, (uint64_t)s->arg);
			break;
		case WAIT:
			ret = object_wait_fields(o, r);
			break;
		case FIELDS:
			object_fields_done(o, s->arg & STORABLE_F, s->arg & SHARED_F);
			break;
		case APPEND:
			if (s->data) {
				ret = object_append(o, s->data, strlen(s->data));
			} else {
				memset(buf, 'x', (size_t)s->arg);
				ret = object_append(o, buf, (size_t)s->arg);
			}
			break;
		case READ:
			ret = object_read(o, r, buf, (size_t)s->arg);
			if (ret > 0 && s->data)
				ck_assert_msg((size_t)ret == strlen(s->data) &&
						      memcmp(buf, s->data, (size_t)ret) == 0,
					      "%s step %zu (%s): read \"%.*s\", want \"%s\"",
					      sc->name, k, s->rule, (int)ret, buf, s->data);
			break;
		case FINISH:
			object_finish(o, s->arg, s->arg ? 0 : 502, s->arg ? NULL : "test failure");
			break;
		case DETACH:
			object_detach(o, r);
			break;
		case EXPIRE:
			ret = object_expire_waiters(o, (uint64_t)s->arg);
			break;
		case STORABLE:
			ck_assert_msg(o->storable == (s->arg != 0), "%s step %zu (%s): storable %d",
				      sc->name, k, s->rule, o->storable);
			break;
		case STATE:
			ck_assert_msg(o->state == (enum object_state)s->arg,
				      "%s step %zu (%s): state %d", sc->name, k, s->rule, o->state);
			break;
		case ERROR_STATUS:
			ck_assert_msg(o->error_status == s->arg,
				      "%s step %zu (%s): error_status %d", sc->name, k, s->rule,
				      o->error_status);
			break;
		case READERS:
			ck_assert_msg(o->nreaders == s->arg, "%s step %zu (%s): %u readers",
				      sc->name, k, s->rule, o->nreaders);
			break;
		}
		if (s->ret != ANY)
			ck_assert_msg(ret == s->ret, "%s step %zu (%s): returned %lld, want %lld",
				      sc->name, k, s->rule, ret, s->ret);
		for (int i = 0; i < NREADERS; i++) {
			sus1[i] = rd[i].suspended;
			wok1[i] = rd[i].woken;
			ck_assert_msg(sus1[i] - sus0[i] <= 1 && wok1[i] - wok0[i] <= 1,
				      "%s step %zu: a callback ran twice", sc->name, k);
		}
		letters(sus1, sus0, got_s);
		letters(wok1, wok0, got_w);
		ck_assert_msg(strcmp(got_s, s->suspends ? s->suspends : "") == 0,
			      "%s step %zu (%s): suspended \"%s\", want \"%s\"", sc->name, k,
			      s->rule, got_s, s->suspends ? s->suspends : "");
		ck_assert_msg(strcmp(got_w, s->wakes ? s->wakes : "") == 0,
			      "%s step %zu (%s): woke \"%s\", want \"%s\"", sc->name, k, s->rule,
			      got_w, s->wakes ? s->wakes : "");
		ck_assert_msg(wc.space - wc0.space == s->space,
			      "%s step %zu (%s): on_space called %d times, want %d", sc->name, k,
			      s->rule, wc.space - wc0.space, s->space);
		ck_assert_msg(wc.abandoned - wc0.abandoned == s->abandoned,
			      "%s step %zu (%s): on_abandoned called %d times, want %d", sc->name,
			      k, s->rule, wc.abandoned - wc0.abandoned, s->abandoned);
		if (s->refused) {
			char got_r[8];
			int n = 0;

			for (int i = 0; i < NREADERS; i++)
				if (rd[i].r.refused)
					got_r[n++] = (char)('A' + i);
			got_r[n] = '\0';
			ck_assert_msg(strcmp(got_r, s->refused) == 0,
				      "%s step %zu (%s): refused \"%s\", want \"%s\"", sc->name, k,
				      s->rule, got_r, s->refused);
		}
	}
	for (int i = 0; i < NREADERS; i++)
		object_detach(o, &rd[i].r);
	object_put(o);
}

#define SCRIPT(n, max, win, readers) { #n, max, win, readers, n, ARRAY_LEN(n) }
#define BIG (1 << 20)

/* ---- the scripts ----------------------------------------------------------------------------- */

static const struct ostep streaming[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "the fetch's owner attaches" },
	{ WAIT, A, 0, NULL, 1, "A", .rule = "before the fields a reader waits: suspended" },
	{ READERS, 0, 1, .rule = "" },
	{ ATTACH, B, 5, NULL, 0, .rule = "a second request joins the fetch" },
	{ WAIT, B, 0, NULL, 1, "B", .rule = "it waits too" },
	{ STATE, 0, OBJECT_PENDING, .rule = "" },
	{ FIELDS, 0, STORABLE_F | SHARED_F, NULL, 0, NULL, "AB", .rule = "the fields wake both" },
	{ STATE, 0, OBJECT_STREAMING, .rule = "" },
	{ WAIT, A, 0, NULL, 0, .rule = "the fields are known: no wait" },
	{ READ, A, 16, NULL, OBJECT_WAIT, "A", .rule = "no body yet: suspended" },
	{ APPEND, 0, 0, "hello", 0, NULL, "A", .rule = "new bytes wake the waiting reader only" },
	{ READ, A, 3, "hel", 3, .rule = "bytes in order, at most max" },
	{ READ, A, 16, "lo", 2, .rule = "the rest" },
	{ READ, A, 16, NULL, OBJECT_WAIT, "A", .rule = "caught up: suspended again" },
	{ READ, B, 16, "hello", 5, .rule = "each reader has its own position" },
	{ APPEND, 0, 0, " world", 0, NULL, "A", .rule = "" },
	{ FINISH, 0, 1, NULL, 0, .rule = "nobody waits: nobody to wake" },
	{ STATE, 0, OBJECT_COMPLETE, .rule = "" },
	{ READ, B, 100, " world", 6, .rule = "" },
	{ READ, B, 100, NULL, OBJECT_EOF, .rule = "complete and all read: EOF" },
	{ READ, B, 100, NULL, OBJECT_EOF, .rule = "EOF again" },
	{ READ, A, 100, " world", 6, .rule = "" },
	{ READ, A, 100, NULL, OBJECT_EOF, .rule = "" },
	{ STORABLE, 0, 1, .rule = "a complete body is kept whole" },
	{ ATTACH, C, 9, NULL, 0, .rule = "a kept body takes new readers from byte 0" },
	{ READ, C, 100, "hello world", 11, .rule = "" },
	{ DETACH, A, .rule = "" },
	{ DETACH, B, .rule = "" },
	{ DETACH, C, .rule = "a kept body is never abandoned" },
	{ READERS, 0, 0, .rule = "" },
};

static const struct ostep finish_wakes[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, STORABLE_F | SHARED_F, .rule = "" },
	{ APPEND, 0, 0, "ab", 0, .rule = "" },
	{ READ, A, 10, "ab", 2, .rule = "" },
	{ READ, A, 10, NULL, OBJECT_WAIT, "A", .rule = "" },
	{ FINISH, 0, 1, NULL, 0, NULL, "A", .rule = "the end wakes a waiting reader" },
	{ READ, A, 10, NULL, OBJECT_EOF, .rule = "...which then sees EOF" },
};

static const struct ostep fail_before_fields[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ WAIT, A, 0, NULL, 1, "A", .rule = "" },
	{ ATTACH, B, 0, NULL, 0, .rule = "" },
	{ WAIT, B, 0, NULL, 1, "B", .rule = "" },
	{ FINISH, 0, 0, NULL, 0, NULL, "AB", .rule = "a failed fetch wakes every waiter" },
	{ STATE, 0, OBJECT_FAILED, .rule = "" },
	{ ERROR_STATUS, 0, 502, .rule = "failed before the fields: the status to answer with" },
	{ WAIT, A, 0, NULL, 0, .rule = "nothing left to wait for" },
	{ READ, A, 10, NULL, OBJECT_ERROR, .rule = "no body will come" },
	{ ATTACH, C, 0, NULL, -EAGAIN, .rule = "a failed fetch takes no reader" },
};

static const struct ostep fail_mid_body[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ ATTACH, B, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, STORABLE_F | SHARED_F, .rule = "" },
	{ APPEND, 0, 0, "abc", 0, .rule = "" },
	{ READ, A, 10, "abc", 3, .rule = "" },
	{ READ, A, 10, NULL, OBJECT_WAIT, "A", .rule = "" },
	{ FINISH, 0, 0, NULL, 0, NULL, "A", .rule = "a failure mid-body wakes the waiter" },
	{ ERROR_STATUS, 0, 0, .rule = "after the fields no error status: the client is cut" },
	{ STORABLE, 0, 0, .rule = "a failed body is never kept" },
	{ READ, A, 10, NULL, OBJECT_ERROR, .rule = "never a short body presented as complete" },
	{ READ, B, 2, "ab", 2, .rule = "bytes that arrived are still delivered" },
	{ READ, B, 10, "c", 1, .rule = "" },
	{ READ, B, 10, NULL, OBJECT_ERROR, .rule = "...then the error" },
};

/* A body not kept, in a window of 8 bytes. */
static const struct ostep window[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, SHARED_F, .rule = "shared, not kept: held in the window" },
	{ APPEND, 0, 0, "12345", 0, .rule = "" },
	{ APPEND, 0, 0, "6789", -EAGAIN, .rule = "5 + 4 > 8: the writer must pause" },
	{ READ, A, 2, "12", 2, .rule = "a little room is not enough to go on" },
	{ READ, A, 10, "345", 3, NULL, NULL, 1, .rule = "all read: the writer may go on" },
	{ APPEND, 0, 0, "6789", 0, .rule = "what was refused is taken now" },
	{ APPEND, 0, 0, "abcd", 0, .rule = "4 + 4: exactly the window" },
	{ APPEND, 0, 0, "e", -EAGAIN, .rule = "one byte over" },
	{ APPEND, 0, 0, "e", -EAGAIN, .rule = "still full" },
	{ READ, A, 100, "6789abcd", 8, NULL, NULL, 1, .rule = "on_space once" },
	{ READ, A, 100, NULL, OBJECT_WAIT, "A", .rule = "" },
	{ APPEND, 0, 0, "0123456789ABCDEF", 0, NULL, "A",
	  .rule = "an empty window takes a chunk of any size" },
	{ FINISH, 0, 1, .rule = "" },
	{ READ, A, 100, "0123456789ABCDEF", 16, .rule = "" },
	{ READ, A, 100, NULL, OBJECT_EOF, .rule = "" },
	{ ATTACH, B, 0, NULL, -EAGAIN, .rule = "late: the first bytes were dropped" },
};

/* Two readers at different paces: the window moves with the slower one. */
static const struct ostep window_two[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ ATTACH, B, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, SHARED_F, .rule = "" },
	{ APPEND, 0, 0, "abcdefgh", 0, .rule = "" },
	{ APPEND, 0, 0, "i", -EAGAIN, .rule = "" },
	{ READ, A, 100, "abcdefgh", 8, .rule = "the fast reader alone makes no room" },
	{ ATTACH, C, 0, NULL, 0, .rule = "byte 0 is still held: a late joiner is fine" },
	{ DETACH, C, .rule = "" },
	{ READ, B, 4, "abcd", 4, .rule = "" },
	{ READ, B, 4, "efgh", 4, NULL, NULL, 1, .rule = "the slow one catches up: room" },
	{ ATTACH, C, 0, NULL, -EAGAIN, .rule = "byte 0 is gone now" },
	{ APPEND, 0, 0, "i", 0, NULL, NULL, .rule = "" },
	{ DETACH, A, .rule = "one reader left: not abandoned" },
	{ DETACH, B, .abandoned = 1, .rule = "the last reader left: abandoned" },
};

/* A kept body over max_size (10) streams through instead. */
static const struct ostep too_big[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, STORABLE_F | SHARED_F, .rule = "" },
	{ APPEND, 0, 0, "0123456789", 0, .rule = "" },
	{ STORABLE, 0, 1, .rule = "exactly max_size: still kept" },
	{ APPEND, 0, 0, "x", 0, .rule = "" },
	{ STORABLE, 0, 0, .rule = "over max_size: no longer kept" },
	{ READ, A, 100, "0123456789x", 11, .rule = "every byte still reaches the reader" },
	{ FINISH, 0, 1, .rule = "" },
	{ STORABLE, 0, 0, .rule = "a complete body over max_size is not kept" },
	{ READ, A, 100, NULL, OBJECT_EOF, .rule = "" },
	{ ATTACH, B, 0, NULL, -EAGAIN, .rule = "late: the first bytes were dropped" },
};

/* The body stops being kept (max_size 10) while its reader has read every byte and waits;
 * the window is 16 bytes. Bytes every reader has passed must be dropped: otherwise the
 * writer waits for room that only a read could make, and the reader for bytes that only
 * the writer could add. */
static const struct ostep too_big_caught_up[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, STORABLE_F | SHARED_F, .rule = "" },
	{ APPEND, 0, 0, "0123456789", 0, .rule = "" },
	{ READ, A, 100, "0123456789", 10, .rule = "" },
	{ READ, A, 100, NULL, OBJECT_WAIT, "A", .rule = "caught up" },
	{ APPEND, 0, 0, "abcdefghij", 0, NULL, "A",
	  .rule = "no longer kept: the 10 read bytes leave the window, 10 new ones fit" },
	{ READ, A, 100, "abcdefghij", 10, .rule = "" },
};

/* The body stops being kept after its only reader left. */
static const struct ostep too_big_no_reader[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, STORABLE_F | SHARED_F, .rule = "" },
	{ APPEND, 0, 0, "0123456789", 0, .rule = "" },
	{ DETACH, A, .rule = "a kept body is fetched to its end for the cache: not abandoned" },
	{ APPEND, 0, 0, "abcdefghij", -EPIPE, NULL, NULL, 0, 0,
	  .rule = "no longer kept and no reader left: the writer is told to give up" },
};

/* A response that may not be shared (e.g. Cache-Control: private). */
static const struct ostep not_shared[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ WAIT, A, 0, NULL, 1, "A", .rule = "" },
	{ ATTACH, B, 0, NULL, 0, .rule = "" },
	{ WAIT, B, 0, NULL, 1, "B", .rule = "" },
	{ ATTACH, C, 0, NULL, 0, .rule = "attached, not yet suspended" },
	{ FIELDS, 0, 0, NULL, 0, NULL, "AB", .refused = "BC",
	  .rule = "joiners are refused; the waiting one is woken, the owner goes on" },
	{ READERS, 0, 1, .rule = "only the owner is left" },
	{ WAIT, C, 0, NULL, 0, .rule = "a refused reader does not wait" },
	{ READ, B, 10, NULL, OBJECT_ERROR, .rule = "a refused reader reads nothing" },
	{ ATTACH, D, 0, NULL, -EAGAIN,
	  .rule = "object.h: attach fails when the response may not be shared" },
	{ APPEND, 0, 0, "secret", 0, .rule = "" },
	{ READ, A, 10, "secret", 6, .rule = "the owner reads its response" },
	{ DETACH, D, .rule = "" },
	{ DETACH, A, .abandoned = 1, .rule = "the owner left: abandoned" },
};

static const struct ostep expire[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ WAIT, A, 0, NULL, 1, "A", .rule = "" },
	{ ATTACH, B, 100, NULL, 0, .rule = "" },
	{ WAIT, B, 0, NULL, 1, "B", .rule = "" },
	{ ATTACH, C, 200, NULL, 0, .rule = "" },
	{ WAIT, C, 0, NULL, 1, "C", .rule = "" },
	{ ATTACH, D, 50, NULL, 0, .rule = "attached but not waiting" },
	{ EXPIRE, 0, 100, NULL, 0, .rule = "B joined at 100: not before 100" },
	{ EXPIRE, 0, 101, NULL, 1, NULL, "B", .refused = "B",
	  .rule = "a joiner waiting since before the deadline goes alone" },
	{ EXPIRE, 0, 1000, NULL, 1, NULL, "C", .refused = "BC",
	  .rule = "never the owner, never one that is not waiting" },
	{ READERS, 0, 2, .rule = "A and D" },
	{ FIELDS, 0, STORABLE_F | SHARED_F, NULL, 0, NULL, "A", .rule = "" },
	{ WAIT, D, 0, NULL, 0, .rule = "" },
	{ EXPIRE, 0, 5000, NULL, 0, .rule = "only while the fields are awaited" },
};

static const struct ostep abandon_pending[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ WAIT, A, 0, NULL, 1, "A", .rule = "" },
	{ DETACH, A, .abandoned = 1,
	  .rule = "the only reader leaves before the fields: abandoned" },
	{ DETACH, A, .rule = "detaching twice does nothing" },
};

static const struct ostep abandon_after_finish[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, SHARED_F, .rule = "" },
	{ APPEND, 0, 0, "abc", 0, .rule = "" },
	{ FINISH, 0, 1, .rule = "" },
	{ DETACH, A, .rule = "the fetch is over: no writer to tell" },
};

static const struct ostep no_reader_left[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ FIELDS, 0, SHARED_F, .rule = "" },
	{ DETACH, A, .abandoned = 1, .rule = "" },
	{ ATTACH, B, 0, NULL, -EAGAIN, .rule = "nobody holds a body not kept: too late" },
};

static const struct ostep max_readers[] = {
	{ ATTACH_OWNER, A, 0, NULL, 0, .rule = "" },
	{ ATTACH, B, 0, NULL, 0, .rule = "" },
	{ ATTACH, C, 0, NULL, -EAGAIN, .rule = "STYLE habit 5: the waiting list is bounded" },
	{ DETACH, B, .rule = "" },
	{ ATTACH, C, 0, NULL, 0, .rule = "room again" },
	{ READERS, 0, 2, .rule = "" },
};

static const struct script scripts[] = {
	SCRIPT(streaming, BIG, BIG, 8),
	SCRIPT(finish_wakes, BIG, BIG, 8),
	SCRIPT(fail_before_fields, BIG, BIG, 8),
	SCRIPT(fail_mid_body, BIG, BIG, 8),
	SCRIPT(window, BIG, 8, 8),
	SCRIPT(window_two, BIG, 8, 8),
	SCRIPT(too_big, 10, BIG, 8),
	SCRIPT(too_big_caught_up, 10, 16, 8),
	SCRIPT(too_big_no_reader, 10, 16, 8),
	SCRIPT(not_shared, BIG, BIG, 8),
	SCRIPT(expire, BIG, BIG, 8),
	SCRIPT(abandon_pending, BIG, BIG, 8),
	SCRIPT(abandon_after_finish, BIG, BIG, 8),
	SCRIPT(no_reader_left, BIG, BIG, 8),
	SCRIPT(max_readers, BIG, BIG, 2),
};

START_TEST(test_script)
{
	run_script(&scripts[_i]);
}
END_TEST

/* ---- other checks ---------------------------------------------------------------------------- */

START_TEST(test_new)
{
	struct object *o = object_new("key", 3, 100, 50, 4, NULL);

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(o->state, OBJECT_PENDING);
	ck_assert_int_eq(o->length, -1);
	ck_assert_str_eq(o->entry.key, "key");
	ck_assert_uint_eq(atomic_load(&o->entry.refs), 1);
	ck_assert(!o->storable);
	ck_assert_uint_ge(object_size(o), sizeof(*o) + 3);
	object_get(o);
	ck_assert_uint_eq(atomic_load(&o->entry.refs), 2);
	object_put(o);
	object_put(o);
	/* keys longer than the store allows are refused */
	{
		static char key[CACHE_MAX_KEY + 1];

		memset(key, 'k', sizeof(key));
		ck_assert_ptr_null(object_new(key, sizeof(key), 100, 50, 4, NULL));
	}
}
END_TEST

/* A kept body charges the store what it holds. */
START_TEST(test_size)
{
	struct object *o = object_new("k", 1, BIG, BIG, 4, NULL);
	size_t before;

	headers_add(&o->fields, "Content-Type", 12, "text/plain", 10);
	before = object_size(o);
	ck_assert_uint_ge(before, sizeof(*o) + 1 + 12 + 10);
	object_fields_done(o, true, true);
	ck_assert_int_eq(object_append(o, "0123456789", 10), 0);
	object_finish(o, true, 0, NULL);
	ck_assert_uint_eq(o->cap, 10);	/* trimmed to what it holds */
	ck_assert_uint_eq(object_size(o), before + 10);
	object_put(o);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------------
 *
 * A writer thread streams 1 MiB in uneven chunks; two reader threads read it at their own
 * pace, sleeping on their suspend/wake flags, the writer on on_space. Every byte must
 * arrive in order, and nobody may wait forever. */
#define STREAM_BYTES (1 << 20)

struct sync_flag {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool set;
};

static void flag_set(struct sync_flag *f)
{
	pthread_mutex_lock(&f->m);
	f->set = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->m);
}

/* Waits for the flag and clears it. Returns false after 10 s. */
static bool flag_wait(struct sync_flag *f)
{
	struct timespec ts;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&f->m);
	while (!f->set && ok)
		ok = pthread_cond_timedwait(&f->cv, &f->m, &ts) == 0;
	ok = f->set;
	f->set = false;
	pthread_mutex_unlock(&f->m);
	return ok;
}

struct thread_reader {
	struct object_reader r;	/* first */
	struct sync_flag woken;
	struct object *o;
	size_t got;
	bool ok;
	unsigned seed;
};

static void thread_suspend(struct object_reader *r)
{
	/* under the object's lock: no wake can slip in before this */
	struct thread_reader *t = (struct thread_reader *)r;

	pthread_mutex_lock(&t->woken.m);
	t->woken.set = false;
	pthread_mutex_unlock(&t->woken.m);
}

static void thread_wake(struct object_reader *r)
{
	flag_set(&((struct thread_reader *)r)->woken);
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 7 + i / 251) % 251);
}

static void *reader_run(void *arg)
{
	struct thread_reader *t = arg;
	char buf[8192];

	t->ok = false;
	for (;;) {
		size_t max = 1 + (size_t)rand_r(&t->seed) % sizeof(buf);
		ssize_t n = object_read(t->o, &t->r, buf, max);

		if (n == OBJECT_EOF)
			break;
		if (n == OBJECT_ERROR)
			return NULL;
		if (n == OBJECT_WAIT) {
			if (!flag_wait(&t->woken))
				return NULL;	/* a lost wake-up */
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] != pattern(t->got + (size_t)i))
				return NULL;
		t->got += (size_t)n;
	}
	t->ok = t->got == STREAM_BYTES;
	return NULL;
}

static struct sync_flag writer_space = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
					 false };

static void thread_space(struct object *o)
{
	(void)o;
	flag_set(&writer_space);
}

static void thread_abandoned(struct object *o)
{
	(void)o;
}

static const struct object_writer_ops thread_ops = {
	.on_space = thread_space,
	.on_abandoned = thread_abandoned,
};

static const struct {
	bool storable;
	size_t window;
} stream_cases[] = {
	{ false, 16384 },	/* a body not kept, in a small window */
	{ false, 1000 },	/* smaller than most chunks */
	{ true, BIG },		/* kept whole */
};

START_TEST(test_threads)
{
	struct object *o = object_new("k", 1, 2 * STREAM_BYTES, stream_cases[_i].window, 4, NULL);
	struct thread_reader t[2];
	pthread_t th[2];
	unsigned seed = 7;
	char *chunk = malloc(5000);
	size_t sent = 0;
	bool writer_ok = true;

	ck_assert_ptr_nonnull(chunk);
	o->writer = &thread_ops;
	memset(t, 0, sizeof(t));
	for (int k = 0; k < 2; k++) {
		t[k].r.suspend = thread_suspend;
		t[k].r.wake = thread_wake;
		t[k].r.owner = k == 0;
		pthread_mutex_init(&t[k].woken.m, NULL);
		pthread_cond_init(&t[k].woken.cv, NULL);
		t[k].o = o;
		t[k].seed = 100u + (unsigned)k;
		ck_assert_int_eq(object_attach(o, &t[k].r, 0), 0);
	}
	for (int k = 0; k < 2; k++)
		pthread_create(&th[k], NULL, reader_run, &t[k]);
	object_fields_done(o, stream_cases[_i].storable, true);
	while (sent < STREAM_BYTES && writer_ok) {
		size_t n = 1 + (size_t)rand_r(&seed) % 5000;

		if (n > STREAM_BYTES - sent)
			n = STREAM_BYTES - sent;
		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)pattern(sent + i);
		if (object_append(o, chunk, n) == -EAGAIN) {
			writer_ok = flag_wait(&writer_space);	/* paused until on_space */
			continue;
		}
		sent += n;
	}
	object_finish(o, writer_ok, 0, NULL);
	for (int k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	ck_assert_msg(writer_ok, "the writer waited 10 s for on_space");
	for (int k = 0; k < 2; k++) {
		ck_assert_msg(t[k].ok, "reader %d got %zu bytes", k, t[k].got);
		object_detach(o, &t[k].r);
	}
	if (!stream_cases[_i].storable)
		ck_assert_uint_le(o->cap, 2 * 16384);	/* bounded by the window, not the body */
	free(chunk);
	object_put(o);
}
END_TEST

static Suite *object_suite(void)
{
	Suite *s = suite_create("object");
	TCase *tc = tcase_create("core");
	TCase *mt = tcase_create("threads");

	tcase_add_loop_test(tc, test_script, 0, ARRAY_LEN(scripts));
	tcase_add_test(tc, test_new);
	tcase_add_test(tc, test_size);
	tcase_add_loop_test(mt, test_threads, 0, ARRAY_LEN(stream_cases));
	tcase_set_timeout(mt, 60);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, mt);
	return s;
}

CHECK_MAIN(object_suite)
