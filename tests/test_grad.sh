#!/bin/sh
# `sokhan grad`: argument checks, then on the tiny Gemma 3n fixture with the
# multimodal-key adapter: the printed loss and the written gradients (under
# the adapter file's own key names) equal PEFT's (ref/grad_all.safetensors,
# made by tests/fixtures/make_fixtures.py), compared with NumPy.
. "$(dirname "$0")/lib.sh"
T3N=$SK_SRCDIR/tests/fixtures/hf/tiny-gemma3n
tmp=$(mktemp -d /tmp/sk_test_grad.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if $SOKHAN grad --help 2>&1 | grep -q "unknown command"; then
	sk_skip "grad" "the command is not in this build"
	sk_done
	exit $?
fi

IDS=2,225,49,314,134,180,261,265,296,43,53,121,157,294,4,275,240,204,186,344,60,198,323,21
expect_status 0 "grad --help" $SOKHAN grad --help
expect_status 2 "grad needs --adapter" $SOKHAN grad --model "$T3N" --ids 2,3 --out "$tmp/g.safetensors"
expect_status 2 "grad needs --out" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all" --ids 2,3
expect_status 2 "grad: a bad --mask-prefix" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all" \
	--ids 2,3 --mask-prefix x --out "$tmp/g.safetensors"
expect_status 1 "grad: nothing to predict" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all" \
	--ids 2,3 --mask-prefix 2 --out "$tmp/g.safetensors"
expect_status 0 "grad on tiny-gemma3n" $SOKHAN grad --model "$T3N" --adapter "$T3N/ref/adapter_all_mm" \
	--ids "$IDS" --mask-prefix 5 --out "$tmp/g.safetensors"
loss=$(printf '%s\n' "$out" | sed -n 's/^loss = //p')

if ! python3 -c "import numpy" 2>/dev/null; then
	sk_skip "gradients equal PEFT's" "no NumPy"
	sk_done
	exit $?
fi
check "loss and gradients equal PEFT's" python3 - "$tmp/g.safetensors" "$T3N/ref" "$loss" <<'PY'
import json, struct, sys
import numpy as np

def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32).reshape(v["shape"])
    return out

got, ref = load(sys.argv[1]), load(sys.argv[2] + "/grad_all.safetensors")
man = json.load(open(sys.argv[2] + "/manifest.json"))
want_loss = man["adapters"][0]["grad"]["loss"]
assert abs(float(sys.argv[3]) - want_loss) < 1e-4 * abs(want_loss), (sys.argv[3], want_loss)
assert len(got) == len(ref), (len(got), len(ref))
for k, r in ref.items():
    g = got[k.replace("base_model.model.model.", "base_model.model.model.language_model.")]
    e = np.linalg.norm(g - r) / np.linalg.norm(r)
    assert e < 1e-3, (k, e)
PY
sk_done
