#!/bin/sh
# `sokhan train` and `sokhan eval` end to end on the tiny Gemma 3n fixture:
# usage errors, bad data, kill -9 at random moments + --resume repeating an
# uninterrupted run exactly, a half-written checkpoint, SIGINT.
. "$(dirname "$0")/lib.sh"

MODEL=$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3n
DATA=$SK_SRCDIR/tests/fixtures/train/tiny.jsonl
T=$(mktemp -d /tmp/sk_train_sh.XXXXXX)
trap 'rm -rf "$T"' EXIT

if ! "$SOKHAN" train --help >/dev/null 2>&1; then
	sk_skip "train" "the train command is not in this build"
	sk_done
	exit $?
fi

# the options of every run below; --threads fixed so runs are comparable
OPTS="--model $MODEL --data $DATA --max-len 64 --loss-on all --lr 5e-3 --warmup 2 --batch 2 --grad-accum 2
 --epochs 50 --max-steps 40 --save-every 3 --keep 2 --eval-frac 0.2 --eval-every 10 --dropout 0.1 --threads 2 -q"

# metrics.jsonl without the clock-dependent fields
strip_metrics() {
	sed -e 's/"elapsed_s":[^,}]*//' -e 's/"tokens_per_s":[^,}]*//' -e 's/"memory":{[^}]*}//' \
	    -e 's/,,*/,/g' -e 's/,}/}/' -e 's/{,/{/' "$1"
}

same_run() {
	strip_metrics "$1/metrics.jsonl" >"$T/a.txt" &&
	strip_metrics "$2/metrics.jsonl" >"$T/b.txt" &&
	cmp -s "$T/a.txt" "$T/b.txt" &&
	cmp -s "$1/adapter/adapter_model.safetensors" "$2/adapter/adapter_model.safetensors"
}

# ---- usage errors: exit 2 ----
expect_status 2 "unknown option" "$SOKHAN" train --model "$MODEL" --data "$DATA" --out "$T/u" --frobnicate
expect_status 2 "rank 0" "$SOKHAN" train --model "$MODEL" --data "$DATA" --out "$T/u" --r 0
expect_status 2 "bad targets" "$SOKHAN" train --model "$MODEL" --data "$DATA" --out "$T/u" --targets q,x
expect_status 2 "bad quant" "$SOKHAN" train --model "$MODEL" --data "$DATA" --out "$T/u" --quant q8
expect_status 2 "bad recipe" "$SOKHAN" train --model "$MODEL" --data "$DATA" --out "$T/u" --recipe fast
expect_status 2 "lr not a number" "$SOKHAN" train --model "$MODEL" --data "$DATA" --out "$T/u" --lr fast
expect_status 2 "packing without max-len" "$SOKHAN" train --model "$MODEL" --data "$DATA" --out "$T/u" --packing --max-len 0
expect_status 2 "no data" "$SOKHAN" train --model "$MODEL" --out "$T/u"
expect_status 2 "no run dir" "$SOKHAN" train --model "$MODEL" --data "$DATA"
expect_status 2 "eval without data" "$SOKHAN" eval --model "$MODEL"

# ---- bad data: exit 1 naming the file ----
expect_status 1 "bad data file" "$SOKHAN" train --model "$MODEL" --data "$SK_SRCDIR/tests/fixtures/train/bad.jsonl" --out "$T/bad" -q
check "bad data message names the file" sh -c 'case "$1" in *bad.jsonl*) exit 0;; esac; exit 1' - "$err"
expect_status 1 "missing data file" "$SOKHAN" train --model "$MODEL" --data "$T/nothing.jsonl" --out "$T/bad2" -q
check "missing data message" sh -c 'case "$1" in *nothing.jsonl*) exit 0;; esac; exit 1' - "$err"

# ---- the uninterrupted reference ----
t0=$(date +%s%N)
# shellcheck disable=SC2086
expect_status 0 "uninterrupted run" "$SOKHAN" train $OPTS --out "$T/ref"
t1=$(date +%s%N)
run_ms=$(( (t1 - t0) / 1000000 ))
[ "$run_ms" -gt 100 ] || run_ms=100
echo "# uninterrupted run: $run_ms ms"
check "final adapter written" test -f "$T/ref/adapter/adapter_model.safetensors"
check "chart written" test -f "$T/ref/loss.svg"
check "40 train lines" test "$(grep -c '"type":"train"' "$T/ref/metrics.jsonl")" -eq 40
check "eval lines" test "$(grep -c '"type":"eval"' "$T/ref/metrics.jsonl")" -eq 4
check "keep 2 checkpoints" test "$(ls -d "$T"/ref/checkpoint-* | wc -l)" -eq 2
# shellcheck disable=SC2086
expect_status 1 "fresh run into a used directory" "$SOKHAN" train $OPTS --out "$T/ref"

# ---- kill -9 at random moments, then --resume ----
i=0
while [ $i -lt 5 ]; do
	# shellcheck disable=SC2086
	"$SOKHAN" train $OPTS --resume "$T/k9" 2>/dev/null &
	pid=$!
	# anywhere in the run: model loading, a step, a checkpoint save
	ms=$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % (run_ms * 3 / 10 + 1) + 20 ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	echo "# kill -9 after ${ms} ms: $(ls -d "$T"/k9/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1 || true)"
	i=$((i + 1))
done
# shellcheck disable=SC2086
expect_status 0 "resume after kill -9" "$SOKHAN" train $OPTS --resume "$T/k9"
check "killed + resumed equals uninterrupted" same_run "$T/ref" "$T/k9"

# ---- a half-written checkpoint is ignored ----
mkdir -p "$T/half"
# shellcheck disable=SC2086
"$SOKHAN" train $OPTS --max-steps 40 --out "$T/half" 2>/dev/null &
pid=$!
sleep "$(printf '%d.%03d' $((run_ms / 2000)) $((run_ms / 2 % 1000)))"
kill -INT $pid 2>/dev/null
wait $pid
newest=$(ls -d "$T"/half/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1)
echo "# SIGINT: newest checkpoint ${newest:-none}"
if [ -n "$newest" ]; then
	next=$((newest + 1))
	cp -r "$T/half/checkpoint-$newest" "$T/half/checkpoint-$next"
	rm -f "$T/half/checkpoint-$next/complete"
fi
# shellcheck disable=SC2086
"$SOKHAN" train $OPTS -v --resume "$T/half" >/dev/null 2>"$T/half.err"
check "half-written checkpoint: resume succeeds" test $? -eq 0
check "half-written checkpoint: reported as ignored" grep -q "checkpoint-" "$T/half.err"
check "half-written checkpoint: same result" same_run "$T/ref" "$T/half"

# ---- SIGINT: checkpoint and exit 0 ----
# shellcheck disable=SC2086
"$SOKHAN" train $OPTS --save-every 1000 --out "$T/int" 2>/dev/null &
pid=$!
sleep "$(printf '%d.%03d' $((run_ms * 6 / 10000)) $((run_ms * 6 / 10 % 1000)))"
kill -INT $pid
wait $pid
st=$?
check "SIGINT exits 0" test $st -eq 0
check "SIGINT wrote a checkpoint" sh -c 'ls -d "$1"/checkpoint-* >/dev/null 2>&1' - "$T/int"
# shellcheck disable=SC2086
expect_status 0 "resume after SIGINT" "$SOKHAN" train $OPTS --save-every 1000 --resume "$T/int"
check "interrupted + resumed equals uninterrupted" same_run "$T/ref" "$T/int"

# ---- a full disk (a file size limit stands in): the checkpoint being written
# is dropped, and the message says why ----
# shellcheck disable=SC2086
expect_status 1 "a checkpoint that cannot be written stops the run" \
	sh -c 'trap "" XFSZ; ulimit -f 100; exec "$@"' - "$SOKHAN" train $OPTS --out "$T/full"
check "the message names the file and the reason" \
	sh -c 'echo "$1" | grep -q "checkpoint-3.tmp-.*: write failed: File too large"' - "$err"
check "no checkpoint, whole or half, is left" sh -c '! ls -d "$1"/checkpoint-* 2>/dev/null' - "$T/full"

# ---- eval ----
expect_status 0 "eval base" "$SOKHAN" eval --model "$MODEL" --data "$DATA" --loss-on all --max-len 64 --json
check "eval prints loss and perplexity" sh -c 'case "$1" in *\"loss\":*\"perplexity\":*) exit 0;; esac; exit 1' - "$out"
base=$out
expect_status 0 "eval with the adapter" "$SOKHAN" eval --model "$MODEL" --adapter "$T/ref/adapter" --data "$DATA" --loss-on all --max-len 64 --json
check "the adapter changes the loss" test "$base" != "$out"
expect_status 1 "eval of a bad data file" "$SOKHAN" eval --model "$MODEL" --data "$SK_SRCDIR/tests/fixtures/train/bad.jsonl"

# ---- bench train: lengths varied at every micro-step, the host's time split ----
expect_status 0 "bench train --vary" env SK_TRAIN_TIMING=1 "$SOKHAN" bench train --model "$MODEL" --seq 32 --vary \
	--steps 1 --device cpu --json
check "its JSON says the lengths varied" sh -c 'case "$1" in *\"vary\":1,*) exit 0;; esac; exit 1' - "$out"
check "SK_TRAIN_TIMING=1 splits the host time of its 8 micro-steps" \
	sh -c 'echo "$1" | grep -q "host time a micro-step (8): forward queued"' - "$err"
expect_status 0 "bench train without --vary" "$SOKHAN" bench train --model "$MODEL" --seq 32 --steps 1 --device cpu --json
check "its JSON says the lengths were fixed, and nothing is timed" \
	sh -c 'case "$1" in *\"vary\":0,*) ! echo "$2" | grep -q "host time";; *) exit 1;; esac' - "$out" "$err"
check "its JSON gives the products' arithmetic a token and the rate achieved, both above zero" \
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(not (d["gflop_per_token"] > 0 and d["achieved_tflop_s"] > 0))' "$out"

sk_done
