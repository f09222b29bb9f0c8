// cuBLASLt, opened with dlopen when the first GPU context starts rather
// than linked: the library's load and static initialisation cost about
// 210 MiB of resident memory in every process that links it, CPU runs
// included. The calls go through the table sk_lt; the types come from
// the header as usual.
#pragma once

#include <cublasLt.h>
#include <stddef.h>

typedef struct {
	cublasStatus_t (*cublasLtCreate)(cublasLtHandle_t *);
	cublasStatus_t (*cublasLtDestroy)(cublasLtHandle_t);
	size_t (*cublasLtGetVersion)(void);
	cublasStatus_t (*cublasLtMatmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *, const void *,
	                                 cublasLtMatrixLayout_t, const void *, cublasLtMatrixLayout_t, const void *,
	                                 const void *, cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t,
	                                 const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t);
	cublasStatus_t (*cublasLtMatmulAlgoGetHeuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
	                                                 cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
	                                                 cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
	                                                 cublasLtMatmulHeuristicResult_t *, int *);
	cublasStatus_t (*cublasLtMatmulAlgoCheck)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
	                                          cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
	                                          const cublasLtMatmulAlgo_t *, cublasLtMatmulHeuristicResult_t *);
	cublasStatus_t (*cublasLtMatmulAlgoConfigSetAttribute)(cublasLtMatmulAlgo_t *, cublasLtMatmulAlgoConfigAttributes_t,
	                                                       const void *, size_t);
	cublasStatus_t (*cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t *, cublasComputeType_t, cudaDataType_t);
	cublasStatus_t (*cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t);
	cublasStatus_t (*cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t,
	                                                 const void *, size_t);
	cublasStatus_t (*cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t *);
	cublasStatus_t (*cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t);
	cublasStatus_t (*cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t,
	                                                       cublasLtMatmulPreferenceAttributes_t, const void *, size_t);
	cublasStatus_t (*cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t *, cudaDataType, uint64_t, uint64_t, int64_t);
	cublasStatus_t (*cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t);
	cublasStatus_t (*cublasLtMatrixLayoutSetAttribute)(cublasLtMatrixLayout_t, cublasLtMatrixLayoutAttribute_t,
	                                                   const void *, size_t);
} sk_lt_api;

extern sk_lt_api sk_lt;

// Opens the library once (later calls return the first result): 0, or -1
// with the reason in err.
int sk_lt_load(char *err, size_t cap);
