/* Whole checkpoints (formats.md §4.5): a directory with
 * model.safetensors.index.json, a directory of *.safetensors files, or one
 * file. All tensors go into one table sorted by name for lookups. */
#include "engine/format/safetensors.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"

#define SK_ST_INDEX_NAME "model.safetensors.index.json"
#define SK_ST_MAX_INDEX (64u << 20)  /* a real index is well under 1 MB */
#define SK_ST_MAX_SHARDS 100000u

struct sk_st_checkpoint {
	size_t nfiles;
	sk_st_file **files;
	size_t n;
	const sk_tensor_view **all;     /* file order, then data order */
	const sk_tensor_view **by_name;
	size_t unmapped;
};

static int sk_st_name_cmp(const void *a, const void *b)
{
	const sk_tensor_view *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int sk_st_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens the named files of dir in order into c->files. */
static int sk_st_open_files(sk_st_checkpoint *c, const char *dir, char **names, size_t n)
{
	c->files = calloc(n ? n : 1, sizeof *c->files);
	if (!c->files)
		return sk_fail(_("%s: out of memory"), dir);
	for (size_t i = 0; i < n; i++) {
		char *p = sk_path_join(dir, names[i]);
		if (!p)
			return sk_fail(_("%s: out of memory"), dir);
		if (sk_file_exists(p) <= 0) {
			sk_fail(_("%s: shard '%s' does not exist"), dir, names[i]);
			free(p);
			return -1;
		}
		c->files[i] = sk_st_open(p);
		free(p);
		if (!c->files[i])
			return -1;
		c->nfiles = i + 1;
	}
	return 0;
}

/* Builds the merged tables; a name in two files is an error. */
static int sk_st_merge(sk_st_checkpoint *c, const char *where)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		n += sk_st_count(c->files[i]);
	c->all = calloc(n ? n : 1, sizeof *c->all);
	c->by_name = calloc(n ? n : 1, sizeof *c->by_name);
	if (!c->all || !c->by_name)
		return sk_fail(_("%s: out of memory"), where);
	size_t k = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		for (size_t j = 0; j < sk_st_count(c->files[i]); j++)
			c->all[k++] = sk_st_tensor(c->files[i], j);
	memcpy(c->by_name, c->all, n * sizeof *c->all);
	qsort(c->by_name, n, sizeof *c->by_name, sk_st_name_cmp);
	c->n = n;
	for (size_t i = 1; i < n; i++)
		if (strcmp(c->by_name[i - 1]->name, c->by_name[i]->name) == 0)
			return sk_fail(_("%s: tensor '%s' is in both %s and %s"), where, c->by_name[i]->name,
				       c->by_name[i - 1]->file, c->by_name[i]->file);
	return 0;
}

/* A shard named in the index must be a plain file name inside the directory. */
static int sk_st_shard_name_ok(const char *s)
{
	return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static const char *sk_st_basename(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int sk_st_open_index(sk_st_checkpoint *c, const char *dir, const char *ipath)
{
	char *text = NULL;
	size_t len = 0;
	if (sk_read_file(ipath, SK_ST_MAX_INDEX, &text, &len) < 0)
		return -1;
	json_error_t err;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	free(text);
	if (!root)
		return sk_fail(_("%s: not valid JSON: %s (line %d)"), ipath, err.text, err.line);
	int rc = -1;
	char **shards = NULL;
	size_t nshards = 0;
	const json_t *wm = json_object_get(root, "weight_map");
	if (!json_is_object(root) || !json_is_object(wm)) {
		sk_fail(_("%s: no weight_map object"), ipath);
		goto out;
	}
	const json_t *meta = json_object_get(root, "metadata");
	if (meta && !json_is_object(meta)) {
		sk_fail(_("%s: metadata is not an object"), ipath);
		goto out;
	}
	size_t nkeys = json_object_size(wm);
	if (nkeys == 0) {
		sk_fail(_("%s: weight_map is empty"), ipath);
		goto out;
	}
	shards = calloc(nkeys, sizeof *shards);
	if (!shards) {
		sk_fail(_("%s: out of memory"), ipath);
		goto out;
	}
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)wm, key, val) {
		if (!json_is_string(val) || !sk_st_shard_name_ok(json_string_value(val))) {
			sk_fail(_("%s: weight_map entry '%s' does not name a file in the directory"), ipath, key);
			goto out;
		}
		shards[nshards++] = (char *)json_string_value(val);
	}
	/* The shards are the distinct values, opened in name order. */
	qsort(shards, nshards, sizeof *shards, sk_st_str_cmp);
	size_t u = 0;
	for (size_t i = 0; i < nshards; i++)
		if (u == 0 || strcmp(shards[u - 1], shards[i]))
			shards[u++] = shards[i];
	nshards = u;
	if (nshards > SK_ST_MAX_SHARDS) {
		sk_fail(_("%s: too many shards (%zu)"), ipath, nshards);
		goto out;
	}
	if (sk_st_open_files(c, dir, shards, nshards) < 0 || sk_st_merge(c, dir) < 0)
		goto out;
	json_object_foreach((json_t *)wm, key, val) {
		const char *shard = json_string_value(val);
		const sk_tensor_view *t = sk_st_checkpoint_find(c, key);
		if (!t) {
			sk_fail(_("%s: tensor '%s' is mapped to %s but is not in it"), ipath, key, shard);
			goto out;
		}
		if (strcmp(sk_st_basename(t->file), shard)) {
			sk_fail(_("%s: tensor '%s' is mapped to %s but is in %s"), ipath, key, shard, t->file);
			goto out;
		}
	}
	c->unmapped = c->n - nkeys;
	rc = 0;
out:
	free(shards);
	json_decref(root);
	return rc;
}

static int sk_st_has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a > b && strcmp(s + a - b, suf) == 0;
}

static int sk_st_open_dir(sk_st_checkpoint *c, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return sk_fail(_("%s: cannot open directory"), dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !sk_st_has_suffix(e->d_name, ".safetensors"))
			continue;
		if (n == SK_ST_MAX_SHARDS) {
			sk_fail(_("%s: too many .safetensors files"), dir);
			goto out;
		}
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 8;
			char **nn = realloc(names, nc * sizeof *nn);
			if (!nn) {
				sk_fail(_("%s: out of memory"), dir);
				goto out;
			}
			names = nn;
			cap = nc;
		}
		if (!(names[n] = strdup(e->d_name))) {
			sk_fail(_("%s: out of memory"), dir);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		sk_fail(_("%s: no %s and no .safetensors files in the directory"), dir, SK_ST_INDEX_NAME);
		goto out;
	}
	qsort(names, n, sizeof *names, sk_st_str_cmp);
	if (sk_st_open_files(c, dir, names, n) < 0 || sk_st_merge(c, dir) < 0)
		goto out;
	rc = 0;
out:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

sk_st_checkpoint *sk_st_checkpoint_open(const char *path)
{
	sk_st_checkpoint *c = calloc(1, sizeof *c);
	if (!c) {
		sk_fail(_("%s: out of memory"), path);
		return NULL;
	}
	int rc;
	int isdir = sk_is_dir(path);
	if (isdir < 0) {
		rc = sk_fail(_("%s: no such file or directory"), path);
	} else if (isdir == 0) {
		c->files = calloc(1, sizeof *c->files);
		if (!c->files)
			rc = sk_fail(_("%s: out of memory"), path);
		else if (!(c->files[0] = sk_st_open(path)))
			rc = -1;
		else {
			c->nfiles = 1;
			rc = sk_st_merge(c, path);
		}
	} else {
		char *ipath = sk_path_join(path, SK_ST_INDEX_NAME);
		if (!ipath)
			rc = sk_fail(_("%s: out of memory"), path);
		else if (sk_file_exists(ipath) > 0)
			rc = sk_st_open_index(c, path, ipath);
		else
			rc = sk_st_open_dir(c, path);
		free(ipath);
	}
	if (rc < 0) {
		sk_st_checkpoint_close(c);
		return NULL;
	}
	return c;
}

void sk_st_checkpoint_close(sk_st_checkpoint *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nfiles; i++)
		sk_st_close(c->files[i]);
	free(c->files);
	free(c->all);
	free(c->by_name);
	free(c);
}

size_t sk_st_checkpoint_count(const sk_st_checkpoint *c) { return c->n; }

const sk_tensor_view *sk_st_checkpoint_tensor(const sk_st_checkpoint *c, size_t i)
{
	return i < c->n ? c->all[i] : NULL;
}

const sk_tensor_view *sk_st_checkpoint_find(const sk_st_checkpoint *c, const char *name)
{
	if (!c->by_name)
		return NULL;
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(c->by_name[mid]->name, name);
		if (r == 0)
			return c->by_name[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t sk_st_checkpoint_nfiles(const sk_st_checkpoint *c) { return c->nfiles; }

const sk_st_file *sk_st_checkpoint_file(const sk_st_checkpoint *c, size_t i)
{
	return i < c->nfiles ? c->files[i] : NULL;
}

size_t sk_st_checkpoint_unmapped(const sk_st_checkpoint *c) { return c->unmapped; }
