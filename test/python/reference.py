#!/usr/bin/env python3
"""Python reference of one training step per adversarial method, and fixture generation.

Implements docs/methods.md (none, dropattack, fgm, pgd, freelb, awp, sam, asam) in plain
PyTorch, with the perturbation computed the way the native op computes it
(docs/dropattack.md): the squared norm summed in double over blocks of 16384 elements in 8
interleaved lanes, scale = r / norm in double, rounded once to float32, then
w + scale * d in float32 (product rounded, then sum rounded), selected by the Philox mask
of python/dropattack_mask.py.

Run with Debian's Python (torch 1.13, the same LibTorch build as the addon):

    /usr/bin/python3 test/python/reference.py CONFIG_JSON OUTDIR
    /usr/bin/python3 test/python/reference.py --self-test

See test/python/README.md for the config and the files written.
"""
import io
import json
import math
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "..", "python"))
from dropattack_mask import drop_mask, threshold  # noqa: E402

NORM_BLOCK = 16384  # kNormBlock in native/ops/perturb_common.h
NORM_LANES = 8      # kNormLanes
METHODS = ("none", "dropattack", "fgm", "pgd", "freelb", "awp", "sam", "asam")


# --------------------------------------------------------------------------------------
# Fixture models (exact parameter names are part of the contract)
# --------------------------------------------------------------------------------------

class Mlp(nn.Module):
    """x float32 [B, 6] -> fc1 -> relu -> fc2 -> relu -> out (3 classes)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class EmbedNet(nn.Module):
    """x int64 tokens [B, 12] in [0, 50) -> embed -> mean over tokens -> fc1 -> tanh -> out."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.fc1 = nn.Linear(8, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.fc1(self.embed(x).mean(dim=1))))


def make_fixture(kind, seed, steps, batch):
    """The model (initialized under torch.manual_seed(seed)) and the batches, drawn after it."""
    torch.manual_seed(seed)
    if kind == "mlp":
        model = Mlp()
        data = []
        for _ in range(steps):
            x = torch.randn(batch, 6)
            y = torch.randint(0, 3, (batch,), dtype=torch.int64)
            data.append((x, y))
    elif kind == "embed":
        model = EmbedNet()
        data = []
        for _ in range(steps):
            # Ids 30..49 never occur: those embedding rows always get a zero gradient.
            x = torch.randint(0, 30, (batch, 12), dtype=torch.int64)
            y = torch.randint(0, 3, (batch,), dtype=torch.int64)
            data.append((x, y))
    else:
        raise ValueError(f"unknown model '{kind}' (mlp or embed)")
    model.train()
    return model, data


# --------------------------------------------------------------------------------------
# The perturbation op, as native/ops computes it
# --------------------------------------------------------------------------------------

def native_sumsq(t):
    """Squared L2 norm exactly as the native op sums it (double, blocks, lanes, fixed tree)."""
    a = t.detach().contiguous().reshape(-1).to(torch.float64).numpy()
    total = 0.0
    for b0 in range(0, a.size, NORM_BLOCK):
        sq = a[b0:b0 + NORM_BLOCK]
        sq = sq * sq
        pad = (-sq.size) % NORM_LANES
        if pad:
            sq = np.concatenate([sq, np.zeros(pad)])
        # add.accumulate is strictly sequential: lane j = elements j, j+8, ... in order.
        lanes = np.add.accumulate(sq.reshape(-1, NORM_LANES), axis=0)[-1]
        l0, l1, l2, l3, l4, l5, l6, l7 = (float(v) for v in lanes)
        total += ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
    return total


def native_norm(t):
    return math.sqrt(native_sumsq(t))


def f32(v):
    """A Python float rounded to float32, as a 0-dim float32 tensor."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.tensor(np.float32(v), dtype=torch.float32)


def perturb(w, d, r, p, seed, counter):
    """perturb(w, d, r, p, c) of docs/methods.md, in place on w.

    Returns (backup, skipped): backup is an exact clone of w before the move, or None when
    nothing changed (skipped, r == 0 or p == 0: the native op keeps no backup then)."""
    if not (math.isfinite(r) and r >= 0.0):
        raise ValueError(f"perturb: radius must be finite and >= 0, got {r}")
    with torch.no_grad():
        sumsq = native_sumsq(d)
        if not (sumsq > 0.0) or not math.isfinite(sumsq):
            return None, True
        scale = r / math.sqrt(sumsq)
        t = threshold(p)
        if r == 0.0 or t == 0:
            return None, False
        backup = w.detach().clone()
        moved = w + f32(scale) * d  # float32 product, then float32 sum (no FMA)
        if t >= 1 << 32:
            w.copy_(moved)
        else:
            mask = torch.from_numpy(drop_mask(w.numel(), p, seed, counter).reshape(tuple(w.shape)))
            w.copy_(torch.where(mask, moved, w))
        return backup, False


def project(v, r):
    """Pi_r(v) = v * min(1, r / ||v||), in float32 (factor rounded once to float32)."""
    n = native_norm(v)
    if n > r:
        return v * f32(r / n)
    return v


def counter_of(step, group, j):
    return step * 2 ** 16 + group * 2 ** 8 + j


# --------------------------------------------------------------------------------------
# One training step
# --------------------------------------------------------------------------------------

class NonFinite(Exception):
    pass


class Group:
    def __init__(self, index, cfg, names, method):
        self.index = index
        self.epsilon = float(cfg.get("epsilon", 0.0))
        self.p = float(cfg.get("p", 1.0))
        self.relative = bool(cfg.get("relative", False))
        listed = cfg.get("targets")
        if not isinstance(listed, list) or not listed:
            raise ValueError(f"group {index}: 'targets' must be a non-empty list")
        for t in listed:
            if t != "input" and t not in names:
                raise ValueError(f"group {index}: unknown target '{t}' (parameters: {', '.join(names)}, or 'input')")
        if len(set(listed)) != len(listed):
            raise ValueError(f"group {index}: a target is listed twice")
        # docs/methods.md: targets in the order their parameters appear in the model; the input
        # (which comes before every parameter in the forward pass) first. j indexes this order.
        self.targets = (["input"] if "input" in listed else []) + [n for n in names if n in listed]
        if method in ("dropattack", "fgm", "pgd", "freelb", "awp"):
            if not (math.isfinite(self.epsilon) and self.epsilon >= 0):
                raise ValueError(f"group {index}: epsilon must be finite and >= 0")
        if not (0.0 <= self.p <= 1.0):
            raise ValueError(f"group {index}: p must be in [0, 1]")


class StepRunner:
    """State of one step: the batch, the perturbations in force, the reported numbers."""

    def __init__(self, model, params, x, y, step, attack, groups):
        self.model = model
        self.params = params  # OrderedDict name -> Parameter
        self.y = y
        self.step = step
        self.attack = attack
        self.groups = groups
        self.seed = int(attack.get("seed", 0))
        self.float_input = x.is_floating_point()
        if any("input" in g.targets for g in groups):
            if not self.float_input:
                raise ValueError("an attack targets 'input', but the model's input is not a float tensor")
            self.x = x.detach().clone().requires_grad_(True)
            self.x.grad = torch.zeros_like(self.x)
        else:
            self.x = x
        self.active = []  # (tensor, backup) in order of application
        self.clean = None
        self.group_losses = [None] * len(groups)
        self.skipped = [0] * len(groups)

    # tensors and gradients -----------------------------------------------------------
    def tensor(self, name):
        return self.x if name == "input" else self.params[name]

    def grad(self, name):
        return self.tensor(name).grad

    def zero_grads(self):
        for p in self.params.values():
            p.grad = torch.zeros_like(p)
        if self.x.requires_grad:
            self.x.grad = torch.zeros_like(self.x)

    def loss(self):
        loss = F.cross_entropy(self.model(self.x), self.y)
        v = float(loss.item())
        if not math.isfinite(v):
            raise NonFinite(v)
        return loss, v

    def radius(self, group, name):
        if group.relative:
            return group.epsilon * native_norm(self.tensor(name))
        return group.epsilon

    def apply(self, w, d, r, p, counter):
        backup, skipped = perturb(w, d, r, p, self.seed, counter)
        if backup is not None:
            self.active.append((w, backup))
        return skipped

    def restore_from(self, start=0):
        with torch.no_grad():
            while len(self.active) > start:
                w, backup = self.active.pop()
                w.copy_(backup)

    def clean_pass(self):
        loss, v = self.loss()
        self.clean = v
        loss.backward()
        return {n: self.grad(n).clone() for g in self.groups for n in g.targets}

    # methods ---------------------------------------------------------------------------
    def none(self):
        loss, self.clean = self.loss()
        loss.backward()

    def dropattack(self, force_p=None, force_k=None):
        k = int(force_k if force_k is not None else self.attack.get("k", 1))
        if k < 1:
            raise ValueError("k must be >= 1")
        clean = self.clean_pass()
        for gi, g in enumerate(self.groups):
            p = g.p if force_p is None else force_p
            radius = {n: self.radius(g, n) for n in g.targets}
            d = {n: clean[n].clone() for n in g.targets}
            start = len(self.active)
            total = 0.0
            for _ in range(k):
                for j, n in enumerate(g.targets):
                    if self.apply(self.tensor(n), d[n], radius[n], p, counter_of(self.step, gi, j)):
                        self.skipped[gi] += 1
                before = {n: self.grad(n).clone() for n in g.targets}
                loss, _ = self.loss()
                scaled = loss / k
                total += float(scaled.item())
                scaled.backward()
                for n in g.targets:
                    d[n] = d[n] + (self.grad(n) - before[n])
            self.restore_from(start)
            self.group_losses[gi] = total

    def fgm(self):
        self.dropattack(force_p=1.0, force_k=1)

    def pgd(self):
        k = int(self.attack.get("k", 1))
        alpha = float(self.attack["alpha"])
        if k < 1:
            raise ValueError("k must be >= 1")
        clean = self.clean_pass()
        for gi, g in enumerate(self.groups):
            radius = {n: self.radius(g, n) for n in g.targets}
            w0 = {}
            start = len(self.active)
            for n in g.targets:
                w0[n] = self.tensor(n).detach().clone()
                self.active.append((self.tensor(n), w0[n]))
            gt = {n: clean[n].clone() for n in g.targets}
            for t in range(1, k + 1):
                with torch.no_grad():
                    for n in g.targets:
                        sumsq = native_sumsq(gt[n])
                        if not (sumsq > 0.0) or not math.isfinite(sumsq):
                            self.skipped[gi] += 1
                            continue
                        w = self.tensor(n)
                        delta = (w - w0[n]) + f32(alpha / math.sqrt(sumsq)) * gt[n]
                        w.copy_(w0[n] + project(delta, radius[n]))
                loss, v = self.loss()
                if t < k:
                    grads = torch.autograd.grad(loss, [self.tensor(n) for n in g.targets])
                    gt = dict(zip(g.targets, grads))
                else:
                    loss.backward()
                    self.group_losses[gi] = v
            self.restore_from(start)

    def all_targets(self):
        out = [(gi, j, n) for gi, g in enumerate(self.groups) for j, n in enumerate(g.targets)]
        names = [n for _, _, n in out]
        if len(set(names)) != len(names):
            raise ValueError("this method attacks all groups at once: a target may be in one group only")
        return out

    def freelb(self):
        k = int(self.attack.get("k", 1))
        alpha = float(self.attack["alpha"])
        if k < 1:
            raise ValueError("k must be >= 1")
        targets = self.all_targets()
        radius = {n: self.radius(self.groups[gi], n) for gi, _, n in targets}
        w0, delta = {}, {}
        for _, _, n in targets:
            w0[n] = self.tensor(n).detach().clone()
            delta[n] = torch.zeros_like(w0[n])
            self.active.append((self.tensor(n), w0[n]))
        total = 0.0
        for t in range(1, k + 1):
            with torch.no_grad():
                for _, _, n in targets:
                    self.tensor(n).copy_(w0[n] + delta[n])
            before = {n: self.grad(n).clone() for _, _, n in targets}
            loss, v = self.loss()
            if t == 1:
                self.clean = v
            scaled = loss / k
            total += float(scaled.item())
            scaled.backward()
            if t == k:
                break  # the delta update after the last pass is never applied (nor counted)
            with torch.no_grad():
                for gi, _, n in targets:
                    gw = self.grad(n) - before[n]
                    sumsq = native_sumsq(gw)
                    if not (sumsq > 0.0) or not math.isfinite(sumsq):
                        self.skipped[gi] += 1
                        continue
                    delta[n] = project(delta[n] + f32(alpha / math.sqrt(sumsq)) * gw, radius[n])
        self.restore_from(0)
        self.group_losses = [total] * len(self.groups)

    def adversarial_pass(self):
        self.zero_grads()
        loss, v = self.loss()
        loss.backward()
        self.restore_from(0)
        self.group_losses = [v] * len(self.groups)

    def awp(self):
        targets = self.all_targets()
        clean = self.clean_pass()
        radius = {n: self.groups[gi].epsilon * native_norm(self.tensor(n)) for gi, _, n in targets}
        for gi, j, n in targets:
            if self.apply(self.tensor(n), clean[n], radius[n], 1.0, counter_of(self.step, gi, j)):
                self.skipped[gi] += 1
        self.adversarial_pass()

    def sam(self, adaptive=False):
        rho = float(self.attack["rho"])
        eta = float(self.attack.get("eta", 0.01))
        if not (math.isfinite(rho) and rho >= 0):
            raise ValueError("rho must be finite and >= 0")
        targets = self.all_targets()
        clean = self.clean_pass()
        d, joint_sq = {}, 0.0
        with torch.no_grad():
            for _, _, n in targets:
                g = clean[n]
                if adaptive:
                    tw = self.tensor(n).detach().abs() + eta
                    d[n] = (tw * tw) * g
                    joint_sq += native_sumsq(tw * g)
                else:
                    d[n] = g
                    joint_sq += native_sumsq(g)
        if not (joint_sq > 0.0) or not math.isfinite(joint_sq):
            for gi, _, _ in targets:
                self.skipped[gi] += 1
        else:
            joint = math.sqrt(joint_sq)
            for gi, j, n in targets:
                r = rho * native_norm(d[n]) / joint
                if not math.isfinite(r):
                    self.skipped[gi] += 1
                    continue
                if self.apply(self.tensor(n), d[n], r, 1.0, counter_of(self.step, gi, j)):
                    self.skipped[gi] += 1
        self.adversarial_pass()

    def asam(self):
        self.sam(adaptive=True)


# --------------------------------------------------------------------------------------
# Training run
# --------------------------------------------------------------------------------------

def make_optimizer(params, cfg):
    kind = cfg.get("type", "sgd")
    lr = float(cfg.get("lr", 0.1 if kind == "sgd" else 0.001))
    wd = float(cfg.get("weight_decay", 0.0 if kind != "adamw" else 0.01))
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg.get("momentum", 0.0)),
                               dampening=float(cfg.get("dampening", 0.0)), weight_decay=wd,
                               nesterov=bool(cfg.get("nesterov", False)), foreach=False)
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        betas = tuple(float(b) for b in cfg.get("betas", [0.9, 0.999]))
        return cls(params, lr=lr, betas=betas, eps=float(cfg.get("eps", 1e-8)), weight_decay=wd,
                   amsgrad=bool(cfg.get("amsgrad", False)), foreach=False)
    raise ValueError(f"unknown optimizer type '{kind}' (sgd, adam, adamw)")


def resolve_groups(attack, method, names):
    raw = attack.get("groups") or []
    if method in ("sam", "asam") and not raw:
        # docs/methods.md: the targets default to every parameter (one implicit group).
        raw = [{"targets": list(names)}]
    if method == "none":
        raw = []
    return [Group(i, g, names, method) for i, g in enumerate(raw)]


def clone_params(model):
    return [(n, p.detach().clone()) for n, p in model.named_parameters()]


def run(config, dump_steps=False):
    """Runs the config in memory. Returns a dict with the model, initial and final params,
    the batches and the per-step records."""
    torch.set_num_threads(1)
    attack = dict(config.get("attack") or {"method": "none"})
    method = attack.get("method", "none")
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}' ({', '.join(METHODS)})")
    steps = int(config.get("steps", 3))
    model, data = make_fixture(config.get("model", "mlp"), int(config.get("seed", 0)), steps,
                               int(config.get("batch", 8)))
    params = dict(model.named_parameters())
    names = list(params)
    groups = resolve_groups(attack, method, names)
    # Serialized now: the scripted module shares its parameters with `model`.
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buf)
    initial = clone_params(model)
    opt = make_optimizer(list(params.values()), config.get("optimizer") or {"type": "sgd"})
    clip = config.get("clip_grad_norm")
    records, per_step = [], []
    global_step = 0
    for s, (x, y) in enumerate(data):
        for p in params.values():
            p.grad = torch.zeros_like(p)
        runner = StepRunner(model, params, x, y, global_step, attack, groups)
        record = {"step": s, "clean": None, "groups": [], "skipped": [], "applied": True, "reason": None}
        try:
            getattr(runner, method)()
        except NonFinite:
            runner.restore_from(0)
            runner.zero_grads()
            record["applied"] = False
            record["reason"] = "non-finite clean loss" if runner.clean is None else "non-finite adversarial loss"
        record["clean"] = runner.clean
        record["groups"] = list(runner.group_losses)
        record["skipped"] = list(runner.skipped)
        if record["applied"]:
            if clip is not None:
                total = torch.nn.utils.clip_grad_norm_(list(params.values()), float(clip))
                record["grad_norm"] = float(total)
            opt.step()
            global_step += 1
        for p in params.values():
            p.grad = torch.zeros_like(p)
        records.append(record)
        if dump_steps:
            per_step.append(clone_params(model))
    return {"model": model, "model_pt": buf.getvalue(), "initial": initial, "final": clone_params(model),
            "data": data, "records": records, "per_step": per_step, "method": method}


def _json_float(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _write_bin(path, t):
    arr = t.detach().contiguous().numpy()
    dt = "<f4" if arr.dtype == np.float32 else "<i8"
    if arr.dtype not in (np.float32, np.int64):
        raise TypeError(f"unexpected dtype {arr.dtype}")
    arr.astype(dt, copy=False).tofile(path)


def write_outputs(result, outdir):
    os.makedirs(os.path.join(outdir, "params"), exist_ok=True)
    os.makedirs(os.path.join(outdir, "init"), exist_ok=True)
    with open(os.path.join(outdir, "model.pt"), "wb") as fh:
        fh.write(result["model_pt"])
    inputs = []
    for s, (x, y) in enumerate(result["data"]):
        entry = {"step": s}
        for key, t in (("x", x), ("y", y)):
            f = f"step{s}_{key}.bin"
            _write_bin(os.path.join(outdir, f), t)
            entry[key] = {"file": f, "dtype": "float32" if t.dtype == torch.float32 else "int64",
                          "shape": list(t.shape)}
        inputs.append(entry)

    def dump(plist, folder):
        os.makedirs(os.path.join(outdir, folder), exist_ok=True)
        out = []
        for n, t in plist:
            f = f"{folder}/{n}.bin"
            _write_bin(os.path.join(outdir, f), t)
            out.append({"name": n, "shape": list(t.shape), "file": f})
        return out

    meta = {
        "method": result["method"],
        "inputs": inputs,
        "params": dump(result["final"], "params"),
        "initial_params": dump(result["initial"], "init"),
        "losses": [dict(r, clean=_json_float(r["clean"]), groups=[_json_float(g) for g in r["groups"]])
                   for r in result["records"]],
    }
    if result["per_step"]:
        meta["step_params"] = [dump(p, f"step{s}_params") for s, p in enumerate(result["per_step"])]
    with open(os.path.join(outdir, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1, allow_nan=False)
    return meta


# --------------------------------------------------------------------------------------
# Self test
# --------------------------------------------------------------------------------------

def _bits_equal(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(
        a.contiguous().view(torch.int32 if a.dtype == torch.float32 else a.dtype),
        b.contiguous().view(torch.int32 if b.dtype == torch.float32 else b.dtype))


def _params_equal(r1, r2):
    return all(n1 == n2 and _bits_equal(t1, t2) for (n1, t1), (n2, t2) in zip(r1["final"], r2["final"]))


def _params_close(r1, r2, tol):
    return max(float((t1 - t2).abs().max()) for (_, t1), (_, t2) in zip(r1["final"], r2["final"])) <= tol


def _cfg(model="mlp", method="none", opt=None, steps=3, **attack):
    groups = attack.pop("groups", None)
    if groups is None:
        groups = ([{"targets": ["fc1.weight", "input"], "epsilon": 0.5, "p": 0.5},
                   {"targets": ["fc2.weight", "fc2.bias"], "epsilon": 0.2, "p": 0.7, "relative": True}]
                  if model == "mlp" else
                  [{"targets": ["embed.weight"], "epsilon": 0.5, "p": 0.5},
                   {"targets": ["out.weight", "fc1.weight"], "epsilon": 0.1, "p": 0.6, "relative": True}])
    a = {"method": method, "k": 2, "seed": 7, "alpha": 0.1, "rho": 0.05, "eta": 0.01, "groups": groups}
    a.update(attack)
    return {"model": model, "seed": 3, "steps": steps, "batch": 8,
            "optimizer": opt or {"type": "sgd", "lr": 0.1, "momentum": 0.9}, "clip_grad_norm": None,
            "attack": a}


def self_test():
    results = []

    def check(name, fn):
        try:
            ok, info = fn()
        except Exception as e:  # a crash is a failure
            ok, info = False, f"{type(e).__name__}: {e}"
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok and not info else ' -- ' + str(info)}")

    def mask_p1():
        for n, c in ((1, 0), (7, 3), (1001, 2 ** 16 + 5), (4099, 2 ** 40)):
            if not drop_mask(n, 1.0, 7, c).all() or drop_mask(n, 0.0, 7, c).any():
                return False, f"numel {n} counter {c}"
        m = drop_mask(100000, 0.5, 7, 1)
        return abs(m.mean() - 0.5) < 0.01, f"p=0.5 keep rate {m.mean():.4f}"
    check("mask: p=1 all ones, p=0 all zeros, p=0.5 about half", mask_p1)

    def norm_matches_c_loop():
        g = torch.Generator().manual_seed(1)
        t = torch.randn(40003, generator=g) * 3
        a = t.double().numpy()
        total = 0.0
        for b0 in range(0, a.size, NORM_BLOCK):
            lanes = [0.0] * 8
            for i in range(b0, min(a.size, b0 + NORM_BLOCK)):
                v = float(a[i])
                lanes[i % 8] += v * v
            total += ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
        ref = float((t.double() ** 2).sum())
        return native_sumsq(t) == total and abs(total - ref) <= 1e-12 * ref, f"{native_sumsq(t)!r} vs {total!r}"
    check("norm: blocks/lanes sum equals a literal transcription of the C loop", norm_matches_c_loop)

    def round_trip():
        g = torch.Generator().manual_seed(2)
        for p in (0.5, 1.0, 0.01):
            w = torch.randn(33, 17, generator=g)
            w[0, 0] = -0.0
            w[0, 1] = 1e-40  # denormal
            orig = w.clone()
            d = torch.randn(33, 17, generator=g)
            backup, skipped = perturb(w, d, 0.7, p, 12345, 99)
            if skipped or backup is None or _bits_equal(w, orig):
                return False, f"p={p}: did not move"
            m = torch.from_numpy(drop_mask(w.numel(), p, 12345, 99).reshape(33, 17))
            expect = torch.where(m, orig + f32(0.7 / native_norm(d)) * d, orig)
            if not _bits_equal(w, expect):
                return False, f"p={p}: moved values differ from w + f32(scale) * d"
            with torch.no_grad():
                w.copy_(backup)
            if not _bits_equal(w, orig):
                return False, f"p={p}: restore not bit exact"
        w = torch.randn(5, generator=g)
        _, skipped = perturb(w, torch.zeros(5), 1.0, 1.0, 0, 0)
        _, skipped_nan = perturb(w, torch.tensor([1.0, float("nan"), 0, 0, 0]), 1.0, 1.0, 0, 0)
        return skipped and skipped_nan, "skip rule"
    check("perturb: masked move as specified, restore bit exact, skip on zero/NaN norm", round_trip)

    for model in ("mlp", "embed"):
        for opt in ({"type": "sgd", "lr": 0.1, "momentum": 0.9}, {"type": "adam", "lr": 0.01}):
            def fgm_eq(model=model, opt=opt):
                a = run(_cfg(model, "fgm", opt))
                b = run(_cfg(model, "dropattack", opt, k=1,
                             groups=[dict(g, p=1.0) for g in _cfg(model)["attack"]["groups"]]))
                return _params_equal(a, b) and a["records"] == b["records"], None
            check(f"fgm == dropattack(p=1, K=1) bit for bit [{model}, {opt['type']}]", fgm_eq)

    for model in ("mlp", "embed"):
        def p0(model=model):
            # p = 0 moves nothing, but each group still adds K passes of L0 / K: the update is
            # (1 + G) * grad L0, i.e. plain SGD with lr * (1 + G).
            cfg = _cfg(model, "dropattack", {"type": "sgd", "lr": 0.05}, k=3,
                       groups=[dict(g, p=0.0) for g in _cfg(model)["attack"]["groups"]])
            ngroups = len(cfg["attack"]["groups"])
            a = run(cfg)
            b = run(_cfg(model, "none", {"type": "sgd", "lr": 0.05 * (1 + ngroups)}))
            losses_ok = all(abs(gl - r["clean"]) <= 1e-6 and r["skipped"] == [0] * ngroups
                            for r in a["records"] for gl in r["groups"])
            clean_ok = all(abs(r1["clean"] - r2["clean"]) <= 1e-6 for r1, r2 in zip(a["records"], b["records"]))
            return losses_ok and clean_ok and _params_close(a, b, 1e-6), None
        check(f"dropattack p=0 == plain SGD with lr * (1 + G) [{model}]", p0)

    for model in ("mlp", "embed"):
        for method, extra in (("sam", {"rho": 0.0}), ("asam", {"rho": 0.0}), ("freelb", {"k": 1}),
                              ("awp", {"groups": [dict(g, epsilon=0.0) for g in _cfg(model)["attack"]["groups"]]})):
            def eq_plain(model=model, method=method, extra=extra):
                opt = {"type": "adam", "lr": 0.01}
                a = run(_cfg(model, method, opt, **extra))
                b = run(_cfg(model, "none", opt))
                return _params_equal(a, b), None
            label = {"sam": "sam rho=0", "asam": "asam rho=0", "freelb": "freelb K=1", "awp": "awp epsilon=0"}[method]
            check(f"{label} == plain bit for bit [{model}]", eq_plain)

    def controls():
        # The equalities above must be able to fail: real attacks change the result.
        opt = {"type": "adam", "lr": 0.01}
        plain = run(_cfg("mlp", "none", opt))
        differ = [m for m in ("dropattack", "fgm", "pgd", "freelb", "awp", "sam", "asam")
                  if _params_close(run(_cfg("mlp", m, opt)), plain, 0.0)]
        fgm = run(_cfg("mlp", "fgm", opt))
        da = run(_cfg("mlp", "dropattack", opt, k=1))
        return not differ and not _params_equal(fgm, da), f"no effect: {differ}" if differ else None
    check("controls: every method with a nonzero attack differs from plain; p=0.5 differs from fgm", controls)

    def sam_default_targets():
        a = run(_cfg("mlp", "sam", groups=[]))
        b = run(_cfg("mlp", "sam", groups=[{"targets": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                                        "out.weight", "out.bias"]}]))
        return _params_equal(a, b) and a["records"] == b["records"], None
    check("sam with no groups attacks every parameter", sam_default_targets)

    def pgd_k1():
        groups = [{"targets": ["fc1.weight", "input"], "epsilon": 0.3}]
        a = run(_cfg("mlp", "pgd", k=1, alpha=0.5, groups=groups))
        b = run(_cfg("mlp", "fgm", groups=groups))
        return _params_close(a, b, 1e-6), None
    check("pgd K=1 with alpha >= epsilon ~ fgm", pgd_k1)

    def deterministic():
        cfg = _cfg("embed", "dropattack", {"type": "adamw", "lr": 0.01, "weight_decay": 0.01}, k=3)
        cfg["clip_grad_norm"] = 0.5
        a, b = run(cfg), run(cfg)
        moved = not all(_bits_equal(t1, t2) for (_, t1), (_, t2) in zip(a["initial"], a["final"]))
        return moved and _params_equal(a, b), None
    check("runs are deterministic (dropattack K=3, adamw, clipping)", deterministic)

    def embed_rows():
        # Unused embedding rows: zero gradient, so no update with plain SGD and no attack there.
        a = run(_cfg("embed", "dropattack", {"type": "sgd", "lr": 0.1}, k=2))
        w0 = dict(a["initial"])["embed.weight"]
        w1 = dict(a["final"])["embed.weight"]
        return _bits_equal(w0[30:], w1[30:]) and not _bits_equal(w0[:30], w1[:30]), None
    check("embed: rows 30..49 untouched, rows 0..29 trained", embed_rows)

    def nonfinite():
        groups = [{"targets": ["input"], "epsilon": 3e38}]
        a = run(_cfg("mlp", "fgm", groups=groups))
        ok = all(not r["applied"] and r["reason"] == "non-finite adversarial loss" for r in a["records"])
        return ok and all(_bits_equal(t1, t2) for (_, t1), (_, t2) in zip(a["initial"], a["final"])), \
            [r["groups"] for r in a["records"]]
    check("non-finite adversarial loss: applied=false, parameters unchanged", nonfinite)

    def fixture_files():
        with tempfile.TemporaryDirectory() as tmp:
            res = run(_cfg("embed", "dropattack"))
            meta = write_outputs(res, tmp)
            m = torch.jit.load(os.path.join(tmp, "model.pt"))
            if not m.training:
                return False, "model.pt not in train mode"
            m.eval()
            if m.training:
                return False, "eval() did not clear training"
            m.train()
            for (n, t), e in zip(res["initial"], meta["initial_params"]):
                if dict(m.named_parameters())[n].shape != t.shape:
                    return False, n
                raw = np.fromfile(os.path.join(tmp, e["file"]), dtype="<f4").reshape(e["shape"])
                if not _bits_equal(torch.from_numpy(raw), t) or not _bits_equal(dict(m.named_parameters())[n].detach(), t):
                    return False, f"initial {n}"
            x = np.fromfile(os.path.join(tmp, meta["inputs"][0]["x"]["file"]), dtype="<i8").reshape(meta["inputs"][0]["x"]["shape"])
            out = m(torch.from_numpy(x))
            return [p["name"] for p in meta["params"]] == [n for n, _ in res["final"]] and out.shape == (8, 3), None
    check("fixture files: model.pt loads in train mode, params/init/inputs round trip", fixture_files)

    passed, failed = sum(results), len(results) - sum(results)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        t0 = time.perf_counter()
        rc = self_test()
        print(f"self-test took {time.perf_counter() - t0:.2f}s")
        return rc
    dump_steps = "--dump-steps" in argv
    args = [a for a in argv[1:] if a != "--dump-steps"]
    if len(args) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(args[0]) as fh:
        config = json.load(fh)
    t0 = time.perf_counter()
    result = run(config, dump_steps=dump_steps or bool(config.get("dump_steps", False)))
    write_outputs(result, args[1])
    print(f"{result['method']} on {config.get('model', 'mlp')}: {len(result['records'])} steps in "
          f"{time.perf_counter() - t0:.3f}s -> {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
