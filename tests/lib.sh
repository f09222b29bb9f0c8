# Helpers for shell tests: each `check NAME CMD...` is one case, printed as
# "ok N - NAME" or "not ok N - NAME" for tests/run-tests.sh to count.
SK_SRCDIR=${SK_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
SOKHAN=${SOKHAN:-./sokhan}
# compares a tensor with a reference: tests/sk_compare.c
SK_COMPARE=${SK_COMPARE:-./tests/sk_compare}
sk_n=0
sk_failed=0

sk_ok() { sk_n=$((sk_n + 1)); echo "ok $sk_n - $1"; }
sk_not_ok() { sk_n=$((sk_n + 1)); sk_failed=$((sk_failed + 1)); echo "not ok $sk_n - $1"; }
# Continuous integration (CI=true or CI=1 in the environment, as CI services
# set it) must run every comparison: there a case that would skip for a
# missing tool, file or model fails instead, with the reason. Only a missing GPU (sk_skip_gpu) stays a skip everywhere.
sk_in_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }
# sk_skip NAME REASON: NAME could not run here.
sk_skip() {
	if sk_in_ci; then
		sk_not_ok "$1 (CI=$CI: a case may skip only for want of a GPU; skipped because: $2)"
	else
		sk_n=$((sk_n + 1))
		echo "ok $sk_n - $1 # SKIP $2"
	fi
}
sk_skip_gpu() { sk_n=$((sk_n + 1)); echo "ok $sk_n - $1 # SKIP $2"; }

# check NAME CMD... : passes when CMD exits 0.
check() {
	name=$1
	shift
	if "$@"; then sk_ok "$name"; else sk_not_ok "$name"; fi
}

# expect_status WANT NAME CMD... : runs CMD (stdout/stderr kept in $out/$err)
# and passes when it exits with status WANT.
expect_status() {
	want=$1
	name=$2
	shift 2
	out=$("$@" 2>/tmp/sk_err.$$)
	st=$?
	err=$(cat /tmp/sk_err.$$)
	rm -f /tmp/sk_err.$$
	if [ "$st" -eq "$want" ]; then
		sk_ok "$name"
	else
		sk_not_ok "$name"
		echo "  exit status $st, wanted $want; stderr: $err" >&2
	fi
}

sk_done() { [ "$sk_failed" -eq 0 ]; }
