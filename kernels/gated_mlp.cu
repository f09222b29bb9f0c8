// Training's gated MLP in one op for a forward whose insides nothing reads
// again: a checkpointed pass's first forward, where the layer is computed
// again before its backward (SK_CUDA_MLP_FUSED=1). The three folded
// products of linear_fold.cu, [x | t] · [W | scale·B]ᵀ, with gate's and up's
// outputs written in bf16 by the products themselves, the gated GELU
// reading those and writing its output in bf16 straight into down's operand,
// and down's t = A z from that operand by one thin product. Per layer at
// 2 x 512 of E4B the separate ops write gate's and up's outputs in fp32
// (128 MB), read them back, write z in fp32, read it again and write its bf16
// copy: about 420 MB; here about 160.
#include "kernels/linear_internal.cuh"

#define GELU_T 1024

__device__ __forceinline__ float gelu_tanh_f(float x)
{
	const float k = 0.7978845608028654f; // sqrt(2/pi)
	float inner = k * (x + 0.044715f * x * x * x);
	return 0.5f * x * (1.0f + tanhf(inner));
}

__device__ __forceinline__ void unpack8(const uint4 &v, float (&f)[8])
{
	const uint32_t u[4] = { v.x, v.y, v.z, v.w };
#pragma unroll
	for (int k = 0; k < 4; k++) {
		f[2 * k] = __uint_as_float(u[k] << 16);
		f[2 * k + 1] = __uint_as_float(u[k] & 0xffff0000u);
	}
}

// One block a row: z = gelu_tanh(g') ⊙ u from bf16 g and u [n][F], g' = relu(g
// − (mean + z_cut·std)) with the cutoff (the row's mean and population std
// over g, as k_gelu_mul), into bf16 rows of ldz. Eight values a thread at a
// time; F % 8 == 0 and 16-byte aligned rows.
__global__ static void __launch_bounds__(GELU_T) k_gelu_rows_bf16(const __nv_bfloat16 *__restrict__ G,
                                                                 const __nv_bfloat16 *__restrict__ U, int64_t F,
                                                                 float zc, __nv_bfloat16 *__restrict__ Z, int64_t ldz)
{
	sk_pdl_wait();
	__shared__ float sh[32];
	const int64_t r = blockIdx.x;
	const __nv_bfloat16 *gr = G + r * F, *ur = U + r * F;
	__nv_bfloat16 *zr = Z + r * ldz;
	float cut = 0.0f;
	if (zc != 0.0f) {
		float s = 0.0f, f[8];
		for (int64_t i = (int64_t)threadIdx.x * 8; i < F; i += (int64_t)blockDim.x * 8) {
			unpack8(*(const uint4 *)(gr + i), f);
#pragma unroll
			for (int k = 0; k < 8; k++)
				s += f[k];
		}
		const float mean = sk_block_sum(s, sh) / (float)F;
		float v = 0.0f;
		for (int64_t i = (int64_t)threadIdx.x * 8; i < F; i += (int64_t)blockDim.x * 8) {
			unpack8(*(const uint4 *)(gr + i), f);
#pragma unroll
			for (int k = 0; k < 8; k++) {
				const float d = f[k] - mean;
				v += d * d;
			}
		}
		cut = mean + sqrtf(sk_block_sum(v, sh) / (float)F) * zc;
	}
	for (int64_t i = (int64_t)threadIdx.x * 8; i < F; i += (int64_t)blockDim.x * 8) {
		float g[8], u[8];
		unpack8(*(const uint4 *)(gr + i), g);
		unpack8(*(const uint4 *)(ur + i), u);
		__align__(16) __nv_bfloat16 h[8];
#pragma unroll
		for (int k = 0; k < 8; k++) {
			const float x = zc != 0.0f ? fmaxf(g[k] - cut, 0.0f) : g[k];
			h[k] = __float2bfloat16_rn(gelu_tanh_f(x) * u[k]);
		}
		*(uint4 *)(zr + i) = *(const uint4 *)h;
	}
}

static size_t up256(size_t b)
{
	return (b + 255) & ~(size_t)255;
}

// The backward's room: dz in bf16, then dy's bf16 rows of H + 8 and dt's fp32 rows of 8
static size_t bwd_room(int64_t n, int64_t H, int64_t F)
{
	return up256((size_t)(n * F) * 2) + up256((size_t)(n * (H + FOLD_COLS)) * 2) + (size_t)(n * FOLD_COLS) * 4;
}

static int aligned16(const void *p)
{
	return ((uintptr_t)p & 15) == 0;
}

// Whether the op takes a: the products the folded forward would take
// (linear_fold.cu), NF4 weights in the weight cache, no dropout; saving for
// the backward, also what that backward needs (the gated backward on the
// products' bf16 operands, linear_bwd.cu)
static int takes(const sk_cuda *c, const sk_cuda_gated_mlp *a)
{
	const int save = a->y == NULL;
	if (!c->mlp_fused || c->exact || !c->lora_fold || !c->fold_xt || !c->lora_dx_fold || c->wcache_n < 3 ||
	    a->dropout > 0.0f || a->n <= MV_ROWS || !aligned16(a->x) || !a->w[0] ||
	    (save ? !c->gated_bwd || !c->lora_bwd || !a->g || !a->u || !a->z || !aligned16(a->g) || !aligned16(a->u) ||
	                    !aligned16(a->z)
	          : !aligned16(a->y)))
		return 0;
	const int64_t H = a->w[0]->cols, F = a->w[0]->rows;
	const int64_t rows[3] = { F, F, H }, cols[3] = { H, H, F };
	for (int k = 0; k < 3; k++) {
		const sk_cuda_weight *w = a->w[k];
		const sk_cuda_lora *l = a->l[k];
		if (!w || !l || w->kind != SK_CUDA_W_NF4 || w->rows != rows[k] || w->cols != cols[k] || l->r < 1 ||
		    l->r > FOLD_COLS || l->in != cols[k] || l->out != rows[k] || ((uintptr_t)l->A & 15) != 0)
			return 0;
	}
	// a save's backward keeps dz in bf16 and dy's and dt's rows in its fp32 room of [n][F]
	if (save && bwd_room(a->n, H, F) > (size_t)(a->n * F) * 4)
		return 0;
	return H % 16 == 0 && F % 16 == 0;
}

// The op's launches, on the three weights' cache buffers wh and the scratch
// parts (x's operand xh, G, U, Z) and t; 0 or -1 (recorded).
static int run(sk_cuda *c, const sk_cuda_gated_mlp *a, __nv_bfloat16 *const wh[3], const int hit[3],
               __nv_bfloat16 *xh, __nv_bfloat16 *G, __nv_bfloat16 *U, __nv_bfloat16 *Z, float *t)
{
	const sk_cuda_lora *lg = a->l[0], *lu = a->l[1], *ld = a->l[2];
	const int64_t n = a->n, H = a->w[0]->cols, F = a->w[0]->rows, K1 = H + FOLD_COLS, K2 = F + FOLD_COLS;
	// gate: [x | t_g] and its product, bf16 out
	sk_cuda_gemm_shape p1 = { F, n, K1, K1, K1, F, 1, 0, 3, 0, 1, 0, 0, 0 };
	if (sk_cuda_fold_weight_fill(c, a->w[0], lg, wh[0], hit[0], lg->A) != 0)
		return -1;
	sk_cuda_fold_xt(c, a->x, lg->A, n, H, lg->r, xh, xh + H, K1);
	if (sk_cuda_launched(c, "gated MLP: [x | t] to bf16") != 0 || sk_cuda_matmul(c, p1, 1.0f, wh[0], xh, 0.0f, G) != 0)
		return -1;
	// up: the same x columns, its own t (the gate product before it in the stream has read them)
	if (sk_cuda_fold_weight_fill(c, a->w[1], lu, wh[1], hit[1], lu->A) != 0)
		return -1;
	sk_cuda_fold_xt(c, a->x, lu->A, n, H, lu->r, NULL, xh + H, K1);
	if (sk_cuda_launched(c, "gated MLP: t to bf16") != 0 || sk_cuda_matmul(c, p1, 1.0f, wh[1], xh, 0.0f, U) != 0)
		return -1;
	// z in bf16 into down's operand [z | t_d]
	sk_launch(c, k_gelu_rows_bf16, (unsigned)n, GELU_T, 0, (const __nv_bfloat16 *)G, (const __nv_bfloat16 *)U, F,
	          a->sparsity_z, Z, K2);
	if (sk_cuda_launched(c, "gated MLP: gated GELU to bf16") != 0)
		return -1;
	// down: its copy holds A's bf16 rows after its H rows (zero past r); t_dᵀ (8 x n) = (A's rows
	// as F x 8)ᵀ · (z as F x n), then bf16(t_d) into the operand's last columns
	if (sk_cuda_fold_weight_fill(c, a->w[2], ld, wh[2], hit[2], ld->A) != 0)
		return -1;
	sk_cuda_gemm_shape pt = { FOLD_COLS, n, F, K2, K2, FOLD_COLS, 1, 0, 1, 0, 1, 0, 0, 0 };
	if (sk_cuda_matmul(c, pt, 1.0f, wh[2] + H * K2, Z, 0.0f, t) != 0)
		return -1;
	sk_cuda_rows_to_bf16(c, t, n, FOLD_COLS, FOLD_COLS, Z + F, K2);
	if (sk_cuda_launched(c, "gated MLP: t of down to bf16") != 0)
		return -1;
	if (!a->y) // computed again for the backward: down's output was kept
		return 0;
	sk_cuda_gemm_shape p2 = { H, n, K2, K2, K2, H, 1, 0, 1, 0, 1, 0, 0, 0 };
	return sk_cuda_matmul(c, p2, 1.0f, wh[2], Z, 0.0f, a->y);
}

extern "C" int sk_cuda_gated_mlp_fwd(sk_cuda *c, const sk_cuda_gated_mlp *a)
{
	if (!takes(c, a))
		return 0;
	const int64_t n = a->n, H = a->w[0]->cols, F = a->w[0]->rows, K1 = H + FOLD_COLS, K2 = F + FOLD_COLS;
	// every allocation first (growing the scratch or the LoRA buffer forgets the cache's keys),
	// then the three weights' cache buffers
	const int save = a->y == NULL; // into the caller's rows, else the scratch
	float *t = sk_cuda_lora_ws(c, (size_t)(n * FOLD_COLS) * sizeof(float));
	const size_t bx = up256((size_t)(n * K1) * 2), bg = up256((size_t)(n * F) * 2);
	char *s = t ? (char *)sk_cuda_scratch(c, bx + (save ? 0 : 2 * bg + (size_t)(n * K2) * 2)) : NULL;
	if (!s) { // no room: the separate ops, which need less
		sk_cuda_check(c);
		return 0;
	}
	__nv_bfloat16 *xh = (__nv_bfloat16 *)s;
	__nv_bfloat16 *G = save ? (__nv_bfloat16 *)a->g : (__nv_bfloat16 *)(s + bx);
	__nv_bfloat16 *U = save ? (__nv_bfloat16 *)a->u : (__nv_bfloat16 *)(s + bx + bg);
	__nv_bfloat16 *Z = save ? (__nv_bfloat16 *)a->z : (__nv_bfloat16 *)(s + bx + 2 * bg);
	int hit[3];
	__nv_bfloat16 *wh[3];
	sk_cuda_wcache_hold(c, 1); // three distinct buffers, or a NULL among them
	for (int k = 0; k < 3; k++)
		wh[k] = (__nv_bfloat16 *)sk_cuda_wcache_get(c, a->w[k]->packed,
		                                            sk_cuda_kept_bytes(a->w[k]->rows, a->w[k]->cols), &hit[k]);
	sk_cuda_wcache_hold(c, 0);
	if (!wh[0] || !wh[1] || !wh[2] || wh[0] == wh[1] || wh[0] == wh[2] || wh[1] == wh[2]) {
		for (int k = 0; k < 3; k++) // a buffer given but not filled must not be found later
			if (!hit[k])
				sk_cuda_wcache_forget(c, a->w[k]->packed);
		return 0;
	}
	if (run(c, a, wh, hit, xh, G, U, Z, t) == 0)
		return 1;
	for (int k = 0; k < 3; k++) // a copy may be left half made: none of the three is to be found later
		sk_cuda_wcache_forget(c, a->w[k]->packed);
	return -1;
}

// ---- the backward of a saved MLP ----

// down's backward from its kept copy [W | scale·B ; A] (made again if the
// cache lost it) with [z | t] the forward saved: dy in bf16 rows of H + 8,
// dt = dy (scale·B) into their last columns, gB += scale·dyᵀ t, gA += dtᵀ z
// on bf16 operands, and dz = [dy | dt] · [W ; A] in bf16 into dz16. room:
// the small rows (dy's, dt's); 0 or -1.
static int down_bwd(sk_cuda *c, const sk_cuda_gated_mlp_bwd *a, __nv_bfloat16 *dz16, char *room)
{
	const sk_cuda_weight *w = a->w[2];
	const sk_cuda_lora *l = a->l[2];
	const int64_t n = a->n, H = w->rows, F = w->cols, K2 = F + FOLD_COLS, ldy = H + FOLD_COLS;
	const size_t bytes = sk_cuda_kept_bytes(H, F);
	int found = 1;
	__nv_bfloat16 *kc = (__nv_bfloat16 *)sk_cuda_wcache_find(c, w->packed, bytes);
	if (!kc) {
		kc = (__nv_bfloat16 *)sk_cuda_wcache_get(c, w->packed, bytes, &found);
		if (!kc) {
			sk_cuda_fail(c, "the fused MLP's backward: no room for down's weight copy");
			return -1;
		}
	}
	if (sk_cuda_fold_weight_fill(c, w, l, kc, found, l->A) != 0)
		return -1;
	__nv_bfloat16 *yh = (__nv_bfloat16 *)room;
	float *dt = (float *)(room + up256((size_t)(n * ldy) * 2));
	const __nv_bfloat16 *Z = (const __nv_bfloat16 *)a->z;
	sk_cuda_rows_to_bf16(c, a->dy, n, H, H, yh, ldy);
	if (sk_cuda_launched(c, "fused MLP backward: dy to bf16") != 0)
		return -1;
	// dtᵀ (8 x n) = (scale·B's columns as 8 x H, ld K2) · (yh as H x n)
	sk_cuda_gemm_shape sdt = { FOLD_COLS, n, H, K2, ldy, FOLD_COLS, 0, 0, 1, 0, 1, 0, 0, 0 };
	// gBᵀ (r x H) += scale · (t as r x n, z's last columns, ld K2) · (yh as H x n)ᵀ
	sk_cuda_gemm_shape sgb = { l->r, H, n, K2, ldy, l->r, 0, 1, 1, 0, 1, 0, 0, 0 };
	if (sk_cuda_matmul(c, sdt, 1.0f, kc + F, yh, 0.0f, dt) != 0 ||
	    sk_cuda_matmul(c, sgb, l->scale, Z + F, yh, 1.0f, a->gB[2]) != 0)
		return -1;
	sk_cuda_rows_to_bf16(c, dt, n, FOLD_COLS, FOLD_COLS, yh + H, ldy);
	if (sk_cuda_launched(c, "fused MLP backward: dt to bf16") != 0)
		return -1;
	// gAᵀ (F x r) += (z as F x n, ld K2) · (bf16(dt) as r x n, yh's last columns)ᵀ
	sk_cuda_gemm_shape sga = { F, l->r, n, K2, ldy, F, 0, 1, 1, 0, 1, 0, 0, 0 };
	// dzᵀ (F x n) = ([W ; A]'s columns as F x (H + 8), ld K2) · ([dy | dt] as (H + 8) x n), bf16 out
	sk_cuda_gemm_shape sdz = { F, n, ldy, K2, ldy, F, 0, 0, 3, 0, 1, 0, 0, 0 };
	if (sk_cuda_matmul(c, sga, 1.0f, Z, yh + H, 1.0f, a->gA[2]) != 0 ||
	    sk_cuda_matmul(c, sdz, 1.0f, kc, yh, 0.0f, dz16) != 0)
		return -1;
	return 0;
}

extern "C" int sk_cuda_gated_mlp_backward(sk_cuda *c, const sk_cuda_gated_mlp_bwd *a)
{
	const int64_t n = a->n, H = a->w[2]->rows, F = a->w[2]->cols;
	// dz in bf16 in the first half of work, dy's and dt's rows in its second
	__nv_bfloat16 *dz16 = (__nv_bfloat16 *)a->work;
	char *room = (char *)a->work + up256((size_t)(n * F) * 2);
	if (bwd_room(n, H, F) > (size_t)(n * F) * 4) {
		sk_cuda_fail(c, "the fused MLP's backward: its room is too small");
		return -1;
	}
	if (down_bwd(c, a, dz16, room) != 0)
		return -1;
	sk_cuda_gated_bwd gb = { (const float *)a->g, (const float *)a->u, (const float *)dz16, n, F, a->sparsity_z,
		                 NULL, a->x, { a->w[0], a->w[1] }, { a->l[0], a->l[1] }, 0.0f, { 0, 0 },
		                 { a->gA[0], a->gA[1] }, { a->gB[0], a->gB[1] }, a->dx, 1 };
	return sk_cuda_gelu_lora_bwd2(c, &gb) == 1 ? 0 : -1;
}
