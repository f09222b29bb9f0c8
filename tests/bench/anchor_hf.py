#!/usr/bin/env python3
"""The anchor for `sokhan bench infer`: the same workloads through Hugging Face
transformers on the same GPU, in bf16, on a randomly initialised Gemma 3n
text model of the exact E4B/E2B shape (the configs in
tests/fixtures/model/*-config). Prints one JSON object per workload.

  python3 tests/bench/anchor_hf.py --shape e4b --batch 1 --prompt-len 32 -n 256
  python3 tests/bench/anchor_hf.py --shape e4b --prefill 2048
  python3 tests/bench/anchor_hf.py --shape e4b --batch --train 2x512 2x512:nockpt

Needs torch and transformers (the GPU machine has them); it is a benchmark
anchor, not part of `make check`."""
import argparse
import json
import os
import time

import torch
import transformers
from transformers import AutoConfig, Gemma3nForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))


def build(shape):
    cfg = AutoConfig.from_pretrained(os.path.join(HERE, "..", "fixtures", "model", f"{shape}-config"))
    text = cfg.text_config
    torch.manual_seed(3407)
    with torch.device("cuda"):
        model = Gemma3nForCausalLM(text).to(torch.bfloat16)
    model.eval()
    return model, text


def ids_vocab(text):
    # ids index the per-layer embedding too, which covers only the text
    # vocabulary (262,144 of the 262,400 rows in E4B)
    return min(text.vocab_size, getattr(text, "vocab_size_per_layer_input", text.vocab_size))


def sync_time():
    torch.cuda.synchronize()
    return time.perf_counter()


def decode(model, vocab, batch, plen, n, temp, top_p):
    g = torch.Generator(device="cuda").manual_seed(3407)
    ids = torch.randint(0, vocab, (batch, plen), device="cuda", generator=g)
    kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=temp > 0, pad_token_id=0)
    if temp > 0:
        kw.update(temperature=temp, top_p=top_p, top_k=0)
    with torch.inference_mode():
        model.generate(ids, **dict(kw, max_new_tokens=8, min_new_tokens=8))  # warm-up
        t0 = sync_time()
        model.generate(ids, **dict(kw, max_new_tokens=1, min_new_tokens=1))
        t1 = sync_time()
        out = model.generate(ids, **kw)
        t2 = sync_time()
    new = out.shape[1] - plen
    ttft = t1 - t0
    # decode rate: the steps after the first token
    dec = (t2 - t1 - ttft) if t2 - t1 > ttft else (t2 - t1)
    return {"workload": "decode", "batch": batch, "prompt_len": plen, "n": new, "ttft_ms": ttft * 1e3,
            "decode_tok_s": batch * (new - 1) / dec, "peak_device_bytes": torch.cuda.max_memory_allocated()}


def prefill(model, vocab, plen):
    ids = torch.randint(0, vocab, (1, plen), device="cuda")
    with torch.inference_mode():
        model(ids[:, :64])
        t0 = sync_time()
        for _ in range(3):
            model(ids, use_cache=False, logits_to_keep=1)
        t1 = sync_time()
    return {"workload": "prefill", "prompt_len": plen, "prefill_tok_s": 3 * plen / (t1 - t0)}


def train(model, vocab, batch, seq, ckpt, steps=3):
    """PEFT LoRA r 8, alpha 16 on q, k, v, o, gate, up, down over a bf16 base
    (bitsandbytes' 4-bit is not installed here), AdamW, random tokens."""
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    pm = get_peft_model(model, cfg)
    pm.train()
    if ckpt:
        pm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        pm.enable_input_require_grads()
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=2e-5, weight_decay=0.01)
    ids = torch.randint(0, vocab, (batch, seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    for i in range(steps + 1):
        if i == 1:
            t0 = sync_time()
        out = pm(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    t1 = sync_time()
    return {"workload": "train", "batch": batch, "seq": seq, "grad_ckpt": ckpt,
            "tokens_per_s": steps * batch * seq / (t1 - t0), "peak_device_bytes": torch.cuda.max_memory_allocated()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="e4b")
    ap.add_argument("--batch", type=int, nargs="*", default=[1])
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("-n", type=int, default=256)
    ap.add_argument("--temp", type=float, default=0.0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--prefill", type=int, nargs="*", default=[])
    ap.add_argument("--train", nargs="*", default=[], help="BATCHxSEQ[:nockpt] workloads, e.g. 2x512 2x512:nockpt")
    a = ap.parse_args()
    model, text = build(a.shape)
    head = {"anchor": "transformers", "version": transformers.__version__, "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0), "shape": a.shape, "dtype": "bf16"}
    for b in a.batch:
        print(json.dumps(dict(head, **decode(model, ids_vocab(text), b, a.prompt_len, a.n, a.temp, a.top_p))), flush=True)
    for p in a.prefill:
        print(json.dumps(dict(head, **prefill(model, ids_vocab(text), p))), flush=True)
    for w in a.train:
        shape, _, flag = w.partition(":")
        b, s = (int(v) for v in shape.split("x"))
        print(json.dumps(dict(head, **train(model, ids_vocab(text), b, s, flag != "nockpt"))), flush=True)


if __name__ == "__main__":
    main()
