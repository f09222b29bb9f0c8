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

/* Marks the current case as skipped (for a resource this machine lacks, e.g.
 * a GPU or the default model); the runner counts it apart from passes. */
#define SKIP(...) snprintf(sk_test_skip_reason, sizeof sk_test_skip_reason, __VA_ARGS__)

#define RUN(name)                                                                       \
	do {                                                                            \
		sk_test_case_failed = 0;                                                \
		sk_test_skip_reason[0] = '\0';                                          \
		name();                                                                 \
		sk_test_n++;                                                            \
		if (sk_test_case_failed) sk_test_nfailed++;                             \
		if (sk_test_skip_reason[0] && !sk_test_case_failed)                     \
			printf("ok %d - %s # SKIP %s\n", sk_test_n, #name, sk_test_skip_reason); \
		else                                                                    \
			printf("%s %d - %s\n", sk_test_case_failed ? "not ok" : "ok", sk_test_n, #name); \
		fflush(stdout);                                                         \
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
