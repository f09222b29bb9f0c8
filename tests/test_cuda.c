/* The CUDA backend against the CPU backend (the reference), as ggml's
 * test-backend-ops does it: every op on fresh random inputs (never zeros),
 * each output poisoned with NaN before the op so an element it fails to
 * write shows, compared by relative L2 with a bound per op and precision;
 * then whole models: the tiny Gemma 3n / Gemma 3 fixtures' logits (bf16
 * and NF4 weights, prefill and token by token through the cache, LoRA on
 * some rows of a batch), greedy continuations, and the default model when
 * SK_DEFAULT_MODEL names it. Without a GPU every case is skipped as such.
 *
 * Bounds. fp32 arithmetic on both sides, summed in different orders:
 * 2e-6 for element-wise ops and norms, 1e-5 for reductions over a row and
 * for attention. The linear op reads bf16 or NF4 weights exactly and
 * accumulates in fp32 for up to 8 rows (1e-5); beyond that it multiplies
 * bf16-rounded activations on the tensor cores (relative rounding 2^-9 per
 * operand, so 1e-2; about 3e-3 is typical). A model's logits carry that
 * through every layer: 2e-2; 5e-2 for the GGUF fixtures, whose Q8_0 blocks
 * the CPU reads exactly and the GPU holds in bf16 (one more rounding of
 * every weight). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend/backend.h"
#include "engine/backend/backend_cuda_internal.h"
#include "engine/backend/backend_info.h"
#include "engine/error.h"
#include "engine/format/dtype.h"
#include "engine/format/nf4.h"
#include "engine/model/generate.h"
#include "engine/model/lora.h"
#include "engine/model/model.h"
#include "engine/text/tokenizer.h"
#include "engine/train/optim.h"
#include "engine/train/train_grad.h"
#include "tests/cuda_test.h"
#include "tests/test.h"

/* ---- ops ---- */

/* Unless SK_CUDA_NF4_Q8=0 the GPU's NF4 products of up to 8 rows take 8-bit
 * activations (kernels/linear.cu), and the reference is the CPU's 8-bit
 * kernels (its inference path, not SK_CPU_EXACT's fp32): the same integer
 * sums, so the bound stays tight. Other products keep the fp32 reference. */
static sk_backend *cpu_q8;

static int nf4_q8_on(void)
{
	const char *q = getenv("SK_CUDA_NF4_Q8"), *e = getenv("SK_CUDA_EXACT");
	return !(q && !strcmp(q, "0")) && !(e && strcmp(e, "0"));
}

/* The reference backend for a product of n rows of weight tc, and *bound
 * the bound to use (tightened to the 8-bit kernels' when they are compared) */
static sk_backend *reference_for(const sk_tensor *tc, int64_t n, double *bound)
{
	if (!tc->nf4 || n > 8 || tc->shape[1] % 32 != 0 || !nf4_q8_on())
		return cpu;
	if (!cpu_q8) {
		setenv("SK_CPU_EXACT", "0", 1);
		cpu_q8 = sk_backend_new(SK_DEVICE_CPU, 2);
		setenv("SK_CPU_EXACT", "1", 1);
	}
	*bound = 1e-4;
	return cpu_q8 ? cpu_q8 : cpu;
}

/* One linear case: n rows through W [out, in], LoRA on odd rows when lp. */
static void linear_case(const char *label, const sk_tensor *tc, const sk_tensor *tg, int64_t n,
                        const sk_lora_pair *lp, double bound)
{
	int64_t out = tc->shape[0], in = tc->shape[1];
	float *x = rnd((size_t)(n * in), 1.0f), *ref = malloc((size_t)(n * out) * sizeof(float));
	uint8_t *rows = malloc((size_t)n);
	for (int64_t i = 0; i < n; i++)
		rows[i] = (uint8_t)(i % 2);
	sk_backend *rb = reference_for(tc, n, &bound);
	CHECK(rb->ops->linear(rb, tc, x, n, ref, lp, lp ? rows : NULL) == 0);
	float *dx = dev_f(x, (size_t)(n * in)), *dy = poisoned((size_t)(n * out));
	uint8_t *drows = dev(rows, (size_t)n);
	CHECK(gpu->ops->linear(gpu, tg, dx, n, dy, lp, lp ? drows : NULL) == 0);
	char what[96];
	snprintf(what, sizeof what, "linear %s %lldx%lld, %lld rows%s", label, (long long)out, (long long)in,
	         (long long)n, lp ? ", LoRA" : "");
	expect(what, dy, ref, (size_t)(n * out), bound);
	dfree(dx);
	dfree(dy);
	dfree(drows);
	free(x);
	free(ref);
	free(rows);
}

TEST(linear_bf16_and_nf4)
{
	NEED_GPU();
	/* then the whole-row kernels on a 132-SM GPU: 4, 2 and 1 rows a warp; and long rows
	 * split over 4 warps, 2 and 1 rows a group */
	struct { int64_t out, in; } shapes[] = { { 96, 64 },     { 200, 256 },    { 33, 40 },
		                                 { 64, 24 },     { 8448, 1024 },  { 4226, 1024 },
		                                 { 1057, 1024 }, { 2048, 16384 }, { 1030, 16384 } };
	for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
		uint16_t *h;
		sk_tensor tc, tg;
		bf16_weight(shapes[s].out, shapes[s].in, &h, &tc, &tg);
		/* 97 rows after 100: the product takes the algorithm cuBLASLt chose for
		 * the other shape of its class (kernels/gemm.cu) */
		int64_t ns[] = { 1, 3, 8, 17, 64, 100, 97 };
		for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
			linear_case("bf16", &tc, &tg, ns[k], NULL, ns[k] <= 8 || shapes[s].in % 8 ? 1e-5 : 1e-2);
		free(h);
		if (shapes[s].in % 64 == 0) {
			sk_nf4_tensor q;
			nf4_weight(shapes[s].out, shapes[s].in, &q, &tc, &tg);
			for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
				linear_case("NF4", &tc, &tg, ns[k], NULL, ns[k] <= 8 ? 1e-5 : 1e-2);
			sk_nf4_free(&q);
		}
	}
}

/* Two weights that read the same input in one launch (k and v, gate and
 * up) against two CPU linears, with row counts that split the launch's
 * warps between the two weights at several places. */
TEST(linear2_pairs)
{
	NEED_GPU();
	struct { int64_t out1, out2, in; int nf4; } cases[] = {
		{ 8448, 8448, 1024, 1 }, { 512, 512, 2048, 1 }, { 4224, 300, 1024, 0 }, { 96, 200, 64, 1 },
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		int64_t in = cases[c].in, outs[2] = { cases[c].out1, cases[c].out2 };
		sk_tensor tc[2], tg[2];
		uint16_t *h[2] = { NULL, NULL };
		sk_nf4_tensor q[2];
		for (int k = 0; k < 2; k++) {
			if (cases[c].nf4)
				nf4_weight(outs[k], in, &q[k], &tc[k], &tg[k]);
			else
				bf16_weight(outs[k], in, &h[k], &tc[k], &tg[k]);
		}
		int64_t ns[] = { 1, 4, 8 };
		for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
			int64_t n = ns[t];
			float *x = rnd((size_t)(n * in), 1.0f);
			float *dx = dev_f(x, (size_t)(n * in));
			float *ref[2], *dy[2];
			double bound = 1e-5;
			for (int k = 0; k < 2; k++) {
				ref[k] = malloc((size_t)(n * outs[k]) * sizeof(float));
				sk_backend *rb = reference_for(&tc[k], n, &bound);
				CHECK(rb->ops->linear(rb, &tc[k], x, n, ref[k], NULL, NULL) == 0);
				dy[k] = poisoned((size_t)(n * outs[k]));
			}
			CHECK(gpu->ops->linear2(gpu, &tg[0], &tg[1], dx, n, dy[0], dy[1], NULL, NULL, NULL) == 0);
			for (int k = 0; k < 2; k++) {
				char what[96];
				snprintf(what, sizeof what, "linear2 %s %lld+%lldx%lld, %lld rows: weight %d",
				         cases[c].nf4 ? "NF4" : "bf16", (long long)outs[0], (long long)outs[1], (long long)in,
				         (long long)n, k + 1);
				expect(what, dy[k], ref[k], (size_t)(n * outs[k]), bound);
				dfree(dy[k]);
				free(ref[k]);
			}
			dfree(dx);
			free(x);
		}
		for (int k = 0; k < 2; k++) {
			if (cases[c].nf4)
				sk_nf4_free(&q[k]);
			else
				free(h[k]);
		}
	}
}

TEST(embed_rows_device_and_host_tables)
{
	NEED_GPU();
	enum { V = 50, D = 24, N = 7 };
	for (int host = 0; host < 2; host++) {
		uint16_t *h;
		sk_tensor tc, tg;
		h = malloc(V * D * 2);
		for (int i = 0; i < V * D; i++)
			h[i] = sk_f32_to_bf16(frand());
		memset(&tc, 0, sizeof tc);
		tc.dtype = SK_DT_BF16;
		tc.ndim = 2;
		tc.shape[0] = V;
		tc.shape[1] = D;
		tc.data = h;
		tg = tc;
		CHECK(gpu->ops->load_tensor(gpu, &tg, host, "table") == 0);
		int32_t ids[N] = { 3, 49, 0, 3, 17, 22, 8 };
		float ref[N * D];
		CHECK(cpu->ops->embed(cpu, &tc, ids, N, 1.5f, ref) == 0);
		int32_t *did = dev(ids, sizeof ids);
		float *dy = poisoned(N * D);
		CHECK(gpu->ops->embed(gpu, &tg, did, N, 1.5f, dy) == 0);
		expect(host ? "embed, table in pinned host memory" : "embed, table on the device", dy, ref, N * D, 2e-6);
		dfree(did);
		dfree(dy);
		free(h);
	}
}

TEST(norm_rope_elementwise)
{
	NEED_GPU();
	enum { R = 5, D = 320, H = 4, HD = 32 };
	float *x = rnd(R * D, 2.0f), *b = rnd(R * D, 2.0f), *w = rnd(D, 1.0f), ref[R * D];
	float *dx = dev_f(x, R * D), *db = dev_f(b, R * D), *dw = dev_f(w, D), *dy;
	for (int with_w = 0; with_w < 2; with_w++) {
		cpu->ops->rmsnorm(cpu, x, R, D, with_w ? w : NULL, 1e-6f, ref);
		dy = poisoned(R * D);
		gpu->ops->rmsnorm(gpu, dx, R, D, with_w ? dw : NULL, 1e-6f, dy);
		expect(with_w ? "rmsnorm with weight" : "rmsnorm without weight", dy, ref, R * D, 2e-6);
		dfree(dy);
	}
	/* RoPE in place on [R][H][HD] (R·H·HD = 640 ≤ R·D) at scattered positions */
	int32_t pos[R] = { 0, 7, 513, 4095, 31 };
	int32_t *dpos = dev(pos, sizeof pos);
	memcpy(ref, x, R * H * HD * sizeof(float));
	cpu->ops->rope(cpu, ref, R, H, HD, pos, 10000.0f, 1.0f);
	dy = dev_f(x, R * H * HD);
	gpu->ops->rope(gpu, dy, R, H, HD, dpos, 10000.0f, 1.0f);
	expect("rope theta 1e4", dy, ref, R * H * HD, 2e-6);
	dfree(dy);
	memcpy(ref, x, R * H * HD * sizeof(float));
	cpu->ops->rope(cpu, ref, R, H, HD, pos, 1000000.0f, 8.0f);
	dy = dev_f(x, R * H * HD);
	gpu->ops->rope(gpu, dy, R, H, HD, dpos, 1000000.0f, 8.0f);
	expect("rope theta 1e6, linear factor 8", dy, ref, R * H * HD, 2e-6);
	dfree(dy);

	/* the fused ops: norm + rope, norm + add (+ add) · scale */
	float *xh = rnd(R * H * HD, 1.5f), *wh = rnd(HD, 1.0f);
	float *dxh = dev_f(xh, R * H * HD), *dwh = dev_f(wh, HD);
	cpu->ops->norm_rope(cpu, xh, R, H, HD, wh, 1e-6f, pos, 10000.0f, 1.0f, ref);
	dy = poisoned(R * H * HD);
	gpu->ops->norm_rope(gpu, dxh, R, H, HD, dwh, 1e-6f, dpos, 10000.0f, 1.0f, dy);
	expect("norm_rope", dy, ref, R * H * HD, 2e-6);
	dfree(dy);
	dfree(dxh);
	dfree(dwh);
	free(xh);
	free(wh);
	for (int with_b = 0; with_b < 2; with_b++) {
		cpu->ops->norm_add(cpu, x, R, D, w, 1e-6f, b, with_b ? x : NULL, with_b ? 0.7f : 1.0f, ref);
		dy = poisoned(R * D);
		gpu->ops->norm_add(gpu, dx, R, D, dw, 1e-6f, db, with_b ? dx : NULL, with_b ? 0.7f : 1.0f, dy);
		expect(with_b ? "norm_add with b, scaled" : "norm_add", dy, ref, R * D, 2e-6);
		dfree(dy);
	}
	/* norm_add into every AltUp stream but one (Gemma 3n's per-layer input), against norm_add per stream */
	CHECK(gpu->ops->norm_add_streams != NULL);
	for (int skip = 0; skip < 4 && gpu->ops->norm_add_streams; skip += 3) {
		enum { A = 4 };
		float *ys = rnd(A * R * D, 1.0f), *ref4 = malloc(A * R * D * sizeof(float));
		memcpy(ref4, ys, A * R * D * sizeof(float));
		for (int k = 0; k < A; k++)
			if (k != skip)
				cpu->ops->norm_add(cpu, b, R, D, w, 1e-6f, ref4 + k * R * D, NULL, 1.0f, ref4 + k * R * D);
		float *dys = dev_f(ys, A * R * D);
		gpu->ops->norm_add_streams(gpu, db, R, D, dw, 1e-6f, dys, A, skip);
		expect(skip ? "norm_add_streams, stream 3 left out" : "norm_add_streams, stream 0 left out", dys, ref4,
		       A * R * D, 2e-6);
		dfree(dys);
		free(ys);
		free(ref4);
	}
	cpu->ops->add(cpu, x, b, R * D, 0.7f, ref);
	dy = poisoned(R * D);
	gpu->ops->add(gpu, dx, db, R * D, 0.7f, dy);
	expect("add, scaled", dy, ref, R * D, 2e-6);
	gpu->ops->scale(gpu, dx, R * D, -1.25f, dy);
	cpu->ops->scale(cpu, x, R * D, -1.25f, ref);
	expect("scale", dy, ref, R * D, 2e-6);
	gpu->ops->mul_rows(gpu, dx, db + 3, 11, R, 29, dy);
	cpu->ops->mul_rows(cpu, x, b + 3, 11, R, 29, ref);
	expect("mul_rows, row stride 11", dy, ref, R * 29, 2e-6);
	gpu->ops->mul_rows(gpu, dx, dw, 0, R, D, dy);
	cpu->ops->mul_rows(cpu, x, w, 0, R, D, ref);
	expect("mul_rows, broadcast", dy, ref, R * D, 2e-6);
	memcpy(ref, x, sizeof ref);
	cpu->ops->softcap(cpu, ref, R * D, 1.5f);
	gpu->ops->scale(gpu, dx, R * D, 1.0f, dy);
	gpu->ops->softcap(gpu, dy, R * D, 1.5f);
	expect("softcap", dy, ref, R * D, 2e-6);
	/* gelu with and without product, dense and with the sparsity cutoff */
	float zs[2] = { 0.0f, 1.6448536f };
	for (int k = 0; k < 2; k++)
		for (int with_u = 0; with_u < 2; with_u++) {
			memcpy(ref, x, sizeof ref);
			cpu->ops->gelu_mul(cpu, ref, with_u ? b : NULL, D, R, D, zs[k]);
			gpu->ops->scale(gpu, dx, R * D, 1.0f, dy);
			gpu->ops->gelu_mul(gpu, dy, with_u ? db : NULL, D, R, D, zs[k]);
			char what[64];
			snprintf(what, sizeof what, "gelu%s%s", with_u ? " * up" : "", zs[k] != 0 ? ", sparsity cutoff" : "");
			expect(what, dy, ref, R * D, 1e-5);
		}
	/* into another buffer (training keeps the pre-activation): the input untouched */
	memcpy(ref, x, sizeof ref);
	cpu->ops->gelu_mul(cpu, ref, b, D, R, D, zs[1]);
	CHECK(gpu->ops->gelu_mul_to != NULL);
	if (gpu->ops->gelu_mul_to) {
		gpu->ops->gelu_mul_to(gpu, dx, db, D, R, D, zs[1], dy);
		expect("gelu * up into another buffer, sparsity cutoff", dy, ref, R * D, 1e-5);
		expect("gelu into another buffer: its input as it was", dx, x, R * D, 0.0);
	}
	/* bf16 storage (training's kept layer inputs): the CPU's rounding to the bit, and back */
	CHECK(gpu->ops->to_bf16 != NULL && gpu->ops->from_bf16 != NULL);
	if (gpu->ops->to_bf16 && gpu->ops->from_bf16) {
		uint16_t *h16 = dev(NULL, R * D * sizeof(uint16_t));
		float *round = malloc(sizeof ref);
		for (int i = 0; i < R * D; i++)
			round[i] = sk_bf16_to_f32(sk_f32_to_bf16(x[i] * 3.7f));
		gpu->ops->scale(gpu, dx, R * D, 3.7f, dy);
		gpu->ops->to_bf16(gpu, dy, R * D, h16);
		gpu->ops->from_bf16(gpu, h16, R * D, dy);
		expect("to bf16 and back: rounded as the CPU rounds", dy, round, R * D, 0.0);
		free(round);
		dfree(h16);
	}
	/* u's rows at another stride (the per-layer inputs' slice of a layer) */
	memcpy(ref, x, sizeof ref);
	cpu->ops->gelu_mul(cpu, ref, b + 7, D / 2, R, D / 2, 0.0f);
	gpu->ops->scale(gpu, dx, R * D, 1.0f, dy);
	gpu->ops->gelu_mul(gpu, dy, db + 7, D / 2, R, D / 2, 0.0f);
	expect("gelu * strided rows", dy, ref, R * D / 2, 1e-5);
	memcpy(ref, x, sizeof ref);
	cpu->ops->rescale_rms(cpu, ref, b, R, D);
	gpu->ops->scale(gpu, dx, R * D, 1.0f, dy);
	gpu->ops->rescale_rms(gpu, dy, db, R, D);
	expect("rescale_rms", dy, ref, R * D, 2e-6);
	dfree(dy);
	dfree(dx);
	dfree(db);
	dfree(dw);
	dfree(dpos);
	free(x);
	free(b);
	free(w);
}

TEST(rows_rings_and_memory)
{
	NEED_GPU();
	enum { R = 6, D = 40 };
	float *x = rnd(R * D, 1.0f), ref[R * D], ring[4 * D];
	float *dx = dev_f(x, R * D), *dy = poisoned(R * D);
	int64_t idx[4] = { 5, 0, 2, 5 }, sidx[3] = { 4, 1, 3 };
	int64_t *didx = dev(idx, sizeof idx), *dsidx = dev(sidx, sizeof sidx);
	cpu->ops->gather_rows(cpu, x, D, idx, 4, ref);
	gpu->ops->gather_rows(gpu, dx, D, didx, 4, dy);
	expect("gather_rows", dy, ref, 4 * D, 0);
	for (int i = 0; i < R * D; i++)
		ref[i] = 0;
	gpu->ops->zero(gpu, dy, R * D);
	cpu->ops->scatter_rows(cpu, x, D, sidx, 3, ref);
	gpu->ops->scatter_rows(gpu, dx, D, dsidx, 3, dy);
	expect("zero, then scatter_rows", dy, ref, R * D, 0);
	int32_t pos[R] = { 9, 10, 11, 12, 13, 14 };
	int32_t *dpos = dev(pos, sizeof pos);
	for (int i = 0; i < 4 * D; i++)
		ring[i] = 0;
	float *dring = dev_f(ring, 4 * D);
	cpu->ops->ring_write(cpu, x, R, D, ring, 4, pos);
	gpu->ops->ring_write(gpu, dx, R, D, dring, 4, dpos);
	expect("ring_write wrapping a ring of 4", dring, ring, 4 * D, 0);
	/* many writes of the same rows in one call (a step's K and V of every layer): rings of
	 * 4, 8 and 3 rows, from two sources; more entries than one launch takes */
	CHECK(gpu->ops->ring_write_many != NULL);
	if (gpu->ops->ring_write_many) {
		enum { E = 70 };
		int64_t caps[3] = { 4, 8, 3 };
		float *rings[E], *drings[E];
		sk_ring_dst d[E];
		float *dx2 = dev_f(x, R * D);
		for (int e = 0; e < E; e++) {
			int64_t cap = caps[e % 3];
			rings[e] = rnd((size_t)(cap * D), 1.0f); /* what a write leaves alone must stay */
			drings[e] = dev_f(rings[e], (size_t)(cap * D));
			d[e] = (sk_ring_dst){ e % 2 ? dx2 : dx, drings[e], cap };
			cpu->ops->ring_write(cpu, x, R, D, rings[e], cap, pos);
		}
		gpu->ops->ring_write_many(gpu, R, D, dpos, d, E);
		int bad = 0;
		for (int e = 0; e < E; e++) {
			float *got = back(drings[e], (size_t)(caps[e % 3] * D));
			bad += memcmp(got, rings[e], (size_t)(caps[e % 3] * D) * sizeof(float)) != 0;
			free(got);
			free(rings[e]);
			dfree(drings[e]);
		}
		printf("# ring_write_many: %d of %d rings differ from ring_write's\n", bad, E);
		CHECK(bad == 0);
		dfree(dx2);
	}
	uint64_t fr = 0, tot = 0;
	gpu->ops->mem_info(gpu, &fr, &tot);
	CHECK(tot > 0 && fr <= tot);
	/* an impossible allocation is an error naming what and how much */
	void *huge = gpu->ops->alloc(gpu, (size_t)1 << 50, "an impossible buffer");
	CHECK(huge == NULL);
	CHECK(strstr(sk_error(), "an impossible buffer") != NULL && strstr(sk_error(), "free") != NULL);
	printf("# out of memory reads: %s\n", sk_error());
	/* and the failure is not left for the next op: a caller that can do with less goes on */
	float *small = gpu->ops->alloc(gpu, 64 * sizeof(float), "a small buffer");
	CHECK(small != NULL && gpu->ops->upload(gpu, small, x, 64 * sizeof(float)) == 0);
	dfree(small);
	dfree(dx);
	dfree(dy);
	dfree(didx);
	dfree(dsidx);
	dfree(dpos);
	dfree(dring);
	free(x);
}

/* One attention case: n new rows after past cached positions (ring of cap),
 * NH heads over NKV of dimension HD. */
static void attention_heads_case(int64_t n, int64_t past, int64_t cap, int window, float softcap, int NH, int NKV,
                                 int HD)
{
	int64_t kvd = NKV * HD, qd = NH * HD;
	float *q = rnd((size_t)(n * qd), 1.0f), *kn = rnd((size_t)(n * kvd), 1.0f), *vn = rnd((size_t)(n * kvd), 1.0f);
	float *kp = rnd((size_t)(cap * kvd), 1.0f), *vp = rnd((size_t)(cap * kvd), 1.0f);
	float *ref = malloc((size_t)(n * qd) * sizeof(float));
	int32_t *pos = malloc((size_t)n * sizeof *pos);
	for (int64_t i = 0; i < n; i++)
		pos[i] = (int32_t)(past + i);
	int64_t lo = past > cap ? past - cap : 0;
	sk_attn_kv a = { past ? kp : NULL, past ? vp : NULL, cap, past ? lo : 0, past, kn, vn, pos };
	float sc = 1.0f / sqrtf((float)HD);
	CHECK(cpu->ops->attention(cpu, q, n, &a, NH, NKV, HD, window, sc, softcap, ref) == 0);
	float *dq = dev_f(q, (size_t)(n * qd)), *dkn = dev_f(kn, (size_t)(n * kvd)), *dvn = dev_f(vn, (size_t)(n * kvd));
	float *dkp = dev_f(kp, (size_t)(cap * kvd)), *dvp = dev_f(vp, (size_t)(cap * kvd));
	int32_t *dpos = dev(pos, (size_t)n * sizeof *pos);
	float *dout = poisoned((size_t)(n * qd));
	sk_attn_kv g = { past ? dkp : NULL, past ? dvp : NULL, cap, past ? lo : 0, past, dkn, dvn, dpos };
	CHECK(gpu->ops->attention(gpu, dq, n, &g, NH, NKV, HD, window, sc, softcap, dout) == 0);
	char what[128];
	snprintf(what, sizeof what, "attention %lld new after %lld, ring %lld, window %d%s, %d/%d heads of %d",
	         (long long)n, (long long)past, (long long)cap, window, softcap > 0 ? ", softcap" : "", NH, NKV, HD);
	/* without a cache the products may run on TF32 (the default) or bf16, else fp32 */
	expect(what, dout, ref, (size_t)(n * qd), past == 0 ? attention_products_bound(1e-5) : 1e-5);
	dfree(dq);
	dfree(dkn);
	dfree(dvn);
	dfree(dkp);
	dfree(dvp);
	dfree(dpos);
	dfree(dout);
	free(q);
	free(kn);
	free(vn);
	free(kp);
	free(vp);
	free(ref);
	free(pos);
}

static void attention_case(int64_t n, int64_t past, int64_t cap, int window, float softcap)
{
	attention_heads_case(n, past, cap, window, softcap, 4, 2, 64);
}

TEST(attention_cache_window_gqa)
{
	NEED_GPU();
	attention_case(1, 0, 16, 0, 0);        /* the first token */
	attention_case(37, 0, 64, 0, 0);       /* a prefill without a past */
	attention_case(37, 0, 64, 8, 50.0f);   /* sliding window, softcap */
	attention_case(1, 300, 512, 0, 0);     /* decoding over a long cache (split keys) */
	attention_case(1, 1000, 256, 256, 0);  /* a wrapped sliding ring */
	attention_case(4, 90, 100, 32, 0);     /* a short chunk after a wrapped ring */
	/* many rows at head dimensions 256 and 128: the tiled kernel (32 and 64 rows a block) */
	attention_heads_case(100, 0, 128, 0, 0, 4, 2, 256);      /* a prefill, 32 rows a block */
	attention_heads_case(150, 0, 256, 64, 30.0f, 8, 2, 256); /* sliding window, softcap */
	attention_heads_case(70, 290, 100, 32, 0, 4, 1, 128);    /* a chunk after a wrapped sliding ring */
	attention_heads_case(200, 300, 512, 0, 0, 4, 2, 128);    /* a chunk after a long cache */
	attention_heads_case(1100, 0, 1100, 512, 0, 16, 4, 256); /* 64 rows a block, Gemma 3n's window */
	attention_heads_case(17, 5, 32, 0, 0, 2, 2, 256);        /* one partial block */
}

TEST(altup_router_predict_correct)
{
	NEED_GPU();
	enum { A = 4, R = 3, D = 96, ACT = 0 };
	float *x = rnd(A * R * D, 1.0f), *y = rnd(R * D, 1.0f), *nw = rnd(D, 1.0f), *w = rnd(A * D, 1.0f);
	float *wp = rnd(A * A * A, 0.5f), *wc = rnd(A * A, 0.5f), modal[R * A], ref[A * R * D];
	float *dx = dev_f(x, A * R * D), *dyv = dev_f(y, R * D), *dnw = dev_f(nw, D), *dw = dev_f(w, A * D);
	float *dwp = dev_f(wp, A * A * A), *dwc = dev_f(wc, A * A), *dm = poisoned(R * A), *dout = poisoned(A * R * D);
	cpu->ops->altup_router(cpu, x, R, D, nw, 1e-6f, w, A, modal);
	gpu->ops->altup_router(gpu, dx, R, D, dnw, 1e-6f, dw, A, dm);
	expect("altup_router", dm, modal, R * A, 1e-5);
	gpu->ops->upload(gpu, dm, modal, sizeof modal); /* the same modalities for the next two */
	cpu->ops->altup_predict(cpu, x, R, D, A, wp, modal, ref);
	gpu->ops->altup_predict(gpu, dx, R, D, A, dwp, dm, dout);
	expect("altup_predict", dout, ref, A * R * D, 2e-6);
	gpu->ops->zero(gpu, dout, A * R * D);
	cpu->ops->altup_correct(cpu, x, y, R, D, A, ACT, wc, modal, ref);
	gpu->ops->altup_correct(gpu, dx, dyv, R, D, A, ACT, dwc, dm, dout);
	expect("altup_correct", dout, ref, A * R * D, 2e-6);
	/* the fused pairs (one launch each while decoding) against the CPU's separate calls, the
	 * router over a stream other than the first for the prediction */
	CHECK(gpu->ops->altup_router_predict && gpu->ops->altup_router_correct);
	if (gpu->ops->altup_router_predict && gpu->ops->altup_router_correct) {
		float modal2[R * A];
		cpu->ops->altup_router(cpu, x + 2 * R * D, R, D, nw, 1e-6f, w, A, modal2);
		cpu->ops->altup_predict(cpu, x, R, D, A, wp, modal2, ref);
		dfree(dm), dfree(dout);
		dm = poisoned(R * A), dout = poisoned(A * R * D);
		gpu->ops->altup_router_predict(gpu, dx, R, D, 2, dnw, 1e-6f, dw, A, dwp, dm, dout, NULL, NULL);
		expect("altup_router_predict: modalities", dm, modal2, R * A, 1e-5);
		expect("altup_router_predict: predictions", dout, ref, A * R * D, 1e-5);
		cpu->ops->altup_router(cpu, y, R, D, nw, 1e-6f, w, A, modal2);
		cpu->ops->altup_correct(cpu, x, y, R, D, A, 1, wc, modal2, ref);
		dfree(dm), dfree(dout);
		dm = poisoned(R * A), dout = poisoned(A * R * D);
		gpu->ops->altup_router_correct(gpu, dx, dyv, R, D, 1, dnw, 1e-6f, dw, A, dwc, dm, dout);
		expect("altup_router_correct: modalities", dm, modal2, R * A, 1e-5);
		expect("altup_router_correct: corrected", dout, ref, A * R * D, 1e-5);
	}
	dfree(dx), dfree(dyv), dfree(dnw), dfree(dw), dfree(dwp), dfree(dwc), dfree(dm), dfree(dout);
	free(x), free(y), free(nw), free(w), free(wp), free(wc);
}

/* The fused norms of a decoder layer (one launch each while decoding) against
 * the CPU's separate calls, at E4B's width and head size: the prediction
 * with the attention input's norm; λ, the post-attention sum and the MLP's
 * input norm (Gemma 3n, and Gemma 3 without λ); q, k, v normed and rotated
 * (also in place, as inference aliases them); the MLP's output norm with
 * the AltUp correction and the per-layer input's operand. */
TEST(fused_layer_norms)
{
	NEED_GPU();
	enum { A = 4, R = 3, D = 2048, ACT = 1, NH = 8, NKV = 2, HD = 256 };
	const float eps = 1e-6f;
	float *x = rnd(A * R * D, 1.0f), *nw = rnd(D, 1.0f), *w = rnd(A * D, 1.0f), *wp = rnd(A * A * A, 0.5f);
	float *an = rnd(D, 1.0f), *modal = malloc(R * A * sizeof(float)), *p = malloc(A * R * D * sizeof(float));
	float *nrm = malloc(R * D * sizeof(float));
	float *dx = dev_f(x, A * R * D), *dnw = dev_f(nw, D), *dw = dev_f(w, A * D), *dwp = dev_f(wp, A * A * A);
	float *dan = dev_f(an, D), *dm = poisoned(R * A), *dp = poisoned(A * R * D), *dn = poisoned(R * D);
	CHECK(gpu->ops->altup_router_predict && gpu->ops->norm_add_norm && gpu->ops->norm_rope_qkv &&
	      gpu->ops->altup_norm_add_correct);
	if (!gpu->ops->altup_router_predict || !gpu->ops->norm_add_norm || !gpu->ops->norm_rope_qkv ||
	    !gpu->ops->altup_norm_add_correct)
		return;
	cpu->ops->altup_router(cpu, x + ACT * R * D, R, D, nw, eps, w, A, modal);
	cpu->ops->altup_predict(cpu, x, R, D, A, wp, modal, p);
	cpu->ops->rmsnorm(cpu, p + ACT * R * D, R, D, an, eps, nrm);
	gpu->ops->altup_router_predict(gpu, dx, R, D, ACT, dnw, eps, dw, A, dwp, dm, dp, dan, dn);
	expect("router_predict + norm: modalities", dm, modal, R * A, 1e-5);
	expect("router_predict + norm: predictions", dp, p, A * R * D, 1e-5);
	expect("router_predict + norm: the active prediction normed", dn, nrm, R * D, 1e-5);

	/* after attention */
	float *o = rnd(R * D, 1.0f), *z = rnd(R * D, 1.0f), *w1 = rnd(D, 1.0f), *w2 = rnd(D, 1.0f), *w3 = rnd(D, 1.0f);
	float *lam = malloc(R * D * sizeof(float)), *h1 = malloc(R * D * sizeof(float)), *mm = malloc(R * D * sizeof(float));
	float *dO = dev_f(o, R * D), *dw1 = dev_f(w1, D), *dw2 = dev_f(w2, D), *dw3 = dev_f(w3, D), *da = dev_f(x, R * D);
	float *dnc = dev_f(nrm, R * D); /* the CPU's norm, so that λ's inputs are the same on both sides */
	for (int with_lam = 1; with_lam >= 0; with_lam--) {
		if (with_lam) {
			cpu->ops->norm_add(cpu, z, R, D, w2, eps, nrm, NULL, 1.0f, lam);
			cpu->ops->norm_add(cpu, o, R, D, w1, eps, x, lam, 0.70710678f, h1);
		} else {
			cpu->ops->norm_add(cpu, o, R, D, w1, eps, x, NULL, 1.0f, h1);
		}
		cpu->ops->rmsnorm(cpu, h1, R, D, w3, eps, mm);
		/* λ in place over its input, as inference lays them out */
		float *dz = dev_f(z, R * D), *dh = poisoned(R * D), *dmm = poisoned(R * D);
		sk_norm_add_norm na = { with_lam ? dz : NULL, dw2, dnc, dz, dO, dw1, da, with_lam ? 0.70710678f : 1.0f,
			                dh, dw3, dmm };
		gpu->ops->norm_add_norm(gpu, R, D, eps, &na);
		if (with_lam)
			expect("norm_add_norm: λ (in place)", dz, lam, R * D, 2e-6);
		expect(with_lam ? "norm_add_norm: h1" : "norm_add_norm without λ: h1", dh, h1, R * D, 2e-6);
		expect(with_lam ? "norm_add_norm: RMS(h1)" : "norm_add_norm without λ: RMS(h1)", dmm, mm, R * D, 2e-6);
		dfree(dz), dfree(dh), dfree(dmm);
	}

	/* q, k, v */
	float *q = rnd(R * NH * HD, 2.0f), *k = rnd(R * NKV * HD, 2.0f), *v = rnd(R * NKV * HD, 2.0f);
	float *qw = rnd(HD, 1.0f), *kw = rnd(HD, 1.0f);
	float *qr = malloc(R * NH * HD * sizeof(float)), *kr = malloc(R * NKV * HD * sizeof(float)),
	      *vr = malloc(R * NKV * HD * sizeof(float));
	int32_t pos[R] = { 5, 511, 4093 };
	int32_t *dpos = dev(pos, sizeof pos);
	cpu->ops->norm_rope(cpu, q, R, NH, HD, qw, eps, pos, 10000.0f, 1.0f, qr);
	cpu->ops->norm_rope(cpu, k, R, NKV, HD, kw, eps, pos, 10000.0f, 1.0f, kr);
	cpu->ops->rmsnorm(cpu, v, R * NKV, HD, NULL, eps, vr);
	float *dq = dev_f(q, R * NH * HD), *dk = dev_f(k, R * NKV * HD), *dv = dev_f(v, R * NKV * HD);
	float *dqw = dev_f(qw, HD), *dkw = dev_f(kw, HD);
	float *dqo = poisoned(R * NH * HD), *dko = poisoned(R * NKV * HD), *dvo = poisoned(R * NKV * HD);
	sk_qkv_norm qa = { dq, dqw, dqo, NH, NKV, dk, dkw, dv, dko, dvo };
	gpu->ops->norm_rope_qkv(gpu, R, HD, eps, dpos, 10000.0f, 1.0f, &qa);
	expect("norm_rope_qkv: q", dqo, qr, R * NH * HD, 2e-6);
	expect("norm_rope_qkv: k", dko, kr, R * NKV * HD, 2e-6);
	expect("norm_rope_qkv: v", dvo, vr, R * NKV * HD, 2e-6);
	sk_qkv_norm qi = { dq, dqw, dq, NH, NKV, dk, dkw, dv, dk, dv };
	gpu->ops->norm_rope_qkv(gpu, R, HD, eps, dpos, 10000.0f, 1.0f, &qi);
	expect("norm_rope_qkv in place: q", dq, qr, R * NH * HD, 2e-6);
	expect("norm_rope_qkv in place: k", dk, kr, R * NKV * HD, 2e-6);
	expect("norm_rope_qkv in place: v", dv, vr, R * NKV * HD, 2e-6);

	/* after the MLP */
	float *f = rnd(R * D, 1.0f), *fw = rnd(D, 1.0f), *wc = rnd(A * A, 0.5f), *vs = rnd(D, 1.0f);
	float *yv = malloc(R * D * sizeof(float)), *outr = malloc(A * R * D * sizeof(float));
	float *vin = malloc(R * D * sizeof(float));
	cpu->ops->norm_add(cpu, f, R, D, fw, eps, h1, NULL, 1.0f, yv);
	cpu->ops->altup_router(cpu, yv, R, D, nw, eps, w, A, modal);
	cpu->ops->altup_correct(cpu, p, yv, R, D, A, ACT, wc, modal, outr);
	float *df = dev_f(f, R * D), *dfw = dev_f(fw, D), *dh1 = dev_f(h1, R * D), *dpp = dev_f(p, A * R * D);
	float *dwc = dev_f(wc, A * A), *dvs = dev_f(vs, D);
	for (int scaled = 1; scaled >= 0; scaled--) {
		cpu->ops->mul_rows(cpu, outr + ACT * R * D, vs, 0, R, D, vin);
		if (!scaled)
			memcpy(vin, outr + ACT * R * D, R * D * sizeof(float));
		float *dy = poisoned(R * D), *dmo = poisoned(R * A), *dout = poisoned(A * R * D), *dvin = poisoned(R * D);
		sk_altup_tail t = { df, dfw, dh1, dy, dpp, dnw, dw, dwc, dmo, dout, scaled ? dvs : NULL, dvin };
		gpu->ops->altup_norm_add_correct(gpu, R, D, A, ACT, eps, &t);
		expect("norm_add_correct: y", dy, yv, R * D, 2e-6);
		expect("norm_add_correct: modalities", dmo, modal, R * A, 1e-5);
		expect("norm_add_correct: corrected", dout, outr, A * R * D, 1e-5);
		expect(scaled ? "norm_add_correct: c_act scaled" : "norm_add_correct: c_act copied", dvin, vin, R * D, 1e-5);
		dfree(dy), dfree(dmo), dfree(dout), dfree(dvin);
	}
	dfree(df), dfree(dfw), dfree(dh1), dfree(dpp), dfree(dwc), dfree(dvs);
	free(f), free(fw), free(wc), free(vs), free(yv), free(outr), free(vin);
	dfree(dq), dfree(dk), dfree(dv), dfree(dqw), dfree(dkw), dfree(dqo), dfree(dko), dfree(dvo), dfree(dpos);
	free(q), free(k), free(v), free(qw), free(kw), free(qr), free(kr), free(vr);
	dfree(dO), dfree(dw1), dfree(dw2), dfree(dw3), dfree(da), dfree(dnc);
	free(o), free(z), free(w1), free(w2), free(w3), free(lam), free(h1), free(mm);
	dfree(dx), dfree(dnw), dfree(dw), dfree(dwp), dfree(dan), dfree(dm), dfree(dp), dfree(dn);
	free(x), free(nw), free(w), free(wp), free(an), free(modal), free(p), free(nrm);
}

/* AdamW8bit on the device (the trainer's optimizer while the GPU holds the
 * adapter) against the host's, on an adapter of the tiny Gemma 3n's shape
 * with the 8-bit threshold lowered so that some tensors keep fp32 states
 * and others 8-bit ones with partial blocks: gradients clipped to 0.5, a
 * NaN element, and a step skipped for an infinite one. The arithmetic is
 * the host's operation for operation, so states, block maxima and factors
 * must agree to the bit; the device's gradients are zeroed by the step. */
TEST(adamw8bit_on_the_device)
{
	NEED_GPU();
	sk_model_opts mo = { SK_DEVICE_CPU, 0, 1 };
	sk_model *m = sk_model_load(sk_test_path("tests/fixtures/hf/tiny-gemma3n"), &mo);
	CHECK(m != NULL);
	if (!m)
		return;
	const sk_config *c = sk_model_config(m);
	sk_lora *l[2];
	sk_optim_param *p[2];
	sk_optim *o[2];
	char(*names)[32] = NULL;
	int np = 0;
	sk_optim_config oc;
	sk_optim_config_default(&oc);
	oc.min_8bit_size = 300; /* rank 6 over widths 32-128: tensors of 192 (fp32 states) to 768 elements */
	for (int k = 0; k < 2; k++) {
		l[k] = sk_lora_new_trainable(c, SK_LORA_MASK_ALL, 6, 12.0f, 0, 9);
		CHECK(l[k] != NULL);
		if (!l[k])
			return;
		np = sk_lora_pair_count(l[k]);
		p[k] = calloc((size_t)(2 * np), sizeof *p[k]);
		if (!names)
			names = calloc((size_t)(2 * np), sizeof *names);
		for (int i = 0; i < np; i++) {
			int layer;
			sk_lora_module mod;
			sk_lora_pair *pr = sk_lora_pair_at(l[k], i, &layer, &mod);
			snprintf(names[2 * i], 32, "%d.A", i);
			snprintf(names[2 * i + 1], 32, "%d.B", i);
			p[k][2 * i] = (sk_optim_param){ names[2 * i], pr->A, sk_lora_grad_A(l[k], i), (int64_t)pr->r * pr->in };
			p[k][2 * i + 1] = (sk_optim_param){ names[2 * i + 1], pr->B, sk_lora_grad_B(l[k], i),
				                            (int64_t)pr->out * pr->r };
		}
		o[k] = sk_optim_new(&oc, p[k], (size_t)(2 * np));
		CHECK(o[k] != NULL);
	}
	int mixed[2] = { 0, 0 }, partial = 0;
	for (int j = 0; j < 2 * np; j++) { /* the same random factors on both sides */
		float *r = rnd((size_t)p[0][j].numel, 0.1f);
		memcpy(p[0][j].param, r, (size_t)p[0][j].numel * sizeof(float));
		memcpy(p[1][j].param, r, (size_t)p[0][j].numel * sizeof(float));
		free(r);
		sk_optim_state_view v;
		sk_optim_state(o[0], (size_t)j, &v);
		mixed[v.eight_bit] = 1;
		partial |= v.eight_bit && v.numel % 256 != 0;
	}
	CHECK(mixed[0] && mixed[1] && partial); /* both kinds of state, and a partial block */
	CHECK(gpu->ops->train_begin(gpu, l[1]) == 0);
	CHECK(gpu->ops->train_optim_begin(gpu, o[1]) == 1);
	for (int step = 0; step < 4; step++) {
		for (int j = 0; j < 2 * np; j++) {
			size_t n = (size_t)p[0][j].numel;
			float *g = rnd(n, 0.05f);
			if (step == 1 && j == 0)
				g[3] = NAN;
			if (step == 2 && j == 1)
				g[0] = INFINITY;
			memcpy(p[0][j].grad, g, n * sizeof(float));
			int layer;
			sk_lora_module mod;
			float *dg = sk_cuda_be_grad(gpu, sk_lora_pair_at(l[1], j / 2, &layer, &mod), j % 2);
			CHECK(dg != NULL && gpu->ops->upload(gpu, dg, g, n * sizeof(float)) == 0);
			free(g);
		}
		float nc = sk_grad_clip_norm(p[0], (size_t)(2 * np), 0.5f), ng = 0;
		if (isfinite(nc))
			CHECK(sk_optim_step(o[0], 1e-3) == 0);
		CHECK(gpu->ops->train_optim_step(gpu, o[1], 1e-3, 0.5f, &ng) == 0);
		CHECK(isfinite(nc) == isfinite(ng));
		CHECK(!isfinite(nc) || fabsf(nc - ng) <= 1e-6f * nc);
		CHECK(sk_optim_steps_done(o[0]) == sk_optim_steps_done(o[1]));
		CHECK(gpu->ops->train_optim_sync(gpu, o[1]) == 0);
		int64_t bad_p = 0, bad_s = 0, total = 0;
		for (int j = 0; j < 2 * np; j++) {
			sk_optim_state_view a, b;
			sk_optim_state(o[0], (size_t)j, &a);
			sk_optim_state(o[1], (size_t)j, &b);
			for (int64_t e = 0; e < a.numel; e++, total++) {
				bad_p += memcmp(&p[0][j].param[e], &p[1][j].param[e], sizeof(float)) != 0;
				if (a.eight_bit)
					bad_s += a.state1[e] != b.state1[e] || a.state2[e] != b.state2[e];
				else
					bad_s += memcmp(&a.m[e], &b.m[e], 4) != 0 || memcmp(&a.v[e], &b.v[e], 4) != 0;
			}
			for (int64_t e = 0; a.eight_bit && e < a.nblocks; e++)
				bad_s += memcmp(&a.absmax1[e], &b.absmax1[e], 4) != 0 || memcmp(&a.absmax2[e], &b.absmax2[e], 4) != 0;
		}
		printf("# adamw8bit on the device, step %d (norm %.6g%s): %lld of %lld factors and %lld states differ\n",
		       step + 1, (double)ng, isfinite(ng) ? "" : ", skipped", (long long)bad_p, (long long)total,
		       (long long)bad_s);
		CHECK(bad_p == 0 && bad_s == 0);
	}
	/* the step zeroed the device's gradients */
	int layer;
	sk_lora_module mod;
	size_t n0 = (size_t)p[1][0].numel;
	float *back0 = back(sk_cuda_be_grad(gpu, sk_lora_pair_at(l[1], 0, &layer, &mod), 0), n0);
	int nonzero = 0;
	for (size_t e = 0; e < n0; e++)
		nonzero += back0[e] != 0.0f;
	CHECK(nonzero == 0);
	free(back0);
	gpu->ops->train_begin(gpu, NULL);
	for (int k = 0; k < 2; k++) {
		sk_optim_free(o[k]);
		free(p[k]);
		sk_lora_free(l[k]);
	}
	free(names);
	sk_model_free(m);
}

TEST(lora_pair_outside_the_adapter_is_refused)
{
	NEED_GPU();
	enum { OUT = 48, IN = 64, R = 8 };
	float *A = rnd(R * IN, 0.2f), *B = rnd(OUT * R, 0.2f);
	sk_lora_pair lp = { A, B, R, IN, OUT, 2.0f };
	/* the backend takes LoRA pairs from an adapter set on it: make a one-pair adapter by hand */
	uint16_t *h;
	sk_tensor tc, tg;
	bf16_weight(OUT, IN, &h, &tc, &tg);
	/* without an adapter set, a pair is refused with a message */
	float *dx = poisoned(2 * IN), *dy = poisoned(2 * OUT);
	uint8_t rows[2] = { 1, 1 };
	CHECK(gpu->ops->linear(gpu, &tg, dx, 2, dy, &lp, rows) != 0);
	dfree(dx);
	dfree(dy);
	free(h);
	free(A);
	free(B);
}

/* The GPU's draw against the CPU sampler on the same logits with the same
 * uniform number: the same token, for each rule and their mix. */
TEST(draws_match_cpu_sampler)
{
	NEED_GPU();
	enum { V = 6000, R = 4, NH = 9 };
	struct { int greedy; float temp; int top_k; float top_p, min_p, pen; float scale; } cases[] = {
		{ 1, 1.0f, 0, 1.0f, 0.0f, 1.0f, 4.0f },    /* greedy */
		{ 1, 1.0f, 0, 1.0f, 0.0f, 1.3f, 4.0f },    /* greedy with a repetition penalty */
		{ 0, 0.8f, 40, 1.0f, 0.0f, 1.0f, 4.0f },   /* temperature, top-k */
		{ 0, 1.0f, 64, 0.95f, 0.0f, 1.0f, 4.0f },  /* Gemma's defaults */
		{ 0, 0.7f, 0, 0.9f, 0.0f, 1.2f, 6.0f },    /* top-p alone, peaked, penalty */
		{ 0, 1.0f, 0, 1.0f, 0.05f, 1.0f, 6.0f },   /* min-p alone */
		{ 0, 1.2f, 100, 0.8f, 0.02f, 1.1f, 5.0f }, /* everything */
	};
	int32_t hist[NH] = { 3, 17, 17, 250, 999, 5999, 42, 1, 4095 };
	int32_t hseq[NH];
	uint32_t words = (V + 31) / 32;
	uint32_t *dseen = dev(NULL, (size_t)R * words * 4);
	int32_t *dh = dev(hist, sizeof hist), *dhs;
	for (int i = 0; i < NH; i++)
		hseq[i] = i % R;
	dhs = dev(hseq, sizeof hseq);
	gpu->ops->mark_seen(gpu, dseen, words, dh, dhs, NH);
	int same = 0, total = 0;
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		for (int round = 0; round < 5; round++) {
			float *lg = rnd((size_t)R * V, cases[k].scale);
			sk_sample_row rows[R];
			int32_t want[R], rowseq[R];
			for (int r = 0; r < R; r++) {
				sk_sampling sp = { cases[k].greedy, cases[k].temp, cases[k].top_k, cases[k].top_p, cases[k].min_p,
					           cases[k].pen, 1000 + (uint64_t)(k * 100 + round * 10 + r) };
				sk_sampler *a = sk_sampler_new(&sp, V), *b = sk_sampler_new(&sp, V);
				/* the CPU's history of row r: the ids marked for sequence r */
				int32_t h[NH];
				int nh = 0;
				for (int i = 0; i < NH; i++)
					if (hseq[i] == r)
						h[nh++] = hist[i];
				float *row = malloc(V * sizeof(float));
				memcpy(row, lg + (size_t)r * V, V * sizeof(float));
				want[r] = sk_sampler_sample(a, row, h, (size_t)nh);
				rows[r] = (sk_sample_row){ cases[k].temp, cases[k].top_p, cases[k].min_p, cases[k].pen, cases[k].top_k,
					                   cases[k].greedy, cases[k].greedy ? 0.0 : sk_sampler_uniform(b) };
				rowseq[r] = r;
				free(row);
				sk_sampler_free(a);
				sk_sampler_free(b);
			}
			float *dl = dev_f(lg, (size_t)R * V);
			sk_sample_row *drows = dev(rows, sizeof rows);
			int32_t *drs = dev(rowseq, sizeof rowseq), *dids = dev(NULL, sizeof want), got[R];
			CHECK(gpu->ops->sample(gpu, dl, R, V, drows, dseen, words, drs, dids) == 0);
			CHECK(gpu->ops->download(gpu, got, dids, sizeof got) == 0);
			for (int r = 0; r < R; r++) {
				same += got[r] == want[r];
				total++;
				CHECK_MSG(got[r] == want[r], "case %zu round %d row %d: GPU %d, CPU %d", k, round, r, got[r], want[r]);
			}
			dfree(dl), dfree(drows), dfree(drs), dfree(dids);
			free(lg);
		}
	}
	printf("# GPU draws equal to the CPU sampler's: %d of %d\n", same, total);
	dfree(dseen), dfree(dh), dfree(dhs);
}

/* ---- whole models ---- */

static sk_model *load_on(const char *rel, sk_device d, int nf4)
{
	sk_model_opts o = { d, nf4, 2 };
	sk_model *m = sk_model_load(sk_test_path(rel), &o);
	if (!m)
		fprintf(stderr, "  load %s on %s: %s\n", rel, sk_device_name(d), sk_error());
	return m;
}

static const int32_t seq_a[] = { 2, 225, 49, 314, 134, 180, 261, 265, 296, 43, 53, 121, 157, 294, 4, 275,
	                           240, 204, 186, 344, 60, 198, 323, 21 };
static const int32_t seq_b[] = { 2, 17, 99, 310, 5, 260, 261, 77, 12, 300, 301, 302, 150 };

/* The same work on both models: a ragged prefill of two sequences (all
 * logits; adapter on the second when lora), then token-by-token decoding
 * of six more tokens each. */
static void compare_models(const char *label, sk_model *mc, sk_model *mg, int lora, double bound, double dec_bound)
{
	int V = sk_model_vocab(mc);
	int na = (int)(sizeof seq_a / sizeof *seq_a), nb = (int)(sizeof seq_b / sizeof *seq_b);
	/* the ids, folded into a smaller vocabulary (the GGUF fixtures have 256) */
	int32_t a_ids[sizeof seq_a / sizeof *seq_a], b_ids[sizeof seq_b / sizeof *seq_b];
	for (int i = 0; i < na; i++)
		a_ids[i] = seq_a[i] % V;
	for (int i = 0; i < nb; i++)
		b_ids[i] = seq_b[i] % V;
	sk_kv_cache *kc = sk_kv_cache_new(mc, 2, 64), *kg = sk_kv_cache_new(mg, 2, 64);
	float *lc = malloc((size_t)(na + nb) * V * sizeof(float)), *lg = malloc((size_t)(na + nb) * V * sizeof(float));
	CHECK(kc && kg && lc && lg);
	sk_batch_item it[2] = { { 0, a_ids, 16, 0, 1 }, { 1, b_ids, nb, lora, 1 } };
	CHECK(sk_model_forward(mc, kc, it, 2, lc) == 0);
	CHECK(sk_model_forward(mg, kg, it, 2, lg) == 0);
	double e = rel_l2(lg, lc, (size_t)(16 + nb) * V);
	printf("# %-30s prefill of 16 + %d tokens: rel L2 %.3g\n", label, nb, e);
	CHECK_MSG(e < bound, "%s prefill: rel L2 %g", label, e);
	double worst = 0;
	for (int k = 16; k < na; k++) {
		sk_batch_item st[2] = { { 0, &a_ids[k], 1, 0, 0 }, { 1, &a_ids[k], 1, lora, 0 } };
		CHECK(sk_model_forward(mc, kc, st, 2, lc) == 0);
		CHECK(sk_model_forward(mg, kg, st, 2, lg) == 0);
		double d = rel_l2(lg, lc, (size_t)2 * V);
		if (d > worst)
			worst = d;
	}
	printf("# %-30s %d decode steps of 2 sequences: worst rel L2 %.3g\n", label, na - 16, worst);
	CHECK_MSG(worst < dec_bound, "%s decode: rel L2 %g", label, worst);
	CHECK_EQ_INT(sk_kv_cache_pos(kg, 0), na);
	sk_kv_cache_free(kc);
	sk_kv_cache_free(kg);
	free(lc);
	free(lg);
}

TEST(tiny_models_match_cpu)
{
	NEED_GPU();
	const char *models[] = { "tests/fixtures/hf/tiny-gemma3n", "tests/fixtures/hf/tiny-gemma3",
		                 "tests/fixtures/model/gemma3n-tiny.gguf", "tests/fixtures/model/gemma3-tiny.gguf" };
	for (int k = 0; k < 4; k++)
		for (int nf4 = 0; nf4 < 2; nf4++) {
			sk_model *mc = load_on(models[k], SK_DEVICE_CPU, nf4), *mg = load_on(models[k], SK_DEVICE_CUDA, nf4);
			CHECK(mc && mg);
			if (mc && mg) {
				char label[96];
				snprintf(label, sizeof label, "%s%s", strrchr(models[k], '/') + 1, nf4 ? " NF4" : "");
				/* GGUF blocks are read exactly by the CPU but held in bf16 by the GPU */
				double bound = strstr(models[k], ".gguf") ? 5e-2 : 2e-2;
				/* decoding's NF4 products on 8-bit activations (the default) against
				 * the CPU's fp32: run 8 measured 0.027 and 0.099 on the random tiny
				 * models (0.0057 and 0.027 in fp32); the op checks hold the 8-bit
				 * kernels to the CPU's own at 1e-4, and the SK_CUDA_NF4_Q8=0 run of
				 * this test keeps the fp32 bound */
				double dec = nf4 && nf4_q8_on() ? 3 * bound : bound;
				compare_models(label, mc, mg, 0, bound, dec);
			}
			sk_model_free(mc);
			sk_model_free(mg);
		}
}

TEST(tiny_models_with_adapters_match_cpu)
{
	NEED_GPU();
	const char *models[] = { "tests/fixtures/hf/tiny-gemma3n", "tests/fixtures/hf/tiny-gemma3" };
	const char *ads[] = { "tests/fixtures/hf/tiny-gemma3n/ref/adapter_all", "tests/fixtures/hf/tiny-gemma3/ref/adapter_all" };
	for (int k = 0; k < 2; k++) {
		sk_model *mc = load_on(models[k], SK_DEVICE_CPU, 0), *mg = load_on(models[k], SK_DEVICE_CUDA, 0);
		sk_lora *l = mc ? sk_lora_load(sk_test_path(ads[k]), sk_model_config(mc)) : NULL;
		CHECK(mc && mg && l);
		if (mc && mg && l) {
			CHECK(sk_model_set_adapter(mc, l) == 0);
			CHECK(sk_model_set_adapter(mg, l) == 0);
			char label[96];
			snprintf(label, sizeof label, "%s + adapter (compare)", strrchr(models[k], '/') + 1);
			compare_models(label, mc, mg, 1, 2e-2, 2e-2);
			sk_model_set_adapter(mg, NULL);
			sk_model_set_adapter(mc, NULL);
		}
		sk_lora_free(l);
		sk_model_free(mc);
		sk_model_free(mg);
	}
}

typedef struct {
	int32_t ids[64];
	int n;
} collected;

static int collect(void *ctx, int i, int32_t id, const char *text)
{
	(void)text;
	collected *c = (collected *)ctx + i;
	if (c->n < 64)
		c->ids[c->n++] = id;
	return 0;
}

/* Greedy continuations: the same tokens on both backends. */
static void greedy_same(const char *rel, int max_new, int n_prompts, const int32_t *const *prompts, const int *lens)
{
	sk_model *mc = load_on(rel, SK_DEVICE_CPU, 0), *mg = load_on(rel, SK_DEVICE_CUDA, 0);
	CHECK(mc && mg);
	if (mc && mg)
		for (int p = 0; p < n_prompts; p++) {
			sk_gen_request r;
			memset(&r, 0, sizeof r);
			r.prompt = prompts[p];
			r.n_prompt = (size_t)lens[p];
			r.max_new = max_new;
			r.ignore_eos = 1;
			sk_sampling_defaults(&r.sampling);
			r.sampling.greedy = 1;
			collected cc = { { 0 }, 0 }, cg = { { 0 }, 0 };
			CHECK(sk_generate(mc, &r, 1, collect, &cc, NULL) == 0);
			CHECK(sk_generate(mg, &r, 1, collect, &cg, NULL) == 0);
			int same = cc.n == cg.n;
			int first = -1;
			for (int i = 0; same && i < cc.n; i++)
				if (cc.ids[i] != cg.ids[i]) {
					same = 0;
					first = i;
				}
			printf("# %s prompt %d: greedy %d tokens %s (first difference at %d)\n", rel, p, cc.n,
			       same ? "identical" : "DIFFER", first);
			CHECK(same);
		}
	sk_model_free(mc);
	sk_model_free(mg);
}

TEST(greedy_continuations_identical)
{
	NEED_GPU();
	const int32_t *prompts[] = { seq_a, seq_b };
	int lens[] = { 10, 13 };
	greedy_same("tests/fixtures/hf/tiny-gemma3n", 24, 2, prompts, lens);
	greedy_same("tests/fixtures/hf/tiny-gemma3", 24, 2, prompts, lens);
}

/* The default model (Gemma 3 270M, GGUF Q4_K_M; SK_DEFAULT_MODEL or the
 * cache): greedy answers on the GPU equal the CPU's, or where they part,
 * the CPU's logits at that step show a near tie (a margin between the two
 * best under 0.1, the size of the GPU's bf16 rounding of the weights). */
TEST(default_model_greedy_same_as_cpu)
{
	NEED_GPU();
	const char *path = getenv("SK_DEFAULT_MODEL");
	if (!path || !*path) {
		SKIP("the default model is not fetched (data/fetch-model.sh, or SK_DEFAULT_MODEL)");
		return;
	}
	sk_model_opts oc = { SK_DEVICE_CPU, 0, 0 }, og = { SK_DEVICE_CUDA, 0, 0 };
	sk_model *mc = sk_model_load(path, &oc), *mg = sk_model_load(path, &og);
	CHECK(mc && mg && sk_model_tokenizer(mc));
	const char *prompts[] = { "The capital of France is", "Once upon a time, in a small village,",
		                  "پایتخت ایران شهر" };
	for (int p = 0; mc && mg && sk_model_tokenizer(mc) && p < 3; p++) {
		sk_ids ids = { 0 };
		CHECK(sk_tokenizer_encode(sk_model_tokenizer(mc), prompts[p], strlen(prompts[p]), 1, &ids) == 0);
		sk_gen_request r;
		memset(&r, 0, sizeof r);
		r.prompt = ids.v;
		r.n_prompt = ids.n;
		r.max_new = 32;
		r.ignore_eos = 1;
		sk_sampling_defaults(&r.sampling);
		r.sampling.greedy = 1;
		collected cc = { { 0 }, 0 }, cg = { { 0 }, 0 };
		CHECK(sk_generate(mc, &r, 1, collect, &cc, NULL) == 0);
		CHECK(sk_generate(mg, &r, 1, collect, &cg, NULL) == 0);
		int first = -1;
		for (int i = 0; i < cc.n && first < 0; i++)
			if (i >= cg.n || cc.ids[i] != cg.ids[i])
				first = i;
		if (first < 0) {
			printf("# 270M prompt %d: greedy %d tokens identical\n", p, cc.n);
		} else {
			/* the CPU's logits where the GPU took another token */
			int V = sk_model_vocab(mc);
			sk_kv_cache *kv = sk_kv_cache_new(mc, 1, (int)ids.n + first + 1);
			int32_t *seq = malloc((ids.n + (size_t)first) * sizeof *seq);
			float *lg = malloc((size_t)V * sizeof *lg);
			memcpy(seq, ids.v, ids.n * sizeof *seq);
			memcpy(seq + ids.n, cc.ids, (size_t)first * sizeof *seq);
			sk_batch_item it = { 0, seq, (int)ids.n + first, 0, 0 };
			CHECK(kv && sk_model_forward(mc, kv, &it, 1, lg) == 0);
			float a = lg[cc.ids[first]], b = lg[cg.ids[first]];
			printf("# 270M prompt %d: greedy parts at token %d: CPU %d (logit %.4f), GPU %d (logit %.4f), margin %.4f\n",
			       p, first, cc.ids[first], a, cg.ids[first], b, a - b);
			CHECK_MSG(a - b < 0.1f, "prompt %d: a margin of %g is no tie", p, a - b);
			sk_kv_cache_free(kv);
			free(seq);
			free(lg);
		}
		sk_ids_free(&ids);
	}
	sk_model_free(mc);
	sk_model_free(mg);
}

int main(int argc, char **argv)
{
	int ops_only = argc > 1 && !strcmp(argv[1], "--ops-only"); /* for the sanitizer runs */
	cuda_test_open();
	RUN(linear_bf16_and_nf4);
	RUN(linear2_pairs);
	RUN(embed_rows_device_and_host_tables);
	RUN(norm_rope_elementwise);
	RUN(rows_rings_and_memory);
	RUN(attention_cache_window_gqa);
	RUN(altup_router_predict_correct);
	RUN(fused_layer_norms);
	RUN(adamw8bit_on_the_device);
	RUN(lora_pair_outside_the_adapter_is_refused);
	RUN(draws_match_cpu_sampler);
	if (!ops_only) {
		RUN(tiny_models_match_cpu);
		RUN(tiny_models_with_adapters_match_cpu);
		RUN(greedy_continuations_identical);
		RUN(default_model_greedy_same_as_cpu);
	}
	sk_backend_free(cpu);
	sk_backend_free(cpu_q8);
	sk_backend_free(gpu);
	TEST_EXIT();
}
