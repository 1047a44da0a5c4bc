"""The DropAttack mask of this project, in NumPy, for Python references and peers.

    words = Philox-4x32-10(counter=[lo32(i // 4), hi32(i // 4), lo32(counter), hi32(counter)],
                           key=[lo32(seed), hi32(seed)])
    mask[i] = words[i % 4] < T,  T = 0 if p <= 0, 2**32 if p >= 1, else floor(p * 2**32)

The same definition as native/ops/perturb_common.h (see docs/dropattack.md), so a Python
implementation of a DropAttack step can use exactly the masks the native engine draws.

Command line (used by the tests):
    python3 dropattack_mask.py NUMEL P SEED COUNTER   -> prints the mask as a 0/1 string
"""
import sys

import numpy as np

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10 on arrays of counters (uint64 arrays holding 32-bit words)."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & _LO for c in (c0, c1, c2, c3))
    k0, k1 = int(k0) & 0xFFFFFFFF, int(k1) & 0xFFFFFFFF
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = (p1 >> _S32) ^ c1 ^ np.uint64(k0)
        n2 = (p0 >> _S32) ^ c3 ^ np.uint64(k1)
        c0, c1, c2, c3 = n0 & _LO, p1 & _LO, n2 & _LO, p0 & _LO
        k0 = (k0 + _W0) & 0xFFFFFFFF
        k1 = (k1 + _W1) & 0xFFFFFFFF
    return c0, c1, c2, c3


def threshold(p):
    if not p > 0:
        return 0
    if p >= 1:
        return 1 << 32
    return int(p * 4294967296.0)


def drop_mask(numel, p, seed=0, counter=0):
    """The bool mask of a tensor of `numel` elements (flattened, row-major)."""
    seed, counter = int(seed), int(counter)
    blocks = np.arange((numel + 3) // 4, dtype=np.uint64)
    words = philox4x32_10(blocks & _LO, blocks >> _S32,
                          np.full_like(blocks, counter & 0xFFFFFFFF),
                          np.full_like(blocks, (counter >> 32) & 0xFFFFFFFF),
                          seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)
    flat = np.stack(words, axis=1).reshape(-1)[:numel]
    t = threshold(p)
    if t >= 1 << 32:
        return np.ones(numel, dtype=bool)
    return flat < np.uint64(t)


if __name__ == "__main__":
    n, prob, s, c = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print("".join("1" if b else "0" for b in drop_mask(n, prob, s, c)))
