#include "engine/format/files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/i18n.h"

int sk_map_file(const char *path, sk_mapping *m)
{
	m->data = NULL;
	m->len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sk_fail("%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return sk_fail("%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return sk_fail(_("%s: not a regular file"), path);
	}
	if (st.st_size > 0) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			return sk_fail(_("%s: cannot map: %s"), path, strerror(e));
		}
		m->data = p;
		m->len = (size_t)st.st_size;
	}
	close(fd);
	return 0;
}

void sk_unmap_file(sk_mapping *m)
{
	if (m->data)
		munmap((void *)m->data, m->len);
	m->data = NULL;
	m->len = 0;
}

int sk_read_file(const char *path, size_t max_len, char **data, size_t *len)
{
	*data = NULL;
	if (len)
		*len = 0;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return sk_fail("%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(fp);
		return sk_fail(_("%s: not a regular file"), path);
	}
	if ((uint64_t)st.st_size > max_len) {
		fclose(fp);
		return sk_fail(_("%s: file too large (%lld bytes, at most %zu)"), path,
		               (long long)st.st_size, max_len);
	}
	size_t n = (size_t)st.st_size;
	char *buf = malloc(n + 1);
	if (!buf) {
		fclose(fp);
		return sk_fail(_("%s: out of memory"), path);
	}
	if (n && fread(buf, 1, n, fp) != n) {
		free(buf);
		fclose(fp);
		return sk_fail(_("%s: read error"), path);
	}
	fclose(fp);
	buf[n] = '\0';
	*data = buf;
	if (len)
		*len = n;
	return 0;
}

int sk_fail_write(const char *path, int err)
{
	return sk_fail(_("%s: write failed: %s"), path, strerror(err ? err : EIO));
}

int sk_fwrite_all(FILE *fp, const char *path, const void *data, size_t n)
{
	errno = 0;
	if (n && fwrite(data, 1, n, fp) != n)
		return sk_fail_write(path, errno);
	return 0;
}

int sk_fclose_written(FILE *fp, const char *path, int sync)
{
	int bad = 1, err = 0;
	errno = 0;
	if (fflush(fp) != 0)
		err = errno;
	else if (ferror(fp))
		err = EIO; /* a write failed earlier and its errno is gone */
	else if (sync && fsync(fileno(fp)) != 0)
		err = errno;
	else
		bad = 0;
	errno = 0;
	if (fclose(fp) != 0 && !bad) {
		bad = 1;
		err = errno;
	}
	return bad ? sk_fail_write(path, err) : 0;
}

static void sk_fsync_parent(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

int sk_atomic_open(sk_atomic_file *af, const char *path)
{
	memset(af, 0, sizeof *af);
	size_t n = strlen(path);
	af->path = strdup(path);
	af->tmp_path = malloc(n + 16);
	if (!af->path || !af->tmp_path) {
		free(af->path);
		free(af->tmp_path);
		return sk_fail(_("%s: out of memory"), path);
	}
	memcpy(af->tmp_path, path, n);
	memcpy(af->tmp_path + n, ".tmp.XXXXXX", 12);
	int fd = mkstemp(af->tmp_path);
	if (fd < 0) {
		int e = errno;
		free(af->path);
		free(af->tmp_path);
		af->path = af->tmp_path = NULL;
		return sk_fail(_("%s: cannot create a temporary file: %s"), path, strerror(e));
	}
	fchmod(fd, 0644);
	af->fp = fdopen(fd, "wb");
	if (!af->fp) {
		close(fd);
		unlink(af->tmp_path);
		free(af->path);
		free(af->tmp_path);
		af->path = af->tmp_path = NULL;
		return sk_fail(_("%s: out of memory"), path);
	}
	return 0;
}

int sk_atomic_commit(sk_atomic_file *af)
{
	int rc = sk_fclose_written(af->fp, af->path, 1);
	af->fp = NULL;
	if (rc == 0 && rename(af->tmp_path, af->path) != 0)
		rc = sk_fail(_("%s: cannot rename into place: %s"), af->path, strerror(errno));
	if (rc) {
		sk_atomic_abort(af);
		return rc;
	}
	sk_fsync_parent(af->path);
	free(af->path);
	free(af->tmp_path);
	af->path = af->tmp_path = NULL;
	return 0;
}

void sk_atomic_abort(sk_atomic_file *af)
{
	if (af->fp)
		fclose(af->fp);
	af->fp = NULL;
	if (af->tmp_path)
		unlink(af->tmp_path);
	free(af->path);
	free(af->tmp_path);
	af->path = af->tmp_path = NULL;
}

int sk_write_file_atomic(const char *path, const void *data, size_t len)
{
	sk_atomic_file af;
	if (sk_atomic_open(&af, path) != 0)
		return -1;
	if (sk_fwrite_all(af.fp, path, data, len) != 0) {
		sk_atomic_abort(&af);
		return -1;
	}
	return sk_atomic_commit(&af);
}

int sk_is_dir(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	return S_ISDIR(st.st_mode) ? 1 : 0;
}

int sk_file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int sk_mkdirs(const char *path, unsigned mode)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return sk_fail(_("%s: bad directory name"), path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return sk_fail(_("%s: cannot create directory: %s"), buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return sk_fail(_("%s: cannot create directory: %s"), buf, strerror(errno));
	if (sk_is_dir(buf) != 1)
		return sk_fail(_("%s: not a directory"), buf);
	return 0;
}

char *sk_path_join(const char *dir, const char *file)
{
	size_t a = strlen(dir), b = strlen(file);
	char *p = malloc(a + b + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, file, b + 1);
	return p;
}
