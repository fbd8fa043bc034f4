/* dashboard.h - the admin listener's dashboard files (proxy/dashboard/), compiled in:
 * dashboard-files.c is generated from them at build time by proxy/dashboard/embed.sh. */
#ifndef MTPS_DASHBOARD_H
#define MTPS_DASHBOARD_H

#include <stddef.h>

struct dashboard_file {
	const char *path;		/* "/", "/dashboard.js", ... */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};

/* Terminated by an entry whose path is NULL. */
extern const struct dashboard_file dashboard_files[];

#endif
