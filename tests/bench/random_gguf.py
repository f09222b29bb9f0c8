#!/usr/bin/env python3
"""A GGUF of a real model's exact shape and tensor types with random weights,
for benchmarking sokhan and llama.cpp side by side on a GPU machine that
cannot hold or download the real file. Two steps:

  # where the real file is: its metadata and tensor list, no weights (a few MB)
  python3 tests/bench/random_gguf.py skeleton gemma-3-270m-q4_k_m.gguf skel.gguf
  # on the GPU machine: the same metadata and tensors, random contents
  python3 tests/bench/random_gguf.py build skel.gguf random-270m.gguf

The skeleton is a GGUF holding the real file's key-value metadata (the
tokenizer included) plus, under sokhan.bench.tensors, one "name:type:dims"
string per tensor. Random blocks get small positive scales, so every weight
is finite; speed does not depend on the values. Needs numpy and the `gguf`
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
    if len(sys.argv) != 4 or sys.argv[1] not in ("skeleton", "build"):
        sys.exit(__doc__)
    (skeleton if sys.argv[1] == "skeleton" else build)(sys.argv[2], sys.argv[3])
