/* opts.h - one table of options feeds the command line, the config file, --help and -T.
 *
 * A program describes each setting once (struct opt_def: name, type, default, range, help)
 * and stores the values in a plain struct of its own; the table says where each value lives
 * by offsetof(). The same names are the long options ("--max-age 60") and the config file's
 * keys ("max-age 60"). Nothing here prints to stderr or exits: every function returns 0 or a
 * negative errno and words the reason into the caller's <err> buffer.
 */
#ifndef MTPS_OPTS_H
#define MTPS_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_type {
	OPT_FLAG = 0,		/* bool; takes no argument on the command line, yes/no in a file */
	OPT_INT,		/* int in [min, max] */
	OPT_SIZE,		/* uint64_t bytes: 512, 64K, 256M, 4G (powers of 1024) */
	OPT_DURATION,		/* uint64_t milliseconds: 500ms, 2s, 5m, 1h, 1d; a bare number is seconds */
	OPT_STRING,		/* char *, owned by the settings struct; opts_free() frees it.
				 * No control characters; one of <choices> when those are given */
	OPT_LIST,		/* struct opt_list: a repeatable string option. Each occurrence
				 * appends a copy, checked as OPT_STRING is; at most OPTS_LIST_MAX.
				 * <def> is one value, or NULL for an empty list */
};

/* The most values one OPT_LIST option holds; one more is an error, not a silent cut. */
#define OPTS_LIST_MAX 64

/* The settings field of an OPT_LIST option: <n> strings in v[0..n-1], owned by the settings
 * struct and freed by opts_free(). Empty is { NULL, 0 }, which a zeroed struct already is.
 *
 * Where the values come from: each source replaces what the sources before it gave, and
 * within one source the occurrences add up in order. The table's default is one value (or
 * none); the config file's "backend" lines, when there is at least one, replace the default;
 * the command line's --backend options, when there is at least one, replace the file's lines
 * (the command line wins, as it does for every other option) rather than adding to them.
 * An option that a source does not name keeps what the earlier sources gave. */
struct opt_list {
	char **v;
	size_t n;
};

enum opt_flags {
	OPT_CLI_ONLY = 1 << 0,	/* not a config file key (--help, --config, ...) */
	OPT_RESTART = 1 << 1,	/* a reload cannot change it (a listening address, threads) */
};

struct opt_def {
	const char *name;	/* long option and config key, e.g. "max-age" */
	char short_name;	/* e.g. 'p', or 0 */
	enum opt_type type;
	unsigned flags;		/* enum opt_flags */
	size_t offset;		/* offsetof(settings struct, field) */
	const char *metavar;	/* e.g. "PORT"; NULL for flags */
	const char *def;	/* default, written as a user would write it; NULL = unset/zero */
	long long min, max;	/* inclusive range for INT, SIZE (bytes) and DURATION (ms) */
	const char *help;	/* one line for --help */
	const char *const *choices;	/* STRING, LIST: allowed values, NULL-terminated; or NULL */
};

#define OPT_END { .name = NULL }

/* Parses a decimal integer with nothing after it. Returns 0 or -EINVAL / -ERANGE. */
int opts_parse_int(const char *s, long long *out);
/* Parses "4096", "64K", "256M", "4G", "1T" (binary units, optional "B"/"iB"). */
int opts_parse_size(const char *s, uint64_t *out);
/* Parses "250ms", "2s", "5m", "1h", "1d"; a bare number means seconds. Result in ms. */
int opts_parse_duration(const char *s, uint64_t *out);

/* Stores every option's default into <settings> (a list is emptied, then gets its default, if
 * any, as its one value). Returns 0, -ENOMEM, or -EINVAL when a default in the table does not
 * parse (a programming error, worded into <err>). */
int opts_set_defaults(const struct opt_def *tab, void *settings, char *err, size_t errlen);

/* Parses <value> as option <o> and stores it. Returns 0, -ENOMEM, or -EINVAL with <err> set
 * to "bad value 'x' for port: ...". A string option's previous value is freed; a list option
 * gets <value> appended, and a list that already holds OPTS_LIST_MAX values is -EINVAL with
 * "too many values for backend (at most 64)". */
int opts_set(const struct opt_def *o, void *settings, const char *value, char *err,
	     size_t errlen);

/* Applies the options in argv[1..argc-1]. Accepts --name VALUE, --name=VALUE, -x VALUE and
 * -xVALUE; arguments that are not options are an error. A list option given here at least
 * once loses the values it had (from the file or the default) and holds just the ones given
 * here, in order. Returns 0, -ENOMEM, or -EINVAL with <err>. */
int opts_parse_args(const struct opt_def *tab, void *settings, int argc, char **argv,
		    char *err, size_t errlen);

/* Returns the argument given to option <name> in argv (the last one wins), or NULL. Used to
 * find --config before the file is read, so that the command line can then win over it. */
const char *opts_peek_arg(const struct opt_def *tab, int argc, char **argv, const char *name);

/* Reads a config file of "key value" lines ('#' starts a comment, blank lines are fine,
 * a value may be "double-quoted", with \" and \\ inside). Errors read "FILE:LINE: what is
 * wrong". A key given twice is an error, except a list's key: each of its lines appends a
 * value, and the first one in the file drops the values the list had (its default).
 * Returns 0, -EINVAL, -ENOMEM, or a negative errno when the file cannot be read. */
int opts_parse_file(const struct opt_def *tab, void *settings, const char *path, char *err,
		    size_t errlen);

/* A program's own check of one value a file gives (a backend's HOST:PORT, an address),
 * beyond what the table says. Returns 0, or -EINVAL with what is wrong worded into <err>
 * (e.g. "want HOST:PORT"). */
typedef int opts_check_fn(const struct opt_def *o, const char *value, char *err,
			  size_t errlen);

/* opts_parse_file(), and every value that parses is also given to <check> (when not NULL),
 * so that a program's own checks name the FILE:LINE too: "FILE:LINE: bad value 'x' for
 * key: <what check said>". */
int opts_parse_file_checked(const struct opt_def *tab, void *settings, const char *path,
			    opts_check_fn *check, char *err, size_t errlen);

/* Writes the --help text for every option: "  -p, --port PORT   help (default: 3000)";
 * a list option's line ends in " (repeatable)". */
void opts_usage(const struct opt_def *tab, FILE *out);

/* Writes the effective settings in config file syntax, one "key value" line each (a list
 * gets one line per value, none when it is empty), so that opts_parse_file() reads them back
 * unchanged. */
void opts_print(const struct opt_def *tab, const void *settings, FILE *out);

/* Says whether option <o> holds the same value in settings <a> and <b>. */
bool opts_equal(const struct opt_def *o, const void *a, const void *b);

/* Exchanges option <o>'s values between settings <a> and <b> (strings and lists move with
 * their ownership): a reload keeps the running value of an option it cannot change. */
void opts_swap(const struct opt_def *o, void *a, void *b);

/* Frees the strings and lists that opts_set() stored in <settings>, leaving them NULL and
 * empty. */
void opts_free(const struct opt_def *tab, void *settings);

#endif
