/**
 * dropattack/ops: the perturbation op and its building blocks, for code that runs its
 * own training loop: the fused masked perturbation, the counter-based mask, the Philox
 * generator behind it, and the op's backup cache.
 * @packageDocumentation
 */
export { perturb, Perturbation, dropMask, philox4x32, releaseCachedBackups, cachedBackupBytes } from './core/perturb';
export type { PerturbOptions, DropMaskOptions } from './core/perturb';
