/* Opening a tokenizer from whatever path the user gives: a tokenizer.json,
 * a directory holding one, or a .gguf file (recognized by its magic). */
#include "engine/text/tokenizer.h"

#include <stdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/format/gguf.h"
#include "engine/i18n.h"

static int sk_is_gguf(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return 0;
	char magic[4];
	int yes = fread(magic, 1, 4, fp) == 4 && memcmp(magic, "GGUF", 4) == 0;
	fclose(fp);
	return yes;
}

sk_tokenizer *sk_tokenizer_open(const char *path)
{
	int d = sk_is_dir(path);
	if (d < 0) {
		sk_fail(_("%s: no such file or directory"), path);
		return NULL;
	}
	if (d == 1) {
		char json[4096];
		if (snprintf(json, sizeof json, "%s/tokenizer.json", path) >= (int)sizeof json) {
			sk_fail(_("%s: path too long"), path);
			return NULL;
		}
		if (!sk_file_exists(json)) {
			sk_fail(_("%s: no tokenizer.json in this directory"), path);
			return NULL;
		}
		return sk_tokenizer_load(json);
	}
	if (sk_is_gguf(path)) {
		sk_gguf *g = sk_gguf_open(path);
		if (!g)
			return NULL;
		sk_tokenizer *t = sk_tokenizer_from_gguf(g, path);
		sk_gguf_close(g);
		return t;
	}
	return sk_tokenizer_load(path);
}
