#!/usr/bin/env python3
"""A dataset shaped like the seed report's (mshojaei77/persian-gk: 5,897
conversations, a system message and 1-4 user/assistant exchanges, about 310
tokens each with a long tail), made of the words of data/persian-sample.jsonl
in random order, for timing a whole epoch of `sokhan train` (the text means
nothing; its lengths are what a benchmark needs). Standard library only.

  python3 tests/bench/make_seed_like.py > seed-like.jsonl
  sokhan train --data seed-like.jsonl --recipe seed --out runs/epoch     # then read its tokens/s
"""
import argparse
import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5897, help="conversations")
    ap.add_argument("--words", type=float, default=170.0,
                    help="mean words a conversation (Gemma's tokenizer gives about 1.7 tokens a Persian word of this text, plus the template's tokens: about 310)")
    ap.add_argument("--seed", type=int, default=3407)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    words = []
    with open(os.path.join(HERE, "..", "..", "data", "persian-sample.jsonl"), encoding="utf-8") as f:
        for line in f:
            for m in json.loads(line)["messages"]:
                words.extend(m["content"].split())
    sigma = 0.55  # a long tail, as conversations' lengths have
    mu = math.log(a.words) - sigma * sigma / 2
    for _ in range(a.n):
        total = max(12, int(rng.lognormvariate(mu, sigma)))
        turns = rng.randint(1, 4)
        msgs = [{"role": "system", "content": " ".join(rng.choices(words, k=max(4, total // 12)))}]
        left = total - len(msgs[0]["content"].split())
        for t in range(turns):
            q = max(3, left // (4 * (turns - t)))
            r = max(3, left // (turns - t) - q)
            msgs.append({"role": "user", "content": " ".join(rng.choices(words, k=q))})
            msgs.append({"role": "assistant", "content": " ".join(rng.choices(words, k=r))})
            left -= q + r
        print(json.dumps({"messages": msgs}, ensure_ascii=False))


if __name__ == "__main__":
    main()
