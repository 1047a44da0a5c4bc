import * as is from './is';
import { BackendsInfo, JitOptions, native } from './native';

export type { BackendsInfo, JitOptions };

/**
 * What this build of the addon can do: `cpu` (always), `cuda` (CUDA kernels built and
 * a device present), `cudaDeviceCount`, `cudaKernels` (compiled in), the LibTorch
 * version, and LibTorch's intra-op and inter-op thread counts.
 */
export function backends(): BackendsInfo {
  return native.backends();
}

/** Sets LibTorch's intra-op thread count (used by every CPU kernel, the perturbation op included). */
export function setNumThreads(threads: number): void {
  native.setNumThreads(is.integer('setNumThreads', 'threads', threads, 1));
}

/** LibTorch's intra-op thread count. */
export function getNumThreads(): number {
  return native.getNumThreads();
}

/**
 * Sets how TorchScript executes module forwards, for the whole process (every module and
 * trainer, on every thread). Returns the settings now in force.
 *
 * - `executor: 'simple'` (default): no graph optimization; the graph runs op by op as
 *   eager PyTorch would, and autograd records each op. Predictable on every LibTorch.
 * - `executor: 'profiling'`: LibTorch's own default (profiling runs, specialization,
 *   differentiable subgraphs). With `fuser: 'tensorexpr'` it compiles fused kernels on
 *   the third call; on CPU that needs a LibTorch built with LLVM, and on LibTorch 2.x it
 *   has been seen to hang inside a worker thread: leave the fuser off unless measured.
 * - `executor: 'legacy'`: the older optimizing executor, without profiling.
 * - `fuser`: `'none'` (default) or `'tensorexpr'`.
 *
 * The environment variables `DROPATTACK_JIT_EXECUTOR` and `DROPATTACK_JIT_FUSER` set the
 * same at load time.
 */
export function setJitOptions(options: Partial<JitOptions>): JitOptions {
  const where = 'setJitOptions';
  const o = is.options<Partial<JitOptions>>(where, options, ['executor', 'fuser']);
  const next: Partial<JitOptions> = {};
  if (o.executor !== undefined) next.executor = is.oneOf(where, 'executor', o.executor, ['simple', 'profiling', 'legacy'] as const);
  if (o.fuser !== undefined) next.fuser = is.oneOf(where, 'fuser', o.fuser, ['none', 'tensorexpr'] as const);
  return native.setJitOptions(next);
}

/** The TorchScript execution settings in force (see setJitOptions). */
export function getJitOptions(): JitOptions {
  return native.getJitOptions();
}
