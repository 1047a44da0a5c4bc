// Summary statistics of repeated runs: mean, standard deviation and the paired difference
// to a reference with a Student-t confidence interval.

/** Two-sided 97.5% quantiles of Student's t for 1 to 30 degrees of freedom. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074,
  2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** The 0.975 quantile of Student's t with `df` degrees of freedom (the normal's 1.96 past 120). */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new RangeError(`tQuantile975: df must be an integer >= 1, got ${df}`);
  if (df <= 30) return T975[df - 1];
  if (df <= 40) return 2.042 + ((2.021 - 2.042) * (df - 30)) / 10;
  if (df <= 60) return 2.021 + ((2.0 - 2.021) * (df - 40)) / 20;
  if (df <= 120) return 2.0 + ((1.98 - 2.0) * (df - 60)) / 60;
  return 1.96;
}

export const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Sample standard deviation (n - 1 in the denominator); 0 for one value. */
export function sd(xs: readonly number[]): number {
  if (xs.length < 2) return xs.length === 1 ? 0 : NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * The mean of the paired differences a[i] - b[i] with its 95% Student-t interval
 * (mean ± t(0.975, n-1)·sd/√n); with one pair the interval is unbounded (NaN ends).
 */
export function pairedDifference(a: readonly number[], b: readonly number[]): { mean: number; low: number; high: number; n: number } {
  if (a.length !== b.length || a.length === 0) throw new RangeError(`pairedDifference: expected two non-empty lists of one length, got ${a.length} and ${b.length}`);
  const d = a.map((x, i) => x - b[i]);
  const m = mean(d);
  if (d.length < 2) return { mean: m, low: NaN, high: NaN, n: 1 };
  const half = (tQuantile975(d.length - 1) * sd(d)) / Math.sqrt(d.length);
  return { mean: m, low: m - half, high: m + half, n: d.length };
}
