/* delay.h - a timer queue: calls a function once its due time has come.
 *
 * mtps-origin uses it for --latency-ms: a request that must wait is suspended (its
 * libmicrohttpd worker goes on serving others) and the queue's one thread resumes it when
 * the time is up, so a thousand delayed requests cost a thousand heap entries, not a
 * thousand blocked threads. A binary min-heap ordered by due time, bounded by <cap>.
 * Thread-safe: any thread may add; callbacks run on the queue's own thread.
 */
#ifndef MTPS_DELAY_H
#define MTPS_DELAY_H

#include <stddef.h>
#include <stdint.h>

typedef void delay_fn(void *arg);

struct delay;

/* Returns a queue for at most <cap> pending calls, its thread running, or NULL (errno set). */
struct delay *delay_start(size_t cap);

/* Schedules fn(arg) at <due_ms> on the monotonic clock (delay_now_ms()). Returns 0, or
 * -ENOSPC when <cap> calls are pending, or -ESHUTDOWN after delay_shutdown(). */
int delay_add(struct delay *d, uint64_t due_ms, delay_fn *fn, void *arg);

/* Returns the monotonic clock in milliseconds. */
uint64_t delay_now_ms(void);

/* Stops the thread, then calls every pending function at once, in due order, so that
 * nothing waits forever. From then on delay_add() fails with -ESHUTDOWN, so callers that
 * still run (libmicrohttpd workers until MHD_stop_daemon() returns) must not rely on the
 * queue. The queue stays allocated: free it with delay_free() once no thread can call
 * delay_add() any more. */
void delay_shutdown(struct delay *d);

/* Frees a queue after delay_shutdown(). */
void delay_free(struct delay *d);

#endif
