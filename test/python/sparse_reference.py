"""Plain training of a TorchScript text model whose embedding has a sparse gradient
(nn.Embedding(sparse=True)): torch.optim.SparseAdam for the table, torch.optim.Adam for
every other parameter, as a PyTorch user writes it. test/sparse-embedding.test.ts
compares the engine's parameters with these.

usage: sparse_reference.py CONFIG.json OUTDIR
CONFIG: {"model": file.pt, "table": "embed.weight", "lr": ..., "betas": [b1, b2],
         "eps": ..., "clip": null | max_norm,
         "batches": [{"tokens": [[...]], "lengths": [...], "labels": [...]}, ...]}
OUTDIR gets meta.json (names, shapes, losses) and one float32 .bin per parameter.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F


def main(config_path, outdir):
    with open(config_path) as fh:
        cfg = json.load(fh)
    torch.set_num_threads(1)
    model = torch.jit.load(cfg["model"])
    model.train()
    named = dict(model.named_parameters())
    table = named[cfg["table"]]
    rest = [p for n, p in named.items() if n != cfg["table"] and p.requires_grad]
    betas = tuple(cfg.get("betas", [0.9, 0.999]))
    eps = cfg.get("eps", 1e-8)
    sparse_opt = torch.optim.SparseAdam([table], lr=cfg["lr"], betas=betas, eps=eps)
    dense_opt = torch.optim.Adam(rest, lr=cfg["lr"], betas=betas, eps=eps)
    losses = []
    for b in cfg["batches"]:
        tokens = torch.tensor(b["tokens"], dtype=torch.int64)
        lengths = torch.tensor(b["lengths"], dtype=torch.int64)
        labels = torch.tensor(b["labels"], dtype=torch.int64)
        loss = F.cross_entropy(model(tokens, lengths), labels)
        loss.backward()
        assert table.grad.is_sparse, "the table's gradient is not sparse"
        if cfg.get("clip") is not None:
            # clip_grad_norm_'s arithmetic. Not the function itself: in torch 1.13 its
            # g.detach().mul_() does not reach a sparse .grad (the sparse gradient is left
            # unscaled), so the scaling is written out.
            params = [table] + rest
            total = torch.norm(torch.stack([torch.norm(p.grad.detach(), 2.0) for p in params]), 2.0)
            coef = torch.clamp(cfg["clip"] / (total + 1e-6), max=1.0)
            for p in params:
                p.grad = p.grad * coef
        sparse_opt.step()
        dense_opt.step()
        sparse_opt.zero_grad(set_to_none=True)
        dense_opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    os.makedirs(outdir, exist_ok=True)
    params = []
    for k, (n, p) in enumerate(named.items()):
        f = "p%d.bin" % k
        with open(os.path.join(outdir, f), "wb") as fh:
            fh.write(p.detach().contiguous().numpy().astype("<f4").tobytes())
        params.append({"name": n, "shape": list(p.shape), "file": f})
    with open(os.path.join(outdir, "meta.json"), "w") as fh:
        json.dump({"params": params, "losses": losses}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
