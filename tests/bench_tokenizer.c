/* Tokenizer benchmark (not a test): load time of tokenizer.json without and
 * with the binary cache, of a GGUF vocabulary, and single-core encode
 * throughput on Persian text.
 *
 *   tests/bench_tokenizer [TOKENIZER_JSON [MODEL_GGUF]]
 *
 * Defaults: $SK_TOKENIZER_JSON, else ../shared/data/gemma3-tokenizer/tokenizer.json
 * beside the source tree; $SK_DEFAULT_MODEL for the GGUF. The Persian text is
 * built from the corpus fixture ($SK_SRCDIR, default "."). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/text/tokenizer.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Lines of the corpus that contain Arabic-script letters (U+0600..U+06FF). */
static char *persian_text(const char *srcdir, size_t target, int one_line, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/corpus.jsonl", srcdir);
	FILE *fp = fopen(path, "r");
	if (!fp) {
		fprintf(stderr, "bench: cannot open %s\n", path);
		return NULL;
	}
	char *lines = NULL, *line = NULL;
	size_t nl = 0, cap = 0;
	while (getline(&line, &cap, fp) > 0) {
		json_t *s = json_loads(line, JSON_DECODE_ANY, NULL);
		const char *v = json_string_value(s);
		if (v && (strstr(v, "\xD8") || strstr(v, "\xD9") || strstr(v, "\xDB")) && !strchr(v, '<')) {
			size_t n = strlen(v);
			lines = realloc(lines, nl + n + 1);
			memcpy(lines + nl, v, n);
			lines[nl + n] = one_line ? ' ' : '\n';
			nl += n + 1;
		}
		json_decref(s);
	}
	free(line);
	fclose(fp);
	if (!nl)
		return NULL;
	char *out = malloc(target + nl);
	size_t o = 0;
	while (o < target) {
		memcpy(out + o, lines, nl);
		o += nl;
	}
	free(lines);
	*len = o;
	return out;
}

static void bench_encode(const sk_tokenizer *t, const char *label, const char *text, size_t len)
{
	sk_ids ids = { 0 };
	double best = 1e9;
	size_t ntok = 0;
	for (int rep = 0; rep < 3; rep++) {
		ids.n = 0;
		double a = now();
		if (sk_tokenizer_encode(t, text, len, 0, &ids) != 0) {
			fprintf(stderr, "bench: %s\n", sk_error());
			break;
		}
		double b = now() - a;
		if (b < best)
			best = b;
		ntok = ids.n;
	}
	printf("encode %-28s %7.2f MB in %.3f s: %6.2f MB/s, %zu tokens (%.2f M tokens/s)\n", label,
	       (double)len / 1e6, best, (double)len / 1e6 / best, ntok, (double)ntok / 1e6 / best);
	sk_ids_free(&ids);
}

int main(int argc, char **argv)
{
	const char *srcdir = getenv("SK_SRCDIR") ? getenv("SK_SRCDIR") : ".";
	char def[4096];
	snprintf(def, sizeof def, "%s/../shared/data/gemma3-tokenizer/tokenizer.json", srcdir);
	const char *json = argc > 1 ? argv[1] : getenv("SK_TOKENIZER_JSON") ? getenv("SK_TOKENIZER_JSON") : def;
	const char *gguf = argc > 2 ? argv[2] : getenv("SK_DEFAULT_MODEL");

	char cache[] = "/tmp/sk_bench_tokenizer.XXXXXX";
	if (!mkdtemp(cache)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("XDG_CACHE_HOME", cache, 1);
	double a = now();
	sk_tokenizer *t = sk_tokenizer_load(json);
	double cold = now() - a;
	if (!t) {
		fprintf(stderr, "bench: %s\n", sk_error());
		return 1;
	}
	sk_tokenizer_free(t);
	double warm = 1e9;
	for (int i = 0; i < 3; i++) {
		a = now();
		t = sk_tokenizer_load(json);
		double w = now() - a;
		if (w < warm)
			warm = w;
		if (i < 2)
			sk_tokenizer_free(t);
	}
	printf("load tokenizer.json: cold (parse JSON + write cache) %.3f s, warm (cache) %.3f s\n", cold, warm);
	if (gguf && *gguf && access(gguf, R_OK) == 0) {
		a = now();
		sk_tokenizer *g = sk_tokenizer_open(gguf);
		if (g)
			printf("load GGUF vocabulary (derive merges from scores): %.3f s\n", now() - a);
		else
			fprintf(stderr, "bench: %s\n", sk_error());
		sk_tokenizer_free(g);
	}

	size_t len;
	char *text = persian_text(srcdir, 4 << 20, 0, &len);
	if (text) {
		bench_encode(t, "Persian, lines", text, len);
		free(text);
	}
	text = persian_text(srcdir, 1 << 20, 1, &len);
	if (text) {
		bench_encode(t, "Persian, one 1 MB line", text, len);
		free(text);
	}
	sk_tokenizer_free(t);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
	return system(cmd) == 0 ? 0 : 1;
}
