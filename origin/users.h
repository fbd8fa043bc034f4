/* users.h - the origin's in-memory user table.
 *
 * A hash map by id and a second one by email (emails are unique, compared without regard
 * to case), plus an array in id order for listing, all behind one read-write lock: reads
 * run in parallel, writes one at a time. Every change bumps the user's version (its ETag)
 * and the table's version (the list's ETag). Callers get copies, never pointers into the
 * table, so no lock is held while a response is written. Thread-safe throughout.
 */
#ifndef MTPS_USERS_H
#define MTPS_USERS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define USER_NAME_MAX 256	/* bytes of UTF-8 */
#define USER_EMAIL_MAX 254	/* RFC 5321 §4.5.3.1.3 path limit, less the brackets */

struct user {
	uint64_t id;
	uint64_t version;	/* 1 when created, +1 on every change */
	time_t created;
	time_t updated;
	char name[USER_NAME_MAX + 1];
	char email[USER_EMAIL_MAX + 1];
};

struct users;

/* Returns an empty table that holds at most <max_users>, or NULL when out of memory. */
struct users *users_new(size_t max_users);
void users_free(struct users *t);

/* Adds a user with the next id. Returns 0 and a copy in *out (may be NULL), -EEXIST when
 * another user has <email>, -ENOSPC when the table is full, -EINVAL when a field is empty
 * or too long, -ENOMEM. */
int users_create(struct users *t, const char *name, const char *email, time_t now,
		 struct user *out);

/* Copies user <id> to *out. Returns 0 or -ENOENT. */
int users_get(struct users *t, uint64_t id, struct user *out);

/* Changes user <id>: a NULL <name> or <email> keeps the old value. When <if_version> is not
 * zero the change is made only if the user's version still equals it. Returns 0 and the new
 * user in *out (may be NULL), -ENOENT, -ESTALE (version moved on), -EEXIST (email taken),
 * -EINVAL. A change to the same values still counts as a change. */
int users_update(struct users *t, uint64_t id, const char *name, const char *email,
		 uint64_t if_version, time_t now, struct user *out);

/* Removes user <id>, only if its version equals <if_version> when that is not zero.
 * Returns 0, -ENOENT or -ESTALE. */
int users_delete(struct users *t, uint64_t id, uint64_t if_version);

/* Returns a malloc'd copy of up to <limit> users in id order, starting at position
 * <offset>, and their number in *n; the caller frees it. Sets *total to the number of
 * users and *version to the table's version. Returns NULL when out of memory. */
struct user *users_list(struct users *t, size_t offset, size_t limit, size_t *n,
			size_t *total, uint64_t *version);

/* Returns the number of users. */
size_t users_count(struct users *t);

#endif
