/* engine/train/merge.h: size parsing (huggingface_hub's units), the fp32 delta
 * math against a double-precision sum, rounding to bf16/f16 with overflow
 * counting, and one library-level merge of the tiny Gemma 3 fixture with
 * its progress reports. The numerics against PEFT/transformers are in
 * tests/test_merge.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/format/atomic_dir.h"
#include "engine/error.h"
#include "engine/train/merge.h"
#include "engine/format/safetensors.h"
#include "tests/test.h"

static char tmpdir[64];

TEST(parses_shard_sizes)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "2GB", 2000000000ull }, { "500MB", 500000000ull }, { "64KiB", 65536ull }, { "1.5GB", 1500000000ull },
		{ "123", 123ull }, { "4gib", 4ull << 30 }, { "300KB", 300000ull }, { "10B", 10ull }, { "1TB", 1000000000000ull },
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		uint64_t v = 0;
		CHECK_MSG(sk_merge_parse_size(good[i].s, &v) == 0 && v == good[i].v, "%s -> %llu", good[i].s,
		          (unsigned long long)v);
	}
	static const char *const bad[] = { "", "0", "-1GB", "2XB", "GB", " 2GB", "nan", "1e30GB", "0.1", "2 GB" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t v = 7;
		CHECK_MSG(sk_merge_parse_size(bad[i], &v) == -1 && v == 7, "'%s' accepted", bad[i]);
	}
}

/* xorshift, values in [-1, 1) */
static float rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return (float)((double)*s / 2147483648.0 - 1.0);
}

TEST(delta_matches_a_double_sum_in_any_row_chunks)
{
	enum { OUT = 13, IN = 37, R = 5 };
	uint32_t seed = 12345;
	float W[OUT * IN], W2[OUT * IN], A[R * IN], B[OUT * R], acc[IN];
	for (int i = 0; i < OUT * IN; i++)
		W[i] = W2[i] = rnd(&seed);
	for (int i = 0; i < R * IN; i++)
		A[i] = rnd(&seed);
	for (int i = 0; i < OUT * R; i++)
		B[i] = rnd(&seed);
	const float scale = 2.8284271f;
	sk_merge_rows(W, B, A, OUT, IN, R, scale, acc);
	/* the same in chunks of 4 rows, as the writer streams it */
	for (int r0 = 0; r0 < OUT; r0 += 4)
		sk_merge_rows(W2 + r0 * IN, B + r0 * R, A, OUT - r0 < 4 ? OUT - r0 : 4, IN, R, scale, acc);
	CHECK(memcmp(W, W2, sizeof W) == 0); /* chunking changes nothing */
	/* against double precision, from a fresh copy of the inputs */
	seed = 12345;
	double err = 0, mag = 0;
	for (int i = 0; i < OUT * IN; i++) {
		double w0 = rnd(&seed);
		int o = i / IN, c = i % IN;
		double d = 0;
		for (int k = 0; k < R; k++)
			d += (double)B[o * R + k] * A[k * IN + c];
		double want = w0 + scale * d;
		err = fmax(err, fabs(W[i] - want));
		mag = fmax(mag, fabs(want));
	}
	CHECK_MSG(err < 1e-6 * mag, "max error %g of %g", err, mag);
	CHECK(mag > 1.0); /* the delta is not trivially small */
}

TEST(rounds_to_nearest_even_and_counts_overflow)
{
	/* bf16: 1 + 2^-8 is a tie -> even (1.0); 1 + 3*2^-8 -> up (0x3f82) */
	float src[6] = { 1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f, 3.4e38f, INFINITY };
	uint8_t out[24];
	int64_t over = 0;
	sk_merge_store(SK_DT_BF16, src, out, 6, &over);
	uint16_t h[6];
	for (int i = 0; i < 6; i++)
		h[i] = (uint16_t)(out[2 * i] | out[2 * i + 1] << 8);
	CHECK_EQ_INT(h[0], 0x3f80);
	CHECK_EQ_INT(h[1], 0x3f80);
	CHECK_EQ_INT(h[2], 0x3f82);
	CHECK_EQ_INT(h[3], 0xc020);
	CHECK_EQ_INT(h[4], 0x7f80); /* 3.4e38 rounds past bf16's largest finite */
	CHECK_EQ_INT(over, 1);      /* the infinity given as input is not an overflow */
	/* f16: 65504 is the largest finite; 65520 rounds to inf */
	float f[3] = { 65504.0f, 65520.0f, 1.0f / 3.0f };
	over = 0;
	sk_merge_store(SK_DT_F16, f, out, 3, &over);
	CHECK_EQ_INT(out[0] | out[1] << 8, 0x7bff);
	CHECK_EQ_INT(out[2] | out[3] << 8, 0x7c00);
	CHECK_EQ_INT(out[4] | out[5] << 8, 0x3555);
	CHECK_EQ_INT(over, 1);
	/* f32: little-endian bytes */
	float one = 1.0f;
	sk_merge_store(SK_DT_F32, &one, out, 1, NULL);
	CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0x80 && out[3] == 0x3f);
}

typedef struct {
	uint64_t last, total;
	int calls, backwards, last_shard;
} progress_log;

static void on_progress(void *ctx, int shard, int nshards, const char *name, uint64_t done, uint64_t total)
{
	progress_log *p = ctx;
	p->backwards |= done < p->last || shard < p->last_shard || shard >= nshards || !name;
	p->last = done;
	p->total = total;
	p->last_shard = shard;
	p->calls++;
}

TEST(merges_tiny_gemma3_with_progress)
{
	char out[128];
	snprintf(out, sizeof out, "%s/merged", tmpdir);
	char model[1024], adapter[1024];
	snprintf(model, sizeof model, "%s", sk_test_path("tests/fixtures/hf/tiny-gemma3"));
	snprintf(adapter, sizeof adapter, "%s", sk_test_path("tests/fixtures/hf/tiny-gemma3/ref/adapter_all"));
	progress_log log = { 0 };
	sk_merge_opts o = { .model = model, .adapter = adapter, .out = out, .dtype = SK_DT_F32,
	                    .max_shard_size = 200000, .progress = on_progress, .progress_ctx = &log };
	sk_merge_stats st;
	int rc = sk_merge(&o, &st);
	CHECK_MSG(rc == 0, "%s", sk_error());
	CHECK_EQ_INT(st.merged, 49);
	CHECK_EQ_INT(st.tensors, 93);
	CHECK_EQ_INT(st.copied + st.converted + st.merged, 93);
	CHECK(st.shards > 1);
	CHECK(st.in_dtype == SK_DT_BF16 && st.out_dtype == SK_DT_F32);
	CHECK(log.calls > 0 && !log.backwards);
	CHECK(log.last == log.total && log.total == st.bytes);
	CHECK_EQ_INT(log.last_shard, st.shards - 1);
	sk_st_checkpoint *c = sk_st_checkpoint_open(out);
	CHECK_MSG(c != NULL, "%s", sk_error());
	if (c) {
		CHECK_EQ_INT(sk_st_checkpoint_count(c), 93);
		CHECK_EQ_INT(sk_st_checkpoint_nfiles(c), st.shards);
		const sk_tensor_view *v = sk_st_checkpoint_find(c, "model.layers.0.self_attn.q_proj.weight");
		CHECK(v && v->dtype == SK_DT_F32);
		sk_st_checkpoint_close(c);
	}
	/* a second run refuses the existing directory, then --force replaces it */
	CHECK(sk_merge(&o, &st) == -1 && strstr(sk_error(), "already exists"));
	o.force = 1;
	o.dtype = -1;
	o.progress = NULL;
	CHECK_MSG(sk_merge(&o, &st) == 0, "%s", sk_error());
	CHECK(st.out_dtype == SK_DT_BF16 && st.converted == 0);
	sk_rmtree(out);
}

TEST(refuses_bad_requests)
{
	sk_merge_opts o = { .model = sk_test_path("tests/fixtures/hf/tiny-gemma3"), .adapter = NULL, .out = "/tmp/x" };
	CHECK(sk_merge(&o, NULL) == -1);
	char model[1024];
	snprintf(model, sizeof model, "%s", sk_test_path("tests/fixtures/hf/tiny-gemma3"));
	char out[128];
	snprintf(out, sizeof out, "%s/never", tmpdir);
	o = (sk_merge_opts){ .model = model, .adapter = model, .out = out, .dtype = SK_DT_Q4_K };
	CHECK(sk_merge(&o, NULL) == -1);
	o.dtype = -1; /* the model directory is no adapter */
	CHECK(sk_merge(&o, NULL) == -1);
	CHECK(access(out, F_OK) != 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/sk_test_merge.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(parses_shard_sizes);
	RUN(delta_matches_a_double_sum_in_any_row_chunks);
	RUN(rounds_to_nearest_even_and_counts_overflow);
	RUN(merges_tiny_gemma3_with_progress);
	RUN(refuses_bad_requests);
	sk_rmtree(tmpdir);
	TEST_EXIT();
}
