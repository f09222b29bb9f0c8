/* Tokenizer tests: ids identical to HF `tokenizers` on the committed corpus
 * (from tokenizer.json and from the GGUF vocabulary), decoding, the
 * streaming decoder, the binary cache, BPE semantics on tiny hand-made
 * vocabularies, and clean errors on malformed tokenizer.json. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/text/tokenizer.h"
#include "tests/test.h"

typedef struct {
	char *text;
	size_t len;
	json_t *ref; /* {"ids", "bos_ids", "decoded", "decoded_skip"} */
} sk_case;

static sk_case *cases;
static size_t ncases;
static sk_tokenizer *tj;   /* from tokenizer.json */
static char json_path[4096];
static char cache_home[256];

static int load_corpus(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s", sk_test_path("tests/fixtures/tokenizer/corpus.jsonl"));
	FILE *c = fopen(path, "r");
	snprintf(path, sizeof path, "%s", sk_test_path("tests/fixtures/tokenizer/reference.jsonl"));
	FILE *r = fopen(path, "r");
	if (!c || !r) {
		fprintf(stderr, "cannot open the corpus fixtures\n");
		return -1;
	}
	char *line = NULL, *line2 = NULL;
	size_t cap = 0, cap2 = 0;
	while (getline(&line, &cap, c) > 0) {
		if (getline(&line2, &cap2, r) <= 0)
			return -1;
		json_error_t err;
		json_t *s = json_loads(line, JSON_DECODE_ANY, &err);
		json_t *ref = json_loads(line2, 0, &err);
		if (!json_is_string(s) || !json_is_object(ref))
			return -1;
		cases = realloc(cases, (ncases + 1) * sizeof *cases);
		cases[ncases].len = json_string_length(s);
		cases[ncases].text = malloc(cases[ncases].len + 1);
		memcpy(cases[ncases].text, json_string_value(s), cases[ncases].len + 1);
		cases[ncases].ref = ref;
		json_decref(s);
		ncases++;
	}
	free(line);
	free(line2);
	fclose(c);
	fclose(r);
	return 0;
}

static int ids_equal(const sk_ids *ids, const json_t *want)
{
	if (!json_is_array(want) || json_array_size(want) != ids->n)
		return 0;
	for (size_t i = 0; i < ids->n; i++)
		if (json_integer_value(json_array_get(want, i)) != ids->v[i])
			return 0;
	return 1;
}

static void print_mismatch(size_t k, const sk_ids *ids, const json_t *want)
{
	fprintf(stderr, "  case %zu: got", k);
	for (size_t i = 0; i < ids->n && i < 40; i++)
		fprintf(stderr, " %d", ids->v[i]);
	char *w = json_dumps(want, JSON_COMPACT);
	fprintf(stderr, "\n  want %.300s\n", w);
	free(w);
}

static int valid_utf8(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
		                                                     : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
		if (!len || i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++)
			if (((unsigned char)s[i + k] & 0xC0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

/* ---- the real tokenizer, corpus agreement ---- */

static size_t check_corpus_ids(const sk_tokenizer *t, int32_t max_id, size_t *skipped)
{
	size_t bad = 0;
	*skipped = 0;
	for (size_t k = 0; k < ncases; k++) {
		const json_t *want = json_object_get(cases[k].ref, "ids");
		size_t j;
		const json_t *v;
		int beyond = 0;
		json_array_foreach(want, j, v) beyond |= json_integer_value(v) >= max_id;
		if (beyond) {
			(*skipped)++;
			continue;
		}
		sk_ids ids = { 0 };
		int rc = sk_tokenizer_encode(t, cases[k].text, cases[k].len, 0, &ids);
		if (rc != 0 || !ids_equal(&ids, want)) {
			if (bad++ < 5)
				print_mismatch(k, &ids, want);
		}
		sk_ids_free(&ids);
	}
	return bad;
}

TEST(json_corpus_ids)
{
	size_t skipped;
	size_t bad = check_corpus_ids(tj, INT32_MAX, &skipped);
	CHECK_EQ_INT(bad, 0);
	CHECK(ncases >= 200);
	printf("# %zu corpus strings, %zu disagree (tokenizer.json)\n", ncases, bad);
}

TEST(json_corpus_ids_with_bos)
{
	size_t bad = 0;
	for (size_t k = 0; k < ncases; k++) {
		sk_ids ids = { 0 };
		CHECK(sk_tokenizer_encode(tj, cases[k].text, cases[k].len, 1, &ids) == 0);
		if (!ids_equal(&ids, json_object_get(cases[k].ref, "bos_ids")))
			bad++;
		sk_ids_free(&ids);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(sk_tokenizer_bos(tj), 2);
	CHECK(sk_tokenizer_add_bos_default(tj));
}

static size_t check_decode(const sk_tokenizer *t, int skip_special, const char *key, int32_t max_id)
{
	size_t bad = 0;
	for (size_t k = 0; k < ncases; k++) {
		const json_t *want_ids = json_object_get(cases[k].ref, "ids");
		size_t n = json_array_size(want_ids), j;
		int32_t *ids = malloc((n + 1) * sizeof *ids);
		const json_t *v;
		int beyond = 0;
		json_array_foreach(want_ids, j, v) {
			ids[j] = (int32_t)json_integer_value(v);
			beyond |= ids[j] >= max_id;
		}
		if (!beyond) {
			char *out = NULL;
			size_t len = 0;
			const json_t *want = json_object_get(cases[k].ref, key);
			if (sk_tokenizer_decode(t, ids, n, skip_special, &out, &len) != 0 ||
			    len != json_string_length(want) || memcmp(out, json_string_value(want), len) != 0) {
				if (bad++ < 5)
					fprintf(stderr, "  case %zu: decoded \"%s\", want \"%s\"\n", k, out ? out : "(error)",
					        json_string_value(want));
			}
			free(out);
		}
		free(ids);
	}
	return bad;
}

TEST(json_decode_matches_hf)
{
	CHECK_EQ_INT(check_decode(tj, 0, "decoded", INT32_MAX), 0);
	CHECK_EQ_INT(check_decode(tj, 1, "decoded_skip", INT32_MAX), 0);
}

TEST(json_roundtrip)
{
	size_t roundtrips = 0, bad = 0;
	for (size_t k = 0; k < ncases; k++) {
		/* a literal "▁" in the input decodes to a space, as in HF */
		if (strstr(cases[k].text, "\xE2\x96\x81"))
			continue;
		sk_ids ids = { 0 };
		char *out = NULL;
		size_t len;
		CHECK(sk_tokenizer_encode(tj, cases[k].text, cases[k].len, 0, &ids) == 0);
		CHECK(sk_tokenizer_decode(tj, ids.v, ids.n, 0, &out, &len) == 0);
		if (out && len == cases[k].len && memcmp(out, cases[k].text, len) == 0)
			roundtrips++;
		else
			bad++;
		free(out);
		sk_ids_free(&ids);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(roundtrips >= 290);
}

static size_t check_stream(const sk_tokenizer *t, int32_t max_id, size_t *chunks_bad)
{
	size_t bad = 0;
	*chunks_bad = 0;
	for (size_t k = 0; k < ncases; k++) {
		const json_t *want_ids = json_object_get(cases[k].ref, "ids");
		const json_t *want = json_object_get(cases[k].ref, "decoded");
		size_t j;
		const json_t *v;
		int beyond = 0;
		json_array_foreach(want_ids, j, v) beyond |= json_integer_value(v) >= max_id;
		if (beyond)
			continue;
		sk_detok_stream s = { 0 };
		char *acc = malloc(json_string_length(want) * 2 + 64);
		size_t n = 0;
		char chunk[64];
		json_array_foreach(want_ids, j, v) {
			int r = sk_detok_stream_push(t, &s, (int32_t)json_integer_value(v), chunk, sizeof chunk);
			if (r < 0 || !valid_utf8(chunk, (size_t)r) || n + (size_t)r > json_string_length(want) * 2 + 32) {
				(*chunks_bad)++;
				break;
			}
			memcpy(acc + n, chunk, (size_t)r);
			n += (size_t)r;
		}
		int r = sk_detok_stream_flush(&s, chunk, sizeof chunk);
		if (r > 0) {
			memcpy(acc + n, chunk, (size_t)r);
			n += (size_t)r;
		}
		if (n != json_string_length(want) || memcmp(acc, json_string_value(want), n) != 0)
			bad++;
		free(acc);
	}
	return bad;
}

TEST(stream_matches_full_decode)
{
	size_t chunks_bad;
	CHECK_EQ_INT(check_stream(tj, INT32_MAX, &chunks_bad), 0);
	CHECK_EQ_INT(chunks_bad, 0);
}

/* Byte-fallback tokens that split one character across ids: nothing is
 * emitted until the character is whole. */
TEST(stream_holds_split_characters)
{
	const char *s = "\xF0\xA0\x80\x80"; /* U+20000, not in the vocabulary */
	sk_ids ids = { 0 };
	CHECK(sk_tokenizer_encode(tj, s, 4, 0, &ids) == 0);
	CHECK_EQ_INT(ids.n, 4);
	sk_detok_stream st = { 0 };
	char out[64];
	for (size_t i = 0; i < ids.n; i++) {
		int r = sk_detok_stream_push(tj, &st, ids.v[i], out, sizeof out);
		CHECK_EQ_INT(r, i + 1 < ids.n ? 0 : 4);
		if (i + 1 == ids.n)
			CHECK(memcmp(out, s, 4) == 0);
	}
	CHECK_EQ_INT(sk_detok_stream_flush(&st, out, sizeof out), 0);
	/* an incomplete sequence followed by text becomes U+FFFD, then the text */
	int32_t hello = sk_tokenizer_find(tj, "Hello");
	CHECK(hello >= 0);
	CHECK_EQ_INT(sk_detok_stream_push(tj, &st, ids.v[0], out, sizeof out), 0);
	CHECK_EQ_INT(sk_detok_stream_push(tj, &st, ids.v[1], out, sizeof out), 0);
	int r = sk_detok_stream_push(tj, &st, hello, out, sizeof out);
	CHECK(r == 3 * 2 + 5 && memcmp(out, "\xEF\xBF\xBD\xEF\xBF\xBDHello", 11) == 0);
	/* a lone continuation byte, and an incomplete tail at flush */
	r = sk_detok_stream_push(tj, &st, ids.v[3], out, sizeof out);
	CHECK(r == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0);
	CHECK_EQ_INT(sk_detok_stream_push(tj, &st, ids.v[0], out, sizeof out), 0);
	r = sk_detok_stream_flush(&st, out, sizeof out);
	CHECK(r == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0);
	/* errors: bad id, tiny buffer */
	CHECK(sk_detok_stream_push(tj, &st, -1, out, sizeof out) < 0);
	CHECK(sk_detok_stream_push(tj, &st, sk_tokenizer_vocab_size(tj), out, sizeof out) < 0);
	CHECK(sk_detok_stream_push(tj, &st, hello, out, 3) < 0);
	/* full decode of an invalid byte run: one U+FFFD per byte, like HF */
	char *d = NULL;
	size_t dl;
	CHECK(sk_tokenizer_decode(tj, ids.v, 2, 0, &d, &dl) == 0);
	CHECK(dl == 6 && d && memcmp(d, "\xEF\xBF\xBD\xEF\xBF\xBD", 6) == 0);
	free(d);
	sk_ids_free(&ids);
	CHECK(sk_tokenizer_max_piece_len(tj) + 16 <= 64);
}

TEST(api_basics)
{
	CHECK_EQ_INT(sk_tokenizer_vocab_size(tj), 262145);
	CHECK_EQ_INT(sk_tokenizer_eos(tj), 1);
	CHECK_EQ_INT(sk_tokenizer_find(tj, "<end_of_turn>"), 106);
	CHECK_EQ_INT(sk_tokenizer_find(tj, "<start_of_turn>"), 105);
	CHECK_EQ_INT(sk_tokenizer_find(tj, "no such piece at all"), -1);
	CHECK(sk_tokenizer_is_special(tj, 106));
	CHECK(!sk_tokenizer_is_special(tj, 107)); /* "\n" is added but not special */
	CHECK(!sk_tokenizer_is_special(tj, -5));
	int32_t bad[2] = { 5, 999999 };
	char *out = (char *)1;
	CHECK(sk_tokenizer_decode(tj, bad, 2, 0, &out, NULL) != 0 && out == NULL);
	CHECK(strstr(sk_error(), "999999") != NULL);
	/* appending: existing ids are kept */
	sk_ids ids = { 0 };
	CHECK(sk_tokenizer_encode(tj, "a", 1, 0, &ids) == 0);
	CHECK(sk_tokenizer_encode(tj, "b", 1, 1, &ids) == 0);
	CHECK(ids.n == 3 && ids.v[1] == 2);
	sk_ids_free(&ids);
	/* bytes that are not UTF-8 go through byte fallback and come back */
	const char raw[] = "a\xff\xfe b\xc3";
	CHECK(sk_tokenizer_encode(tj, raw, sizeof raw - 1, 0, &ids) == 0);
	CHECK(sk_tokenizer_decode(tj, ids.v, ids.n, 0, &out, NULL) == 0);
	CHECK(strstr(out, "a") == out);
	free(out);
	sk_ids_free(&ids);
}

/* A long single line is one BPE sequence: the heap keeps it fast. */
TEST(long_line_is_fast)
{
	size_t n = 400000;
	char *s = malloc(n + 1);
	const char *word = "\xD8\xB3\xD9\x84\xD8\xA7\xD9\x85 "; /* "سلام " */
	for (size_t i = 0; i < n; i++)
		s[i] = word[i % 9];
	sk_ids ids = { 0 };
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK(sk_tokenizer_encode(tj, s, n - n % 9, 0, &ids) == 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double sec = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
	CHECK(ids.n > 1000);
	CHECK_MSG(sec < 5.0, "%.2f s for %zu bytes", sec, n);
	char *out = NULL;
	size_t len;
	CHECK(sk_tokenizer_decode(tj, ids.v, ids.n, 0, &out, &len) == 0);
	CHECK(len == n - n % 9 && memcmp(out, s, len) == 0);
	free(out);
	sk_ids_free(&ids);
	free(s);
}

/* ---- cache ---- */

static int cache_file(char *path, size_t cap)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/sokhan/tokenizers", cache_home);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "ls %s/*.tok 2>/dev/null | head -1", dir);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	int ok = fgets(path, (int)cap, p) != NULL;
	pclose(p);
	if (!ok)
		return -1;
	path[strcspn(path, "\n")] = '\0';
	return 0;
}

static int same_ids_as_reference(const sk_tokenizer *t)
{
	size_t skipped;
	return check_corpus_ids(t, INT32_MAX, &skipped) == 0;
}

TEST(cache_written_and_used)
{
	char cpath[1024];
	CHECK(cache_file(cpath, sizeof cpath) == 0);
	struct stat st;
	CHECK(stat(cpath, &st) == 0 && st.st_size > 1000000);
	sk_tokenizer *t = sk_tokenizer_load(json_path);
	CHECK(t != NULL);
	if (t)
		CHECK(same_ids_as_reference(t));
	sk_tokenizer_free(t);
}

static void corrupt_at(const char *path, long off, int truncate_it)
{
	if (truncate_it) {
		CHECK(truncate(path, off) == 0);
		return;
	}
	FILE *fp = fopen(path, "r+b");
	CHECK(fp != NULL);
	if (!fp)
		return;
	fseek(fp, off, SEEK_SET);
	int c = fgetc(fp);
	fseek(fp, off, SEEK_SET);
	fputc(c ^ 0x5a, fp);
	fclose(fp);
}

TEST(cache_corrupt_is_rebuilt)
{
	char cpath[1024];
	CHECK(cache_file(cpath, sizeof cpath) == 0);
	struct stat st0;
	CHECK(stat(cpath, &st0) == 0);
	/* a header byte, a payload byte, then truncation */
	long offs[] = { 3, st0.st_size / 2 };
	for (int k = 0; k < 3; k++) {
		if (k < 2)
			corrupt_at(cpath, offs[k], 0);
		else
			corrupt_at(cpath, 100, 1);
		sk_tokenizer *t = sk_tokenizer_load(json_path);
		CHECK(t != NULL);
		if (t)
			CHECK(same_ids_as_reference(t));
		sk_tokenizer_free(t);
		struct stat st;
		CHECK(stat(cpath, &st) == 0 && st.st_size == st0.st_size); /* rewritten whole */
	}
}

TEST(cache_dir_unwritable_still_loads)
{
	char bad[300];
	snprintf(bad, sizeof bad, "%s/not-a-dir", cache_home);
	FILE *fp = fopen(bad, "w");
	CHECK(fp != NULL);
	if (fp)
		fclose(fp);
	setenv("XDG_CACHE_HOME", bad, 1); /* a file where the directory should be */
	sk_tokenizer *t = sk_tokenizer_load(json_path);
	CHECK(t != NULL);
	if (t)
		CHECK_EQ_INT(sk_tokenizer_vocab_size(t), 262145);
	sk_tokenizer_free(t);
	setenv("XDG_CACHE_HOME", cache_home, 1);
}

/* ---- GGUF vocabulary ---- */

TEST(gguf_corpus_ids)
{
	const char *model = getenv("SK_DEFAULT_MODEL");
	sk_tokenizer *t = sk_tokenizer_open(model);
	CHECK_MSG(t != NULL, "%s", sk_error());
	if (!t)
		return;
	int32_t nv = sk_tokenizer_vocab_size(t);
	CHECK_EQ_INT(nv, 262144);
	size_t skipped;
	size_t bad = check_corpus_ids(t, nv, &skipped);
	CHECK_EQ_INT(bad, 0);
	/* only "<image_soft_token>" (id 262144) is outside the GGUF's vocabulary */
	CHECK_EQ_INT(skipped, 1);
	printf("# %zu corpus strings, %zu disagree, %zu skipped (GGUF vocabulary)\n", ncases, bad, skipped);
	CHECK_EQ_INT(check_decode(t, 0, "decoded", nv), 0);
	size_t chunks_bad;
	CHECK_EQ_INT(check_stream(t, nv, &chunks_bad), 0);
	CHECK_EQ_INT(chunks_bad, 0);
	sk_ids ids = { 0 };
	CHECK(sk_tokenizer_encode(t, "hi", 2, 1, &ids) == 0 && ids.n == 2 && ids.v[0] == 2);
	CHECK(sk_tokenizer_add_bos_default(t));
	CHECK_EQ_INT(sk_tokenizer_eos(t), 1);
	CHECK(sk_tokenizer_is_special(t, 106));
	sk_ids_free(&ids);
	sk_tokenizer_free(t);
}

/* ---- tiny vocabularies: BPE semantics ---- */

static sk_tokenizer *tiny(const char *merges, const char *added, const char *extra_model)
{
	char buf[8192];
	snprintf(buf, sizeof buf,
	         "{\"added_tokens\": [%s],"
	         " \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"},"
	         " \"pre_tokenizer\": null, \"post_processor\": null,"
	         " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]},"
	         " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": false, \"fuse_unk\": true %s,"
	         "  \"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2, \"c\": 3, \"ab\": 4, \"bc\": 5, \"abc\": 6, \"\\u2581\": 7,"
	         "   \"\\u2581a\": 8, \"<s>\": 9, \"<s><t>\": 10, \"<t>\": 11, \"<0x41>\": 12, \"cc\": 13},"
	         "  \"merges\": [%s]}}",
	         added, extra_model, merges);
	sk_tokenizer *t = sk_tokenizer_load_mem(buf, strlen(buf), "tiny.json");
	if (!t)
		fprintf(stderr, "  tiny: %s\n", sk_error());
	return t;
}

static int enc_is(const sk_tokenizer *t, const char *s, const int32_t *want, size_t n)
{
	sk_ids ids = { 0 };
	int ok = sk_tokenizer_encode(t, s, strlen(s), 0, &ids) == 0 && ids.n == n &&
	         (n == 0 || memcmp(ids.v, want, n * sizeof *want) == 0);
	if (!ok) {
		fprintf(stderr, "  \"%s\" ->", s);
		for (size_t i = 0; i < ids.n; i++)
			fprintf(stderr, " %d", ids.v[i]);
		fprintf(stderr, "\n");
	}
	sk_ids_free(&ids);
	return ok;
}

TEST(bpe_rank_order)
{
	/* "b c" ranks before "a b": abc -> a bc (bc does not merge with a) */
	sk_tokenizer *t = tiny("\"b c\", \"a b\", \"ab c\"", "", "");
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(enc_is(t, "abc", (int32_t[]){ 1, 5 }, 2));
	sk_tokenizer_free(t);
	/* the other order gives ab c -> abc; pairs as arrays work too */
	t = tiny("[\"a\", \"b\"], [\"b\", \"c\"], [\"ab\", \"c\"]", "", "");
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(enc_is(t, "abc", (int32_t[]){ 6 }, 1));
	/* equal ranks: leftmost first: "ccc" -> cc c */
	sk_tokenizer_free(t);
	t = tiny("\"c c\"", "", "");
	CHECK(t && enc_is(t, "ccc", (int32_t[]){ 13, 3 }, 2));
	CHECK(t && enc_is(t, "cccc", (int32_t[]){ 13, 13 }, 2));
	/* spaces become ▁ and are part of the word: " a" -> ▁ a (no merge) */
	CHECK(t && enc_is(t, " a", (int32_t[]){ 7, 1 }, 2));
	/* unknown characters fuse into one <unk> (no byte fallback here) */
	CHECK(t && enc_is(t, "xyzaq", (int32_t[]){ 0, 1, 0 }, 3));
	sk_tokenizer_free(t);
	t = tiny("\"\\u2581 a\"", "", "");
	CHECK(t && enc_is(t, " a a", (int32_t[]){ 8, 8 }, 2));
	sk_tokenizer_free(t);
}

TEST(added_tokens_longest_leftmost)
{
	const char *added =
	    "{\"id\": 9, \"content\": \"<s>\", \"special\": true, \"normalized\": false},"
	    "{\"id\": 10, \"content\": \"<s><t>\", \"special\": false, \"normalized\": false},"
	    "{\"id\": 11, \"content\": \"<t>\", \"special\": true, \"normalized\": false},"
	    "{\"id\": 14, \"content\": \"bc\\u2581\", \"special\": false, \"normalized\": false}";
	sk_tokenizer *t = tiny("\"a b\"", added, "");
	CHECK(t != NULL);
	if (!t)
		return;
	/* the longest match at the leftmost position wins */
	CHECK(enc_is(t, "<s><t>", (int32_t[]){ 10 }, 1));
	CHECK(enc_is(t, "<s><s><t><t>", (int32_t[]){ 9, 10, 11 }, 3));
	CHECK(enc_is(t, "ab<t>ab", (int32_t[]){ 4, 11, 4 }, 3));
	/* added tokens are matched in the raw text: " " is not "▁" there */
	CHECK(enc_is(t, "bc ", (int32_t[]){ 2, 3, 7 }, 3));
	CHECK(enc_is(t, "bc\xE2\x96\x81", (int32_t[]){ 14 }, 1));
	CHECK_EQ_INT(sk_tokenizer_vocab_size(t), 15);
	CHECK(sk_tokenizer_is_special(t, 9) && !sk_tokenizer_is_special(t, 10));
	char *out;
	size_t len;
	CHECK(sk_tokenizer_decode(t, (int32_t[]){ 9, 1, 10, 11, 2 }, 5, 1, &out, &len) == 0);
	CHECK(out && strcmp(out, "a<s><t>b") == 0);
	free(out);
	sk_tokenizer_free(t);
}

TEST(byte_fallback_and_bos_template)
{
	char buf[4096];
	snprintf(buf, sizeof buf,
	         "{\"added_tokens\": [{\"id\": 2, \"content\": \"<bos>\", \"special\": true}],"
	         " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<bos>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],"
	         "   \"special_tokens\": {\"<bos>\": {\"id\": \"<bos>\", \"ids\": [2], \"tokens\": [\"<bos>\"]}}},"
	         " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"unk_token\": null,"
	         "  \"vocab\": {\"x\": 0, \"<0xC3>\": 1, \"<bos>\": 2, \"<0xA9>\": 3, \"y\": 4}, \"merges\": []}}");
	sk_tokenizer *t = sk_tokenizer_load_mem(buf, strlen(buf), "bf.json");
	CHECK_MSG(t != NULL, "%s", sk_error());
	if (!t)
		return;
	CHECK(enc_is(t, "x\xC3\xA9y", (int32_t[]){ 0, 1, 3, 4 }, 4));
	CHECK(sk_tokenizer_add_bos_default(t) && sk_tokenizer_bos(t) == 2);
	/* a character whose bytes have no tokens, and no unk: an error */
	sk_ids ids = { 0 };
	CHECK(sk_tokenizer_encode(t, "z", 1, 0, &ids) != 0 && ids.n == 0);
	CHECK(strstr(sk_error(), "bf.json") != NULL);
	char *out;
	CHECK(sk_tokenizer_decode(t, (int32_t[]){ 0, 1, 3, 4 }, 4, 0, &out, NULL) == 0);
	CHECK(out && strcmp(out, "x\xC3\xA9y") == 0);
	free(out);
	sk_tokenizer_free(t);
}

/* ---- malformed tokenizer.json ---- */

TEST(malformed_json_errors)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "", "invalid JSON" },
		{ "[1, 2]", "not a JSON object" },
		{ "{}", "no \"model\"" },
		{ "{\"model\": 3}", "no \"model\"" },
		{ "{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}", "not supported" },
		{ "{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", "vocab must be an object" },
		{ "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "empty vocabulary" },
		{ "{\"model\": {\"vocab\": {\"a\": \"1\"}, \"merges\": []}}", "bad id" },
		{ "{\"model\": {\"vocab\": {\"a\": -1}, \"merges\": []}}", "bad id" },
		{ "{\"model\": {\"vocab\": {\"a\": 99999999999}, \"merges\": []}}", "bad id" },
		{ "{\"model\": {\"vocab\": {\"a\": 3000000}, \"merges\": []}}", "not contiguous" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", "two vocab entries" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"a\": 1}, \"merges\": []}}", "invalid JSON" },
		{ "{\"model\": {\"vocab\": {\"a\": 0}}}", "merges must be an array" },
		{ "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": {}}}", "merges must be an array" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "not in the vocabulary" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a q\"]}}", "not in the vocabulary" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"ab\"]}}", "neither" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b c\"]}}", "neither" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[\"a\"]]}}", "neither" },
		{ "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[1, 2]]}}", "neither" },
		{ "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}", "dropout" },
		{ "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [], \"byte_fallback\": \"yes\"}}", "true or false" },
		{ "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [], \"unk_token\": 5}}", "unk_token" },
		{ "{\"added_tokens\": 5, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", "added_tokens must be" },
		{ "{\"added_tokens\": [{\"id\": 0, \"content\": \"b\"}], \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "another token" },
		{ "{\"added_tokens\": [{\"id\": 1, \"content\": \"\"}], \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "no content" },
		{ "{\"added_tokens\": [{\"id\": -4, \"content\": \"x\"}], \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "bad id" },
		{ "{\"added_tokens\": [{\"id\": 1, \"content\": \"x\", \"normalized\": true}], \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "normalized" },
		{ "{\"added_tokens\": [{\"id\": 1, \"content\": \"x\"}, {\"id\": 1, \"content\": \"x\"}], \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "two added tokens" },
		{ "{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", "normalizer" },
		{ "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "pre_tokenizer" },
		{ "{\"decoder\": {\"type\": \"Metaspace\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", "decoder" },
		{ "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": []}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "post_processor" },
		{ "{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<bos>\"}}, {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<bos>\": {\"ids\": [77]}}}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
		  "bad id" },
		{ "{\"model\": {\"vocab\": {\"<0xZZ>\": 0}, \"merges\": []}}", NULL }, /* not a byte token: fine */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sk_error_clear();
		sk_tokenizer *t = sk_tokenizer_load_mem(bad[i].json, strlen(bad[i].json), "bad.json");
		if (!bad[i].want) {
			CHECK_MSG(t != NULL, "case %zu: %s", i, sk_error());
		} else {
			CHECK_MSG(t == NULL, "case %zu loaded", i);
			CHECK_MSG(strstr(sk_error(), bad[i].want) != NULL && strstr(sk_error(), "bad.json") == sk_error(),
			          "case %zu: \"%s\" lacks \"%s\"", i, sk_error(), bad[i].want);
		}
		sk_tokenizer_free(t);
	}
	/* a missing file */
	CHECK(sk_tokenizer_load("/nonexistent/tokenizer.json") == NULL);
	CHECK(strstr(sk_error(), "/nonexistent/tokenizer.json") != NULL);
	CHECK(sk_tokenizer_open("/nonexistent/dir") == NULL);
}

int main(void)
{
	snprintf(cache_home, sizeof cache_home, "/tmp/sk_test_tokenizer.XXXXXX");
	if (!mkdtemp(cache_home)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("XDG_CACHE_HOME", cache_home, 1);

	RUN(bpe_rank_order);
	RUN(added_tokens_longest_leftmost);
	RUN(byte_fallback_and_bos_template);
	RUN(malformed_json_errors);

	const char *env = getenv("SK_TOKENIZER_JSON");
	if (env && *env)
		snprintf(json_path, sizeof json_path, "%s", env);
	else
		snprintf(json_path, sizeof json_path, "%s",
		         sk_test_path("../shared/data/gemma3-tokenizer/tokenizer.json"));
	int have_json = access(json_path, R_OK) == 0;
	int have_corpus = load_corpus() == 0;
	if (!have_corpus)
		printf("not ok %d - load_corpus\n", ++sk_test_n), sk_test_nfailed++;
	if (have_json && have_corpus) {
		tj = sk_tokenizer_load(json_path);
		if (!tj)
			fprintf(stderr, "  %s\n", sk_error());
	}
	if (tj) {
		RUN(json_corpus_ids);
		RUN(json_corpus_ids_with_bos);
		RUN(json_decode_matches_hf);
		RUN(json_roundtrip);
		RUN(stream_matches_full_decode);
		RUN(stream_holds_split_characters);
		RUN(api_basics);
		RUN(long_line_is_fast);
		RUN(cache_written_and_used);
		RUN(cache_corrupt_is_rebuilt);
		RUN(cache_dir_unwritable_still_loads);
	} else {
		const char *why = have_json ? "tokenizer.json failed to load" : "no tokenizer.json (set SK_TOKENIZER_JSON)";
		if (have_json)
			printf("not ok %d - load_tokenizer_json\n", ++sk_test_n), sk_test_nfailed++;
		else
			sk_test_skip_case("json_corpus_ids", why);
	}
	const char *model = getenv("SK_DEFAULT_MODEL");
	if (model && *model && have_corpus && access(model, R_OK) == 0)
		RUN(gguf_corpus_ids);
	else
		sk_test_skip_case("gguf_corpus_ids", "SK_DEFAULT_MODEL does not name a GGUF file");

	sk_tokenizer_free(tj);
	for (size_t k = 0; k < ncases; k++) {
		free(cases[k].text);
		json_decref(cases[k].ref);
	}
	free(cases);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_home);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", cache_home);
	TEST_EXIT();
}
