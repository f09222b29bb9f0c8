/* A minimal test harness: each TEST is one case; the program prints
 * "ok N - name" / "not ok N - name" lines (TAP-like) that tests/run-tests.sh
 * counts, and exits non-zero when any case failed. */
#ifndef SK_TEST_H
#define SK_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sk_test_case_failed;
static char sk_test_skip_reason[256];
static int sk_test_n, sk_test_nfailed;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			sk_test_case_failed = 1;                                        \
		}                                                                       \
	} while (0)

#define CHECK_MSG(cond, ...)                                                            \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fputc('\n', stderr);                                            \
			sk_test_case_failed = 1;                                        \
		}                                                                       \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                              \
	do {                                                                            \
		long long sk_a_ = (long long)(a), sk_b_ = (long long)(b);               \
		if (sk_a_ != sk_b_) {                                                   \
			fprintf(stderr, "  %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, #a, #b, sk_a_, sk_b_); \
			sk_test_case_failed = 1;                                        \
		}                                                                       \
	} while (0)

#define CHECK_NEAR(a, b, tol)                                                           \
	do {                                                                            \
		double sk_a_ = (a), sk_b_ = (b);                                        \
		if (!(fabs(sk_a_ - sk_b_) <= (tol))) {                                  \
			fprintf(stderr, "  %s:%d: |%s - %s| = |%g - %g| > %g\n", __FILE__, __LINE__, #a, #b, sk_a_, sk_b_, (double)(tol)); \
			sk_test_case_failed = 1;                                        \
		}                                                                       \
	} while (0)

#define TEST(name) static void name(void)

/* Continuous integration (CI=true or CI=1 in the environment, as CI services
 * set it) must run every comparison: there a case that would skip for a
 * missing tool, file or model fails instead, with the reason. Only a missing
 * GPU (SKIP_GPU) stays a skip everywhere. */
static inline int sk_test_in_ci(void)
{
	const char *c = getenv("CI");
	return c && (strcmp(c, "true") == 0 || strcmp(c, "1") == 0);
}

static int sk_test_skip_gpu;

/* Marks the current case as skipped for a resource this machine lacks (the
 * default model, a tool); the runner counts it apart from passes. Under CI
 * the case fails. */
#define SKIP(...) snprintf(sk_test_skip_reason, sizeof sk_test_skip_reason, __VA_ARGS__)
/* Skipped for want of a GPU: a skip under CI too. */
#define SKIP_GPU(...) (sk_test_skip_gpu = 1, SKIP(__VA_ARGS__))

/* Prints the line of a finished case; returns 1 if it counts as failed. */
static inline int sk_test_report(const char *name, int failed, const char *skip_reason, int gpu)
{
	if (!failed && skip_reason[0] && !gpu && sk_test_in_ci()) {
		printf("not ok %d - %s (CI=%s: a case may skip only for want of a GPU; skipped because: %s)\n",
		       sk_test_n, name, getenv("CI"), skip_reason);
		failed = 1;
	} else if (!failed && skip_reason[0]) {
		printf("ok %d - %s # SKIP %s\n", sk_test_n, name, skip_reason);
	} else {
		printf("%s %d - %s\n", failed ? "not ok" : "ok", sk_test_n, name);
	}
	fflush(stdout);
	return failed;
}

/* A case skipped without running (e.g. its fixture is absent). */
static inline void sk_test_skip_case(const char *name, const char *reason)
{
	sk_test_n++;
	if (sk_test_report(name, 0, reason, 0))
		sk_test_nfailed++;
}

#define RUN(name)                                                                                 \
	do {                                                                                      \
		sk_test_case_failed = 0;                                                          \
		sk_test_skip_reason[0] = '\0';                                                    \
		sk_test_skip_gpu = 0;                                                             \
		name();                                                                           \
		sk_test_n++;                                                                      \
		if (sk_test_report(#name, sk_test_case_failed, sk_test_skip_reason, sk_test_skip_gpu)) \
			sk_test_nfailed++;                                                        \
	} while (0)

#define TEST_EXIT() return sk_test_nfailed ? 1 : 0

/* Directory holding tests/ (the source tree); set by the runner. */
static inline const char *sk_test_srcdir(void)
{
	const char *s = getenv("SK_SRCDIR");
	return s && *s ? s : ".";
}

/* srcdir + "/" + rel, in a static buffer (one at a time). */
static inline const char *sk_test_path(const char *rel)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s/%s", sk_test_srcdir(), rel);
	return buf;
}

#endif
