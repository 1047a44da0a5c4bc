#!/usr/bin/env python3
"""PyTorch reference of DropAttack training, for `npm run bench` (bench/run.ts).

Run with Debian's Python (torch 1.13, the same LibTorch build as the addon):

    /usr/bin/python3 bench/python/train.py --config a --method da1 --impl careful \
        --threads 2 --warmup 2 --steps 8 --json out.json

Two implementations of the same algorithm (docs/methods.md, `dropattack`):

- notebook: as the original notebooks do it (../shared/SEED.md): a numpy mask of the
  weight's size drawn on the host and copied in, graphs retained through every pass, the
  gradients reset to the clean copy between attacked layers, and one more backward of
  the summed loss (L0 + the adversarial losses) for the update;
- careful: on-device `bernoulli_` masks, one backward per pass, gradients accumulated in
  place (the update is the plain accumulated gradient, as docs/methods.md defines it);
- careful-sparse: careful with a sparse embedding gradient (`nn.Embedding(sparse=True)`)
  and `torch.optim.SparseAdam` for the embedding table (Adam for the rest): the row-wise
  (lazy) update PyTorch offers for large tables. The attack reads the embedding's
  direction densified (`to_dense()`), as a dense perturbation needs it.

One process runs one (configuration, method, implementation); it reports per-step times
(median of the measured steps, after warm-up), per-phase times measured the same way as
the project's `times` (forward, backward, perturb, optimizer), the process's CPU time,
system time and minor page faults per step (getrusage), the machine's load at each step,
and VmHWM.

--device cuda runs it on a GPU (scripts/gpu-check.sh does): each step's time then ends
with torch.cuda.synchronize(), while the phase times are host-side times of asynchronous
launches.
"""
import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CONFIGS, METHODS, make_batches  # noqa: E402


class TextRNN(nn.Module):
    """Same as Module.build({kind: 'textrnn', cell: 'lstm'}): embed, rnn, fc."""

    def __init__(self, vocab, embed, hidden, classes=2, sparse=False):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=0, sparse=sparse)
        self.rnn = nn.LSTM(embed, hidden, num_layers=1, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, tokens, lengths):
        emb = self.embed(tokens)
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        _, (hn, _) = self.rnn(packed)
        return self.fc(hn[-1])


class TextCNN(nn.Module):
    """Same as Module.build({kind: 'textcnn'}): embed, convs.N (Conv1d), max-pool, fc."""

    def __init__(self, vocab, embed, filters, kernels, classes=2, sparse=False):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=0, sparse=sparse)
        self.convs = nn.ModuleList([nn.Conv1d(embed, filters, k) for k in kernels])
        self.fc = nn.Linear(filters * len(kernels), classes)

    def forward(self, tokens, lengths):
        x = self.embed(tokens).transpose(1, 2)
        feats = [torch.amax(torch.relu(c(x)), 2) for c in self.convs]
        return self.fc(torch.cat(feats, 1))


def build(cfg, sparse=False):
    if cfg["model"]["kind"] == "textrnn":
        m = cfg["model"]
        return TextRNN(m["vocabSize"], m["embedDim"], m["hiddenSize"], sparse=sparse)
    m = cfg["model"]
    return TextCNN(m["vocabSize"], m["embedDim"], m["numFilters"], m["kernelSizes"], sparse=sparse)


class Optimizers:
    """SparseAdam for the sparse embedding table and Adam for the rest, as one optimizer."""

    def __init__(self, *opts):
        self.opts = opts

    def zero_grad(self, set_to_none=False):
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self):
        for o in self.opts:
            o.step()


def dense(g):
    return g.to_dense() if g.is_sparse else g


def machine_load():
    """The 1-minute load average and the tasks runnable now (procs_running), as bench/data.ts."""
    running = float("nan")
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("procs_running"):
                    running = int(line.split()[1])
    except OSError:
        pass
    return {"load1": os.getloadavg()[0], "running": running}


def vmhwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


class Timer:
    def __init__(self):
        self.t = {"forward": 0.0, "backward": 0.0, "perturb": 0.0, "optimizer": 0.0, "extraBackward": 0.0}

    def add(self, key, t0):
        self.t[key] += time.perf_counter() - t0


def step_plain(model, opt, x, lengths, y, tm, **_):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=False)
    tm.add("optimizer", t0)
    t0 = time.perf_counter()
    loss = F.cross_entropy(model(x, lengths), y)
    tm.add("forward", t0)
    t0 = time.perf_counter()
    loss.backward()
    tm.add("backward", t0)
    t0 = time.perf_counter()
    opt.step()
    tm.add("optimizer", t0)
    return float(loss.item())


def step_careful(model, opt, x, lengths, y, tm, groups, k, **_):
    """docs/methods.md `dropattack`, written carefully in PyTorch."""
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=False)
    tm.add("optimizer", t0)
    t0 = time.perf_counter()
    loss = F.cross_entropy(model(x, lengths), y)
    tm.add("forward", t0)
    t0 = time.perf_counter()
    loss.backward()
    tm.add("backward", t0)
    t0 = time.perf_counter()
    clean = [[dense(w.grad).clone() for w, _, _ in g] for g in groups]
    tm.add("perturb", t0)
    for gi, g in enumerate(groups):
        t0 = time.perf_counter()
        with torch.no_grad():
            masks = [torch.empty_like(w).bernoulli_(p) for w, _, p in g]
            backups = [w.detach().clone() for w, _, _ in g]
            before = [dense(w.grad).clone() for w, _, _ in g] if k > 1 else None
        tm.add("perturb", t0)
        for t in range(k):
            t0 = time.perf_counter()
            with torch.no_grad():
                for j, (w, eps, _) in enumerate(g):
                    d = clean[gi][j] if t == 0 else clean[gi][j] + (dense(w.grad) - before[j])
                    n = float(d.norm())
                    if n > 0 and np.isfinite(n):
                        w.add_(d * masks[j], alpha=eps / n)
            tm.add("perturb", t0)
            t0 = time.perf_counter()
            adv = F.cross_entropy(model(x, lengths), y) / k
            tm.add("forward", t0)
            t0 = time.perf_counter()
            adv.backward()
            tm.add("backward", t0)
        t0 = time.perf_counter()
        with torch.no_grad():
            for (w, _, _), b in zip(g, backups):
                w.copy_(b)
        del masks, backups, before
        tm.add("perturb", t0)
    t0 = time.perf_counter()
    opt.step()
    tm.add("optimizer", t0)
    return float(loss.item())


def step_notebook(model, opt, x, lengths, y, tm, groups, k, rng):
    """As the notebooks do it (SEED.md): host numpy masks, retained graphs, a final backward."""
    t0 = time.perf_counter()
    opt.zero_grad()
    tm.add("optimizer", t0)
    t0 = time.perf_counter()
    loss = F.cross_entropy(model(x, lengths), y)
    tm.add("forward", t0)
    t0 = time.perf_counter()
    loss.backward(retain_graph=True)
    tm.add("backward", t0)
    t0 = time.perf_counter()
    params = [q for q in model.parameters() if q.requires_grad]
    grad_backup = [q.grad.clone() for q in params]
    tm.add("perturb", t0)
    adv_losses = []
    for g in groups:
        for t in range(k):
            t0 = time.perf_counter()
            for j, (w, eps, p) in enumerate(g):
                if t == 0:
                    w._bench_backup = w.data.clone()
                    mask = rng.binomial(1, p, size=tuple(w.shape))
                    w._bench_mask = torch.from_numpy(mask).to(w.device).to(w.dtype)
                n = torch.norm(w.grad)
                if n != 0 and not torch.isnan(n):
                    w.data.add_(eps * w._bench_mask * w.grad / n)
            tm.add("perturb", t0)
            t0 = time.perf_counter()
            adv = F.cross_entropy(model(x, lengths), y) / k
            tm.add("forward", t0)
            t0 = time.perf_counter()
            adv.backward(retain_graph=True)
            tm.add("backward", t0)
            adv_losses.append(adv)
        t0 = time.perf_counter()
        for w, _, _ in g:
            w.data = w._bench_backup
            del w._bench_backup, w._bench_mask
        for q, b in zip(params, grad_backup):
            q.grad = b.clone()
        tm.add("perturb", t0)
    t0 = time.perf_counter()
    total = loss + sum(adv_losses)
    opt.zero_grad()
    tm.add("optimizer", t0)
    t0 = time.perf_counter()
    total.backward()
    tm.add("extraBackward", t0)
    t0 = time.perf_counter()
    opt.step()
    tm.add("optimizer", t0)
    return float(loss.item())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, choices=sorted(CONFIGS))
    ap.add_argument("--method", required=True, choices=sorted(METHODS))
    ap.add_argument("--impl", required=True, choices=["careful", "careful-sparse", "notebook"])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda; lengths stay on the CPU, as pack_padded_sequence wants")
    ap.add_argument("--json")
    a = ap.parse_args()
    cfg = CONFIGS[a.config]
    warmup = cfg["warmup"] if a.warmup is None else a.warmup
    steps = cfg["steps"] if a.steps is None else a.steps
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch.cuda.is_available() is false")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.RandomState(a.seed)
    sparse = a.impl == "careful-sparse"
    model = build(cfg, sparse=sparse).to(device)
    model.train()
    named = dict(model.named_parameters())
    if sparse:
        rest = [p for n, p in named.items() if n != "embed.weight"]
        opt = Optimizers(torch.optim.SparseAdam([named["embed.weight"]], lr=1e-3), torch.optim.Adam(rest, lr=1e-3))
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    method = METHODS[a.method]
    k = method.get("k", 1)
    groups = [[(named[t], g["epsilon"], g["p"])] for g in cfg["groups"] for t in [g["target"]]] if method["attack"] else []
    batches = [(torch.from_numpy(x).to(device), torch.from_numpy(l), torch.from_numpy(y).to(device))
               for x, l, y in make_batches(cfg, a.seed)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn = step_plain if not method["attack"] else (step_notebook if a.impl == "notebook" else step_careful)
    step_times, phases, usage, load = [], [], [], []
    for s in range(warmup + steps):
        x, lengths, y = batches[s % len(batches)]
        tm = Timer()
        sync()
        u0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        fn(model, opt, x, lengths, y, tm, groups=groups, k=k, rng=rng)
        sync()
        dt = time.perf_counter() - t0
        u1 = resource.getrusage(resource.RUSAGE_SELF)
        if s >= warmup:
            step_times.append(dt)
            phases.append(tm.t)
            usage.append({
                "cpuSeconds": u1.ru_utime - u0.ru_utime + u1.ru_stime - u0.ru_stime,
                "systemSeconds": u1.ru_stime - u0.ru_stime,
                "minorFaults": u1.ru_minflt - u0.ru_minflt,
            })
            load.append(machine_load())
    out = {
        "side": "python-" + a.impl,
        "config": a.config,
        "method": a.method,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "warmup": warmup,
        "stepSeconds": step_times,
        "phases": phases,
        "usage": usage,
        "load": load,
        "cores": os.cpu_count(),
        "peakRssBytes": vmhwm_bytes(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    text = json.dumps(out, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
