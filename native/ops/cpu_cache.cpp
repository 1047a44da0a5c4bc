// The caching CPU allocator (cpu_cache.h).
#include "cpu_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <torch/version.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace dropattack {
namespace ops {
namespace {

constexpr size_t kHuge = size_t(2) << 20;  // x86-64 transparent huge page

// One mapped block, filed under its address while in use: the DataPtr's context is the
// data pointer itself, as c10::Allocator::raw_allocate/raw_deallocate (used by oneDNN's
// convolutions) require.
struct Block {
  void* ptr;
  size_t size;       // mapped bytes
  size_t requested;  // bytes asked for (what live and peak count: the tail is never touched)
};

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Blocks of 4 MiB and more are mapped 2 MiB-aligned with MADV_HUGEPAGE: where the kernel
// allows huge pages only on request (transparent_hugepage=madvise, Debian's default), one
// fault then brings in 2 MiB instead of 4 KiB.
size_t MappedSize(size_t n) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return n >= 2 * kHuge ? RoundUp(n, kHuge) : RoundUp(n, page);
}

void* MapBlock(size_t size) {
  if (size < 2 * kHuge) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  // Over-map by one huge page and trim both ends to get a 2 MiB-aligned block.
  const size_t span = size + kHuge;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = RoundUp(start, kHuge);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + span;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);  // advice only: failure leaves ordinary pages
#endif
  return p;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(int64_t limit) : limit_(limit) {}

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    if (count > 0) std::memcpy(dest, src, count);
  }
#else
  c10::DataPtr allocate(size_t n) const override { return const_cast<CachingCpuAllocator*>(this)->Allocate(n); }
#endif

  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::Free; }

  void SetLimit(int64_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = limit;
    TrimTo(limit_);
  }

  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    TrimTo(0);
  }

  CpuCacheStats Stats(bool reset_peak) {
    std::lock_guard<std::mutex> lock(mu_);
    CpuCacheStats s;
    s.installed = true;
    s.limit_bytes = limit_;
    s.cached_bytes = static_cast<int64_t>(cached_);
    s.live_bytes = static_cast<int64_t>(live_);
    s.peak_live_bytes = static_cast<int64_t>(peak_);
    s.hits = hits_;
    s.misses = misses_;
    if (reset_peak) peak_ = live_;
    return s;
  }

 private:
  // Cached blocks in the order they were freed (oldest first), and by size.
  using Lru = std::list<Block>;

  c10::DataPtr Allocate(size_t n) {
    if (n < static_cast<size_t>(kCpuCacheMinBytes)) {
      // The default allocator's block, freed through our deleter too when it comes back
      // by raw_deallocate (Free hands addresses it does not know to the default's).
      return c10::GetDefaultCPUAllocator()->allocate(n);
    }
    const size_t size = MappedSize(n);
    Block block{nullptr, 0, n};
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The smallest cached block that fits without wasting more than an eighth.
      auto it = by_size_.lower_bound(size);
      if (it != by_size_.end() && it->first <= size + size / 8) {
        block.ptr = it->second->ptr;
        block.size = it->second->size;
        cached_ -= block.size;
        lru_.erase(it->second);
        by_size_.erase(it);
        ++hits_;
      } else {
        ++misses_;
      }
    }
    if (block.ptr == nullptr) {
      void* p = MapBlock(size);
      if (p == nullptr) {
        // Out of address space or memory: give back what is cached and try once more.
        Release();
        p = MapBlock(size);
      }
      TORCH_CHECK(p != nullptr, "CPU allocator: not enough memory: you tried to allocate ", n, " bytes (",
                  std::strerror(errno), ")");
      block.ptr = p;
      block.size = size;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_ += block.requested;
      peak_ = std::max(peak_, live_);
      in_use_.emplace(block.ptr, block);
    }
    return c10::DataPtr(block.ptr, block.ptr, &CachingCpuAllocator::Free, c10::Device(c10::DeviceType::CPU));
  }

  static void Free(void* ctx);

  // False when `ptr` is not one of ours (a small block of the default allocator).
  bool Keep(void* ptr) {
    std::unique_lock<std::mutex> lock(mu_);
    auto found = in_use_.find(ptr);
    if (found == in_use_.end()) return false;
    const Block block = found->second;
    in_use_.erase(found);
    live_ -= block.requested;
    if (static_cast<int64_t>(block.size) > limit_) {
      lock.unlock();
      munmap(block.ptr, block.size);
      return true;
    }
    TrimTo(limit_ - static_cast<int64_t>(block.size));
    lru_.push_back(block);
    by_size_.emplace(block.size, std::prev(lru_.end()));
    cached_ += block.size;
    return true;
  }

  // Unmaps the oldest cached blocks until at most `bytes` stay cached. Called with mu_ held.
  void TrimTo(int64_t bytes) {
    while (!lru_.empty() && static_cast<int64_t>(cached_) > bytes) {
      const Block b = lru_.front();
      auto range = by_size_.equal_range(b.size);
      for (auto it = range.first; it != range.second; ++it) {
        if (it->second == lru_.begin()) {
          by_size_.erase(it);
          break;
        }
      }
      lru_.pop_front();
      cached_ -= b.size;
      munmap(b.ptr, b.size);
    }
  }

  std::mutex mu_;
  int64_t limit_;
  Lru lru_;
  std::multimap<size_t, Lru::iterator> by_size_;
  std::unordered_map<void*, Block> in_use_;
  size_t cached_ = 0;
  size_t live_ = 0;
  size_t peak_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

// Never destroyed: tensors may outlive static destruction at exit.
CachingCpuAllocator* instance = nullptr;
std::mutex install_mu;

void CachingCpuAllocator::Free(void* ptr) {
  if (ptr == nullptr) return;
  if (!instance->Keep(ptr)) c10::GetDefaultCPUAllocator()->raw_deleter()(ptr);
}

}  // namespace

int64_t cpu_cache_limit_from_env() {
  const char* v = std::getenv("DROPATTACK_CPU_CACHE_MB");
  if (v != nullptr && *v != '\0') {
    char* end = nullptr;
    const double mb = std::strtod(v, &end);
    if (end != v && *end == '\0' && mb >= 0 && mb < 1e9) return static_cast<int64_t>(mb * 1048576.0);
    // An unreadable value leaves the default in place rather than failing the load.
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  const int64_t quarter = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 4 : int64_t(1) << 30;
  return std::min<int64_t>(quarter, int64_t(4) << 30);
}

bool install_cpu_cache(int64_t limit_bytes) {
  std::lock_guard<std::mutex> lock(install_mu);
  if (instance != nullptr) {
    instance->SetLimit(std::max<int64_t>(limit_bytes, 0));
    return true;
  }
  if (limit_bytes <= 0) return false;
  instance = new CachingCpuAllocator(limit_bytes);
  // Priority 1: above the default allocator LibTorch registers at 0.
  c10::SetCPUAllocator(instance, /*priority=*/1);
  // Below kCpuCacheMinBytes, glibc serves: a fixed mmap threshold at that size (glibc's
  // own threshold starts at 128 KiB and only grows as blocks are freed) and a trim
  // threshold that keeps a few passes' worth of small blocks in its heap.
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kCpuCacheMinBytes));
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
  return true;
}

void release_cpu_cache() {
  std::lock_guard<std::mutex> lock(install_mu);
  if (instance != nullptr) instance->Release();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

CpuCacheStats cpu_cache_stats(bool reset_peak) {
  std::lock_guard<std::mutex> lock(install_mu);
  return instance != nullptr ? instance->Stats(reset_peak) : CpuCacheStats{};
}

}  // namespace ops
}  // namespace dropattack
