/* pace.c - the open-loop send schedule (see pace.h). */
#include "config.h"

#include "pace.h"

#include <errno.h>
#include <math.h>

int pace_init(struct pace *p, double rate, uint64_t start_us)
{
	if (!(rate > 0.0 && rate <= 1e9))
		return -EINVAL;
	p->start_us = start_us;
	p->rate = rate;
	p->sent = 0;
	return 0;
}

uint64_t pace_due(const struct pace *p, uint64_t i)
{
	return p->start_us + (uint64_t)llround((double)i * 1e6 / p->rate);
}

uint64_t pace_next_due(const struct pace *p)
{
	return pace_due(p, p->sent);
}

bool pace_take(struct pace *p, uint64_t now_us, uint64_t *due_us)
{
	uint64_t due = pace_next_due(p);

	if (due > now_us)
		return false;
	*due_us = due;
	p->sent++;
	return true;
}

uint64_t pace_backlog(const struct pace *p, uint64_t now_us)
{
	uint64_t due_by_now;

	if (now_us < p->start_us)
		return 0;
	/* the requests i with due(i) <= now: i <= (now - start) * rate / 1e6 */
	due_by_now = (uint64_t)floor((double)(now_us - p->start_us) * p->rate / 1e6) + 1;
	while (due_by_now > 0 && pace_due(p, due_by_now - 1) > now_us)
		due_by_now--;
	while (pace_due(p, due_by_now) <= now_us)
		due_by_now++;
	return due_by_now > p->sent ? due_by_now - p->sent : 0;
}
