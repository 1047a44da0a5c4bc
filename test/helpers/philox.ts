// An independent Philox-4x32-10 for tests, written from the published algorithm
// (Salmon et al., SC'11; Random123) with BigInt arithmetic, sharing no code with the
// native header. maskBits() applies the documented mask rule on top of it.

const M0 = 0xd2511f53n;
const M1 = 0xcd9e8d57n;
const W0 = 0x9e3779b9n;
const W1 = 0xbb67ae85n;
const MASK32 = 0xffffffffn;

export function philoxRef(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter.map(BigInt);
  let [k0, k1] = key.map(BigInt);
  for (let round = 0; round < 10; round++) {
    const p0 = M0 * c0;
    const p1 = M1 * c2;
    const hi0 = p0 >> 32n;
    const lo0 = p0 & MASK32;
    const hi1 = p1 >> 32n;
    const lo1 = p1 & MASK32;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) & MASK32, lo1, (hi0 ^ c3 ^ k1) & MASK32, lo0];
    k0 = (k0 + W0) & MASK32;
    k1 = (k1 + W1) & MASK32;
  }
  return [c0, c1, c2, c3].map(Number);
}

/** Mask bits of elements [start, start + count) for (seed, counter) with keep probability p. */
export function maskBits(p: number, seed: bigint, counter: bigint, start: number, count: number): Uint8Array {
  const threshold = p <= 0 ? 0 : p >= 1 ? 2 ** 32 : Math.floor(p * 2 ** 32);
  const key = [Number(seed & MASK32), Number(seed >> 32n)];
  const out = new Uint8Array(count);
  let cachedBlock = -1;
  let words: number[] = [];
  for (let k = 0; k < count; k++) {
    const i = start + k;
    const block = Math.floor(i / 4);
    if (block !== cachedBlock) {
      const b = BigInt(block);
      words = philoxRef([Number(b & MASK32), Number(b >> 32n), Number(counter & MASK32), Number(counter >> 32n)], key);
      cachedBlock = block;
    }
    out[k] = words[i % 4] < threshold ? 1 : 0;
  }
  return out;
}
