# Helpers for shell tests: each `check NAME CMD...` is one case, printed as
# "ok N - NAME" or "not ok N - NAME" for tests/run-tests.sh to count.
SK_SRCDIR=${SK_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
SOKHAN=${SOKHAN:-./sokhan}
sk_n=0
sk_failed=0

sk_ok() { sk_n=$((sk_n + 1)); echo "ok $sk_n - $1"; }
sk_not_ok() { sk_n=$((sk_n + 1)); sk_failed=$((sk_failed + 1)); echo "not ok $sk_n - $1"; }
sk_skip() { sk_n=$((sk_n + 1)); echo "ok $sk_n - $1 # SKIP $2"; }

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
