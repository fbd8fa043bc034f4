/* log.h - leveled logging to stderr, shared by every mtps program.
 *
 * Lines go to stderr, which journald collects when the program runs under systemd. When
 * stderr is the journal (JOURNAL_STREAM names it) each line carries a "<N>" priority prefix
 * that journald understands; otherwise it starts with an ISO 8601 UTC timestamp.
 * Thread-safe: each line is formatted into a local buffer and written with one write(2).
 */
#ifndef MTPS_LOG_H
#define MTPS_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* The level names by enum log_level, NULL-terminated: also an option's list of choices. */
extern const char *const log_level_names[];

/* Sets the program name printed on every line and decides between timestamps and journald
 * prefixes. Call once from main() before any thread starts. <ident> must outlive the program. */
void log_init(const char *ident);

/* Sets the most verbose level that is printed (default LOG_LEVEL_INFO). */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug". Returns the level, or -1 when unknown. */
int log_level_parse(const char *name);

/* Returns nonzero when <level> would be printed. */
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
