/* The files of a merged checkpoint besides the weights: config.json (its
 * dtype updated when the weights change dtype) and the tokenizer and
 * generation files, copied as they are. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/i18n.h"
#include "engine/train/merge_internal.h"

int sk_merge_write_json(const char *path, const json_t *root, size_t flags)
{
	char *text = root ? json_dumps(root, flags) : NULL;
	if (!text)
		return sk_fail(_("%s: out of memory"), path);
	size_t n = strlen(text);
	text[n] = '\n'; /* the NUL becomes the final newline, as transformers ends its files */
	int rc = sk_write_file_atomic(path, text, n + 1);
	free(text);
	return rc;
}

int sk_merge_copy_file(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb");
	if (!in)
		return sk_fail("%s: %s", src, strerror(errno));
	FILE *out = fopen(dst, "wb");
	if (!out) {
		int e = errno;
		fclose(in);
		return sk_fail("%s: %s", dst, strerror(e));
	}
	char *buf = malloc(1 << 20);
	int rc = buf ? 0 : sk_fail(_("%s: out of memory"), dst);
	size_t n;
	while (rc == 0 && (n = fread(buf, 1, 1 << 20, in)) > 0)
		rc = sk_fwrite_all(out, dst, buf, n);
	if (rc == 0 && ferror(in))
		rc = sk_fail(_("%s: read error"), src);
	free(buf);
	fclose(in);
	/* the output directory is synced as a whole when it is committed; after
	 * a failure the first error is the one to tell */
	if (rc == 0)
		return sk_fclose_written(out, dst, 0);
	fclose(out);
	return rc;
}

static const char *torch_name(sk_dtype t)
{
	return t == SK_DT_F32 ? "float32" : t == SK_DT_F16 ? "float16" : "bfloat16";
}

/* Sets "torch_dtype"/"dtype" of obj where they hold a string; returns how
 * many were set. */
static int set_dtype_keys(json_t *obj, const char *name)
{
	static const char *const keys[] = { "torch_dtype", "dtype" };
	int n = 0;
	for (size_t i = 0; i < 2; i++)
		if (json_is_string(json_object_get(obj, keys[i]))) {
			json_object_set_new(obj, keys[i], json_string(name));
			n++;
		}
	return n;
}

int sk_merge_write_config(const char *src, const char *dst, sk_dtype t)
{
	char *text = NULL;
	size_t len = 0;
	if (sk_read_file(src, 64u << 20, &text, &len))
		return -1;
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!json_is_object(root)) {
		json_decref(root);
		return sk_fail(_("%s: not a JSON object (line %d: %s)"), src, jerr.line, jerr.text);
	}
	const char *name = torch_name(t);
	/* the top level always states it (transformers 5 spells it "dtype",
	 * older versions "torch_dtype"); nested *_config objects only where
	 * they already did */
	if (set_dtype_keys(root, name) == 0) {
		int has_new = json_object_get(root, "dtype") != NULL;
		int has_old = json_object_get(root, "torch_dtype") != NULL;
		if (has_new)
			json_object_set_new(root, "dtype", json_string(name));
		if (has_old || !has_new)
			json_object_set_new(root, "torch_dtype", json_string(name));
	}
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		size_t kl = strlen(key);
		if (json_is_object(val) && kl > 7 && strcmp(key + kl - 7, "_config") == 0)
			set_dtype_keys(val, name);
	}
	int rc = sk_merge_write_json(dst, root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return rc;
}
