/* users.c - the in-memory user table (see users.h).
 *
 * Two chained hash maps share one node per user: by id and by lower-cased email. Buckets
 * double when the count passes their number, so chains stay short. An array of node
 * pointers in id order serves listing with offset and limit without a sort: ids only grow,
 * so creation appends, and deletion finds its slot by binary search.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "users.h"

struct user_node {
	struct user user;
	struct user_node *next_by_id;
	struct user_node *next_by_email;
};

struct users {
	pthread_rwlock_t lock;
	struct user_node **by_id;	/* nbuckets chains */
	struct user_node **by_email;	/* nbuckets chains */
	size_t nbuckets;		/* a power of two */
	struct user_node **order;	/* count nodes, ascending id */
	size_t count;
	size_t order_cap;
	size_t max_users;
	uint64_t next_id;
	uint64_t version;
};

#define USERS_MIN_BUCKETS 64

static size_t hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id;
}

/* FNV-1a over the lower-cased email, so that case variants collide as they should. */
static size_t hash_email(const char *email)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)email; *p; p++) {
		h ^= (uint64_t)tolower(*p);
		h *= 0x100000001b3ULL;
	}
	return (size_t)h;
}

struct users *users_new(size_t max_users)
{
	struct users *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->nbuckets = USERS_MIN_BUCKETS;
	t->by_id = calloc(t->nbuckets, sizeof(*t->by_id));
	t->by_email = calloc(t->nbuckets, sizeof(*t->by_email));
	if (t->by_id == NULL || t->by_email == NULL || pthread_rwlock_init(&t->lock, NULL)) {
		free(t->by_id);
		free(t->by_email);
		free(t);
		return NULL;
	}
	t->max_users = max_users;
	t->next_id = 1;
	t->version = 1;
	return t;
}

void users_free(struct users *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++)
		free(t->order[i]);
	free(t->order);
	free(t->by_id);
	free(t->by_email);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

/* Caller holds the lock. */
static struct user_node *find_id(struct users *t, uint64_t id)
{
	struct user_node *n = t->by_id[hash_id(id) & (t->nbuckets - 1)];

	while (n && n->user.id != id)
		n = n->next_by_id;
	return n;
}

/* Caller holds the lock. */
static struct user_node *find_email(struct users *t, const char *email)
{
	struct user_node *n = t->by_email[hash_email(email) & (t->nbuckets - 1)];

	while (n && strcasecmp(n->user.email, email) != 0)
		n = n->next_by_email;
	return n;
}

/* Caller holds the write lock. */
static void link_email(struct users *t, struct user_node *n)
{
	size_t b = hash_email(n->user.email) & (t->nbuckets - 1);

	n->next_by_email = t->by_email[b];
	t->by_email[b] = n;
}

/* Caller holds the write lock. */
static void unlink_email(struct users *t, struct user_node *n)
{
	struct user_node **pp = &t->by_email[hash_email(n->user.email) & (t->nbuckets - 1)];

	while (*pp != n)
		pp = &(*pp)->next_by_email;
	*pp = n->next_by_email;
}

/* Doubles the buckets and rehashes every node. Caller holds the write lock. On failure the
 * table is left as it was (still correct, only with longer chains). */
static void grow_buckets(struct users *t)
{
	size_t nb = t->nbuckets * 2;
	struct user_node **by_id = calloc(nb, sizeof(*by_id));
	struct user_node **by_email = calloc(nb, sizeof(*by_email));

	if (by_id == NULL || by_email == NULL) {
		free(by_id);
		free(by_email);
		return;
	}
	free(t->by_id);
	free(t->by_email);
	t->by_id = by_id;
	t->by_email = by_email;
	t->nbuckets = nb;
	for (size_t i = 0; i < t->count; i++) {
		struct user_node *n = t->order[i];
		size_t b = hash_id(n->user.id) & (nb - 1);

		n->next_by_id = by_id[b];
		by_id[b] = n;
		link_email(t, n);
	}
}

static int check_fields(const char *name, const char *email)
{
	if (name && (name[0] == '\0' || strlen(name) > USER_NAME_MAX))
		return -EINVAL;
	if (email && (email[0] == '\0' || strlen(email) > USER_EMAIL_MAX))
		return -EINVAL;
	return 0;
}

int users_create(struct users *t, const char *name, const char *email, time_t now,
		 struct user *out)
{
	struct user_node *n;
	size_t b;
	int r;

	if (name == NULL || email == NULL)
		return -EINVAL;
	r = check_fields(name, email);
	if (r)
		return r;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	strcpy(n->user.name, name);
	strcpy(n->user.email, email);
	n->user.version = 1;
	n->user.created = n->user.updated = now;

	pthread_rwlock_wrlock(&t->lock);
	if (find_email(t, email)) {
		r = -EEXIST;
		goto fail;
	}
	if (t->count >= t->max_users) {
		r = -ENOSPC;
		goto fail;
	}
	if (t->count == t->order_cap) {
		size_t cap = t->order_cap ? t->order_cap * 2 : 64;
		struct user_node **order = realloc(t->order, cap * sizeof(*order));

		if (order == NULL) {
			r = -ENOMEM;
			goto fail;
		}
		t->order = order;
		t->order_cap = cap;
	}
	n->user.id = t->next_id++;
	t->order[t->count++] = n;
	b = hash_id(n->user.id) & (t->nbuckets - 1);
	n->next_by_id = t->by_id[b];
	t->by_id[b] = n;
	link_email(t, n);
	t->version++;
	if (t->count > t->nbuckets)
		grow_buckets(t);
	if (out)
		*out = n->user;
	pthread_rwlock_unlock(&t->lock);
	return 0;
fail:
	pthread_rwlock_unlock(&t->lock);
	free(n);
	return r;
}

int users_get(struct users *t, uint64_t id, struct user *out)
{
	struct user_node *n;
	int r = -ENOENT;

	pthread_rwlock_rdlock(&t->lock);
	n = find_id(t, id);
	if (n) {
		*out = n->user;
		r = 0;
	}
	pthread_rwlock_unlock(&t->lock);
	return r;
}

int users_update(struct users *t, uint64_t id, const char *name, const char *email,
		 uint64_t if_version, time_t now, struct user *out)
{
	struct user_node *n, *other;
	int r;

	r = check_fields(name, email);
	if (r)
		return r;
	pthread_rwlock_wrlock(&t->lock);
	n = find_id(t, id);
	if (n == NULL) {
		r = -ENOENT;
		goto out;
	}
	if (if_version && n->user.version != if_version) {
		r = -ESTALE;
		goto out;
	}
	if (email) {
		other = find_email(t, email);
		if (other && other != n) {
			r = -EEXIST;
			goto out;
		}
		unlink_email(t, n);
		strcpy(n->user.email, email);
		link_email(t, n);
	}
	if (name)
		strcpy(n->user.name, name);
	n->user.version++;
	n->user.updated = now;
	t->version++;
	if (out)
		*out = n->user;
out:
	pthread_rwlock_unlock(&t->lock);
	return r;
}

/* Returns the index of <id> in t->order, or t->count. Caller holds the lock. */
static size_t order_index(struct users *t, uint64_t id)
{
	size_t lo = 0, hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->order[mid]->user.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->count && t->order[lo]->user.id == id ? lo : t->count;
}

int users_delete(struct users *t, uint64_t id, uint64_t if_version)
{
	struct user_node *n, **pp;
	size_t i;
	int r = 0;

	pthread_rwlock_wrlock(&t->lock);
	n = find_id(t, id);
	if (n == NULL) {
		r = -ENOENT;
		goto out;
	}
	if (if_version && n->user.version != if_version) {
		r = -ESTALE;
		goto out;
	}
	pp = &t->by_id[hash_id(id) & (t->nbuckets - 1)];
	while (*pp != n)
		pp = &(*pp)->next_by_id;
	*pp = n->next_by_id;
	unlink_email(t, n);
	i = order_index(t, id);
	memmove(&t->order[i], &t->order[i + 1], (t->count - i - 1) * sizeof(*t->order));
	t->count--;
	t->version++;
	free(n);
out:
	pthread_rwlock_unlock(&t->lock);
	return r;
}

struct user *users_list(struct users *t, size_t offset, size_t limit, size_t *n,
			size_t *total, uint64_t *version)
{
	struct user *out;
	size_t count;

	pthread_rwlock_rdlock(&t->lock);
	count = offset < t->count ? t->count - offset : 0;
	if (count > limit)
		count = limit;
	/* sized by what is there, not by what was asked for */
	out = malloc((count ? count : 1) * sizeof(*out));
	if (out) {
		for (size_t i = 0; i < count; i++)
			out[i] = t->order[offset + i]->user;
		*n = count;
		*total = t->count;
		*version = t->version;
	}
	pthread_rwlock_unlock(&t->lock);
	return out;
}

size_t users_count(struct users *t)
{
	size_t n;

	pthread_rwlock_rdlock(&t->lock);
	n = t->count;
	pthread_rwlock_unlock(&t->lock);
	return n;
}
