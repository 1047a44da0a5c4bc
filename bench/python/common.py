"""Shared by bench/python/train.py: the configurations (bench/configs.json) and the
synthetic batches, drawn with the same 32-bit LCG as bench/data.ts so both sides train on
identical token ids, lengths and labels."""
import json
import os

import numpy as np

_SPEC = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs.json")))
CONFIGS = _SPEC["configs"]
METHODS = _SPEC["methods"]


class Lcg:
    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def next(self):
        self.s = (1664525 * self.s + 1013904223) & 0xFFFFFFFF
        return self.s


def make_batches(cfg, seed):
    """[(tokens int64 [B, T], lengths int64 [B], labels int64 [B])] * cfg['batches']."""
    r = Lcg(seed)
    B, T, V = cfg["batch"], cfg["length"], cfg["model"]["vocabSize"]
    lo = T // 4
    out = []
    for _ in range(cfg["batches"]):
        tokens = np.zeros((B, T), dtype=np.int64)
        lengths = np.zeros(B, dtype=np.int64)
        labels = np.zeros(B, dtype=np.int64)
        for i in range(B):
            n = lo + r.next() % (T - lo + 1)
            lengths[i] = n
            tokens[i, :n] = [1 + r.next() % (V - 1) for _ in range(n)]
            labels[i] = r.next() % 2
        out.append((tokens, lengths, labels))
    return out
