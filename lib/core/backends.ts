import * as is from './is';
import { BackendsInfo, CpuCacheInfo, JitOptions, MemoryReport, native } from './native';

export type { BackendsInfo, CpuCacheInfo, JitOptions, MemoryReport };

/**
 * What this build of the addon can do: `cpu` (always), `cuda` (CUDA kernels built and
 * a device present), `cudaDeviceCount`, `cudaKernels` (compiled in), the LibTorch
 * version, and LibTorch's intra-op and inter-op thread counts.
 */
export function backends(): BackendsInfo {
  return native.backends();
}

/**
 * The native memory held through this thread's live handles, per device and by kind
 * (module parameters, optimizer state, perturbation backups, the backup pool, tensors),
 * each storage counted once, with the number of live handles. Memory LibTorch's
 * allocators keep cached for reuse after a free is not included.
 */
export function memory(): MemoryReport {
  return native.memory();
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
 * The caching CPU allocator's state. When the addon loads it makes LibTorch allocate CPU
 * tensors of 1 MiB and more from a cache of freed blocks: a training step frees and
 * allocates the same large tensors every pass, and without the cache each pass maps them
 * afresh and the kernel faults them in page by page (on a 250k x 300 embedding model that
 * was a third of the step's CPU time). New blocks of 4 MiB and more are advised for
 * transparent huge pages. At most `limitBytes` stay cached (the oldest freed blocks are
 * unmapped first), so resident memory is bounded by the live tensors plus that limit.
 * The limit is `DROPATTACK_CPU_CACHE_MB` (megabytes; `0` keeps LibTorch's own allocator)
 * read at load, else a quarter of physical memory, at most 4 GiB. The addon also sets
 * glibc's mmap threshold to 1 MiB and its trim threshold to 256 MiB, so smaller blocks
 * stay in the C library's heap.
 *
 * With `resetPeak`, `peakLiveBytes` starts again from the bytes in use once this call has
 * read it: the next call then gives the peak of large CPU allocations in between (one
 * training step's, for example).
 */
export function cpuCache(resetPeak = false): CpuCacheInfo {
  return native.cpuCache(is.boolean('cpuCache', 'resetPeak', resetPeak));
}

/** Unmaps every freed block the caching CPU allocator keeps (tensors in use are untouched). */
export function releaseCpuCache(): void {
  native.releaseCpuCache();
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
