/* Directories that appear whole or not at all: the content is written into
 * a temporary sibling (DIR.tmp-XXXXXX), every file and the directory are
 * fsynced, then it is renamed to DIR. An older DIR is swapped out
 * atomically (renameat2 RENAME_EXCHANGE, or rename-away on filesystems
 * without it) and removed afterwards, so a crash at any point leaves either
 * the old or the new directory under DIR, plus at most a leftover sibling. */
#ifndef SK_ATOMIC_DIR_H
#define SK_ATOMIC_DIR_H

typedef struct {
	char *path;     /* the final name */
	char *tmp_path; /* where to write the content */
} sk_atomic_dir;

/* Creates the parent directories and DIR.tmp-XXXXXX. */
int sk_atomic_dir_begin(sk_atomic_dir *d, const char *path);
/* fsyncs the content, renames it into place and removes the old DIR.
 * On failure the temporary directory is removed. */
int sk_atomic_dir_commit(sk_atomic_dir *d);
/* Removes the temporary directory and its content. */
void sk_atomic_dir_abort(sk_atomic_dir *d);

/* rm -r that never follows symbolic links. 0, or -1 + sk_error(). */
int sk_rmtree(const char *path);
/* fsync of a directory (so renames and creations inside it are durable). */
int sk_fsync_dir(const char *path);

/* Test hook: 1 forces the rename-away fallback instead of RENAME_EXCHANGE. */
void sk_atomic_dir_set_no_exchange(int on);

#endif
