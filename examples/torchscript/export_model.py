"""Step 1 of the TorchScript drop-in example: a PyTorch user's model and data.

Defines a small GRU text classifier in plain PyTorch, scripts it with torch.jit.script,
and writes it with a synthetic token-classification dataset (raw little-endian int64) for
the Node side to fine-tune.

    /usr/bin/python3 export_model.py OUTDIR [--examples N]
"""
import json
import os
import sys

import torch
import torch.nn as nn


class GruClassifier(nn.Module):
    def __init__(self, vocab: int = 200, dim: int = 32, hidden: int = 48, classes: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.rnn = nn.GRU(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        return self.fc(h[-1])


def dataset(n: int, seed: int):
    """Label 1 when a 'positive' token (10..19) occurs more often than a 'negative' one (20..29)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(30, 200, (n, 24), generator=g)
    lengths = torch.randint(8, 25, (n,), generator=g)
    marks = torch.randint(10, 30, (n, 3), generator=g)
    tokens[:, :3] = marks
    pos = ((marks >= 10) & (marks < 20)).sum(1)
    labels = (pos >= 2).long()
    for i in range(n):
        tokens[i, lengths[i]:] = 0
    return tokens, lengths, labels


def main():
    out = sys.argv[1]
    n = int(sys.argv[sys.argv.index("--examples") + 1]) if "--examples" in sys.argv else 2000
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torch.jit.script(GruClassifier())
    model.save(os.path.join(out, "model.pt"))
    meta = {}
    for split, size, seed in (("train", n, 1), ("test", n // 4, 2)):
        tokens, lengths, labels = dataset(size, seed)
        for name, t in (("tokens", tokens), ("lengths", lengths), ("labels", labels)):
            t.numpy().astype("<i8").tofile(os.path.join(out, f"{split}_{name}.bin"))
        meta[split] = {"examples": size, "length": 24}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f)
    print(f"exported model.pt and {n} + {n // 4} examples to {out}")


if __name__ == "__main__":
    main()
