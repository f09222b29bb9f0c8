#!/bin/sh
# Runs every test program and test script given as arguments, counts the
# "ok"/"not ok" lines they print, and ends with "N passed, N failed".
# A program that exits non-zero without reporting a failure (a crash) counts
# as one failed case.
srcdir=${srcdir:-.}
SK_SRCDIR=$(cd "$srcdir" && pwd)
export SK_SRCDIR
# Optional resources: the default model (data/fetch-model.sh puts it in the
# cache) and the reference tokenizer.json; tests that need one skip without it.
if [ -z "${SK_DEFAULT_MODEL:-}" ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}
	f=$cache/sokhan/models/gemma-3-270m-q4_k_m.gguf
	[ -f "$f" ] && SK_DEFAULT_MODEL=$f && export SK_DEFAULT_MODEL
fi
if [ -z "${SK_TOKENIZER_JSON:-}" ]; then
	f=$SK_SRCDIR/../shared/data/gemma3-tokenizer/tokenizer.json
	[ -f "$f" ] && SK_TOKENIZER_JSON=$(cd "$(dirname "$f")" && pwd)/tokenizer.json && export SK_TOKENIZER_JSON
fi
passed=0
failed=0
skipped=0
logdir=${SK_TEST_LOGDIR:-tests/logs}
mkdir -p "$logdir"
for t in "$@"; do
	name=$(basename "$t")
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
