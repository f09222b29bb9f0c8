/* Per-user directories (XDG Base Directory): cache for models and
 * tokenizer caches, state for chat history. */
#ifndef SK_PATHS_H
#define SK_PATHS_H

#include <stddef.h>

/* $XDG_CACHE_HOME/sokhan or ~/.cache/sokhan, with SUB appended when not NULL;
 * created if missing. Returns 0 and writes into buf, or -1. */
int sk_cache_dir(const char *sub, char *buf, size_t cap);
/* $XDG_STATE_HOME/sokhan or ~/.local/state/sokhan, likewise. */
int sk_state_dir(const char *sub, char *buf, size_t cap);

#endif
