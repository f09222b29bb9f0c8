// Internals shared by the .cu files: the context's fields, launch checks,
// the constant tables and small device helpers.
#ifndef SK_KERNELS_CONTEXT_CUH
#define SK_KERNELS_CONTEXT_CUH

#include "kernels/cublaslt_loader.h"
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/kernels.h"

#define SK_CUDA_MAX_GRAPHS 64
#define SK_CUDA_GEMM_PLANS 512 // exact shapes: descriptors and algorithm (a power of two)
#define SK_CUDA_GEMM_ALGOS 256 // algorithms by shape class (a power of two)
#define SK_CUDA_PROF_PARTS 192 // rows of SK_CUDA_PROFILE=kernels' table of parts

// A cuBLASLt product D (m x n, fp32) = alpha op(A) op(B) + beta D, column-major:
// A stored (m x k), or (k x m) when ta; B (k x n), or (n x k) when tb;
// operands bf16 (bf16 1) or fp32 (0; 2: fp32 rounded to TF32 on the tensor
// cores), fp32 accumulation; bf16 3: bf16 operands and a bf16 D. align: the smallest alignment of
// the pointers (set by sk_cuda_matmul). batch > 1: that many products, the
// i-th at A + i·sa, B + i·sb, D + i·sd (elements; a stride may be 0).
typedef struct {
	int64_t m, n, k, lda, ldb, ldd;
	int ta, tb, bf16;
	uint32_t align;
	int batch;
	int64_t sa, sb, sd;
} sk_cuda_gemm_shape;

// Its descriptors and the algorithm chosen for it (ok 0: cuBLASLt has
// none); reused: the algorithm came from another shape of its class.
typedef struct {
	sk_cuda_gemm_shape s;
	cublasLtMatmulDesc_t op;
	cublasLtMatrixLayout_t a, b, d;
	cublasLtMatmulAlgo_t algo;
	int ok, used, reused;
} sk_cuda_gemm_plan;

// An algorithm the heuristic chose for a shape of a class (gemm.cu: the
// sizes rounded up to a quarter octave), for the class's other shapes.
typedef struct {
	sk_cuda_gemm_shape cls;
	cublasLtMatmulAlgo_t algo;
	int used;
} sk_cuda_gemm_algo;

typedef struct {
	const char *name;
	long long calls;
	double ms;
} sk_cuda_prof_row;

typedef struct {
	uint64_t key;
	cudaGraphExec_t exec;
	int failed;
} sk_cuda_graph;

// A dequantized weight kept between uses (weight_cache.cu)
#define SK_CUDA_WCACHE_MAX 16
typedef struct {
	const void *key; // the NF4 codes' address; NULL: empty
	void *buf;
	size_t bytes;
	unsigned long long used;
	// the LoRA pair whose scale·B columns (and, with lora_a, A's rows) the copy
	// holds, folded at lora_gen (NULL: none current)
	const void *lora_b, *lora_a;
	size_t lora_b_bytes, lora_a_bytes;
	float lora_scale;
} sk_cuda_wcache_entry;

struct sk_cuda {
	int dev, sms;
	cudaStream_t stream;
	cublasLtHandle_t lt;
	char err[512];
	int failed;
	void *stage;            // pinned upload ring
	size_t stage_used;
	void *scratch;          // bf16 operands of matrix products
	size_t scratch_cap;
	void *lt_ws;            // cuBLASLt's workspace
	void *lora_ws, *attn_ws; // LoRA intermediates, attention partial sums
	size_t lora_cap, attn_cap;
	sk_cuda_gemm_plan plans[SK_CUDA_GEMM_PLANS];
	sk_cuda_gemm_algo algos[SK_CUDA_GEMM_ALGOS];
	unsigned plan_clock;
	long long n_heuristic, n_reused, n_plans_made, n_tuned, n_split_timed, n_split_won; // for the profile report
	int graphs_on;
	sk_cuda_graph graphs[SK_CUDA_MAX_GRAPHS];
	int n_graphs;
	sk_cuda_graph *capturing;
	int capture_spoiled;
	int last_nodes;
	int profiling;
	int tiled_attn;         // the tiled attention kernels could get their shared memory
	int gemm_attn;          // training attention through matrix products (SK_CUDA_ATTN_GEMM=0: off)
	int pdl;                // programmatic dependent launches (Hopper; SK_CUDA_PDL=0: off): launch.cuh
	int exact;              // SK_CUDA_EXACT=1: every product in fp32 (parity checks), no bf16 GEMM
	int nf4_q8;             // (SK_CUDA_NF4_Q8=0: off) NF4 matrix-vector products on 8-bit activations (linear.cu)
	int lora_fold;          // (SK_CUDA_LORA_FOLD=0: off) a training product's LoRA B in its own GEMM (linear_fold.cu)
	int attn_grouped;       // (SK_CUDA_ATTN_GROUPED=0: off) a group's dK and dV in one product each (attention_gemm.cu)
	int altup_one_pass;     // (SK_CUDA_ALTUP_ONE_PASS=0: off) AltUp predict's backward in one pass over a row (backward.cu)
	int gated_bwd;          // (SK_CUDA_GATED_BWD=0: off) the gated GELU's backward into gate's and up's bf16 dy (linear_bwd.cu)
	int attn_spans;         // (SK_CUDA_ATTN_SPANS=0: off) a pass's sequences in one attention call (attention_spans.cu)
	int attn_bf16;          // (SK_CUDA_ATTN_BF16=0: off) attention's products on bf16 operands (attention_gemm.cu)
	int attn_tf32;          // (SK_CUDA_ATTN_TF32=0: off) training attention's products on TF32 tensor cores (attention_gemm.cu)
	int fold_xt;            // (SK_CUDA_FOLD_XT=0: off) the fold's [x | t] and t = x Aᵀ in one pass (linear_fold.cu)
	int gemm_tune;          // SK_CUDA_GEMM_TUNE=1 (=all: 2): a product class's algorithm timed among the heuristic's first (gemm.cu)
	int keep_b;             // (SK_CUDA_KEEP_B=0: off) a kept copy's scale·B columns reused while the pair is unchanged (weight_cache.cu)
	int lora_dx_fold;       // (SK_CUDA_LORA_DX_FOLD=0: off) the LoRA rank-r update of dx as rows of dx's product (linear_bwd.cu)
	int lora_bwd;           // (SK_CUDA_LORA_BWD=0: off) a product's backward and its LoRA branch's share dy in bf16 (linear_bwd.cu)
	int lora_ga;            // (SK_CUDA_LORA_GA=0: off) LoRA's gA in row chunks, not a thin fp32 product (lora_grad_a.cu)
	int mlp_fused;          // (SK_CUDA_MLP_FUSED=0: off) a checkpointed pass's gated MLP in one op, its inside bf16 (gated_mlp.cu)
	int head_passes;        // (SK_CUDA_HEAD_PASSES=0: off) the LM head's passes in one call each (head_loss.cu)
	int gemm_reference;     // SK_CUDA_GEMM=reference: products by gemm_reference.cu, not cuBLASLt
	int64_t nf4_dx_chunk;   // SK_CUDA_NF4_DX_CHUNK: elements of an NF4 weight the backward dequantizes at a time (0: all)
	sk_cuda_wcache_entry wcache[SK_CUDA_WCACHE_MAX];
	int wcache_n;           // SK_CUDA_WCACHE=N (default 7): dequantized weights kept (weight_cache.cu; 0: off)
	unsigned long long wcache_clock;
	unsigned long long wcache_pin; // entries used at this clock or later are not replaced (an op holding several); 0: none
	long long n_wcache_hits;
	cudaEvent_t prof_a, prof_b;
	sk_cuda_prof_row prof[64];
	int n_prof;
	// SK_CUDA_PROFILE=kernels: inside an op, the time between two named launch
	// checks (sk_cuda_launched) or products, by name
	cudaEvent_t prof_mark[2];
	int prof_mark_i, prof_in_op;
	double prof_host_t0; // SK_CUDA_PROFILE=host: when the current op began, in ms
	sk_cuda_prof_row parts[SK_CUDA_PROF_PARTS];
	int n_parts;
};

// Records the first failure's message (later ones are consequences).
void sk_cuda_fail(sk_cuda *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// After a launch: 0, or -1 with the launch error recorded.
int sk_cuda_launched(sk_cuda *c, const char *what);
// The context's scratch, grown to at least bytes (NULL when it cannot be).
void *sk_cuda_scratch(sk_cuda *c, size_t bytes);

void sk_cuda_plan_free(sk_cuda_gemm_plan *p);
// Dequantized weights kept between uses (weight_cache.cu): the buffer for
// key (*hit: already filled) or NULL (off, or no room); key's copy or NULL;
// all entries forgotten (and with free_buffers, freed).
void *sk_cuda_wcache_get(sk_cuda *c, const void *key, size_t bytes, int *hit);
const void *sk_cuda_wcache_find(sk_cuda *c, const void *key, size_t bytes);
// key's entry forgotten (its buffer kept for reuse): a get whose buffer was not filled
void sk_cuda_wcache_forget(sk_cuda *c, const void *key);
// Between hold(1) and hold(0), a get replaces no entry handed out since
// hold(1): an op taking several buffers gets distinct ones (or NULL)
void sk_cuda_wcache_hold(sk_cuda *c, int on);
void sk_cuda_wcache_clear(sk_cuda *c, int free_buffers);
// Whether key's kept copy holds the pair l (scale·B, and A's rows when with_a)
// as it is now: folded since any write to it; the record that it was just
// folded; and a write of bytes at p (NULL: anything, the optimizer's step)
// that makes the folds of the pairs it touches stale. Every entry point
// that may write a LoRA pair's memory (upload, copy, add, scale, zero, the
// optimizer) reports its writes.
int sk_cuda_wcache_lora_current(sk_cuda *c, const void *key, const sk_cuda_lora *l, int with_a);
void sk_cuda_wcache_lora_folded(sk_cuda *c, const void *key, const sk_cuda_lora *l, int with_a);
void sk_cuda_wcache_lora_written(sk_cuda *c, const void *p, size_t bytes);
// t[n][l->r] = drop(x) Aᵀ of a training LoRA pair (lora_train.cu), t outside
// the scratch (drop(x) goes there when dropout > 0). 0, or -1 recorded.
int sk_cuda_lora_a(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float dropout, uint64_t seed,
                   float *t);
// t[n][l->r] = drop(x) Aᵀ (tᵀ (r x n) = (A as in x r)ᵀ · (drop(x) as in x n)),
// drop(x) written to xd_buf first when p > 0 (lora_train.cu). Returns the
// rows the product read (x or drop(x)), NULL on failure.
const float *sk_cuda_lora_t(sk_cuda *c, const sk_cuda_lora *l, const float *x, int64_t n, float p, uint64_t seed,
                            float *xd_buf, float *t);
// dx[n][l->in] += drop'(dt · A), dt in rows of ld (lora_train.cu)
void sk_cuda_lora_dx(sk_cuda *c, const sk_cuda_lora *l, int64_t n, float p, uint64_t seed, const float *dt, int ld,
                     float *dx);
// D = alpha op(A) op(B) + beta D (gemm.cu). 0, or -1 with the failure recorded.
int sk_cuda_matmul(sk_cuda *c, sk_cuda_gemm_shape s, float alpha, const void *A, const void *B, float beta, void *D);
// Under SK_CUDA_PROFILE=kernels, the GPU time since the last mark inside an op goes to what.
void sk_cuda_prof_part(sk_cuda *c, const char *what);
// The same product by a plain kernel of ours, one output a thread (slow):
// for compute-sanitizer's racecheck, which cannot run cuBLASLt's Hopper
// kernels, and as a second opinion on the plans' layouts.
int sk_cuda_matmul_reference(sk_cuda *c, const sk_cuda_gemm_shape *s, float alpha, const void *A, const void *B,
                             float beta, void *D);
// RoPE in place (sign 1) or its inverse rotation (sign -1), elementwise.cu.
void sk_cuda_rope_rotate(sk_cuda *c, float *x, int64_t n, int heads, int hd, const int32_t *pos, float theta,
                         float factor, float sign);
// The gated GELU's backward with its two gradients in bf16, rows of ldg and
// ldu (backward.cu; tmp [rows][dim] fp32 holds dL/dg while the sparsity
// cutoff's correction needs it).
void sk_cuda_gelu_mul_bwd_bf16(sk_cuda *c, const float *g, const float *u, int64_t rows, int64_t dim,
                               float sparsity_z, const float *dh, float *tmp, __nv_bfloat16 *hg, int64_t ldg,
                               __nv_bfloat16 *hu, int64_t ldu);
// The same from bf16 g, u and dh (no fp32 room needed: backward.cu).
void sk_cuda_gelu_mul_bwd16(sk_cuda *c, const __nv_bfloat16 *g, const __nv_bfloat16 *u, int64_t rows, int64_t dim,
                            float sparsity_z, const __nv_bfloat16 *dh, __nv_bfloat16 *hg, int64_t ldg,
                            __nv_bfloat16 *hu, int64_t ldu);
// Copies the NF4 and dynamic-map tables to the linear kernels' constant memory.
cudaError_t sk_cuda_linear_init(void);
// Lets the tiled attention kernels use their shared memory (attention_tiled.cu).
cudaError_t sk_cuda_attention_tiled_init(void);
// Attention of many rows (attention_tiled.cu): 1 done, 0 not this shape, -1
// error. lse (may be NULL): each row's log-sum-exp, [n][nh].
int sk_cuda_attention_tiled(sk_cuda *c, const float *q, int64_t n, const int32_t *pos, const float *k_past,
                            const float *v_past, int64_t cap, const float *k_new, const float *v_new, int nh, int nkv,
                            int hd, int window, float scale, float softcap, float *out, float *lse);
// Attention of a sequence without a cache through matrix products, and its
// backward (attention_gemm.cu): 1 done, 0 not this shape, -1 error.
int sk_cuda_attention_gemm(sk_cuda *c, const float *q, int64_t n, const float *k, const float *v, int nh, int nkv,
                           int hd, int window, float scale, float softcap, float *out);
int sk_cuda_attention_bwd_gemm(sk_cuda *c, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                               int hd, int window, float scale, float softcap, const float *dout, float *dq, float *dk,
                               float *dv);
// Its backward for a sequence without a cache (attention_bwd_tiled.cu), same returns.
int sk_cuda_attention_bwd_tiled(sk_cuda *c, const float *q, const float *k, const float *v, int64_t n, int nh, int nkv,
                                int hd, int window, float scale, float softcap, const float *dout, float *dq,
                                float *dk, float *dv, float *ws);
// Lets the tiled attention backward kernels use their shared memory.
cudaError_t sk_cuda_attention_bwd_tiled_init(void);

static inline unsigned sk_blocks(int64_t n, int threads)
{
	return (unsigned)((n + threads - 1) / threads);
}

// AltUp's predict coefficients C[q] = Σ_m wp[q·A + m] · modal[m] for q < A·A,
// summed in fp32 in order as the CPU's small matvec, the block's threads
// sharing the entries (the caller synchronizes before reading C)
__device__ __forceinline__ void sk_altup_coefs(const float *wp, const float *modal, int A, float *C)
{
	for (int q = threadIdx.x; q < A * A; q += blockDim.x) {
		float s = 0;
		for (int m = 0; m < A; m++)
			s += wp[q * A + m] * modal[m];
		C[q] = s;
	}
}

__device__ __forceinline__ float sk_bf16f(uint16_t v)
{
	return __uint_as_float((uint32_t)v << 16);
}

// RoPE's cosine and sine for pair m at position pos, the frequency as HF
// builds it in fp32 (1 / theta^(2m/hd), then / factor), the angle's cos
// and sin in double; sign -1 gives the inverse rotation (the backward).
__device__ __forceinline__ void sk_rope_cs(int32_t pos, int m, int hd, float theta, float factor, float sign,
                                           float *cs, float *sn)
{
	float inv = (1.0f / powf(theta, (float)(2 * m) / (float)hd)) / factor;
	double sd, cd;
	sincos((double)((float)pos * inv), &sd, &cd);
	*cs = (float)cd;
	*sn = sign * (float)sd;
}

// Key (or value) row at position kp of one sequence, head offset off: the
// new rows from past_hi on, before that the ring of cap slots.
__device__ __forceinline__ const float *sk_kv_row(const float *fresh, const float *ring, int64_t kp, int64_t past_hi,
                                                  int64_t cap, int64_t kvd, int64_t off)
{
	return kp >= past_hi ? fresh + (kp - past_hi) * kvd + off : ring + (kp % cap) * kvd + off;
}

__device__ __forceinline__ float sk_warp_sum(float v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float sk_warp_max(float v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

// Sum over a block of up to 1024 threads; every thread gets the total.
// sh: 32 floats of shared memory.
__device__ __forceinline__ float sk_block_sum(float v, float *sh)
{
	int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
	v = sk_warp_sum(v);
	__syncthreads(); // sh may still be read by a previous call
	if (lane == 0)
		sh[wid] = v;
	__syncthreads();
	float t = lane < nw ? sh[lane] : 0.0f;
	return sk_warp_sum(t);
}

#endif
