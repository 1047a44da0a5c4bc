// A CPU allocator that keeps large freed blocks for reuse.
//
// LibTorch's default CPU allocator hands every block back to the C library, and glibc
// returns blocks above its mmap threshold (at most 32 MiB) to the kernel at once. A
// training step frees and allocates the same large tensors every pass (a 300 MB embedding
// gradient, the optimizer's temporaries), so each pass faults them in again page by page:
// on a text model that was a third of the step's CPU time, in the kernel. This allocator
// serves blocks of at least kMinBytes from a cache of freed blocks of (nearly) the same
// size, maps new ones with transparent huge pages advised, and keeps at most a set number
// of bytes cached (oldest blocks unmapped first), so resident memory stays bounded by the
// live tensors plus that limit. Smaller requests go to LibTorch's default allocator.
#pragma once

#include <cstdint>

namespace dropattack {
namespace ops {

struct CpuCacheStats {
  bool installed = false;
  int64_t limit_bytes = 0;   // most bytes kept cached
  int64_t cached_bytes = 0;  // bytes in freed blocks kept for reuse now
  int64_t live_bytes = 0;    // bytes in large blocks in use now
  int64_t peak_live_bytes = 0;  // most live_bytes since install or the last reset
  int64_t hits = 0;          // large allocations served from the cache
  int64_t misses = 0;        // large allocations mapped fresh
};

/// Smallest request the cache serves; smaller ones go to the default allocator.
constexpr int64_t kCpuCacheMinBytes = int64_t(1) << 20;

/// Makes the caching allocator LibTorch's CPU allocator (tensors allocated before keep
/// their own deleters). `limit_bytes` <= 0 leaves the default allocator in place. Also
/// sets glibc's mmap and trim thresholds, so that the smaller blocks it serves stay in its
/// heap instead of being mapped and unmapped on each use. Returns whether it is installed;
/// calling it again only changes the limit.
bool install_cpu_cache(int64_t limit_bytes);

/// Unmaps every cached block (live blocks are untouched).
void release_cpu_cache();

/// The stats; with `reset_peak`, peak_live_bytes starts again from live_bytes after
/// they are read (to measure one step's peak).
CpuCacheStats cpu_cache_stats(bool reset_peak = false);

/// The limit from the environment: DROPATTACK_CPU_CACHE_MB (0 turns the cache off), else
/// a quarter of physical memory, at most 4 GiB.
int64_t cpu_cache_limit_from_env();

}  // namespace ops
}  // namespace dropattack
