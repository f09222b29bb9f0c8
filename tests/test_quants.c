/* Tests of dequantization: bit-exact agreement with gguf-py's
 * gguf.quants.dequantize on the fixture (tests/fixtures/gguf/expected.bin),
 * hand-built blocks checked against the formulas of formats.md §5.5, and
 * argument handling. Exact equality is expected, not a tolerance: both sides
 * do the same f32 operations in the same order (f16 -> f32 is exact, then one
 * or two correctly rounded multiplies and a subtract/add per element). */
#include "engine/format/quants.h"

#include <stdint.h>
#include <time.h>

#include "engine/error.h"
#include "engine/format/files.h"
#include "engine/format/gguf.h"
#include "tests/test.h"

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

TEST(matches_gguf_py_reference)
{
	sk_gguf *g = sk_gguf_open(sk_test_path("tests/fixtures/gguf/fixture.gguf"));
	CHECK_MSG(g != NULL, "%s", sk_error());
	sk_mapping m;
	int rc = sk_map_file(sk_test_path("tests/fixtures/gguf/expected.bin"), &m);
	CHECK_MSG(rc == 0, "%s", sk_error());
	if (!g || rc) {
		sk_gguf_close(g);
		return;
	}
	const uint8_t *p = m.data, *end = p + m.len;
	CHECK(m.len > 8 && memcmp(p, "SKDQ", 4) == 0);
	uint32_t count;
	memcpy(&count, p + 4, 4);
	p += 8;
	CHECK_EQ_INT(count, 12);
	int types_seen[SK_DT_COUNT + 1] = { 0 };
	for (uint32_t k = 0; k < count && p + 4 <= end; k++) {
		uint32_t nl;
		uint64_t n;
		memcpy(&nl, p, 4);
		char name[128] = { 0 };
		if (nl >= sizeof name || p + 4 + nl + 8 > end) { CHECK(0); break; }
		memcpy(name, p + 4, nl);
		memcpy(&n, p + 4 + nl, 8);
		p += 4 + nl + 8;
		if (n > (uint64_t)(end - p) / 4) { CHECK(0); break; }
		const sk_tensor_view *t = sk_gguf_find_tensor(g, name);
		CHECK_MSG(t != NULL, "%s", name);
		if (!t) { p += 4 * n; continue; }
		CHECK_EQ_INT(sk_tensor_view_numel(t), (int64_t)n);
		float *y = malloc(n * sizeof *y);
		CHECK_MSG(sk_dequantize(t->dtype, t->data, y, (int64_t)n) == 0, "%s", name);
		size_t bad = 0, nonzero = 0;
		for (uint64_t i = 0; i < n; i++) {
			float want;
			memcpy(&want, p + 4 * i, 4);
			if (want != 0)
				nonzero++;
			if (f2u(y[i]) != f2u(want)) {
				if (bad++ < 3)
					fprintf(stderr, "  %s[%llu]: got %.9g (0x%08x), want %.9g (0x%08x)\n", name,
						(unsigned long long)i, y[i], f2u(y[i]), want, f2u(want));
			}
		}
		CHECK_MSG(bad == 0, "%s: %zu of %llu differ", name, bad, (unsigned long long)n);
		CHECK_MSG(nonzero > n / 2, "%s: reference mostly zero", name);
		types_seen[t->dtype]++;
		free(y);
		p += 4 * n;
	}
	CHECK(p == end);
	sk_dtype must[] = { SK_DT_F32, SK_DT_F16, SK_DT_BF16, SK_DT_Q4_0, SK_DT_Q4_1, SK_DT_Q5_0,
			    SK_DT_Q5_1, SK_DT_Q8_0, SK_DT_Q4_K, SK_DT_Q5_K, SK_DT_Q6_K };
	for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
		CHECK_MSG(types_seen[must[i]] > 0, "type %d not covered", (int)must[i]);
	sk_unmap_file(&m);
	sk_gguf_close(g);
}

/* Same results from a source at every byte misalignment. */
TEST(unaligned_source)
{
	sk_gguf *g = sk_gguf_open(sk_test_path("tests/fixtures/gguf/fixture.gguf"));
	if (!g) { CHECK(0); return; }
	for (size_t i = 0; i < sk_gguf_tensor_count(g); i++) {
		const sk_tensor_view *t = sk_gguf_tensor(g, i);
		if (!sk_dequantize_supported(t->dtype))
			continue;
		int64_t n = sk_tensor_view_numel(t);
		float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
		uint8_t *src = malloc(t->nbytes + 8);
		CHECK(sk_dequantize(t->dtype, t->data, a, n) == 0);
		for (int off = 1; off < 8; off += 3) {
			memcpy(src + off, t->data, t->nbytes);
			CHECK(sk_dequantize(t->dtype, src + off, b, n) == 0);
			CHECK_MSG(memcmp(a, b, (size_t)n * 4) == 0, "%s at +%d", t->name, off);
		}
		free(a); free(b); free(src);
	}
	sk_gguf_close(g);
}

/* Hand-built blocks, expected values from the spec's formulas. */
TEST(q5_0_block_by_formula)
{
	uint8_t blk[22];
	blk[0] = 0x00; blk[1] = 0x38;                        /* d = 0.5 */
	uint32_t qh = 0xA5C3F00Fu;
	for (int i = 0; i < 4; i++) blk[2 + i] = (uint8_t)(qh >> (8 * i));
	for (int j = 0; j < 16; j++) blk[6 + j] = (uint8_t)((j * 7 + 3) & 0xff);
	float y[32];
	CHECK(sk_dequantize(SK_DT_Q5_0, blk, y, 32) == 0);
	for (int j = 0; j < 16; j++) {
		int lo = (blk[6 + j] & 15) | (int)(((qh >> j) & 1) << 4);
		int hi = (blk[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
		CHECK(y[j] == (lo - 16) * 0.5f);
		CHECK(y[j + 16] == (hi - 16) * 0.5f);
	}
	CHECK(y[0] == (float)((3 | 16) - 16) * 0.5f);  /* bit 0 of qh set */
}

TEST(q4_0_q8_0_blocks_by_formula)
{
	uint8_t b4[18] = { 0x00, 0xc0 };                     /* d = -2 */
	for (int j = 0; j < 16; j++) b4[2 + j] = (uint8_t)(j | ((15 - j) << 4));
	float y[32];
	CHECK(sk_dequantize(SK_DT_Q4_0, b4, y, 32) == 0);
	for (int j = 0; j < 16; j++) {
		CHECK(y[j] == (j - 8) * -2.0f);
		CHECK(y[j + 16] == (15 - j - 8) * -2.0f);
	}
	uint8_t b8[34] = { 0x00, 0x34 };                     /* d = 0.25 */
	for (int j = 0; j < 32; j++) b8[2 + j] = (uint8_t)(int8_t)(j * 9 - 128);
	CHECK(sk_dequantize(SK_DT_Q8_0, b8, y, 32) == 0);
	for (int j = 0; j < 32; j++)
		CHECK(y[j] == (float)(int8_t)b8[2 + j] * 0.25f);
}

TEST(q4_k_q6_k_blocks_by_formula)
{
	uint8_t k[144];
	for (int i = 0; i < 144; i++) k[i] = (uint8_t)(i * 29 + 5);
	k[0] = 0x00; k[1] = 0x3c;                            /* d = 1 */
	k[2] = 0x00; k[3] = 0x38;                            /* dmin = 0.5 */
	float y[256];
	CHECK(sk_dequantize(SK_DT_Q4_K, k, y, 256) == 0);
	const uint8_t *s = k + 4;
	for (int e = 0; e < 256; e++) {
		int g = e / 64, l = e % 32, hi = (e % 64) >= 32, j = 2 * g + hi, sc, m;
		if (j < 4) { sc = s[j] & 63; m = s[j + 4] & 63; }
		else { sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4); m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
		int q = hi ? k[16 + 32 * g + l] >> 4 : k[16 + 32 * g + l] & 15;
		CHECK_MSG(y[e] == (float)(sc * q) - 0.5f * (float)m, "Q4_K element %d", e);
	}
	uint8_t q6[210];
	for (int i = 0; i < 210; i++) q6[i] = (uint8_t)(i * 53 + 1);
	q6[208] = 0x00; q6[209] = 0x3c;                      /* d = 1 */
	CHECK(sk_dequantize(SK_DT_Q6_K, q6, y, 256) == 0);
	for (int e = 0; e < 256; e++) {
		int h = e / 128, r = e % 128, part = r / 32, l = r % 32;
		int L = q6[64 * h + l + (part & 1) * 32], H = q6[128 + 32 * h + l];
		int q = ((part < 2) ? (L & 15) : (L >> 4)) | (((H >> (2 * part)) & 3) << 4);
		CHECK_MSG(y[e] == (float)((int8_t)q6[192 + e / 16] * (q - 32)), "Q6_K element %d", e);
	}
}

TEST(bad_arguments)
{
	uint8_t blk[256] = { 1 };
	float y[256];
	CHECK(sk_dequantize(SK_DT_Q4_0, blk, y, 16) == -1);  /* not a whole block */
	CHECK(sk_dequantize(SK_DT_Q6_K, blk, y, 32) == -1);
	CHECK(sk_dequantize(SK_DT_Q2_K, blk, y, 256) == -1); /* recognised, not dequantized */
	CHECK(sk_dequantize(SK_DT_I32, blk, y, 4) == -1);
	CHECK(sk_dequantize(SK_DT_COUNT, blk, y, 4) == -1);
	CHECK(sk_dequantize(SK_DT_F32, blk, y, -1) == -1);
	CHECK(sk_dequantize(SK_DT_Q8_0, blk, y, 0) == 0);
	CHECK(sk_dequantize_supported(SK_DT_Q5_0) && !sk_dequantize_supported(SK_DT_Q8_K));
}

/* Throughput, printed for the record; checks only that it finishes. */
TEST(throughput)
{
	const int64_t n = 1 << 22;
	sk_dtype ty[] = { SK_DT_Q4_0, SK_DT_Q5_0, SK_DT_Q8_0, SK_DT_Q4_K, SK_DT_Q5_K, SK_DT_Q6_K, SK_DT_F16 };
	float *y = malloc((size_t)n * 4);
	size_t srclen = (size_t)n * 2 + 64;  /* F16 is the largest per element */
	uint8_t *src = malloc(srclen);
	for (size_t i = 0; i < srclen; i++) src[i] = (uint8_t)(i * 131 + 7) & 0x3b;
	memset(y, 0, (size_t)n * 4);  /* fault the pages in before timing */
	for (size_t k = 0; k < sizeof ty / sizeof ty[0]; k++) {
		CHECK(sk_dequantize(ty[k], src, y, n) == 0);  /* warm-up */
		clock_t t0 = clock();
		CHECK(sk_dequantize(ty[k], src, y, n) == 0);
		double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
		fprintf(stderr, "  %-5s %.0f Melem/s\n", sk_dtype_name(ty[k]), s > 0 ? n / s / 1e6 : 0.0);
	}
	free(y);
	free(src);
}

int main(void)
{
	RUN(matches_gguf_py_reference);
	RUN(unaligned_source);
	RUN(q5_0_block_by_formula);
	RUN(q4_0_q8_0_blocks_by_formula);
	RUN(q4_k_q6_k_blocks_by_formula);
	RUN(bad_arguments);
	RUN(throughput);
	TEST_EXIT();
}
