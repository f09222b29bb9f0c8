// Matrix products through cuBLASLt, in its column-major terms, with a cache
// of plans (descriptors and algorithm) keyed by everything the heuristic
// sees: shape, transposes, leading dimensions, types and the operands'
// alignment; and a cache of algorithms by shape class, so that a shape new
// only in its sizes takes its class's algorithm without a heuristic call. The linear ops' bf16 products (linear*.cu) and the
// LoRA branch's thin fp32 ones (lora_train.cu) both come here.
#include "kernels/context.cuh"

#include <stdio.h>
#include <string.h>

#define LT_WS_BYTES (32u << 20)

static uint32_t align_of(const void *p)
{
	uintptr_t v = (uintptr_t)p;
	uint32_t a = 256;
	while (a > 4 && (v & (a - 1)))
		a >>= 1;
	return a;
}

static int same_shape(const sk_cuda_gemm_shape *a, const sk_cuda_gemm_shape *b)
{
	return a->m == b->m && a->n == b->n && a->k == b->k && a->lda == b->lda && a->ldb == b->ldb &&
	       a->ldd == b->ldd && a->ta == b->ta && a->tb == b->tb && a->bf16 == b->bf16 && a->align == b->align &&
	       a->batch == b->batch && a->sa == b->sa && a->sb == b->sb && a->sd == b->sd;
}

static uint64_t shape_hash(const sk_cuda_gemm_shape *s)
{
	const int64_t v[] = { s->m, s->n, s->k, s->lda, s->ldb, s->ldd, s->ta, s->tb, s->bf16, s->align, s->batch,
		              s->sa, s->sb, s->sd };
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < sizeof v / sizeof *v; i++)
		h = (h ^ (uint64_t)v[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

// A size rounded up to a quarter octave (exact up to 64): 97 and 112 fall
// in one class, 113 in the next.
static int64_t size_class(int64_t x)
{
	if (x <= 64)
		return x;
	int p = 63 - __builtin_clzll((unsigned long long)(x - 1));
	int64_t step = (int64_t)1 << (p - 2);
	return (x + step - 1) & ~(step - 1);
}

// The class of a shape: its sizes, leading dimensions and strides by
// size_class. Training sequences differ in length at every micro-step, so
// most products have a shape not seen before; their class has been, and
// the heuristic (tens to hundreds of microseconds of host time a call, more
// than many of the products themselves) runs once a class, not once a shape.
static sk_cuda_gemm_shape shape_class(const sk_cuda_gemm_shape *s)
{
	sk_cuda_gemm_shape c = *s;
	c.m = size_class(s->m), c.n = size_class(s->n), c.k = size_class(s->k);
	c.lda = size_class(s->lda), c.ldb = size_class(s->ldb), c.ldd = size_class(s->ldd);
	c.sa = size_class(s->sa), c.sb = size_class(s->sb), c.sd = size_class(s->sd);
	return c;
}

// The cache slot for s among `slots` (a power of two): the matching one of
// the four from its hash on, else an empty one of them, else one of them in
// turn. *hit tells which.
#define PROBES 4
static int find_slot(sk_cuda *c, const sk_cuda_gemm_shape *s, int slots, int algos, int *hit)
{
	uint64_t h = shape_hash(s);
	int empty = -1;
	for (int i = 0; i < PROBES; i++) {
		int k = (int)((h + (uint64_t)i) & (uint64_t)(slots - 1));
		int used = algos ? c->algos[k].used : c->plans[k].used;
		if (!used) {
			if (empty < 0)
				empty = k;
			continue;
		}
		if (same_shape(algos ? &c->algos[k].cls : &c->plans[k].s, s)) {
			*hit = 1;
			return k;
		}
	}
	*hit = 0;
	return empty >= 0 ? empty : (int)((h + (c->plan_clock++ % PROBES)) & (uint64_t)(slots - 1));
}

static int make_descriptors(sk_cuda_gemm_plan *p, const sk_cuda_gemm_shape *s)
{
	cublasOperation_t ta = s->ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = s->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
	cudaDataType_t ab = s->bf16 == 1 || s->bf16 == 3 ? CUDA_R_16BF : CUDA_R_32F;
	cudaDataType_t dt = s->bf16 == 3 ? CUDA_R_16BF : CUDA_R_32F;
	cublasComputeType_t ct = s->bf16 == 2 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
	// stored shapes: A is (m x k) or, transposed, (k x m); B (k x n) or (n x k)
	if (sk_lt.cublasLtMatmulDescCreate(&p->op, ct, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatrixLayoutCreate(&p->a, ab, s->ta ? s->k : s->m, s->ta ? s->m : s->k, s->lda) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatrixLayoutCreate(&p->b, ab, s->tb ? s->n : s->k, s->tb ? s->k : s->n, s->ldb) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatrixLayoutCreate(&p->d, dt, s->m, s->n, s->ldd) != CUBLAS_STATUS_SUCCESS)
		return -1;
	if (s->batch > 1) {
		int32_t nb = s->batch;
		int64_t st[3] = { s->sa, s->sb, s->sd };
		cublasLtMatrixLayout_t l[3] = { p->a, p->b, p->d };
		for (int i = 0; i < 3; i++)
			if (sk_lt.cublasLtMatrixLayoutSetAttribute(l[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &nb, sizeof nb) !=
			            CUBLAS_STATUS_SUCCESS ||
			    sk_lt.cublasLtMatrixLayoutSetAttribute(l[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st[i],
			                                           sizeof st[i]) != CUBLAS_STATUS_SUCCESS)
				return -1;
	}
	return 0;
}

// SK_CUDA_GEMM_TUNE=1: the heuristic's first few candidates for a product
// of at least TUNE_MIN_FLOP (=all: any product, for the checks), each timed on the product's own operands (into a
// scratch output, beta 0, so an accumulating D is untouched), the fastest
// kept when it beats the first choice by 3 %. It runs where choose_algo
// does, once a shape class, and waits for the device: not while a graph is
// being captured.
#define TUNE_ALGOS 8
#define TUNE_MIN_FLOP (1ll << 28)
#define TUNE_RUNS 3
#define SPLIT_MAX_OUT (1ll << 22) // outputs of a product (m·n) that may be split over k
#define SPLIT_MIN_K 4096
static float time_algo(sk_cuda *c, sk_cuda_gemm_plan *p, const cublasLtMatmulAlgo_t *algo, const void *A,
                       const void *B, void *D, cudaEvent_t e0, cudaEvent_t e1)
{
	const float one = 1.0f, zero = 0.0f;
	for (int i = 0; i <= TUNE_RUNS; i++) {
		if (i == 1)
			cudaEventRecord(e0, c->stream);
		if (sk_lt.cublasLtMatmul(c->lt, p->op, &one, A, p->a, B, p->b, &zero, D, p->d, D, p->d, algo, c->lt_ws,
		                         LT_WS_BYTES, c->stream) != CUBLAS_STATUS_SUCCESS)
			return -1.0f;
	}
	cudaEventRecord(e1, c->stream);
	float ms = -1.0f;
	if (cudaEventSynchronize(e1) != cudaSuccess || cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess)
		return -1.0f;
	return ms;
}

static void tune_algo(sk_cuda *c, sk_cuda_gemm_plan *p, const cublasLtMatmulHeuristicResult_t *res, int found,
                      const void *A, const void *B)
{
	const sk_cuda_gemm_shape *s = &p->s;
	cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
	if (!c->gemm_tune || found < 1 || !A || !B || !c->lt_ws || (c->gemm_tune == 1 && 2 * s->m * s->n * s->k * s->batch < TUNE_MIN_FLOP) ||
	    cudaStreamIsCapturing(c->stream, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone)
		return;
	size_t bytes = (size_t)(s->ldd * s->n + (s->batch > 1 ? s->sd * (s->batch - 1) : 0)) * sizeof(float);
	float *D = NULL;
	cudaEvent_t e0 = NULL, e1 = NULL;
	if (cudaMalloc((void **)&D, bytes) != cudaSuccess || cudaEventCreate(&e0) != cudaSuccess ||
	    cudaEventCreate(&e1) != cudaSuccess) {
		cudaGetLastError(); // no room to tune: the heuristic's choice stands
		goto done;
	}
	{
		int best = 0;
		float t0 = time_algo(c, p, &res[0].algo, A, B, D, e0, e1), tb = t0;
		for (int i = 1; i < found && t0 > 0.0f; i++) {
			if (res[i].workspaceSize > LT_WS_BYTES)
				continue;
			float t = time_algo(c, p, &res[i].algo, A, B, D, e0, e1);
			if (t > 0.0f && t < tb)
				best = i, tb = t;
		}
		cublasLtMatmulAlgo_t pick = res[best].algo;
		if (t0 > 0.0f && s->m * s->n <= SPLIT_MAX_OUT && s->k >= SPLIT_MIN_K)
			for (uint32_t split = 2; split <= 4; split *= 2) {
				cublasLtMatmulAlgo_t a = res[0].algo;
				uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
				cublasLtMatmulHeuristicResult_t chk;
				memset(&chk, 0, sizeof chk);
				if (sk_lt.cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split,
				                                               sizeof split) != CUBLAS_STATUS_SUCCESS ||
				    sk_lt.cublasLtMatmulAlgoConfigSetAttribute(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
				                                               sizeof scheme) != CUBLAS_STATUS_SUCCESS ||
				    sk_lt.cublasLtMatmulAlgoCheck(c->lt, p->op, p->a, p->b, p->d, p->d, &a, &chk) !=
				            CUBLAS_STATUS_SUCCESS ||
				    chk.workspaceSize > LT_WS_BYTES)
					continue;
				float t = time_algo(c, p, &a, A, B, D, e0, e1);
				c->n_split_timed++;
				if (t > 0.0f && t < tb)
					pick = a, tb = t, best = -1;
			}
		if (best && tb < 0.97f * t0) {
			p->algo = pick;
			c->n_tuned++;
			c->n_split_won += best < 0;
		}
		cudaGetLastError(); // a candidate that failed to launch is not the product's error
	}
done:
	if (e0)
		cudaEventDestroy(e0);
	if (e1)
		cudaEventDestroy(e1);
	if (D)
		cudaFree(D);
}

// The heuristic's first choice for p's exact shape (or, tuning, the fastest
// of its first few): 0, or -1 when it has none. A and B, the operands of
// the product being planned, may be NULL (no tuning).
static int choose_algo(sk_cuda *c, sk_cuda_gemm_plan *p, const void *A, const void *B)
{
	cublasLtMatmulPreference_t pref;
	size_t ws = LT_WS_BYTES;
	cublasLtMatmulHeuristicResult_t res[TUNE_ALGOS];
	int found = 0;
	if (sk_lt.cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS)
		return -1;
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
	// operands may be row slices (an LM-head chunk) or offsets into a buffer:
	// only algorithms that work at the alignment the pointers have
	uint32_t al = p->s.align;
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
	cublasStatus_t st = sk_lt.cublasLtMatmulAlgoGetHeuristic(c->lt, p->op, p->a, p->b, p->d, p->d, pref,
	                                                         c->gemm_tune ? TUNE_ALGOS : 1, res, &found);
	sk_lt.cublasLtMatmulPreferenceDestroy(pref);
	c->n_heuristic++;
	if (st != CUBLAS_STATUS_SUCCESS || found < 1)
		return -1;
	p->algo = res[0].algo;
	p->reused = 0;
	tune_algo(c, p, res, found, A, B);
	return 0;
}

// The algorithm of s's class when cuBLASLt confirms it fits s within the
// workspace (0), else the heuristic's for s, kept for the class (0), else -1.
static int plan_algo(sk_cuda *c, sk_cuda_gemm_plan *p, const void *A, const void *B)
{
	sk_cuda_gemm_shape cls = shape_class(&p->s);
	int hit, k = find_slot(c, &cls, SK_CUDA_GEMM_ALGOS, 1, &hit);
	if (hit) {
		cublasLtMatmulHeuristicResult_t chk;
		memset(&chk, 0, sizeof chk);
		if (sk_lt.cublasLtMatmulAlgoCheck(c->lt, p->op, p->a, p->b, p->d, p->d, &c->algos[k].algo, &chk) ==
		            CUBLAS_STATUS_SUCCESS &&
		    chk.workspaceSize <= LT_WS_BYTES) {
			p->algo = c->algos[k].algo;
			p->reused = 1;
			c->n_reused++;
			return 0;
		}
	}
	if (choose_algo(c, p, A, B) != 0)
		return -1;
	c->algos[k].cls = cls;
	c->algos[k].algo = p->algo;
	c->algos[k].used = 1;
	return 0;
}

static sk_cuda_gemm_plan *plan_for(sk_cuda *c, const sk_cuda_gemm_shape *s, const void *A, const void *B)
{
	int hit, k = find_slot(c, s, SK_CUDA_GEMM_PLANS, 0, &hit);
	sk_cuda_gemm_plan *p = &c->plans[k];
	if (hit)
		return p->ok ? p : NULL;
	sk_cuda_plan_free(p);
	p->s = *s;
	p->used = 1;
	c->n_plans_made++;
	if (make_descriptors(p, s) == 0 && plan_algo(c, p, A, B) == 0)
		p->ok = 1;
	return p->ok ? p : NULL;
}

void sk_cuda_plan_free(sk_cuda_gemm_plan *p)
{
	if (p->op)
		sk_lt.cublasLtMatmulDescDestroy(p->op);
	if (p->a)
		sk_lt.cublasLtMatrixLayoutDestroy(p->a);
	if (p->b)
		sk_lt.cublasLtMatrixLayoutDestroy(p->b);
	if (p->d)
		sk_lt.cublasLtMatrixLayoutDestroy(p->d);
	memset(p, 0, sizeof *p);
}

// Under SK_CUDA_PROFILE=kernels a product's part is named by its operand
// type and the shape class of its m x n x k (cuBLASLt's column-major terms;
// for y = x Wᵀ, m is the output width and n the rows), so that the table
// says which products take the time: the LoRA branch's thin ones, the
// long and narrow ones, the wide ones. Names are interned for the life of
// the process; past PART_NAMES of them, products fall back to their type.
#define PART_NAMES 96
static const char *part_name(const sk_cuda_gemm_shape *s)
{
	static char names[PART_NAMES][128];
	static int n_names;
	const char *kind = s->bf16 == 1 ? "bf16" : s->bf16 == 3 ? "bf16 to bf16" : s->bf16 ? "tf32" : "fp32";
	char buf[128];
	snprintf(buf, sizeof buf, "cuBLASLt %s %lldx%lldx%lld%s", kind, (long long)size_class(s->m),
	         (long long)size_class(s->n), (long long)size_class(s->k), s->batch > 1 ? " batched" : "");
	for (int i = 0; i < n_names; i++)
		if (!strcmp(names[i], buf))
			return names[i];
	if (n_names == PART_NAMES)
		return s->bf16 == 1 || s->bf16 == 3 ? "cuBLASLt bf16 product (other shapes)"
		       : s->bf16                  ? "cuBLASLt tf32 product (other shapes)"
		                                  : "cuBLASLt fp32 product (other shapes)";
	memcpy(names[n_names], buf, sizeof buf);
	return names[n_names++];
}

int sk_cuda_matmul(sk_cuda *c, sk_cuda_gemm_shape s, float alpha, const void *A, const void *B, float beta, void *D)
{
	if (s.m <= 0 || s.n <= 0)
		return 0;
	uint32_t al = align_of(A), t;
	if ((t = align_of(B)) < al)
		al = t;
	if ((t = align_of(D)) < al)
		al = t;
	if (s.batch > 1) { // every product of the batch starts at its stride's alignment too
		const int64_t el = s.bf16 == 1 || s.bf16 == 3 ? 2 : 4, eld = s.bf16 == 3 ? 2 : 4;
		const int64_t st[3] = { s.sa, s.sb, s.sd };
		for (int i = 0; i < 3; i++)
			if (st[i] && (t = align_of((const void *)(uintptr_t)(st[i] * (i < 2 ? el : eld)))) < al)
				al = t;
	} else {
		s.batch = 1, s.sa = s.sb = s.sd = 0;
	}
	s.align = al;
	if (c->gemm_reference)
		return sk_cuda_matmul_reference(c, &s, alpha, A, B, beta, D);
	if (!c->lt_ws && !(c->lt_ws = sk_cuda_alloc(c, LT_WS_BYTES, "the cuBLASLt workspace")))
		return -1;
	sk_cuda_gemm_plan *p = plan_for(c, &s, A, B);
	if (!p) {
		sk_cuda_fail(c, "cuBLASLt has no algorithm for a %lld x %lld x %lld product (%s)", (long long)s.m,
		             (long long)s.n, (long long)s.k, s.bf16 == 1 || s.bf16 == 3 ? "bf16" : s.bf16 ? "tf32" : "fp32");
		return -1;
	}
	cublasStatus_t st = sk_lt.cublasLtMatmul(c->lt, p->op, &alpha, A, p->a, B, p->b, &beta, D, p->d, D, p->d,
	                                         &p->algo, c->lt_ws, LT_WS_BYTES, c->stream);
	if (st != CUBLAS_STATUS_SUCCESS && p->reused && choose_algo(c, p, NULL, NULL) == 0) // the class's algorithm after all not for this shape
		st = sk_lt.cublasLtMatmul(c->lt, p->op, &alpha, A, p->a, B, p->b, &beta, D, p->d, D, p->d, &p->algo,
		                          c->lt_ws, LT_WS_BYTES, c->stream);
	if (st != CUBLAS_STATUS_SUCCESS) {
		sk_cuda_fail(c, "cuBLASLt matmul failed (status %d)", (int)st);
		return -1;
	}
	if (c->profiling == 2)
		sk_cuda_prof_part(c, part_name(&s));
	return 0;
}
