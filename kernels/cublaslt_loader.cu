// cuBLASLt opened at run time (see cublaslt_loader.h).
#include "kernels/cublaslt_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

sk_lt_api sk_lt;

#define SK_STR2(x) #x
#define SK_STR(x) SK_STR2(x)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_err[256];
static int loaded;

static void load(void)
{
	// the major version the kernels were compiled against: its ABI
	static const char *const names[] = { "libcublasLt.so." SK_STR(CUBLAS_VER_MAJOR), "libcublasLt.so" };
	void *h = NULL;
	for (size_t i = 0; i < sizeof names / sizeof *names && !h; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(load_err, sizeof load_err, "cannot open %s: %s", names[0], dlerror());
		return;
	}
	struct {
		const char *name;
		void **slot;
	} syms[] = {
#define SYM(f) { #f, (void **)&sk_lt.f }
		SYM(cublasLtCreate), SYM(cublasLtDestroy), SYM(cublasLtGetVersion), SYM(cublasLtMatmul),
		SYM(cublasLtMatmulAlgoGetHeuristic), SYM(cublasLtMatmulAlgoCheck), SYM(cublasLtMatmulAlgoConfigSetAttribute),
		SYM(cublasLtMatmulDescCreate), SYM(cublasLtMatmulDescDestroy),
		SYM(cublasLtMatmulDescSetAttribute), SYM(cublasLtMatmulPreferenceCreate),
		SYM(cublasLtMatmulPreferenceDestroy), SYM(cublasLtMatmulPreferenceSetAttribute),
		SYM(cublasLtMatrixLayoutCreate), SYM(cublasLtMatrixLayoutDestroy), SYM(cublasLtMatrixLayoutSetAttribute),
#undef SYM
	};
	for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(load_err, sizeof load_err, "%s has no %s", names[0], syms[i].name);
			memset(&sk_lt, 0, sizeof sk_lt);
			dlclose(h);
			return;
		}
	}
	loaded = 1; // the handle stays open for the life of the process
}

int sk_lt_load(char *err, size_t cap)
{
	pthread_once(&once, load);
	if (!loaded && err && cap)
		snprintf(err, cap, "%s", load_err);
	return loaded ? 0 : -1;
}
