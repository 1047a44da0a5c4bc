import * as is from './is';
import { BackendsInfo, native } from './native';

export type { BackendsInfo };

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
