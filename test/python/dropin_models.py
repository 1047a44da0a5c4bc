"""Models written in Python the way users write them, for test/dropin.test.ts.

  dropin_models.py export OUTDIR   scripted models, a fixed batch and PyTorch's reference values
  dropin_models.py check OUTDIR    reloads what Node trained and saved; prints the largest
                                   difference from Node's outputs per model (JSON)
"""
import json
import math
import sys
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VOCAB, DIM, TAGS, T, B = 30, 16, 5, 6, 4


class Encoder(nn.Module):
    """A small BERT-like encoder: token and position embeddings, LayerNorm, one
    Transformer layer that masks the padding."""

    def __init__(self):
        super().__init__()
        self.tok_embed = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.pos_embed = nn.Embedding(T, DIM)
        self.norm = nn.LayerNorm(DIM)
        self.layer = nn.TransformerEncoderLayer(DIM, 2, 32, dropout=0.0, batch_first=True)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        pos = torch.arange(input_ids.size(1), device=input_ids.device).unsqueeze(0)
        h = self.norm(self.tok_embed(input_ids) + self.pos_embed(pos))
        return self.layer(h, src_key_padding_mask=attention_mask == 0)


class TokenClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.classifier = nn.Linear(DIM, TAGS)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.classifier(self.encoder(input_ids, attention_mask))


class MaskedLM(nn.Module):
    """Returns a dict with the logits, and the loss when labels are given."""

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.lm_head = nn.Linear(DIM, VOCAB)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        logits = self.lm_head(self.encoder(input_ids, attention_mask))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)
        return out


class KeywordModel(nn.Module):
    """Keyword-only and optional arguments, a dict, a list, a string, a float; BatchNorm;
    a frozen layer; returns (loss, logits)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.frozen = nn.Linear(8, 8)
        self.out = nn.Linear(8, 3)
        self.frozen.weight.requires_grad_(False)
        self.frozen.bias.requires_grad_(False)

    def forward(self, x: Tensor, extra: Dict[str, Tensor], mask: Optional[Tensor], *, scale: float,
                labels: Tensor, mode: str, feats: List[Tensor]) -> Tuple[Tensor, Tensor]:
        h = self.fc(x * scale + extra["shift"])
        for f in feats:
            h = h + f
        if mask is not None:
            h = h * mask
        h = torch.relu(self.bn(h))
        h = self.frozen(h)
        if mode == "double":
            h = h * 2.0
        logits = self.out(h)
        return F.cross_entropy(logits, labels), logits


class PairModel(nn.Module):
    """Two int64 inputs, neither named like token ids: the ids are ambiguous."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.segment_embed = nn.Embedding(VOCAB, DIM)
        self.fc = nn.Linear(DIM, 2)

    def forward(self, segment: Tensor, words: Tensor) -> Tensor:
        return self.fc((self.embed(words) + self.segment_embed(segment)).mean(1))


def batch():
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(1, VOCAB, (B, T), generator=g)
    lengths = [6, 4, 5, 3]
    mask = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids = ids * mask  # padding id 0
    tags = torch.randint(0, TAGS, (B, T), generator=g).masked_fill(mask == 0, -100)
    mlm_labels = torch.full((B, T), -100, dtype=torch.long)
    mlm_labels[:, 1] = ids[:, 1]
    mlm_labels[0, 3] = ids[0, 3]
    mlm_ids = ids.clone()
    mlm_ids[mlm_labels != -100] = VOCAB - 1  # the [MASK] id
    x = torch.randn(8, 4, generator=g)
    shift = torch.randn(4, generator=g)
    feat = torch.randn(8, 8, generator=g)
    kw_labels = torch.randint(0, 3, (8,), generator=g)
    segment = torch.randint(0, 2, (B, T), generator=g)
    return dict(ids=ids, mask=mask, tags=tags, mlm_ids=mlm_ids, mlm_labels=mlm_labels, x=x, shift=shift, feat=feat,
                kw_labels=kw_labels, segment=segment)


def flat(t):
    return t.detach().reshape(-1).tolist()


def export(out):
    torch.manual_seed(0)
    d = batch()
    tok = torch.jit.script(TokenClassifier())
    mlm = torch.jit.script(MaskedLM())
    kw = KeywordModel()
    kw.eval()  # saved in eval mode: the trainer must still train it in training mode
    kw = torch.jit.script(kw)
    pair = torch.jit.script(PairModel())
    for name, m in dict(tokcls=tok, mlm=mlm, kwmodel=kw, pair=pair).items():
        m.save(f"{out}/{name}.pt")
    ref = {}
    tok.train()
    logits = tok(d["ids"], d["mask"])
    ref["tokcls_loss"] = F.cross_entropy(logits.reshape(-1, TAGS), d["tags"].reshape(-1), ignore_index=-100).item()
    # One SGD step with parameter groups: no weight decay on biases and norms.
    m = torch.jit.load(f"{out}/tokcls.pt")
    m.train()
    decay = [p for n, p in m.named_parameters() if not (n.endswith(".bias") or "norm" in n)]
    no_decay = [p for n, p in m.named_parameters() if n.endswith(".bias") or "norm" in n]
    opt = torch.optim.SGD([{"params": decay}, {"params": no_decay, "weight_decay": 0.0, "lr": 0.05}], lr=0.1,
                          weight_decay=0.5)
    F.cross_entropy(m(d["ids"], d["mask"]).reshape(-1, TAGS), d["tags"].reshape(-1)).backward()
    opt.step()
    params = dict(m.named_parameters())
    ref["groups_classifier_weight"] = flat(params["classifier.weight"])
    ref["groups_classifier_bias"] = flat(params["classifier.bias"])
    ref["groups_norm_weight"] = flat(params["encoder.norm.weight"])
    mlm.train()
    ref["mlm_loss"] = mlm(d["mlm_ids"], d["mask"], d["mlm_labels"])["loss"].item()
    # BatchNorm after one training-mode pass of the batch (the clean pass).
    k = torch.jit.load(f"{out}/kwmodel.pt")
    k.train()
    loss, _ = k(d["x"], {"shift": d["shift"]}, None, scale=0.5, labels=d["kw_labels"], mode="double", feats=[d["feat"]])
    ref["kw_loss"] = loss.item()
    ref["bn_mean_one_pass"] = flat(k.bn.running_mean)
    ref["bn_var_one_pass"] = flat(k.bn.running_var)
    ref["bn_mean_initial"] = flat(torch.zeros(8))
    ref["frozen_requires_grad"] = k.frozen.weight.requires_grad
    data = {k2: {"data": v.tolist(), "dtype": "int64" if v.dtype == torch.long else "float32"} for k2, v in d.items()}
    with open(f"{out}/data.json", "w") as f:
        json.dump({"data": data, "ref": ref}, f)


def check(out):
    d = batch()
    with open(f"{out}/node_outputs.json") as f:
        node = json.load(f)
    diffs = {}
    with torch.no_grad():
        for name, outputs in node.items():
            m = torch.jit.load(f"{out}/{name}_trained.pt")
            m.eval()
            if name == "tokcls":
                y = m(d["ids"], d["mask"])
            elif name == "mlm":
                y = m(d["mlm_ids"], d["mask"])["logits"]
            else:
                y = m(d["x"], {"shift": d["shift"]}, None, scale=0.5, labels=d["kw_labels"], mode="double",
                      feats=[d["feat"]])[1]
            diffs[name] = max(abs(a - b) for a, b in zip(flat(y), outputs))
            diffs[name + "_numel"] = y.numel() == len(outputs)
            if name == "kwmodel":
                diffs["kwmodel_bn_mean"] = max(abs(a - b) for a, b in zip(flat(m.bn.running_mean), node_bn(out)))
    print(json.dumps(diffs))


def node_bn(out):
    with open(f"{out}/node_bn.json") as f:
        return json.load(f)


if __name__ == "__main__":
    {"export": export, "check": check}[sys.argv[1]](sys.argv[2])
