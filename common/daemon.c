/* daemon.c - pid file, privileges, log files (see daemon.h). */
#include "config.h"

#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "opts.h"

int daemon_write_pid(const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX], line[32];
	int fd, n, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot write the pid file %s: %s", tmp, strerror(errno));
		return r;
	}
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n || close(fd) < 0 || rename(tmp, path) < 0) {
		r = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot write the pid file %s: %s", path, strerror(-r));
		unlink(tmp);
		return r;
	}
	return 0;
}

void daemon_remove_pid(const char *path)
{
	char buf[32] = "";
	long long pid;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (opts_parse_int(buf, &pid) == 0 && pid == (long long)getpid())
		unlink(path);
}

/* Resolves a user name or number. */
static int lookup_user(const char *name, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd *pw;
	long long n;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL && opts_parse_int(name, &n) == 0 && n >= 0 && n < UINT_MAX)
		pw = getpwuid((uid_t)n);
	if (pw) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		return 0;
	}
	if (opts_parse_int(name, &n) == 0 && n >= 0 && n < UINT_MAX) {
		*uid = (uid_t)n;	/* a number with no passwd entry: its own group */
		*gid = (gid_t)n;
		return 0;
	}
	snprintf(err, errlen, "no such user '%s'", name);
	return -ENOENT;
}

static int lookup_group(const char *name, gid_t *gid, char *err, size_t errlen)
{
	struct group *gr = getgrnam(name);
	long long n;

	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (opts_parse_int(name, &n) == 0 && n >= 0 && n < UINT_MAX) {
		*gid = (gid_t)n;
		return 0;
	}
	snprintf(err, errlen, "no such group '%s'", name);
	return -ENOENT;
}

int daemon_drop_privileges(const char *user, const char *group, char *err, size_t errlen)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	int r;

	if (user == NULL && group == NULL)
		return 0;
	if (user) {
		r = lookup_user(user, &uid, &gid, err, errlen);
		if (r)
			return r;
	}
	if (group) {
		r = lookup_group(group, &gid, err, errlen);
		if (r)
			return r;
	}
	if (geteuid() != 0) {
		if (uid == geteuid() && gid == getegid())
			return 0;	/* already who we should be */
		snprintf(err, errlen, "--user and --group need root (running as uid %ld)",
			 (long)geteuid());
		return -EPERM;
	}
	/* the group first: without root, setgid() would no longer be allowed */
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot switch to uid %ld gid %ld: %s", (long)uid,
			 (long)gid, strerror(errno));
		return r;
	}
	if (uid != 0 && setuid(0) == 0) {
		snprintf(err, errlen, "could regain root after switching to uid %ld", (long)uid);
		return -EPERM;
	}
	return 0;
}

int daemon_redirect(int fd, const char *path, char *err, size_t errlen)
{
	int nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	int r;

	if (nfd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return r;
	}
	if (nfd != fd && dup2(nfd, fd) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot use %s: %s", path, strerror(errno));
		close(nfd);
		return r;
	}
	if (nfd != fd)
		close(nfd);
	return 0;
}
