#!/bin/sh
# The CUDA kernels' sources: every kernel that may start early (launched by
# sk_launch, programmatic dependent launches) waits for the one before it.
. "$(dirname "$0")/lib.sh"
if ! command -v python3 >/dev/null 2>&1; then
	sk_skip "kernels launched by sk_launch wait for their predecessor" "python3 not installed"
	sk_done
	exit $?
fi
check "kernels launched by sk_launch wait for their predecessor" \
	python3 "$SK_SRCDIR/tests/kernel_launch_lint.py" "$SK_SRCDIR/kernels"
# the lint itself finds a kernel that does not wait
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/bad.cu" <<'CU'
__global__ static void k_early(float *y) { y[threadIdx.x] = 1.0f; }
void go(sk_cuda *c, float *y) { sk_launch(c, k_early, 1, 32, 0, y); }
CU
expect_status 1 "the lint rejects a kernel without sk_pdl_wait" python3 "$SK_SRCDIR/tests/kernel_launch_lint.py" "$tmp"
sk_done
