/* Command-line conventions shared by every command: GNU long options, the
 * common options parsed in one place, help text, and the exit statuses
 * (0 success, 1 runtime error "sokhan: error: ...", 2 usage error). */
#ifndef SK_CLI_H
#define SK_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend/backend_info.h"
#include "engine/error.h"
#include "engine/model/generate.h"
#include "ui/bidi.h"

enum { SK_EXIT_OK = 0, SK_EXIT_ERROR = 1, SK_EXIT_USAGE = 2 };

typedef enum { SK_QUANT_NONE, SK_QUANT_NF4 } sk_quant_mode;

/* Which common options a command accepts (bit mask). */
enum {
	SK_CO_MODEL = 1 << 0,
	SK_CO_ADAPTER = 1 << 1,
	SK_CO_DEVICE = 1 << 2,
	SK_CO_QUANT = 1 << 3,
	SK_CO_THREADS = 1 << 4,
	SK_CO_SEED = 1 << 5,
	SK_CO_VERBOSITY = 1 << 6,
	SK_CO_SAMPLING = 1 << 7, /* --greedy, --temp, --top-k, --top-p, --min-p, --repeat-penalty */
	SK_CO_ALL = 0xff
};

typedef struct {
	const char *model;
	const char *adapter;
	sk_device device;
	sk_quant_mode quant;
	int threads;     /* 0: one per core */
	uint64_t seed;
	int verbosity;   /* -1 quiet, 0 normal, 1 verbose */
	sk_sampling sampling; /* the defaults, changed by the sampling options; .seed = seed */
	int sampling_set;     /* a sampling option other than --greedy was given */
} sk_common_opts;

typedef struct {
	const char *name;      /* "info" */
	const char *args;      /* "--model PATH [--tensors]" */
	const char *summary;   /* one line, translated at print time */
	const char *options;   /* the command's own options, one per line, translated at print time */
	unsigned common;       /* SK_CO_* mask */
} sk_command_help;

/* Called for each of the command's own options; returns 0, or 2 after
 * printing a usage error. */
typedef int (*sk_cli_opt_fn)(void *ctx, int opt, const char *arg);

/* Parses argv (argv[0] is the command name). Returns 0 with *first_arg set to
 * the index of the first positional argument; 1 when --help was printed (the
 * command then exits 0); 2 after a usage error was printed. */
int sk_cli_parse(int argc, char **argv, const sk_command_help *help, const struct option *own,
                 const char *own_short, sk_cli_opt_fn on_opt, void *ctx, sk_common_opts *co,
                 int *first_arg);

void sk_cli_print_help(const sk_command_help *help);
/* "sokhan CMD: MESSAGE" and a hint to --help on stderr; returns 2. */
int sk_cli_usage(const sk_command_help *help, const char *fmt, ...) SK_PRINTF(2, 3);
/* "sokhan: error: MESSAGE" on stderr; returns 1. */
int sk_cli_error(const char *fmt, ...) SK_PRINTF(1, 2);
/* Reports sk_error() as a runtime error; returns 1. */
int sk_cli_fail(void);

/* Strict number parsing for option values: 0, or a usage error (returns 2). */
int sk_cli_parse_int(const sk_command_help *help, const char *opt, const char *arg, long long min,
                     long long max, long long *out);
int sk_cli_parse_float(const sk_command_help *help, const char *opt, const char *arg, double min,
                       double max, double *out);

/* Informational message on stderr unless --quiet (level 0) or only with
 * --verbose (level 1). */
void sk_cli_note(const sk_common_opts *co, int level, const char *fmt, ...) SK_PRINTF(3, 4);

/* The model used when --model is not given: $SK_DEFAULT_MODEL, else the
 * default Gemma 3 270M in the cache (data/fetch-model.sh puts it there).
 * Returns 0 with the path in buf, or -1 (with sk_error() naming the path
 * looked at and how to get the model) when neither exists. */
int sk_cli_default_model(char *buf, size_t cap);
/* What every command that takes a model calls: keeps --model, else sets
 * co->model to the default model. 0, or 1 after printing the error. */
int sk_cli_model_or_default(sk_common_opts *co);

/* The display options of chat and tui. --bidi: *app = 1 for "app", 0 for
 * "terminal"; 0, or 2 after a usage error. */
int sk_cli_parse_bidi(const sk_command_help *h, const char *arg, int *app);
/* $SOKHAN_BIDI likewise, *app unchanged when it is not set. */
int sk_cli_env_bidi(const sk_command_help *h, int *app);
/* --shape: 0, or 2 after a usage error. */
int sk_cli_parse_shape(const sk_command_help *h, const char *arg, sk_shape_mode *m);
/* $SOKHAN_SHAPE: auto when it is not set or not a mode. */
sk_shape_mode sk_cli_env_shape(void);

/* Whether the user's interface language (LC_ALL, LC_MESSAGES or LANG, the
 * first one set) is written right to left (Persian, Arabic, Hebrew...). */
int sk_cli_ui_rtl(void);

/* label padded with spaces to `width` terminal columns (not bytes, so
 * Persian labels line up too); a rotating static buffer, valid for the
 * next few calls. */
const char *sk_cli_pad(const char *label, int width);

#endif
