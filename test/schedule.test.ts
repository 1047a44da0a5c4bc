import { constantLR, cosineLR, linearWarmup, stepLR } from '../lib';

describe('learning-rate schedules', () => {
  test('constant', () => {
    expect([0, 5, 100].map(constantLR(0.1))).toEqual([0.1, 0.1, 0.1]);
  });
  test('step decay as PyTorch StepLR', () => {
    const s = stepLR({ lr: 1, stepSize: 3, gamma: 0.5 });
    expect([0, 2, 3, 5, 6, 9].map(s)).toEqual([1, 1, 0.5, 0.5, 0.25, 0.125]);
  });
  test('cosine annealing endpoints and midpoint', () => {
    const s = cosineLR({ lr: 1, totalSteps: 10, minLr: 0.1 });
    expect(s(0)).toBeCloseTo(1, 12);
    expect(s(5)).toBeCloseTo(0.55, 12);
    expect(s(10)).toBeCloseTo(0.1, 12);
    expect(s(50)).toBeCloseTo(0.1, 12);
  });
  test('linear warm-up then the wrapped schedule', () => {
    const s = linearWarmup(constantLR(0.4), 4);
    expect([0, 1, 2, 3, 4, 10].map(s).map((v) => +v.toFixed(12))).toEqual([0.1, 0.2, 0.3, 0.4, 0.4, 0.4]);
  });
  test('bad arguments name themselves', () => {
    expect(() => stepLR({ lr: 1, stepSize: 0 })).toThrow(/stepSize must be an integer >= 1/);
    expect(() => cosineLR({ lr: 1, totalSteps: 10, minLr: 2 })).toThrow(/minLr must be in \[0, 1\]/);
    expect(() => stepLR({ lr: -1, stepSize: 1 })).toThrow(RangeError);
    expect(() => constantLR(0.1)(-1)).toThrow(/step must be an integer >= 0/);
    expect(() => linearWarmup(3 as never, 1)).toThrow(/schedule must be a schedule function/);
  });
});
