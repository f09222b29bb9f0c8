/* Where files live: per-user directories (XDG Base Directory: cache for
 * models and tokenizer caches, state for chat history), and the data files
 * installed with sokhan. */
#ifndef SK_PATHS_H
#define SK_PATHS_H

#include <stddef.h>

/* $XDG_CACHE_HOME/sokhan or ~/.cache/sokhan, with SUB appended when not NULL;
 * created if missing. Returns 0 and writes into buf, or -1. */
int sk_cache_dir(const char *sub, char *buf, size_t cap);
/* $XDG_STATE_HOME/sokhan or ~/.local/state/sokhan, likewise. */
int sk_state_dir(const char *sub, char *buf, size_t cap);

/* A data file of sokhan (data/NAME in the source tree, e.g. the sample
 * dataset persian-sample.jsonl): beside the executable for a build that is
 * not installed (the build makes ./sokhan at the top of the tree, so
 * <dir of the executable>/data/NAME), else where `make install` put it
 * (SK_PKGDATADIR/NAME). 0 with the path in buf, or -1 (sk_error() names
 * both places) when neither is readable. */
int sk_data_path(const char *name, char *buf, size_t cap);
/* The sample dataset: the Train form's default. */
#define SK_SAMPLE_DATASET "persian-sample.jsonl"
/* The same with the two places given (exe_dir may be NULL): for tests. */
int sk_data_path_in(const char *exe_dir, const char *pkgdatadir, const char *name, char *buf, size_t cap);

#endif
