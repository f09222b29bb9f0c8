#!/usr/bin/env python3
"""A GGUF of a real model's exact shape and tensor types with random weights,
for benchmarking sokhan and llama.cpp side by side on a GPU machine that
cannot hold or download the real file. Two steps:

  # where the real file is: its metadata and tensor list, no weights (a few MB)
  python3 tests/bench/random_gguf.py skeleton gemma-3-270m-q4_k_m.gguf skel.gguf
  # on the GPU machine: the same metadata and tensors, random contents
  python3 tests/bench/random_gguf.py build skel.gguf random-270m.gguf
  # Gemma 3n E4B/E2B as llama.cpp names it, from the Hugging Face config and
  # a Gemma 3 skeleton's tokenizer (no real E4B GGUF exists here); then build
  python3 tests/bench/random_gguf.py gemma3n tests/fixtures/model/e4b-config skel.gguf e4b-skel.gguf

The skeleton is a GGUF holding the real file's key-value metadata (the
tokenizer included) plus, under sokhan.bench.tensors, one "name:type:dims"
string per tensor. Random blocks get small positive scales, so every weight
is finite; speed does not depend on the values. The gemma3n skeleton stores
the seven projections, the embedding and the per-layer table in Q4_0 (the
type llama.cpp's Gemma 3n figures use), the small matrices in F16 and the
vectors in F32. Needs numpy and the `gguf`
package (PyPI; llama.cpp's gguf-py); a benchmark tool, not part of
`make check`."""
import sys

import numpy as np
import gguf

KEY = "sokhan.bench.tensors"
# where a block keeps its fp16 scale(s): byte offsets within the block
SCALES = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "Q2_K": [80, 82], "Q3_K": [108],
}


def copy_fields(reader, writer, skip):
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in skip:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub)


def skeleton(src, dst):
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    copy_fields(r, w, {"general.architecture"})
    infos = ["%s:%s:%s" % (t.name, t.tensor_type.name, ",".join(str(int(d)) for d in t.shape)) for t in r.tensors]
    w.add_array(KEY, infos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("skeleton: %d tensors, %s" % (len(infos), arch))


def gemma3n_skeleton(config_dir, vocab_skel, dst):
    import json
    import os
    from statistics import NormalDist
    cfg = json.load(open(os.path.join(config_dir, "config.json")))
    t = cfg.get("text_config", cfg)
    a = "gemma3n"
    L, H, P = t["num_hidden_layers"], t["hidden_size"], t["hidden_size_per_layer_input"]
    A, R, d = t["altup_num_inputs"], t["laurel_rank"], t["head_dim"]
    # the per-layer table padded to the whole vocabulary, as llama.cpp's converter stores it
    nh, nkv, V = t["num_attention_heads"], t["num_key_value_heads"], t["vocab_size"]
    ff = t["intermediate_size"] if isinstance(t["intermediate_size"], list) else [t["intermediate_size"]] * L
    w = gguf.GGUFWriter(dst, a)
    w.add_string("general.name", "random Gemma 3n of the shape in %s" % os.path.basename(config_dir.rstrip("/")))
    w.add_uint32("general.file_type", int(gguf.LlamaFileType.MOSTLY_Q4_0))
    w.add_uint32(a + ".context_length", t["max_position_embeddings"])
    w.add_uint32(a + ".embedding_length", H)
    w.add_uint32(a + ".block_count", L)
    w.add_array(a + ".feed_forward_length", [int(x) for x in ff])
    w.add_uint32(a + ".attention.head_count", nh)
    w.add_uint32(a + ".attention.head_count_kv", nkv)
    w.add_uint32(a + ".attention.key_length", d)
    w.add_uint32(a + ".attention.value_length", d)
    w.add_float32(a + ".attention.layer_norm_rms_epsilon", t["rms_norm_eps"])
    w.add_float32(a + ".rope.freq_base", 1e6)
    w.add_float32(a + ".rope.freq_base_swa", 1e4)
    w.add_uint32(a + ".attention.sliding_window", t["sliding_window"])
    w.add_array(a + ".attention.sliding_window_pattern", [lt == "sliding_attention" for lt in t["layer_types"]])
    w.add_float32(a + ".final_logit_softcapping", t["final_logit_softcapping"])
    w.add_uint32(a + ".altup.active_idx", t["altup_active_idx"])
    w.add_uint32(a + ".altup.num_inputs", A)
    w.add_uint32(a + ".embedding_length_per_layer_input", P)
    w.add_uint32(a + ".attention.shared_kv_layers", t["num_kv_shared_layers"])
    w.add_array(a + ".activation_sparsity_scale",
                [NormalDist().inv_cdf(p) if p > 0 else float("-inf") for p in t["activation_sparsity_pattern"]])
    # Gemma's tokenizer from the other skeleton, padded to this vocabulary
    r = gguf.GGUFReader(vocab_skel)
    for name, field in r.fields.items():
        if not name.startswith("tokenizer."):
            continue
        val, vtype = field.contents(), field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        if name in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
            extra = V - len(val)
            pad = {"tokenizer.ggml.tokens": ["<unused_pad_%d>" % i for i in range(extra)],
                   "tokenizer.ggml.scores": [0.0] * extra, "tokenizer.ggml.token_type": [5] * extra}[name]
            val = list(val) + pad
        w.add_key_value(name, val, vtype, sub)
    Q, F16, F32 = "Q4_0", "F16", "F32"
    infos = ["token_embd.weight:%s:%d,%d" % (Q, H, V), "per_layer_token_embd.weight:%s:%d,%d" % (Q, L * P, V),
             "per_layer_model_proj.weight:%s:%d,%d" % (F16, H, L * P), "per_layer_proj_norm.weight:%s:%d" % (F32, P),
             "output_norm.weight:%s:%d" % (F32, H), "altup_proj.weight:%s:%d,%d,%d" % (F16, H, H, A - 1),
             "altup_unembd_proj.weight:%s:%d,%d,%d" % (F16, H, H, A - 1)]
    for l in range(L):
        b = "blk.%d." % l
        infos += [b + n for n in (
            "attn_norm.weight:%s:%d" % (F32, H), "attn_q.weight:%s:%d,%d" % (Q, H, nh * d),
            "attn_k.weight:%s:%d,%d" % (Q, H, nkv * d), "attn_v.weight:%s:%d,%d" % (Q, H, nkv * d),
            "attn_output.weight:%s:%d,%d" % (Q, nh * d, H), "attn_q_norm.weight:%s:%d" % (F32, d),
            "attn_k_norm.weight:%s:%d" % (F32, d), "post_attention_norm.weight:%s:%d" % (F32, H),
            "ffn_norm.weight:%s:%d" % (F32, H), "ffn_gate.weight:%s:%d,%d" % (Q, H, ff[l]),
            "ffn_up.weight:%s:%d,%d" % (Q, H, ff[l]), "ffn_down.weight:%s:%d,%d" % (Q, ff[l], H),
            "post_ffw_norm.weight:%s:%d" % (F32, H), "inp_gate.weight:%s:%d,%d" % (F16, H, P),
            "proj.weight:%s:%d,%d" % (F16, P, H), "post_norm.weight:%s:%d" % (F32, H),
            "altup_correct_coef.weight:%s:%d,%d" % (F32, A, A), "altup_correct_scale.weight:%s:%d" % (F32, H),
            "altup_predict_coef.weight:%s:%d,%d" % (F32, A, A * A), "altup_router.weight:%s:%d,%d" % (F16, H, A),
            "altup_router_norm.weight:%s:%d" % (F32, H), "laurel_l.weight:%s:%d,%d" % (F16, H, R),
            "laurel_r.weight:%s:%d,%d" % (F16, R, H), "laurel_post_norm.weight:%s:%d" % (F32, H))]
    w.add_array(KEY, infos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("gemma3n skeleton: %d tensors, %d layers" % (len(infos), L))


def random_tensor(rng, qname, dims):
    qt = gguf.GGMLQuantizationType[qname]
    ne0 = dims[0]
    rows = int(np.prod(dims[1:])) if len(dims) > 1 else 1
    if qname in ("F32", "F16", "BF16"):
        x = (rng.standard_normal((rows, ne0), dtype=np.float32) * 0.02)
        if qname == "F32":
            return x.reshape(tuple(reversed(dims))), None
        if qname == "F16":
            return x.astype(np.float16).reshape(tuple(reversed(dims))), None
        return gguf.quants.quantize(x, qt).reshape(rows, -1), qt
    block, nbytes = gguf.GGML_QUANT_SIZES[qt]
    nb = ne0 // block
    raw = rng.integers(0, 256, size=(rows, nb, nbytes), dtype=np.uint8)
    for off in SCALES.get(qname, []):
        scale = rng.uniform(1e-4, 2e-3, size=(rows, nb)).astype(np.float16)
        raw[:, :, off:off + 2] = scale.view(np.uint8).reshape(rows, nb, 2)
    return raw.reshape(rows, nb * nbytes), qt


def build(src, dst):
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    infos = r.fields[KEY].contents()
    w = gguf.GGUFWriter(dst, arch)
    copy_fields(r, w, {"general.architecture", KEY})
    rng = np.random.default_rng(3407)
    for info in infos:
        name, qname, dims = info.split(":")
        data, qt = random_tensor(rng, qname, [int(d) for d in dims.split(",")])
        w.add_tensor(name, data, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("built %s: %d tensors" % (dst, len(infos)))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "gemma3n":
        gemma3n_skeleton(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] in ("skeleton", "build"):
        (skeleton if sys.argv[1] == "skeleton" else build)(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
