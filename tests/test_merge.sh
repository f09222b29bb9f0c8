#!/bin/sh
# `sokhan merge` on the tiny fixtures (tests/fixtures/hf/, references from
# transformers + PEFT via make_fixtures.py): the merged model's logits equal
# PEFT's base+adapter logits (rel L2 < 1e-4 in f32; bf16/f16 output rounds
# the merged weights, measured errors 6e-3 / 7e-4 against an adapter effect
# of 0.27-0.39, so 2e-2 / 3e-3 are used); merged weights equal W + s*B*A
# computed independently (Python's standard library); untouched tensors are
# byte-identical; sharding and the index; the checkpoint passes sokhan's own
# validation; errors leave nothing behind. Whether transformers loads the
# result is a developer check: tests/fixtures/check_merged_hf.py (see
# tests/fixtures/README.md).
. "$(dirname "$0")/lib.sh"
HF=$SK_SRCDIR/tests/fixtures/hf
T3N=$HF/tiny-gemma3n
T3=$HF/tiny-gemma3
tmp=$(mktemp -d /tmp/sk_test_merge.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

has() {
	if printf '%s\n' "$2" | grep -q -- "$3"; then sk_ok "$1"; else
		sk_not_ok "$1"
		echo "  no match for: $3 in: $2" >&2
	fi
}

if $SOKHAN merge --help 2>&1 | grep -q "unknown command"; then
	sk_skip "merge" "the command is not in this build"
	sk_done
	exit $?
fi

ids() {
	python3 -c "import json,sys; m=json.load(open(sys.argv[1]+'/ref/manifest.json')); print(','.join(map(str, m['sequences'][int(sys.argv[2])]['ids'])))" "$1" "$2"
}
# close A.npy B.npy TOL: same shape, relative L2 error below TOL.
close() { $SK_COMPARE --rel-l2 "$3" "$1" "$2" >&2; }
# logits_close OUT MODEL TAG K TOL: logits of the merged OUT for sequence K
# against PEFT's reference with adapter TAG.
logits_close() {
	$SOKHAN logits -q --model "$1" --ids "$(ids "$2" "$4")" --out "$tmp/l.npy" && close "$tmp/l.npy" "$2/ref/logits_$3_$4.npy" "$5"
}

# Structural checks in Python's standard library (reads safetensors headers
# itself, so it does not trust sokhan's reader): check_ckpt OUT BASE ADAPTER
# DTYPE, where DTYPE is the dtype every float tensor must have. Passes when:
# shards and index are consistent (five-digit names, weight_map complete,
# total_size right, __metadata__ format pt, header padded to 8, offsets
# contiguous); tensor names and shapes equal the base's; every adapted weight
# equals W + s*B@A (computed in double; fp32 output within rel 1e-6,
# rounded-output dtypes within one ulp); every other tensor is
# byte-identical when its dtype is kept, else the base value rounded to
# nearest even.
check_ckpt() {
	python3 - "$@" <<'EOF'
import array, glob, json, math, os, struct, sys
out, base, adapter, want = sys.argv[1:5]
assert sys.byteorder == "little"

def read_file(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    assert n % 8 == 0, f"{p}: header length {n} not a multiple of 8"
    h = json.loads(b[8:8 + n])
    assert h.pop("__metadata__") == {"format": "pt"}, p
    data = b[8 + n:]
    spans = sorted(v["data_offsets"] for v in h.values())
    end = 0
    for s, e in spans:
        assert s == end, f"{p}: gap or overlap at {s}"
        end = e
    assert end == len(data), f"{p}: {len(data) - end} trailing bytes"
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}

def read_ckpt(d):
    if os.path.isfile(d):
        return read_file(d), [os.path.basename(d)]
    files = sorted(glob.glob(os.path.join(d, "*.safetensors")))
    t = {}
    for f in files:
        part = read_file(f)
        for k, v in part.items():
            t[k] = v + (os.path.basename(f),)
    return t, [os.path.basename(f) for f in files]

got, files = read_ckpt(out)
ref, _ = read_ckpt(base)
idx = os.path.join(out, "model.safetensors.index.json")
if len(files) == 1:
    assert files == ["model.safetensors"], files
    assert not os.path.exists(idx), "an index beside a single file"
else:
    n = len(files)
    assert files == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)], files
    ix = json.load(open(idx))
    assert set(ix["weight_map"]) == set(got), "weight_map does not list every tensor"
    for k, f in ix["weight_map"].items():
        assert got[k][3] == f, f"{k} is in {got[k][3]}, index says {f}"
    assert ix["metadata"]["total_size"] == sum(len(v[2]) for v in got.values()), "total_size"
assert set(got) == set(ref), f"names differ: {set(got) ^ set(ref)}"

cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
r, alpha = cfg["r"], cfg["lora_alpha"]
s = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
ad = read_file(os.path.join(adapter, "adapter_model.safetensors"))

def floats(dtype, raw):
    """The stored values as Python floats (exact: each type fits a double)."""
    if dtype == "F32":
        a = array.array("f")
        a.frombytes(raw)
        return a.tolist()
    if dtype == "F16":
        return list(struct.unpack(f"<{len(raw) // 2}e", raw))
    assert dtype == "BF16", dtype
    u = array.array("H")
    u.frombytes(raw)
    return list(struct.unpack(f"<{len(u)}f", array.array("I", (x << 16 for x in u)).tobytes()))

def rnd(x, dt):
    """A float32 value rounded to dt (nearest, ties to even) and back."""
    if dt == "F16":
        return struct.unpack("<e", struct.pack("<e", x))[0]
    if dt == "BF16":
        u = struct.unpack("<I", struct.pack("<f", x))[0]
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
        return struct.unpack("<f", struct.pack("<I", u))[0]
    return x

merged = set()
for k in ad:
    if not k.endswith(".lora_A.weight"):
        continue
    name = k[len("base_model.model."):-len(".lora_A.weight")] + ".weight"
    if name not in ref:
        name = name.replace("model.", "model.language_model.", 1)
    if name not in ref:
        continue
    kb = k.replace("lora_A", "lora_B")
    (ra, n_in), (n_out, rb) = ad[k][1], ad[kb][1]
    A = floats(ad[k][0], ad[k][2])      # [r, in]
    B = floats(ad[kb][0], ad[kb][2])    # [out, r]
    W = floats(ref[name][0], ref[name][2])
    dt, shape, raw = got[name][:3]
    assert dt == want, f"{name}: {dt}, want {want}"
    assert shape == [n_out, n_in] and ra == rb, f"{name}: shape {shape}, adapter {ra}x{n_in}, {n_out}x{rb}"
    w = floats(dt, raw)
    cols = [A[i::n_in] for i in range(n_in)]  # column i of A: A[0][i], A[1][i], ...
    want_w = [W[o * n_in + i] + s * sum(b * a for b, a in zip(B[o * rb:(o + 1) * rb], cols[i]))
              for o in range(n_out) for i in range(n_in)]
    if dt == "F32":
        err = max(abs(x - y) for x, y in zip(w, want_w)) / max(abs(y) for y in want_w)
        assert err < 1e-6, f"{name}: merged weight off by {err:g}"
    else:
        # one unit in the last place of the output type at most
        # (plus the f16 subnormal spacing, 2^-24)
        for x, y in zip(w, want_w):
            ulp = abs(y) * 2.0 ** -7 if dt == "BF16" else abs(y) * 2.0 ** -10 + 2.0 ** -24
            assert abs(x - y) <= ulp, f"{name}: merged weight {x} not within 1 ulp of {y}"
    assert w != W, f"{name}: unchanged by the merge"
    merged.add(name)
assert merged, "the adapter merged nothing"
for k, (dt, shape, raw) in ((k, v[:3]) for k, v in ref.items()):
    if k in merged:
        continue
    gd, gs, graw = got[k][:3]
    assert gs == shape, f"{k}: shape {gs}, want {shape}"
    if dt == gd:
        assert graw == raw, f"{k}: not byte-identical"
    else:
        assert gd == want, f"{k}: {gd}, want {want}"
        assert floats(gd, graw) == [rnd(x, gd) for x in floats(dt, raw)], f"{k}: bad conversion"
print(f"  {len(merged)} merged, {len(got) - len(merged)} untouched, {len(files)} file(s)", file=sys.stderr)
EOF
}

# --- argument checks ---
expect_status 0 "merge --help" $SOKHAN merge --help
has "help shows usage" "$out" "Usage: sokhan merge"
expect_status 2 "--out is required" $SOKHAN merge --model "$T3N" --adapter "$T3N/ref/adapter_all"
expect_status 2 "--adapter is required" $SOKHAN merge --model "$T3N" --out "$tmp/x"
expect_status 2 "a bad --dtype" $SOKHAN merge --model "$T3N" --adapter "$T3N/ref/adapter_all" --out "$tmp/x" --dtype q4
expect_status 2 "a bad --max-shard-size" $SOKHAN merge --model "$T3N" --adapter "$T3N/ref/adapter_all" --out "$tmp/x" --max-shard-size 2XB
check "nothing written on usage errors" test ! -e "$tmp/x"

# --- f32 output: logits equal PEFT's base+adapter logits ---
for spec in "$T3N adapter_all all" "$T3N adapter_all_mm all" "$T3N adapter_mlp_rslora mlp_rslora" \
	"$T3N adapter_mlp_rslora_mm mlp_rslora" "$T3 adapter_all all"; do
	set -- $spec
	nm="$(basename "$1") $2"
	o="$tmp/$(basename "$1")-$2-f32"
	expect_status 0 "$nm: merge --dtype f32" $SOKHAN merge -q --model "$1" --adapter "$1/ref/$2" --out "$o" --dtype f32
	check "$nm: merged weights equal W + s*B*A, the rest kept" check_ckpt "$o" "$1" "$1/ref/$2" F32
	check "$nm: logits 0 equal PEFT's (rel L2 < 1e-4)" logits_close "$o" "$1" "$3" 0 1e-4
	check "$nm: logits 1 equal PEFT's (rel L2 < 1e-4)" logits_close "$o" "$1" "$3" 1 1e-4
done
check "f32 output: config.json states float32" grep -q '"dtype": "float32"' "$tmp/tiny-gemma3n-adapter_all-f32/config.json"
check "tokenizer files copied" cmp "$T3N/tokenizer.json" "$tmp/tiny-gemma3n-adapter_all-f32/tokenizer.json"

# --- default dtype (bf16 as stored): untouched tensors byte-identical ---
o="$tmp/t3n-bf16"
expect_status 0 "merge with the stored dtype" $SOKHAN merge --model "$T3N" --adapter "$T3N/ref/adapter_all_mm" --out "$o"
has "a summary line" "$err" "merged 38 weights (BF16, from BF16)"
check "bf16: merged within 1 ulp of W + s*B*A, the rest byte-identical" check_ckpt "$o" "$T3N" "$T3N/ref/adapter_all_mm" BF16
check "bf16: config.json copied as is" cmp "$T3N/config.json" "$o/config.json"
check "bf16: logits close to PEFT's (rel L2 < 2e-2)" logits_close "$o" "$T3N" all 0 2e-2
far() { $SK_COMPARE --min-rel-l2 "$3" "$1" "$2" >&2; }
check "bf16: the adapter's effect is far above that tolerance" far "$T3N/ref/logits_0.npy" "$T3N/ref/logits_all_0.npy" 0.2
o="$tmp/t3-f16"
expect_status 0 "merge --dtype f16" $SOKHAN merge -q --model "$T3" --adapter "$T3/ref/adapter_all" --out "$o" --dtype f16
check "f16: every tensor F16, merged within 1 ulp" check_ckpt "$o" "$T3" "$T3/ref/adapter_all" F16
check "f16: logits close to PEFT's (rel L2 < 3e-3)" logits_close "$o" "$T3" all 0 3e-3
check "f16: config.json states float16" grep -q '"dtype": "float16"' "$o/config.json"

# --- sharding ---
o="$tmp/t3n-shards"
expect_status 0 "merge with --max-shard-size 300KB" $SOKHAN merge --model "$T3N" --adapter "$T3N/ref/adapter_all" --out "$o" --dtype f32 --max-shard-size 300KB
check "several shards and an index" test -e "$o/model-00005-of-00005.safetensors" -a -e "$o/model.safetensors.index.json"
check "no shard above the limit unless one tensor is" sh -c "for f in '$o'/model-*.safetensors; do test \$(stat -c %s \"\$f\") -le 310000 || exit 1; done"
check "shards and index consistent, weights right" check_ckpt "$o" "$T3N" "$T3N/ref/adapter_all" F32
expect_status 0 "sokhan info validates the sharded checkpoint" $SOKHAN info --model "$o"
check "sharded: logits equal PEFT's" logits_close "$o" "$T3N" all 2 1e-4

# --- a single .safetensors input ---
o="$tmp/t3-file"
expect_status 0 "merge a lone .safetensors (+config.json)" $SOKHAN merge -q --model "$T3/model.safetensors" --adapter "$T3/ref/adapter_all" --out "$o"
check "lone file: one model.safetensors, config and tokenizer" test -e "$o/model.safetensors" -a -e "$o/config.json" -a -e "$o/tokenizer_config.json"
check "lone file: weights right" check_ckpt "$o" "$T3/model.safetensors" "$T3/ref/adapter_all" BF16

# --- errors ---
expect_status 1 "an existing output is refused" $SOKHAN merge --model "$T3" --adapter "$T3/ref/adapter_all" --out "$o"
has "the refusal says why" "$err" "already exists (use --force"
check "the existing output is untouched" check_ckpt "$o" "$T3/model.safetensors" "$T3/ref/adapter_all" BF16
expect_status 0 "--force replaces it" $SOKHAN merge -q --model "$T3" --adapter "$T3/ref/adapter_all" --out "$o" --force --dtype f32
check "replaced content" check_ckpt "$o" "$T3/model.safetensors" "$T3/ref/adapter_all" F32
expect_status 1 "--force never replaces the input" $SOKHAN merge --model "$o" --adapter "$T3/ref/adapter_all" --out "$o" --force
check "the input survived" test -e "$o/model.safetensors"
expect_status 1 "an adapter for another model" $SOKHAN merge --model "$T3N" --adapter "$T3/ref/adapter_all" --out "$tmp/bad"
check "no output after a misfit adapter" test ! -e "$tmp/bad"
expect_status 1 "a GGUF model" $SOKHAN merge --model "$SK_SRCDIR/tests/fixtures/model/gemma3-tiny.gguf" --adapter "$T3/ref/adapter_all" --out "$tmp/bad"
has "the GGUF error is clear" "$err" "GGUF input is not supported yet"
# a write error: the file size limit makes write() fail with EFBIG
expect_status 1 "a write error" sh -c "trap '' XFSZ; ulimit -f 200; exec $SOKHAN merge --model '$T3N' --adapter '$T3N/ref/adapter_all' --out '$tmp/full' --dtype f32"
has "the write error says why" "$err" "model.safetensors: write failed: File too large"
check "no half directory after a write error" sh -c "! ls -d '$tmp'/full* 2>/dev/null"

sk_done
