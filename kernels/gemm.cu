// Matrix products through cuBLASLt, in its column-major terms, with a cache
// of plans (descriptors and the chosen algorithm) keyed by everything the
// heuristic saw: shape, transposes, leading dimensions, types and the
// operands' alignment. The linear op's bf16 products (linear.cu) and the
// LoRA branch's thin fp32 ones (lora_train.cu) both come here.
#include "kernels/context.cuh"

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

static sk_cuda_gemm_plan *plan_for(sk_cuda *c, const sk_cuda_gemm_shape *s)
{
	for (int i = 0; i < c->n_plans; i++)
		if (same_shape(&c->plans[i].s, s))
			return c->plans[i].ok ? &c->plans[i] : NULL;
	sk_cuda_gemm_plan *p = &c->plans[c->n_plans < SK_CUDA_GEMM_PLANS ? c->n_plans++ : SK_CUDA_GEMM_PLANS - 1];
	sk_cuda_plan_free(p);
	memset(p, 0, sizeof *p);
	p->s = *s;
	cublasOperation_t ta = s->ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = s->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
	cudaDataType_t ab = s->bf16 ? CUDA_R_16BF : CUDA_R_32F;
	// stored shapes: A is (m x k) or, transposed, (k x m); B (k x n) or (n x k)
	if (sk_lt.cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatrixLayoutCreate(&p->a, ab, s->ta ? s->k : s->m, s->ta ? s->m : s->k, s->lda) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatrixLayoutCreate(&p->b, ab, s->tb ? s->n : s->k, s->tb ? s->k : s->n, s->ldb) !=
	            CUBLAS_STATUS_SUCCESS ||
	    sk_lt.cublasLtMatrixLayoutCreate(&p->d, CUDA_R_32F, s->m, s->n, s->ldd) != CUBLAS_STATUS_SUCCESS)
		return NULL;
	if (s->batch > 1) {
		int32_t nb = s->batch;
		int64_t st[3] = { s->sa, s->sb, s->sd };
		cublasLtMatrixLayout_t l[3] = { p->a, p->b, p->d };
		for (int i = 0; i < 3; i++)
			if (sk_lt.cublasLtMatrixLayoutSetAttribute(l[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &nb, sizeof nb) !=
			            CUBLAS_STATUS_SUCCESS ||
			    sk_lt.cublasLtMatrixLayoutSetAttribute(l[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st[i],
			                                           sizeof st[i]) != CUBLAS_STATUS_SUCCESS)
				return NULL;
	}
	cublasLtMatmulPreference_t pref;
	size_t ws = LT_WS_BYTES;
	cublasLtMatmulHeuristicResult_t res;
	int found = 0;
	if (sk_lt.cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS)
		return NULL;
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
	// operands may be row slices (an LM-head chunk) or offsets into a buffer:
	// only algorithms that work at the alignment the pointers have
	uint32_t al = s->align;
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
	sk_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
	cublasStatus_t st =
		sk_lt.cublasLtMatmulAlgoGetHeuristic(c->lt, p->op, p->a, p->b, p->d, p->d, pref, 1, &res, &found);
	sk_lt.cublasLtMatmulPreferenceDestroy(pref);
	if (st != CUBLAS_STATUS_SUCCESS || found < 1)
		return NULL;
	p->algo = res.algo;
	p->ok = 1;
	return p;
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

int sk_cuda_matmul(sk_cuda *c, sk_cuda_gemm_shape s, float alpha, const void *A, const void *B, float beta, float *D)
{
	if (s.m <= 0 || s.n <= 0)
		return 0;
	uint32_t al = align_of(A), t;
	if ((t = align_of(B)) < al)
		al = t;
	if ((t = align_of(D)) < al)
		al = t;
	if (s.batch > 1) { // every product of the batch starts at its stride's alignment too
		size_t el = s.bf16 ? 2 : 4;
		const int64_t st[3] = { s.sa, s.sb, s.sd };
		for (int i = 0; i < 3; i++)
			if (st[i] && (t = align_of((const void *)(uintptr_t)(st[i] * (int64_t)(i < 2 ? el : 4)))) < al)
				al = t;
	} else {
		s.batch = 1, s.sa = s.sb = s.sd = 0;
	}
	s.align = al;
	sk_cuda_gemm_plan *p = plan_for(c, &s);
	if (!p) {
		sk_cuda_fail(c, "cuBLASLt has no algorithm for a %lld x %lld x %lld product (%s)", (long long)s.m,
		             (long long)s.n, (long long)s.k, s.bf16 ? "bf16" : "fp32");
		return -1;
	}
	if (!c->lt_ws && !(c->lt_ws = sk_cuda_alloc(c, LT_WS_BYTES, "the cuBLASLt workspace")))
		return -1;
	cublasStatus_t st = sk_lt.cublasLtMatmul(c->lt, p->op, &alpha, A, p->a, B, p->b, &beta, D, p->d, D, p->d,
	                                         &p->algo, c->lt_ws, LT_WS_BYTES, c->stream);
	if (st != CUBLAS_STATUS_SUCCESS) {
		sk_cuda_fail(c, "cuBLASLt matmul failed (status %d)", (int)st);
		return -1;
	}
	return 0;
}
