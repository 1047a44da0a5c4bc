"""Step 3 of the token-classification example: back in Python.

Loads the model Node fine-tuned, compares its held-out logits with Node's (<= 1e-5) and
reports the token accuracy (non-padding tokens) before and after fine-tuning.

    /usr/bin/python3 check.py OUTDIR
"""
import json
import os
import sys

import numpy as np
import torch


def main():
    out = sys.argv[1]
    meta = json.load(open(os.path.join(out, "meta.json")))
    n, length = meta["test"]["examples"], meta["test"]["length"]
    load = lambda name: torch.from_numpy(np.fromfile(os.path.join(out, f"test_{name}.bin"), dtype="<i8")).reshape(n, length)
    ids, mask, tags = load("ids"), load("mask"), load("tags")
    accuracy = {}
    for name in ("model.pt", "finetuned.pt"):
        m = torch.jit.load(os.path.join(out, name))
        m.eval()
        with torch.no_grad():
            logits = m(ids, mask)
        keep = tags != -100
        accuracy[name] = (logits.argmax(2)[keep] == tags[keep]).float().mean().item()
        if name == "finetuned.pt":
            node = torch.from_numpy(np.fromfile(os.path.join(out, "node_logits.bin"), dtype="<f4")).reshape(logits.shape)
            diff = (logits - node).abs().max().item()
            print(f"max |python - node| over the held-out logits: {diff:.2e}")
            if diff > 1e-5:
                print("FAIL: Python and Node disagree")
                sys.exit(1)
    print(f"held-out token accuracy: exported {100 * accuracy['model.pt']:.2f}%, fine-tuned in Node {100 * accuracy['finetuned.pt']:.2f}%")
    if accuracy["finetuned.pt"] <= accuracy["model.pt"] + 0.1:
        print("FAIL: fine-tuning did not help")
        sys.exit(1)


if __name__ == "__main__":
    main()
