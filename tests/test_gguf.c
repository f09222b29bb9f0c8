/* Tests of the GGUF reader: the reference fixture written by gguf-py
 * (tests/fixtures/gguf/make_gguf_fixture.py), and malformed files built here
 * with a tiny writer. SK_DEFAULT_MODEL, when set, adds checks on a real model. */
#include "engine/format/gguf.h"

#include <stdint.h>
#include <time.h>

#include "engine/error.h"
#include "engine/format/quants.h"
#include "tests/test.h"

/* ---- fixture ---- */

static sk_gguf *open_fixture(void)
{
	sk_gguf *g = sk_gguf_open(sk_test_path("tests/fixtures/gguf/fixture.gguf"));
	if (!g)
		fprintf(stderr, "  open failed: %s\n", sk_error());
	return g;
}

static int64_t kv_i64(const sk_gguf_kv *kv)
{
	const uint8_t *p = kv->data;
	uint64_t u = 0;
	int n = kv->type == SK_GGUF_INT64 || kv->type == SK_GGUF_UINT64 ? 8 : kv->type == SK_GGUF_INT32 || kv->type == SK_GGUF_UINT32 ? 4 : kv->type == SK_GGUF_INT16 || kv->type == SK_GGUF_UINT16 ? 2 : 1;
	for (int i = 0; i < n; i++)
		u |= (uint64_t)p[i] << (8 * i);
	switch (kv->type) {
	case SK_GGUF_INT8: return (int8_t)u;
	case SK_GGUF_INT16: return (int16_t)u;
	case SK_GGUF_INT32: return (int32_t)u;
	default: return (int64_t)u;
	}
}

TEST(fixture_header)
{
	sk_gguf *g = open_fixture();
	CHECK(g != NULL);
	if (!g)
		return;
	CHECK_EQ_INT(sk_gguf_version(g), 3);
	CHECK_EQ_INT(sk_gguf_alignment(g), 32);
	CHECK_EQ_INT(sk_gguf_kv_count(g), 23);
	CHECK_EQ_INT(sk_gguf_tensor_count(g), 13);
	CHECK_EQ_INT(sk_gguf_data_offset(g) % 32, 0);
	CHECK(sk_gguf_kv_at(g, 23) == NULL);
	CHECK(strcmp(sk_gguf_kv_at(g, 0)->key, "general.architecture") == 0);
	sk_gguf_close(g);
}

TEST(fixture_scalars)
{
	sk_gguf *g = open_fixture();
	if (!g) { CHECK(0); return; }
	struct { const char *key; sk_gguf_type t; int64_t v; } ints[] = {
		{ "test.u8", SK_GGUF_UINT8, 200 }, { "test.i8", SK_GGUF_INT8, -100 },
		{ "test.u16", SK_GGUF_UINT16, 60000 }, { "test.i16", SK_GGUF_INT16, -30000 },
		{ "test.u32", SK_GGUF_UINT32, 4000000000LL }, { "test.i32", SK_GGUF_INT32, -2000000000 },
		{ "test.i64", SK_GGUF_INT64, -9000000000000000000LL },
	};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		const sk_gguf_kv *kv = sk_gguf_find(g, ints[i].key);
		CHECK_MSG(kv != NULL, "%s", ints[i].key);
		if (!kv) continue;
		CHECK_EQ_INT(kv->type, ints[i].t);
		CHECK_EQ_INT(kv_i64(kv), ints[i].v);
	}
	const sk_gguf_kv *kv = sk_gguf_find(g, "test.u64");
	CHECK(kv && kv->type == SK_GGUF_UINT64 && (uint64_t)kv_i64(kv) == 18000000000000000000ULL);

	uint32_t u;
	CHECK(sk_gguf_get_u32(g, "test.u8", &u) == 0 && u == 200);
	CHECK(sk_gguf_get_u32(g, "test.u16", &u) == 0 && u == 60000);
	CHECK(sk_gguf_get_u32(g, "test.u32", &u) == 0 && u == 4000000000u);
	CHECK(sk_gguf_get_u32(g, "test.i8", &u) == -1);      /* negative */
	CHECK(strstr(sk_error(), "test.i8") != NULL);
	CHECK(sk_gguf_get_u32(g, "test.u64", &u) == -1);     /* does not fit */
	CHECK(sk_gguf_get_u32(g, "test.f32", &u) == -1);     /* not an integer */
	CHECK(sk_gguf_get_u32(g, "test.nope", &u) == -1);
	CHECK(strstr(sk_error(), "fixture.gguf") != NULL && strstr(sk_error(), "test.nope") != NULL);

	float f;
	CHECK(sk_gguf_get_f32(g, "test.f32", &f) == 0 && f == 1.5f);
	CHECK(sk_gguf_get_f32(g, "test.f64", &f) == 0 && f == (float)-2.25e100);
	CHECK(sk_gguf_get_f32(g, "test.u8", &f) == -1);
	kv = sk_gguf_find(g, "test.f64");
	if (kv) {
		double d;
		memcpy(&d, kv->data, 8);
		CHECK(d == -2.25e100);
	}

	int b = -1;
	CHECK(sk_gguf_get_bool(g, "test.bool_true", &b) == 0 && b == 1);
	CHECK(sk_gguf_get_bool(g, "test.bool_false", &b) == 0 && b == 0);
	CHECK(sk_gguf_get_bool(g, "test.u8", &b) == -1);

	const char *s;
	size_t n;
	CHECK(sk_gguf_get_str(g, "test.string", &s, &n) == 0);
	CHECK(n == strlen("hello, gguf \xc3\xa9\xe4\xb8\x96") && strcmp(s, "hello, gguf \xc3\xa9\xe4\xb8\x96") == 0);
	CHECK(sk_gguf_get_str(g, "test.empty_string", &s, &n) == 0 && n == 0 && s && s[0] == 0);
	CHECK(sk_gguf_get_str(g, "general.architecture", &s, &n) == 0 && strcmp(s, "testarch") == 0);
	CHECK(sk_gguf_get_str(g, "test.u8", &s, &n) == -1);
	sk_gguf_close(g);
}

TEST(fixture_arrays)
{
	sk_gguf *g = open_fixture();
	if (!g) { CHECK(0); return; }
	struct { const char *key; sk_gguf_type t; size_t n; double v[5]; } arrs[] = {
		{ "test.arr_i32", SK_GGUF_INT32, 4, { 1, -2, 3, 2147483647 } },
		{ "test.arr_u8", SK_GGUF_UINT8, 3, { 0, 7, 255 } },
		{ "test.arr_f32", SK_GGUF_FLOAT32, 3, { 0.5, -1.25, (double)3.0e10f } },
		{ "test.arr_f64", SK_GGUF_FLOAT64, 2, { 0.1, -1e-300 } },
		{ "test.arr_bool", SK_GGUF_BOOL, 3, { 1, 0, 1 } },
		{ "test.arr_i64", SK_GGUF_INT64, 2, { -1, 1099511627776.0 } },
		{ "test.arr_empty", SK_GGUF_INT32, 0, { 0 } },
	};
	for (size_t a = 0; a < sizeof arrs / sizeof arrs[0]; a++) {
		const sk_gguf_kv *kv = sk_gguf_find(g, arrs[a].key);
		CHECK_MSG(kv != NULL, "%s", arrs[a].key);
		if (!kv) continue;
		CHECK_EQ_INT(kv->type, SK_GGUF_ARRAY);
		CHECK_EQ_INT(kv->arr_type, arrs[a].t);
		CHECK_EQ_INT(kv->arr_count, arrs[a].n);
		for (size_t i = 0; i < arrs[a].n; i++) {
			double d = 12345;
			CHECK(sk_gguf_arr_f64(kv, i, &d) == 0);
			CHECK_MSG(d == arrs[a].v[i], "%s[%zu] = %.17g", arrs[a].key, i, d);
		}
		double d;
		CHECK(sk_gguf_arr_f64(kv, arrs[a].n, &d) == -1);  /* one past the end */
	}

	const sk_gguf_kv *kv = sk_gguf_find(g, "test.arr_str");
	CHECK(kv && kv->type == SK_GGUF_ARRAY && kv->arr_type == SK_GGUF_STRING && kv->arr_count == 5);
	if (kv) {
		char x300[301];
		memset(x300, 'x', 300);
		x300[300] = 0;
		const char *want[] = { "a", "", "bc", "\xc3\xbcnic\xc3\xb6" "de", x300 };
		for (int pass = 0; pass < 2; pass++)  /* random access, repeated */
			for (int i = 4; i >= 0; i--) {
				const char *s;
				size_t n;
				CHECK(sk_gguf_arr_str(g, kv, (uint64_t)i, &s, &n) == 0);
				CHECK_MSG(n == strlen(want[i]) && memcmp(s, want[i], n) == 0, "element %d", i);
			}
		const char *s;
		size_t n;
		double d;
		CHECK(sk_gguf_arr_str(g, kv, 5, &s, &n) == -1);
		CHECK(sk_gguf_arr_f64(kv, 0, &d) == -1);  /* not numeric */
	}
	const sk_gguf_kv *num = sk_gguf_find(g, "test.arr_i32");
	const char *s;
	size_t n;
	CHECK(num && sk_gguf_arr_str(g, num, 0, &s, &n) == -1);
	const sk_gguf_kv fake = { 0 };
	CHECK(sk_gguf_arr_str(g, &fake, 0, &s, &n) == -1);  /* not one of this file's entries */
	sk_gguf_close(g);
}

TEST(fixture_tensors)
{
	sk_gguf *g = open_fixture();
	if (!g) { CHECK(0); return; }
	struct { const char *name; uint32_t ggml; sk_dtype dt; int nd; int64_t shape[3]; uint64_t nbytes; } want[] = {
		{ "t.f32", 0, SK_DT_F32, 2, { 3, 5 }, 60 },
		{ "t.f16", 1, SK_DT_F16, 2, { 4, 8 }, 64 },
		{ "t.bf16", 30, SK_DT_BF16, 3, { 2, 3, 4 }, 48 },
		{ "t.vec", 0, SK_DT_F32, 1, { 7 }, 28 },
		{ "t.q4_0", 2, SK_DT_Q4_0, 2, { 4, 64 }, 8 * 18 },
		{ "t.q4_1", 3, SK_DT_Q4_1, 2, { 3, 64 }, 6 * 20 },
		{ "t.q5_0", 6, SK_DT_Q5_0, 2, { 6, 96 }, 18 * 22 },
		{ "t.q5_1", 7, SK_DT_Q5_1, 2, { 2, 64 }, 4 * 24 },
		{ "t.q8_0", 8, SK_DT_Q8_0, 2, { 5, 64 }, 10 * 34 },
		{ "t.q4_k", 12, SK_DT_Q4_K, 2, { 3, 512 }, 6 * 144 },
		{ "t.q5_k", 13, SK_DT_Q5_K, 2, { 2, 256 }, 2 * 176 },
		{ "t.q6_k", 14, SK_DT_Q6_K, 2, { 3, 512 }, 6 * 210 },
		{ "t.iq4_nl", 20, SK_DT_COUNT, 2, { 2, 64 }, 4 * 18 },
	};
	const uint8_t *prev_end = NULL;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const sk_tensor_view *t = sk_gguf_tensor(g, i);
		CHECK(t != NULL);
		if (!t) continue;
		CHECK_MSG(strcmp(t->name, want[i].name) == 0, "%s vs %s", t->name, want[i].name);
		CHECK(sk_gguf_find_tensor(g, want[i].name) == t);
		CHECK_EQ_INT(sk_gguf_tensor_ggml_type(g, i), want[i].ggml);
		CHECK_EQ_INT(t->dtype, want[i].dt);
		CHECK_EQ_INT(t->ndim, want[i].nd);
		for (int d = 0; d < want[i].nd; d++)
			CHECK_EQ_INT(t->shape[d], want[i].shape[d]);
		CHECK_EQ_INT(t->nbytes, want[i].nbytes);
		CHECK(strstr(t->file, "fixture.gguf") != NULL);
		/* the reference writer packs tensors in order at 32-byte boundaries */
		CHECK(((const uint8_t *)t->data - (const uint8_t *)sk_gguf_tensor(g, 0)->data) % 32 == 0);
		if (prev_end)
			CHECK((const uint8_t *)t->data >= prev_end);
		prev_end = (const uint8_t *)t->data + t->nbytes;
		int64_t nel = 1;
		for (int d = 0; d < want[i].nd; d++)
			nel *= want[i].shape[d];
		CHECK_EQ_INT(sk_ggml_type_nbytes(want[i].ggml, nel), (int64_t)want[i].nbytes);
	}
	CHECK(strcmp(sk_ggml_type_name(sk_gguf_tensor_ggml_type(g, 12)), "IQ4_NL") == 0);
	CHECK(sk_gguf_tensor(g, 13) == NULL);
	CHECK(sk_gguf_tensor_ggml_type(g, 13) == UINT32_MAX);
	CHECK(sk_gguf_find_tensor(g, "t.missing") == NULL);
	CHECK(sk_gguf_find_tensor(g, "") == NULL);
	sk_gguf_close(g);
}

TEST(ggml_type_table)
{
	CHECK(strcmp(sk_ggml_type_name(0), "F32") == 0);
	CHECK(strcmp(sk_ggml_type_name(6), "Q5_0") == 0);
	CHECK(strcmp(sk_ggml_type_name(14), "Q6_K") == 0);
	CHECK(strcmp(sk_ggml_type_name(30), "BF16") == 0);
	CHECK(strcmp(sk_ggml_type_name(39), "MXFP4") == 0);
	CHECK(sk_ggml_type_name(4) == NULL);  /* retired */
	CHECK(sk_ggml_type_name(37) == NULL);
	CHECK(sk_ggml_type_name(1000) == NULL);
	CHECK_EQ_INT(sk_ggml_type_nbytes(12, 512), 288);
	CHECK_EQ_INT(sk_ggml_type_nbytes(6, 64), 44);
	CHECK_EQ_INT(sk_ggml_type_nbytes(6, 48), -1);     /* not whole blocks */
	CHECK_EQ_INT(sk_ggml_type_nbytes(0, -1), -1);
	CHECK_EQ_INT(sk_ggml_type_nbytes(0, INT64_MAX / 2), -1);  /* overflow */
	CHECK_EQ_INT(sk_ggml_type_nbytes(5, 32), -1);
	CHECK_EQ_INT(sk_ggml_type_dtype(6), SK_DT_Q5_0);
	CHECK_EQ_INT(sk_ggml_type_dtype(23), SK_DT_COUNT);
	int64_t be, bb;
	CHECK(sk_ggml_type_block(14, &be, &bb) == 0 && be == 256 && bb == 210);
	CHECK(sk_ggml_type_block(31, &be, &bb) == -1);
}

TEST(open_missing_file)
{
	CHECK(sk_gguf_open("/nonexistent/dir/model.gguf") == NULL);
	CHECK(strstr(sk_error(), "/nonexistent/dir/model.gguf") != NULL);
}

/* ---- a tiny GGUF writer for malformed inputs ---- */

typedef struct {
	uint8_t p[8192];
	size_t n;
} buf;

static void put(buf *b, const void *d, size_t n)
{
	if (b->n + n > sizeof b->p) { fprintf(stderr, "test buffer full\n"); exit(2); }
	memcpy(b->p + b->n, d, n);
	b->n += n;
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u32(buf *b, uint32_t v) { uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) }; put(b, x, 4); }
static void u64(buf *b, uint64_t v) { u32(b, (uint32_t)v); u32(b, (uint32_t)(v >> 32)); }
static void str(buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void hdr(buf *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
	b->n = 0;
	put(b, "GGUF", 4);
	u32(b, version);
	u64(b, nt);
	u64(b, nkv);
}
static void kv_u32(buf *b, const char *k, uint32_t v) { str(b, k); u32(b, SK_GGUF_UINT32); u32(b, v); }
static void ti(buf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
	str(b, name);
	u32(b, nd);
	for (uint32_t i = 0; i < nd; i++) u64(b, ne[i]);
	u32(b, type);
	u64(b, off);
}
static void pad(buf *b, size_t a) { while (b->n % a) u8(b, 0); }
static void fill(buf *b, size_t n) { for (size_t i = 0; i < n; i++) u8(b, (uint8_t)(i * 37 + 11)); }

/* Opens a private exact-size copy (so ASan sees any over-read). */
static sk_gguf *open_buf(const buf *b, size_t len)
{
	void *c = malloc(len ? len : 1);
	memcpy(c, b->p, len);
	sk_error_clear();
	sk_gguf *g = sk_gguf_open_mem(c, len, "mem.gguf");
	if (g) {
		/* touch everything the accessors give out while the copy lives */
		for (size_t i = 0; i < sk_gguf_kv_count(g); i++) {
			const sk_gguf_kv *kv = sk_gguf_kv_at(g, i);
			if (kv->type == SK_GGUF_ARRAY && kv->arr_type == SK_GGUF_STRING) {
				for (uint64_t j = 0; j < kv->arr_count; j++) {
					const char *s; size_t n;
					if (sk_gguf_arr_str(g, kv, j, &s, &n) == 0 && n) { volatile char x = s[n - 1]; (void)x; }
				}
			}
		}
		sk_gguf_close(g);
		g = (sk_gguf *)1;  /* only success matters to callers */
	}
	free(c);
	return g;
}

static void expect_fail(const buf *b, const char *what, int line)
{
	if (open_buf(b, b->n) != NULL) {
		fprintf(stderr, "  line %d: malformed file accepted\n", line);
		sk_test_case_failed = 1;
	} else if (what && !strstr(sk_error(), what)) {
		fprintf(stderr, "  line %d: error \"%s\" lacks \"%s\"\n", line, sk_error(), what);
		sk_test_case_failed = 1;
	} else if (strncmp(sk_error(), "mem.gguf: ", 10) != 0 && strncmp(sk_error(), "out of memory", 13) != 0) {
		fprintf(stderr, "  line %d: error \"%s\" does not name the file\n", line, sk_error());
		sk_test_case_failed = 1;
	}
}
#define EXPECT_FAIL(b, what) expect_fail((b), (what), __LINE__)
#define EXPECT_OK(b) CHECK_MSG(open_buf((b), (b)->n) != NULL, "%s", sk_error())

/* A valid file whose last tensor ends exactly at the end of the file, so any
 * strict prefix is missing something. */
static void small_valid(buf *b)
{
	hdr(b, 3, 2, 3);
	kv_u32(b, "general.alignment", 32);
	str(b, "a.str"); u32(b, SK_GGUF_STRING); str(b, "value");
	str(b, "a.strs"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_STRING); u64(b, 3);
	str(b, "x"); str(b, ""); str(b, "yz");
	ti(b, "w.f32", 2, (uint64_t[]){ 4, 2 }, 0, 0);
	ti(b, "w.q8", 1, (uint64_t[]){ 32 }, 8, 32);
	pad(b, 32);
	fill(b, 32);   /* 8 f32 */
	fill(b, 34);   /* one Q8_0 block */
}

TEST(valid_small_and_every_prefix)
{
	buf *b = calloc(1, sizeof *b);
	small_valid(b);
	EXPECT_OK(b);
	int bad = 0;
	for (size_t n = 0; n < b->n; n++)
		if (open_buf(b, n) != NULL) {
			fprintf(stderr, "  prefix of %zu bytes accepted\n", n);
			bad++;
		}
	CHECK_EQ_INT(bad, 0);
	/* the same file as v2 is accepted too */
	b->p[4] = 2;
	EXPECT_OK(b);
	free(b);
}

TEST(bad_magic_and_versions)
{
	buf *b = calloc(1, sizeof *b);
	small_valid(b);
	b->p[0] = 'g';
	EXPECT_FAIL(b, "magic");
	uint32_t versions[] = { 0, 1, 4, 0x7fffffff, 0x03000000u /* byte-swapped 3 */, 0x00030000u };
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		small_valid(b);
		b->p[4] = (uint8_t)versions[i]; b->p[5] = (uint8_t)(versions[i] >> 8);
		b->p[6] = (uint8_t)(versions[i] >> 16); b->p[7] = (uint8_t)(versions[i] >> 24);
		EXPECT_FAIL(b, "ersion");
		if (versions[i] == 0x03000000u)
			CHECK(strstr(sk_error(), "byte-swapped") != NULL);
	}
	free(b);
}

TEST(huge_counts_and_lengths)
{
	buf *b = calloc(1, sizeof *b);
	hdr(b, 3, 1ull << 60, 0);
	fill(b, 100);
	EXPECT_FAIL(b, "do not fit");
	hdr(b, 3, 0, 1ull << 60);
	fill(b, 100);
	EXPECT_FAIL(b, "do not fit");
	hdr(b, 3, UINT64_MAX, UINT64_MAX);
	EXPECT_FAIL(b, NULL);
	/* huge key length */
	hdr(b, 3, 0, 1);
	u64(b, 1ull << 63); put(b, "abc", 3); u32(b, SK_GGUF_UINT8); u8(b, 1);
	EXPECT_FAIL(b, "too long");
	/* key length just past the end */
	hdr(b, 3, 0, 1);
	u64(b, 20); put(b, "abcdefgh", 8); u32(b, SK_GGUF_UINT8);
	EXPECT_FAIL(b, "truncated");
	/* huge string value */
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_STRING); u64(b, UINT64_MAX - 3); fill(b, 20);
	EXPECT_FAIL(b, "too long");
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_STRING); u64(b, 1000); fill(b, 20);
	EXPECT_FAIL(b, "truncated");
	/* huge arrays of numbers and of strings */
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_UINT32); u64(b, 1ull << 62); fill(b, 40);
	EXPECT_FAIL(b, "more than the file holds");
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_FLOAT64); u64(b, (UINT64_MAX / 8) + 2); fill(b, 40);
	EXPECT_FAIL(b, "more than the file holds");
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_STRING); u64(b, 1ull << 61); fill(b, 40);
	EXPECT_FAIL(b, "more than the file holds");
	/* a string array whose count fits the cap but whose strings run off the end */
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_STRING); u64(b, 3);
	str(b, "ab"); u64(b, 1ull << 40); fill(b, 10);
	EXPECT_FAIL(b, NULL);
	free(b);
}

TEST(bad_value_types)
{
	buf *b = calloc(1, sizeof *b);
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, 13); u32(b, 0);
	EXPECT_FAIL(b, "unknown value type");
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, 0xffffffffu); u32(b, 0);
	EXPECT_FAIL(b, "unknown value type");
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, 13); u64(b, 1); u32(b, 0);
	EXPECT_FAIL(b, "unknown element type");
	/* nested array */
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_ARRAY); u64(b, 1);
	u32(b, SK_GGUF_UINT8); u64(b, 1); u8(b, 1);
	EXPECT_FAIL(b, "nested");
	/* bools must be 0 or 1 */
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_BOOL); u8(b, 2);
	EXPECT_FAIL(b, "bool");
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_BOOL); u64(b, 3); u8(b, 1); u8(b, 0); u8(b, 255);
	EXPECT_FAIL(b, "bool");
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_ARRAY); u32(b, SK_GGUF_BOOL); u64(b, 3); u8(b, 1); u8(b, 0); u8(b, 1);
	EXPECT_OK(b);
	/* a value cut short */
	hdr(b, 3, 0, 1);
	str(b, "k"); u32(b, SK_GGUF_UINT64); u32(b, 7);
	EXPECT_FAIL(b, "truncated");
	free(b);
}

TEST(keys_empty_duplicate_nul)
{
	buf *b = calloc(1, sizeof *b);
	hdr(b, 3, 0, 2);
	kv_u32(b, "a.b", 1); kv_u32(b, "a.b", 2);
	EXPECT_FAIL(b, "duplicate metadata key a.b");
	hdr(b, 3, 0, 1);
	kv_u32(b, "", 1);
	EXPECT_FAIL(b, "empty");
	hdr(b, 3, 0, 1);
	u64(b, 3); put(b, "a\0b", 3); u32(b, SK_GGUF_UINT8); u8(b, 1);
	EXPECT_FAIL(b, "NUL");
	hdr(b, 3, 0, 2);
	kv_u32(b, "a.b", 1); kv_u32(b, "a.c", 2);
	EXPECT_OK(b);
	free(b);
}

TEST(alignment_key)
{
	buf *b = calloc(1, sizeof *b);
	uint32_t bad[] = { 0, 3, 48, 0x80000001u };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		hdr(b, 3, 0, 1);
		kv_u32(b, "general.alignment", bad[i]);
		EXPECT_FAIL(b, "power of two");
	}
	hdr(b, 3, 0, 1);
	str(b, "general.alignment"); u32(b, SK_GGUF_UINT64); u64(b, 32);
	EXPECT_FAIL(b, "uint32");
	hdr(b, 3, 0, 1);
	str(b, "general.alignment"); u32(b, SK_GGUF_INT32); u32(b, 32);
	EXPECT_FAIL(b, "uint32");

	/* alignment 64 moves the data section and is checked on offsets */
	hdr(b, 3, 2, 1);
	kv_u32(b, "general.alignment", 64);
	ti(b, "a", 1, (uint64_t[]){ 8 }, 0, 0);
	ti(b, "b", 1, (uint64_t[]){ 4 }, 0, 64);
	pad(b, 64);
	size_t ds = b->n;
	fill(b, 64 + 16);
	void *c = malloc(b->n);
	memcpy(c, b->p, b->n);
	sk_gguf *g = sk_gguf_open_mem(c, b->n, "mem.gguf");
	CHECK(g != NULL);
	if (g) {
		CHECK_EQ_INT(sk_gguf_alignment(g), 64);
		CHECK_EQ_INT(sk_gguf_data_offset(g), ds);
		CHECK(sk_gguf_tensor(g, 1)->data == (uint8_t *)c + ds + 64);
		sk_gguf_close(g);
	}
	free(c);
	/* offset 32 is aligned for 32 but not for 64 */
	hdr(b, 3, 2, 1);
	kv_u32(b, "general.alignment", 64);
	ti(b, "a", 1, (uint64_t[]){ 8 }, 0, 0);
	ti(b, "b", 1, (uint64_t[]){ 4 }, 0, 32);
	pad(b, 64);
	fill(b, 64 + 16);
	EXPECT_FAIL(b, "alignment");
	free(b);
}

TEST(tensor_offsets)
{
	buf *b = calloc(1, sizeof *b);
	/* misaligned */
	hdr(b, 3, 1, 0);
	ti(b, "a", 1, (uint64_t[]){ 4 }, 0, 4);
	pad(b, 32); fill(b, 64);
	EXPECT_FAIL(b, "not a multiple of the alignment");
	/* out of range: start past the end, end past the end, offset near 2^64 */
	uint64_t offs[] = { 64, 32, UINT64_MAX - 31 };
	for (size_t i = 0; i < 3; i++) {
		hdr(b, 3, 1, 0);
		ti(b, "a", 1, (uint64_t[]){ 16 }, 0, offs[i]);
		pad(b, 32); fill(b, 64);
		EXPECT_FAIL(b, "past the end");
	}
	/* no data section at all */
	hdr(b, 3, 1, 0);
	ti(b, "a", 1, (uint64_t[]){ 4 }, 0, 0);
	EXPECT_FAIL(b, NULL);
	/* zero-sized tensor at the very end is fine */
	hdr(b, 3, 2, 0);
	ti(b, "a", 1, (uint64_t[]){ 8 }, 0, 0);
	ti(b, "z", 2, (uint64_t[]){ 0, 5 }, 0, 32);
	pad(b, 32); fill(b, 32);
	EXPECT_OK(b);
	free(b);
}

TEST(tensor_dims_and_types)
{
	buf *b = calloc(1, sizeof *b);
	/* element count overflow */
	hdr(b, 3, 1, 0);
	ti(b, "a", 3, (uint64_t[]){ 1ull << 32, 1ull << 32, 4 }, 0, 0);
	pad(b, 32); fill(b, 64);
	EXPECT_FAIL(b, "too many elements");
	hdr(b, 3, 1, 0);
	ti(b, "a", 2, (uint64_t[]){ 1ull << 62, 1 }, 0, 0);  /* elements fit, bytes do not */
	pad(b, 32); fill(b, 64);
	EXPECT_FAIL(b, "too large");
	hdr(b, 3, 1, 0);
	ti(b, "a", 1, (uint64_t[]){ 1ull << 63 }, 0, 0);
	pad(b, 32); fill(b, 64);
	EXPECT_FAIL(b, "negative");
	/* a zero dimension before a huge one is no overflow */
	hdr(b, 3, 1, 0);
	ti(b, "a", 3, (uint64_t[]){ 0, 1ull << 40, 1ull << 40 }, 0, 0);
	pad(b, 32); fill(b, 4);
	EXPECT_OK(b);
	/* n_dims > 4 */
	hdr(b, 3, 1, 0);
	ti(b, "a", 5, (uint64_t[]){ 1, 1, 1, 1, 1 }, 0, 0);
	pad(b, 32); fill(b, 64);
	EXPECT_FAIL(b, "dimensions");
	hdr(b, 3, 1, 0);
	ti(b, "a", 4, (uint64_t[]){ 2, 1, 1, 2 }, 0, 0);
	pad(b, 32); fill(b, 64);
	EXPECT_OK(b);
	/* ne[0] not a multiple of the block size */
	hdr(b, 3, 1, 0);
	ti(b, "a", 2, (uint64_t[]){ 16, 2 }, 8, 0);
	pad(b, 32); fill(b, 128);
	EXPECT_FAIL(b, "block size");
	hdr(b, 3, 1, 0);
	ti(b, "a", 2, (uint64_t[]){ 128, 1 }, 12, 0);  /* Q4_K needs 256 */
	pad(b, 32); fill(b, 256);
	EXPECT_FAIL(b, "block size");
	/* unknown, retired and future types */
	uint32_t types[] = { 4, 5, 31, 36, 42, 1000, UINT32_MAX };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		hdr(b, 3, 1, 0);
		ti(b, "a", 1, (uint64_t[]){ 256 }, types[i], 0);
		pad(b, 32); fill(b, 512);
		EXPECT_FAIL(b, "unknown type");
	}
	/* a known type sk_dtype cannot name is listed with dtype SK_DT_COUNT */
	hdr(b, 3, 1, 0);
	ti(b, "a", 1, (uint64_t[]){ 256 }, 23 /* IQ4_XS */, 0);
	pad(b, 32); fill(b, 136);
	void *c = malloc(b->n);
	memcpy(c, b->p, b->n);
	sk_gguf *g = sk_gguf_open_mem(c, b->n, "mem.gguf");
	CHECK(g != NULL);
	if (g) {
		CHECK_EQ_INT(sk_gguf_tensor(g, 0)->dtype, SK_DT_COUNT);
		CHECK_EQ_INT(sk_gguf_tensor(g, 0)->nbytes, 136);
		CHECK_EQ_INT(sk_gguf_tensor_ggml_type(g, 0), 23);
		sk_gguf_close(g);
	}
	free(c);
	free(b);
}

TEST(tensor_names)
{
	buf *b = calloc(1, sizeof *b);
	hdr(b, 3, 2, 0);
	ti(b, "w", 1, (uint64_t[]){ 8 }, 0, 0);
	ti(b, "w", 1, (uint64_t[]){ 8 }, 0, 32);
	pad(b, 32); fill(b, 64);
	EXPECT_FAIL(b, "duplicate tensor name w");
	char n64[65], n65[66];
	memset(n64, 'n', 64); n64[64] = 0;
	memset(n65, 'n', 65); n65[65] = 0;
	hdr(b, 3, 1, 0);
	ti(b, n64, 1, (uint64_t[]){ 8 }, 0, 0);
	pad(b, 32); fill(b, 32);
	EXPECT_OK(b);
	hdr(b, 3, 1, 0);
	ti(b, n65, 1, (uint64_t[]){ 8 }, 0, 0);
	pad(b, 32); fill(b, 32);
	EXPECT_FAIL(b, "too long");
	hdr(b, 3, 1, 0);
	u64(b, 3); put(b, "a\0b", 3); u32(b, 1); u64(b, 8); u32(b, 0); u64(b, 0);
	pad(b, 32); fill(b, 32);
	EXPECT_FAIL(b, "NUL");
	free(b);
}

TEST(open_mem_null)
{
	CHECK(sk_gguf_open_mem(NULL, 0, NULL) == NULL);
	CHECK(strstr(sk_error(), "magic") != NULL);
}

/* ---- the real default model, when SK_DEFAULT_MODEL names it ---- */

static void default_model_check(const char *path)
{
	sk_gguf *g = sk_gguf_open(path);
	CHECK_MSG(g != NULL, "%s", sk_error());
	if (!g)
		return;
	const char *arch;
	size_t n;
	CHECK(sk_gguf_get_str(g, "general.architecture", &arch, &n) == 0);
	const sk_gguf_kv *tok = sk_gguf_find(g, "tokenizer.ggml.tokens");
	CHECK(tok && tok->arr_type == SK_GGUF_STRING && tok->arr_count >= 256000);
	if (tok) {
		clock_t t0 = clock();
		uint64_t total = 0;
		for (int rep = 0; rep < 4; rep++)
			for (uint64_t i = tok->arr_count; i-- > 0;) {
				const char *s;
				size_t len;
				if (sk_gguf_arr_str(g, tok, i, &s, &len) == 0)
					total += len;
			}
		double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
		fprintf(stderr, "  %llu token reads in %.3f s (%llu bytes)\n",
			(unsigned long long)(4 * tok->arr_count), secs, (unsigned long long)total);
		CHECK(secs < 1.0);  /* O(1) per element: ~1M reads take milliseconds */
	}
	size_t nt = sk_gguf_tensor_count(g);
	CHECK(nt > 0);
	int bad = 0;
	for (size_t i = 0; i < nt; i++) {
		const sk_tensor_view *t = sk_gguf_tensor(g, i);
		if (!sk_dequantize_supported(t->dtype)) { bad++; continue; }
		int64_t row = t->shape[t->ndim - 1];
		float *y = malloc((size_t)row * sizeof *y);
		if (sk_dequantize(t->dtype, t->data, y, row) != 0) bad++;
		int finite = 1;
		for (int64_t j = 0; j < row; j++)
			if (!isfinite(y[j])) finite = 0;
		if (!finite) bad++;
		free(y);
	}
	CHECK_EQ_INT(bad, 0);
	sk_gguf_close(g);
}

TEST(default_model)
{
	const char *p = getenv("SK_DEFAULT_MODEL");
	if (p && *p)
		default_model_check(p);
	else
		SKIP("no default model (set SK_DEFAULT_MODEL)");
}

int main(void)
{
	RUN(fixture_header);
	RUN(fixture_scalars);
	RUN(fixture_arrays);
	RUN(fixture_tensors);
	RUN(ggml_type_table);
	RUN(open_missing_file);
	RUN(valid_small_and_every_prefix);
	RUN(bad_magic_and_versions);
	RUN(huge_counts_and_lengths);
	RUN(bad_value_types);
	RUN(keys_empty_duplicate_nul);
	RUN(alignment_key);
	RUN(tensor_offsets);
	RUN(tensor_dims_and_types);
	RUN(tensor_names);
	RUN(open_mem_null);
	RUN(default_model);
	TEST_EXIT();
}
