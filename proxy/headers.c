/* headers.c - header field lists and the hop-by-hop rules of headers.h. */
#include "config.h"

#include "headers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const hop_by_hop[] = {
	"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
	"Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization",
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 9110 §5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_blank((*s)[*len - 1]))
		(*len)--;
}

int headers_add(struct header_list *l, const char *name, size_t name_len, const char *value,
		size_t value_len)
{
	struct header *h;

	if (name_len == 0)
		return -EINVAL;
	for (size_t i = 0; i < name_len; i++)
		if (!is_tchar((unsigned char)name[i]))
			return -EINVAL;
	trim(&value, &value_len);
	if (l->n == HEADERS_MAX_COUNT || l->bytes + name_len + value_len > HEADERS_MAX_BYTES)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct header *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	h = &l->v[l->n];
	h->name = malloc(name_len + 1 + value_len + 1);	/* one block: name, then value */
	if (h->name == NULL)
		return -ENOMEM;
	memcpy(h->name, name, name_len);
	h->name[name_len] = '\0';
	h->value = h->name + name_len + 1;
	memcpy(h->value, value, value_len);
	h->value[value_len] = '\0';
	l->n++;
	l->bytes += name_len + value_len;
	return 0;
}

/* obs-fold: the previous field's value grows by one space and <more>. */
static int continue_last(struct header_list *l, const char *more, size_t len)
{
	struct header *h;
	size_t name_len, value_len;
	char *block;

	size_t sep;

	if (l->n == 0)
		return -EINVAL;
	trim(&more, &len);
	if (len == 0)
		return 0;	/* a blank continuation adds nothing */
	h = &l->v[l->n - 1];
	name_len = strlen(h->name);
	value_len = strlen(h->value);
	sep = value_len > 0 ? 1 : 0;
	if (l->bytes + sep + len > HEADERS_MAX_BYTES)
		return -E2BIG;
	block = realloc(h->name, name_len + 1 + value_len + sep + len + 1);
	if (block == NULL)
		return -ENOMEM;
	h->name = block;
	h->value = block + name_len + 1;
	if (sep)
		h->value[value_len++] = ' ';
	memcpy(h->value + value_len, more, len);
	h->value[value_len + len] = '\0';
	l->bytes += sep + len;
	return 0;
}

int headers_add_line(struct header_list *l, const char *line, size_t len)
{
	const char *colon;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len > 0 && (line[0] == ' ' || line[0] == '\t'))
		return continue_last(l, line, len);
	colon = memchr(line, ':', len);
	if (colon == NULL)
		return -EINVAL;
	/* no blank between name and colon (RFC 9112 §5.1): headers_add() refuses it */
	return headers_add(l, line, (size_t)(colon - line), colon + 1,
			   len - (size_t)(colon - line) - 1);
}

const char *headers_get(const struct header_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, name) == 0)
			return l->v[i].value;
	return NULL;
}

static void remove_at(struct header_list *l, size_t i)
{
	l->bytes -= strlen(l->v[i].name) + strlen(l->v[i].value);
	free(l->v[i].name);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(l->v[0]));
	l->n--;
}

void headers_remove(struct header_list *l, const char *name)
{
	for (size_t i = 0; i < l->n;)
		if (strcasecmp(l->v[i].name, name) == 0)
			remove_at(l, i);
		else
			i++;
}

bool headers_is_hop_by_hop(const char *name)
{
	for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++)
		if (strcasecmp(name, hop_by_hop[i]) == 0)
			return true;
	return false;
}

bool headers_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (list && *list) {
		const char *end = strchr(list, ',');
		size_t len = end ? (size_t)(end - list) : strlen(list);
		const char *tok = list;

		trim(&tok, &len);
		if (len == n && strncasecmp(tok, name, n) == 0)
			return true;
		list = end ? end + 1 : NULL;
	}
	return false;
}

/* Says whether any Connection field of <l> lists <name>. */
static bool connection_lists(const struct header_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, "Connection") == 0 &&
		    headers_list_has(l->v[i].value, name))
			return true;
	return false;
}

void headers_strip_hop_by_hop(struct header_list *l)
{
	/* the named fields first, while the Connection fields that name them are here */
	for (size_t i = 0; i < l->n;)
		if (!headers_is_hop_by_hop(l->v[i].name) && connection_lists(l, l->v[i].name))
			remove_at(l, i);
		else
			i++;
	for (size_t i = 0; i < l->n;)
		if (headers_is_hop_by_hop(l->v[i].name))
			remove_at(l, i);
		else
			i++;
}

void headers_free(struct header_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int headers_join(char *buf, size_t len, const char *existing, const char *add)
{
	size_t elen = existing ? strlen(existing) : 0;
	int n;

	trim(&existing, &elen);
	if (elen > 0)
		n = snprintf(buf, len, "%.*s, %s", (int)elen, existing, add);
	else
		n = snprintf(buf, len, "%s", add);
	if (n >= 0 && (size_t)n < len)
		return 0;
	snprintf(buf, len, "%s", add);
	return -E2BIG;
}
