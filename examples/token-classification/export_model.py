"""Step 1 of the token-classification example: a user's Python side.

Defines a small Transformer token classifier (token and position embeddings, LayerNorm,
Transformer encoder layers that mask the padding, a linear tagger), scripts it, and writes
a synthetic sequence-labelling task whose tags need context: a token's tag is its id
modulo 4 after a "small" token, and 4 after a "large" one. Padding tags are -100.

    /usr/bin/python3 export_model.py OUTDIR [--examples N]
"""
import json
import os
import sys

import torch
from torch import Tensor, nn

VOCAB, TAGS, MAX_LEN, DIM = 40, 5, 16, 32


class TokenClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_embed = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.pos_embed = nn.Embedding(MAX_LEN, DIM)
        self.norm = nn.LayerNorm(DIM)
        layer = nn.TransformerEncoderLayer(DIM, 4, 64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.tagger = nn.Linear(DIM, TAGS)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        pos = torch.arange(input_ids.size(1), device=input_ids.device).unsqueeze(0)
        h = self.norm(self.tok_embed(input_ids) + self.pos_embed(pos))
        return self.tagger(self.encoder(h, src_key_padding_mask=attention_mask == 0))


def make(n, g):
    lengths = torch.randint(6, MAX_LEN + 1, (n,), generator=g)
    ids = torch.randint(1, VOCAB, (n, MAX_LEN), generator=g)
    mask = (torch.arange(MAX_LEN).unsqueeze(0) < lengths.unsqueeze(1)).long()
    ids = ids * mask
    prev = torch.cat([torch.full((n, 1), 1), ids[:, :-1]], 1)
    tags = torch.where(prev < VOCAB // 2, ids % 4, torch.full_like(ids, 4)).masked_fill(mask == 0, -100)
    return ids, mask, tags


def main():
    out = sys.argv[1]
    n = int(sys.argv[sys.argv.index("--examples") + 1]) if "--examples" in sys.argv else 2000
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torch.jit.script(TokenClassifier())
    model.eval()  # as users often save it; the trainer trains it in training mode anyway
    model.save(os.path.join(out, "model.pt"))
    g = torch.Generator().manual_seed(1)
    meta = {}
    for split, count in (("train", n), ("test", max(200, n // 5))):
        ids, mask, tags = make(count, g)
        for name, t in (("ids", ids), ("mask", mask), ("tags", tags)):
            t.numpy().astype("<i8").tofile(os.path.join(out, f"{split}_{name}.bin"))
        meta[split] = {"examples": count, "length": MAX_LEN}
    json.dump(meta, open(os.path.join(out, "meta.json"), "w"))
    print(f"wrote {os.path.join(out, 'model.pt')} and {n} training sentences")


if __name__ == "__main__":
    main()
