/* http_client.c - libcurl easy wrapper for integration tests (see http_client.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http_client.h"

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct http_reply *r = arg;
	size_t len = size * n;
	char *body = realloc(r->body, r->len + len + 1);

	if (body == NULL)
		return 0;
	memcpy(body + r->len, data, len);
	r->body = body;
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct http_reply *r = arg;
	size_t len = size * n;
	char *colon = memchr(data, ':', len);
	size_t name_len, vstart, vend;

	if (strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): forget the previous headers */
		for (size_t i = 0; i < r->nheaders; i++) {
			free(r->headers[i].name);
			free(r->headers[i].value);
		}
		r->nheaders = 0;
		return len;
	}
	if (colon == NULL || r->nheaders == HTTP_MAX_HEADERS)
		return len;
	name_len = (size_t)(colon - data);
	vstart = name_len + 1;
	while (vstart < len && (data[vstart] == ' ' || data[vstart] == '\t'))
		vstart++;
	vend = len;
	while (vend > vstart && (data[vend - 1] == '\r' || data[vend - 1] == '\n' ||
				 data[vend - 1] == ' '))
		vend--;
	r->headers[r->nheaders].name = strndup(data, name_len);
	r->headers[r->nheaders].value = strndup(data + vstart, vend - vstart);
	r->nheaders++;
	return len;
}

/* Sets up <h> for one exchange whose reply goes to <r>. Returns the header list to free. */
static struct curl_slist *prepare(CURL *h, const char *method, const char *url,
				  const char *const *headers, const char *body, size_t body_len,
				  struct http_reply *r)
{
	struct curl_slist *list = NULL;

	memset(r, 0, sizeof(*r));
	for (int i = 0; headers && headers[i]; i++)
		list = curl_slist_append(list, headers[i]);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");	/* never an outside proxy */
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);	/* a reused handle's */
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (body) {
			/* copied: a batch's bodies need not outlive http_batch_add() */
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body);
		}
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
				 strcmp(method, "GET") == 0 ? NULL : method);
	}
	return list;
}

/* Records the outcome of a finished exchange on <h> into <r>. */
static int finish(CURL *h, CURLcode rc, struct http_reply *r)
{
	r->curl_code = (int)rc;
	if (rc != CURLE_OK)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &r->seconds);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
	if (r->body == NULL) {
		r->body = calloc(1, 1);
		r->len = 0;
	}
	return 0;
}

static int perform(CURL *h, const char *method, const char *url, const char *const *headers,
		   const char *body, size_t body_len, struct http_reply *r)
{
	struct curl_slist *list = prepare(h, method, url, headers, body, body_len, r);
	CURLcode rc = curl_easy_perform(h);

	curl_slist_free_all(list);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	return finish(h, rc, r);
}

int http_request(const char *method, const char *url, const char *const *headers,
		 const char *body, size_t body_len, struct http_reply *r)
{
	CURL *h = curl_easy_init();
	int ret;

	if (h == NULL) {
		memset(r, 0, sizeof(*r));
		r->curl_code = CURLE_FAILED_INIT;
		return -1;
	}
	ret = perform(h, method, url, headers, body, body_len, r);
	curl_easy_cleanup(h);
	return ret;
}

int http_request_reuse(void **reuse, const char *method, const char *url,
		       const char *const *headers, const char *body, size_t body_len,
		       struct http_reply *r)
{
	if (*reuse == NULL)
		*reuse = curl_easy_init();
	if (*reuse == NULL) {
		memset(r, 0, sizeof(*r));
		r->curl_code = CURLE_FAILED_INIT;
		return -1;
	}
	return perform(*reuse, method, url, headers, body, body_len, r);
}

void http_reuse_free(void **reuse)
{
	if (*reuse)
		curl_easy_cleanup(*reuse);
	*reuse = NULL;
}

int http_raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int http_get(const char *url, struct http_reply *r)
{
	return http_request("GET", url, NULL, NULL, 0, r);
}

const char *http_reply_header(const struct http_reply *r, const char *name)
{
	const char *found = NULL;

	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			found = r->headers[i].value;
	return found;
}

void http_reply_free(struct http_reply *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->body);
	memset(r, 0, sizeof(*r));
}

#define BATCH_MAX 1024

struct http_batch {
	CURLM *multi;
	int n;
	CURL *easy[BATCH_MAX];
	struct curl_slist *lists[BATCH_MAX];
	struct http_reply replies[BATCH_MAX];
};

struct http_batch *http_batch_new(void)
{
	struct http_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->multi = curl_multi_init();
	/* one connection per request: these are separate clients */
	curl_multi_setopt(b->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	curl_multi_setopt(b->multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
	return b;
}

int http_batch_add(struct http_batch *b, const char *method, const char *url,
		   const char *const *headers, const char *body)
{
	CURL *h;
	int i = b->n;

	if (i == BATCH_MAX)
		return -1;
	h = curl_easy_init();
	b->lists[i] = prepare(h, method, url, headers, body, body ? strlen(body) : 0,
			      &b->replies[i]);
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)(intptr_t)i);
	b->easy[i] = h;
	b->n++;
	curl_multi_add_handle(b->multi, h);
	return i;
}

int http_batch_run(struct http_batch *b, unsigned timeout_ms)
{
	struct timespec start, now;
	int running = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		CURLMsg *msg;
		int left;
		long elapsed;

		curl_multi_perform(b->multi, &running);
		while ((msg = curl_multi_info_read(b->multi, &left)) != NULL) {
			char *priv;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			finish(msg->easy_handle, msg->data.result,
			       &b->replies[(intptr_t)priv]);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed = (now.tv_sec - start.tv_sec) * 1000 +
			  (now.tv_nsec - start.tv_nsec) / 1000000;
		if (running == 0 || elapsed >= (long)timeout_ms)
			return running;
		curl_multi_poll(b->multi, NULL, 0, (int)((long)timeout_ms - elapsed), NULL);
	}
}

const struct http_reply *http_batch_reply(struct http_batch *b, int i)
{
	return &b->replies[i];
}

void http_batch_free(struct http_batch *b)
{
	for (int i = 0; i < b->n; i++) {
		curl_multi_remove_handle(b->multi, b->easy[i]);
		curl_easy_cleanup(b->easy[i]);
		curl_slist_free_all(b->lists[i]);
		http_reply_free(&b->replies[i]);
	}
	curl_multi_cleanup(b->multi);
	free(b);
}

size_t http_head_content_length(const char *head, size_t len)
{
	const char *p = head, *end = head + len;

	while ((p = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL) {
		p += 2;
		if (end - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
			return (size_t)strtoul(p + 15, NULL, 10);
	}
	return 0;
}
