/* What the two benchmarks (cmd_bench.c: infer, cmd_bench_train.c: train)
 * share. */
#ifndef SK_BENCH_H
#define SK_BENCH_H

#include "src/cli.h"

/* --random-init's value: "e4b" or "e2b" into *out; else a usage error (2). */
int sk_bench_shape(const sk_command_help *h, const char *arg, const char **out);
/* A monotonic clock in seconds. */
double sk_bench_now(void);

#endif
