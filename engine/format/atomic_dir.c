#include "engine/format/atomic_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"

static int no_exchange;

void sk_atomic_dir_set_no_exchange(int on)
{
	no_exchange = on;
}

int sk_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sk_fail(_("%s: cannot open directory: %s"), path, strerror(errno));
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	/* some filesystems refuse fsync on directories; the data files were synced */
	if (rc != 0 && e != EINVAL && e != EROFS)
		return sk_fail(_("%s: fsync failed: %s"), path, strerror(e));
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	int rc = (flag == FTW_DP || flag == FTW_D) ? rmdir(p) : unlink(p);
	return rc != 0 && errno != ENOENT ? -1 : 0;
}

int sk_rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : sk_fail("%s: %s", path, strerror(errno));
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return sk_fail(_("%s: cannot remove: %s"), path, strerror(errno));
	return 0;
}

static int sync_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	if (flag != FTW_F && flag != FTW_DP)
		return 0;
	if (flag == FTW_F && !S_ISREG(st->st_mode))
		return 0;
	int fd = open(p, O_RDONLY | O_CLOEXEC | (flag == FTW_DP ? O_DIRECTORY : 0));
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	if (rc != 0 && e != EINVAL && e != EROFS) {
		errno = e;
		return -1;
	}
	return 0;
}

static char *with_suffix(const char *path, const char *suffix)
{
	size_t n = strlen(path), k = strlen(suffix);
	char *s = malloc(n + k + 1);
	if (s) {
		memcpy(s, path, n);
		memcpy(s + n, suffix, k + 1);
	}
	return s;
}

static char *parent_of(const char *path)
{
	char *c = strdup(path);
	if (!c)
		return NULL;
	char *d = strdup(dirname(c));
	free(c);
	return d;
}

int sk_atomic_dir_begin(sk_atomic_dir *d, const char *path)
{
	d->path = strdup(path);
	d->tmp_path = with_suffix(path, ".tmp-XXXXXX");
	char *parent = parent_of(path);
	if (!d->path || !d->tmp_path || !parent) {
		free(parent);
		sk_atomic_dir_abort(d);
		return sk_fail(_("%s: out of memory"), path);
	}
	int rc = sk_mkdirs(parent, 0755);
	free(parent);
	if (rc) {
		sk_atomic_dir_abort(d);
		return -1;
	}
	if (!mkdtemp(d->tmp_path)) {
		int e = errno;
		free(d->tmp_path);
		d->tmp_path = NULL;
		sk_atomic_dir_abort(d);
		return sk_fail(_("%s: cannot create a temporary directory: %s"), path, strerror(e));
	}
	chmod(d->tmp_path, 0755);
	return 0;
}

void sk_atomic_dir_abort(sk_atomic_dir *d)
{
	if (d->tmp_path)
		sk_rmtree(d->tmp_path);
	free(d->path);
	free(d->tmp_path);
	d->path = d->tmp_path = NULL;
}

/* Moves the old directory away under a fresh unique name, returned malloc'd. */
static char *move_away(const char *path)
{
	char *old = with_suffix(path, ".old-XXXXXX");
	if (!old)
		return NULL;
	/* mkdtemp reserves the name; rename may replace an empty directory */
	if (!mkdtemp(old) || rename(path, old) != 0) {
		int e = errno;
		rmdir(old);
		free(old);
		errno = e;
		return NULL;
	}
	return old;
}

int sk_atomic_dir_commit(sk_atomic_dir *d)
{
	if (nftw(d->tmp_path, sync_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		int rc = sk_fail(_("%s: cannot sync: %s"), d->tmp_path, strerror(errno));
		sk_atomic_dir_abort(d);
		return rc;
	}
	int exists = sk_is_dir(d->path);
	if (exists == 0) {
		int rc = sk_fail(_("%s: exists and is not a directory"), d->path);
		sk_atomic_dir_abort(d);
		return rc;
	}
	char *old = NULL;
	if (exists < 0) {
		if (rename(d->tmp_path, d->path) != 0) {
			int rc = sk_fail(_("%s: cannot rename into place: %s"), d->path, strerror(errno));
			sk_atomic_dir_abort(d);
			return rc;
		}
	} else {
		int swapped = 0;
#ifdef RENAME_EXCHANGE
		if (!no_exchange) {
			if (renameat2(AT_FDCWD, d->tmp_path, AT_FDCWD, d->path, RENAME_EXCHANGE) == 0)
				swapped = 1;
			else if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
				int rc = sk_fail(_("%s: cannot rename into place: %s"), d->path, strerror(errno));
				sk_atomic_dir_abort(d);
				return rc;
			}
		}
#endif
		if (swapped) {
			old = d->tmp_path; /* now holds the previous content */
			d->tmp_path = NULL;
		} else {
			old = move_away(d->path);
			if (!old) {
				int rc = sk_fail(_("%s: cannot move the old directory away: %s"), d->path,
						 strerror(errno));
				sk_atomic_dir_abort(d);
				return rc;
			}
			if (rename(d->tmp_path, d->path) != 0) {
				int rc = sk_fail(_("%s: cannot rename into place: %s"), d->path, strerror(errno));
				rename(old, d->path); /* put the old one back */
				free(old);
				sk_atomic_dir_abort(d);
				return rc;
			}
		}
	}
	free(d->tmp_path);
	d->tmp_path = NULL;
	char *parent = parent_of(d->path);
	int rc = parent ? sk_fsync_dir(parent) : sk_fail(_("%s: out of memory"), d->path);
	free(parent);
	if (old) {
		/* the new directory is in place: failing to delete the old one only wastes space */
		sk_rmtree(old);
		free(old);
	}
	free(d->path);
	d->path = NULL;
	return rc;
}
