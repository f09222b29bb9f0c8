/* File helpers: read-only mappings, whole-file reads with a size bound, and
 * atomic writes (temporary name in the same directory, fsync, rename, fsync
 * of the directory) so a crash never leaves a half-written file. */
#ifndef SK_FILES_H
#define SK_FILES_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
	const void *data;  /* NULL for an empty file */
	size_t len;
} sk_mapping;

/* Maps a regular file read-only. Errors name the path. */
int sk_map_file(const char *path, sk_mapping *m);
void sk_unmap_file(sk_mapping *m);

/* Reads a whole file (at most max_len bytes, else an error) into a
 * NUL-terminated malloc'd buffer. */
int sk_read_file(const char *path, size_t max_len, char **data, size_t *len);

/* The one report of a file that could not be written (a failed write,
 * flush, sync or close): "PATH: write failed: REASON", REASON being
 * strerror(err) so that a full disk says so. err is errno at the failure;
 * 0 reads as EIO, as stdio does not always set errno. Returns -1. */
int sk_fail_write(const char *path, int err);
/* fwrite of all n bytes to fp: 0, or -1 after sk_fail_write. */
int sk_fwrite_all(FILE *fp, const char *path, const void *data, size_t n);
/* Flushes fp, fsyncs it when sync is set, and closes it (always): 0, or -1
 * after sk_fail_write, also for an earlier write that failed unnoticed. */
int sk_fclose_written(FILE *fp, const char *path, int sync);

/* Atomic writer: sk_atomic_open gives a FILE* on PATH.tmp.XXXXXX;
 * sk_atomic_commit flushes, fsyncs and renames it over PATH;
 * sk_atomic_abort removes the temporary file. */
typedef struct {
	FILE *fp;
	char *path;
	char *tmp_path;
} sk_atomic_file;

int sk_atomic_open(sk_atomic_file *af, const char *path);
int sk_atomic_commit(sk_atomic_file *af);
void sk_atomic_abort(sk_atomic_file *af);
int sk_write_file_atomic(const char *path, const void *data, size_t len);

/* dir + "/" + file, malloc'd (NULL when out of memory). */
char *sk_path_join(const char *dir, const char *file);

/* 1 if path is a directory, 0 if it is something else, -1 if it does not exist. */
int sk_is_dir(const char *path);
int sk_file_exists(const char *path);
/* mkdir -p */
int sk_mkdirs(const char *path, unsigned mode);

#endif
