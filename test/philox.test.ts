import { dropMask, philox4x32 } from '../lib/ops';
import { maskBits, philoxRef } from './helpers/philox';
import { u8 } from './helpers/util';

// Known-answer vectors published with Random123 (kat_vectors, philox4x32 with 10 rounds).
const KAT: Array<{ counter: number[]; key: number[]; expected: number[] }> = [
  { counter: [0, 0, 0, 0], key: [0, 0], expected: [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8] },
  {
    counter: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    key: [0xffffffff, 0xffffffff],
    expected: [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  },
  {
    counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    key: [0xa4093822, 0x299f31d0],
    expected: [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  },
];

describe('Philox-4x32-10', () => {
  test.each(KAT)('test-side reference matches the published vector %#', ({ counter, key, expected }) => {
    expect(philoxRef(counter, key)).toEqual(expected);
  });

  test.each(KAT)('native header matches the published vector %#', ({ counter, key, expected }) => {
    expect(philox4x32(counter as [number, number, number, number], key as [number, number])).toEqual(expected);
  });

  test('native and reference agree on random counters and keys', () => {
    let s = 12345;
    const next = () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s;
    };
    for (let k = 0; k < 200; k++) {
      const counter = [next(), next(), next(), next()] as [number, number, number, number];
      const key = [next(), next()] as [number, number];
      expect(philox4x32(counter, key)).toEqual(philoxRef(counter, key));
    }
  });
});

describe('dropMask', () => {
  test.each([
    [0.5, 0n, 0n, 37],
    [0.3, 42n, 7n, 1000],
    [0.9, 0xdeadbeefcafen, (3n << 40n) | 5n, 513],
    [0.5, (1n << 64n) - 1n, (1n << 64n) - 1n, 64],
  ])('p=%p seed=%p counter=%p n=%p equals the reference rule', (p, seed, counter, n) => {
    const native = u8(dropMask(n, { p, seed, counter }));
    expect(Array.from(native)).toEqual(Array.from(maskBits(p, seed, counter, 0, n)));
  });

  test('p = 0 drops everything and p = 1 keeps everything', () => {
    expect(Array.from(u8(dropMask(100, { p: 0, seed: 3 }))).every((v) => v === 0)).toBe(true);
    expect(Array.from(u8(dropMask(100, { p: 1, seed: 3 }))).every((v) => v === 1)).toBe(true);
  });

  test('the rate lies within binomial bounds', () => {
    const n = 1_000_000;
    for (const p of [0.1, 0.5, 0.7]) {
      const kept = u8(dropMask(n, { p, seed: 99, counter: 1 })).reduce((a, b) => a + b, 0);
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(kept - n * p)).toBeLessThan(6 * sd);
    }
  });

  test('different counters give different masks', () => {
    const a = u8(dropMask(256, { p: 0.5, seed: 1, counter: 1 }));
    const b = u8(dropMask(256, { p: 0.5, seed: 1, counter: 2 }));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  test('bad arguments name themselves', () => {
    expect(() => dropMask(-1, { p: 0.5 })).toThrow(RangeError);
    expect(() => dropMask(10, { p: 1.5 })).toThrow(/p must be in \[0, 1\]/);
    expect(() => dropMask(10, { p: 0.5, seed: -1 })).toThrow(/seed/);
    expect(() => dropMask(10, { p: 0.5, counter: 1.5 })).toThrow(/counter/);
  });
});
