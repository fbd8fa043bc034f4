/* daemon.h - what a well-mannered Unix server does around its work: a pid file, dropping
 * root after binding, log files that logrotate can move. Called from main() only; nothing
 * here exits. Functions return 0 or a negative errno and word the reason into <err>.
 */
#ifndef MTPS_DAEMON_H
#define MTPS_DAEMON_H

#include <stddef.h>

/* Writes "<pid>\n" to <path> (through a temporary file renamed over it, so that a reader
 * never sees half a number). */
int daemon_write_pid(const char *path, char *err, size_t errlen);

/* Removes the pid file when it still holds our pid (another instance may own it by now). */
void daemon_remove_pid(const char *path);

/* Switches to <user> and <group> (names or numbers; either may be NULL). The group defaults
 * to the user's primary group; supplementary groups are dropped. Only root can do this:
 * for anyone else a given user or group is an error, unless it is the current one. */
int daemon_drop_privileges(const char *user, const char *group, char *err, size_t errlen);

/* Opens <path> for appending (created 0640) and puts it in place of descriptor <fd> with
 * dup2(): the way stderr becomes an error log file, and the way it is reopened after
 * logrotate. A thread writing to <fd> meanwhile writes to the old file or the new one. */
int daemon_redirect(int fd, const char *path, char *err, size_t errlen);

#endif
