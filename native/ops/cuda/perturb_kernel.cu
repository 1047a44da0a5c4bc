// CUDA kernels of the perturbation op: the squared norm of the direction, the fused
// backup + masked scaled add, and the drop mask.
//
// Bit-for-bit agreement with cpu/perturb_kernel.cpp is the point of every choice here:
//  - the mask of element i depends only on (seed, counter, i) through mask_bit(), so a
//    thread that owns the 4 elements of one Philox block draws it once and gets the same
//    bits as the CPU chunks do;
//  - the adds use scaled_add() (explicitly rounded intrinsics, never an FMA), and the
//    squares of the norm use __dmul_rn/__dadd_rn for the same reason: nvcc contracts
//    a * b + c into an FMA by default, the CPU kernel is built with -ffp-contract=off;
//  - the norm's sum order is data-fixed (perturb_common.h): one thread per (norm block,
//    lane) sums its lane sequentially, the 8 lanes of a block are combined by
//    combine_lanes(), and a single thread adds the block partials in block order. That
//    leaves nblocks * 8 threads of parallelism, which is enough for tensors large enough
//    for the norm to matter, and is the price of a norm that does not depend on the
//    launch configuration.
// The per-thread work is written as __host__ __device__ functions (namespace detail) so
// test/native/cuda_kernel_host_check.cu can run the very same code on the host against
// a reference, on machines without a GPU.
#include "perturb_kernel.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "../perturb_common.h"

#define DA_HD __host__ __device__ inline
// Unroll hints for the device pass only: the host pass of the shared helpers would warn.
#if defined(__CUDA_ARCH__)
#define DA_UNROLL _Pragma("unroll")
#else
#define DA_UNROLL
#endif

namespace dropattack {
namespace ops {
namespace cuda_kernels {
namespace detail {

constexpr int kThreads = 256;
// Blocks of a grid-stride launch: enough to fill any current GPU several times over,
// few enough that the per-block index arithmetic stays in range.
constexpr int64_t kMaxGrid = 65535;
// Norm blocks per CTA of the norm kernels (each norm block has kNormLanes threads).
constexpr int kNormBlocksPerCta = kThreads / kNormLanes;
// Block partials the final sum stages in shared memory at a time.
constexpr int kSumChunk = 2048;

static_assert(kThreads % kNormLanes == 0, "a CTA must hold whole norm blocks");
static_assert(kNormBlock % kNormLanes == 0, "norm blocks must start on lane 0");

// The type the scaled add is computed in: double for double, float otherwise, as on CPU.
template <typename T>
using acc_t = typename std::conditional<std::is_same<T, double>::value, double, float>::type;

DA_HD float to_acc(float x) { return x; }
DA_HD double to_acc(double x) { return x; }
DA_HD float to_acc(__half x) { return __half2float(x); }
DA_HD float to_acc(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
DA_HD T from_acc(acc_t<T> x);
template <>
DA_HD float from_acc<float>(float x) { return x; }
template <>
DA_HD double from_acc<double>(double x) { return x; }
template <>
DA_HD __half from_acc<__half>(float x) { return __float2half_rn(x); }
template <>
DA_HD __nv_bfloat16 from_acc<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// The squared element, rounded once, as `v * v` compiled without contraction.
template <typename T>
DA_HD double square(T x) {
  const double v = static_cast<double>(to_acc(x));
#if defined(__CUDA_ARCH__)
  return __dmul_rn(v, v);
#else
  return v * v;
#endif
}

DA_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// Sum of the squares of lane `lane` of norm block `block` of direction[0, n): elements
// block * kNormBlock + lane + 8k, in increasing order, starting from 0.0.
template <typename T>
DA_HD double lane_squares_dense(const T* d, int64_t n, int64_t block, int lane) {
  const int64_t begin = block * kNormBlock;
  const int64_t end = (n - begin < kNormBlock) ? n : begin + kNormBlock;
  double sum = 0.0;
  int64_t i = begin + lane;
  // Loads first, adds after: the loads of a batch are independent and can be in flight
  // together while the adds stay in their one required order.
  constexpr int kBatch = 16;
  for (; i + (kBatch - 1) * kNormLanes < end; i += kBatch * kNormLanes) {
    double v[kBatch];
DA_UNROLL
    for (int k = 0; k < kBatch; ++k) v[k] = square(d[i + k * kNormLanes]);
DA_UNROLL
    for (int k = 0; k < kBatch; ++k) sum = add_rn(sum, v[k]);
  }
  for (; i < end; i += kNormLanes) sum = add_rn(sum, square(d[i]));
  return sum;
}

// First j in [0, nrows) with rows[j] >= key (nrows if none); rows sorted ascending.
DA_HD int64_t lower_bound(const int64_t* rows, int64_t nrows, int64_t key) {
  int64_t lo = 0;
  int64_t hi = nrows;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (rows[mid] < key) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// lane_squares_dense() restricted to the elements that lie in rows: the same nonzero
// terms in the same order, the skipped terms being +0.0 in a direction that is zero
// outside the rows, and x + 0.0 == x for the nonnegative partial sums.
template <typename T>
DA_HD double lane_squares_rows(const T* d, const int64_t* rows, int64_t nrows, int64_t row_size,
                               int64_t n, int64_t block, int lane) {
  const int64_t begin = block * kNormBlock;
  const int64_t end = (n - begin < kNormBlock) ? n : begin + kNormBlock;
  double sum = 0.0;
  // Row r overlaps [begin, end) iff r * row_size < end and (r + 1) * row_size > begin,
  // and the second condition is r >= begin / row_size.
  for (int64_t j = lower_bound(rows, nrows, begin / row_size); j < nrows; ++j) {
    const int64_t row_begin = rows[j] * row_size;
    if (row_begin >= end) break;
    const int64_t lo = row_begin > begin ? row_begin : begin;
    const int64_t row_end = row_begin + row_size;
    const int64_t hi = row_end < end ? row_end : end;
    // First index >= lo in this lane (begin is a multiple of kNormLanes).
    int64_t i = lo + ((lane - static_cast<int>(lo % kNormLanes)) & (kNormLanes - 1));
    for (; i < hi; i += kNormLanes) sum = add_rn(sum, square(d[i]));
  }
  return sum;
}

// Word k of a Philox result, by selects: a dynamic index into r.v would put r in local
// memory on the device.
DA_HD uint32_t word_at(const Philox4x32Result& r, int64_t k) {
  const uint32_t lo = (k & 1) ? r.v[1] : r.v[0];
  const uint32_t hi = (k & 1) ? r.v[3] : r.v[2];
  return (k & 2) ? hi : lo;
}

// The four mask words of Philox block q, or all zeros when every element is kept (a
// threshold of 2^32 keeps every 32-bit draw, so the draw can be skipped).
template <bool kAll>
DA_HD Philox4x32Result group_words(uint64_t seed, uint64_t counter, int64_t q) {
  if (kAll) {
    Philox4x32Result r;
    r.v[0] = r.v[1] = r.v[2] = r.v[3] = 0;
    return r;
  }
  return mask_words(seed, counter, static_cast<uint64_t>(q));
}

// One element of the masked add: back it up, then move it if its mask word says so.
// An element the mask leaves alone is not written again (its bits are unchanged).
template <typename T, bool kAll>
DA_HD void masked_add_element(T* target, const T* d, T* backup_slot, int64_t i, uint32_t word,
                              acc_t<T> scale, uint64_t threshold) {
  const T w = target[i];
  *backup_slot = w;
  if (kAll || static_cast<uint64_t>(word) < threshold) {
    target[i] = from_acc<T>(scaled_add(to_acc(w), to_acc(d[i]), scale));
  }
}

// Dense masked add of Philox block q: elements 4q .. 4q + 3 that are < n.
template <typename T, bool kAll>
DA_HD void masked_add_group(T* target, const T* d, T* backup, int64_t n, int64_t q,
                            acc_t<T> scale, uint64_t seed, uint64_t counter, uint64_t threshold) {
  const Philox4x32Result r = group_words<kAll>(seed, counter, q);
  const int64_t base = q * 4;
DA_UNROLL
  for (int k = 0; k < 4; ++k) {
    if (base + k < n) {
      masked_add_element<T, kAll>(target, d, backup + base + k, base + k, r.v[k], scale, threshold);
    }
  }
}

// Philox blocks a row can touch: a row of row_size elements starting at any offset
// covers at most (row_size + 2) / 4 + 1 of them.
DA_HD int64_t groups_per_row(int64_t row_size) { return (row_size + 2) / 4 + 1; }

// Row-sparse masked add of the g-th Philox block overlapping row rows[j] (nothing when
// the row covers fewer blocks).
template <typename T, bool kAll>
DA_HD void masked_add_row_group(T* target, const T* d, T* backup, const int64_t* rows, int64_t j,
                                int64_t g, int64_t row_size, acc_t<T> scale, uint64_t seed,
                                uint64_t counter, uint64_t threshold) {
  const int64_t row_begin = rows[j] * row_size;
  const int64_t row_end = row_begin + row_size;
  const int64_t q = (row_begin >> 2) + g;
  const int64_t lo = q * 4 > row_begin ? q * 4 : row_begin;
  const int64_t hi = q * 4 + 4 < row_end ? q * 4 + 4 : row_end;
  if (lo >= hi) return;
  const Philox4x32Result r = group_words<kAll>(seed, counter, q);
  T* bk = backup + j * row_size - row_begin;  // bk[i] is element i's backup slot
  for (int64_t i = lo; i < hi; ++i) {
    masked_add_element<T, kAll>(target, d, bk + i, i, word_at(r, i & 3), scale, threshold);
  }
}

// Drop mask of Philox block q.
DA_HD void drop_mask_group(uint8_t* out, int64_t n, int64_t q, uint64_t seed, uint64_t counter,
                           uint64_t threshold) {
  const Philox4x32Result r = mask_words(seed, counter, static_cast<uint64_t>(q));
  const int64_t base = q * 4;
DA_UNROLL
  for (int k = 0; k < 4; ++k) {
    if (base + k < n) out[base + k] = static_cast<uint64_t>(r.v[k]) < threshold ? 1 : 0;
  }
}

// Four elements of one type in one aligned access.
template <typename T>
struct alignas(4 * sizeof(T)) Vec4 {
  T v[4];
};

// masked_add_group() for a whole group (4q + 3 < n) of Vec4-aligned buffers.
template <typename T, bool kAll>
DA_HD void masked_add_vec4(T* target, const T* d, T* backup, int64_t q, acc_t<T> scale,
                           uint64_t seed, uint64_t counter, uint64_t threshold) {
  const Philox4x32Result r = group_words<kAll>(seed, counter, q);
  Vec4<T> w = reinterpret_cast<const Vec4<T>*>(target)[q];
  const Vec4<T> dv = reinterpret_cast<const Vec4<T>*>(d)[q];
  reinterpret_cast<Vec4<T>*>(backup)[q] = w;
DA_UNROLL
  for (int k = 0; k < 4; ++k) {
    if (kAll || static_cast<uint64_t>(r.v[k]) < threshold) {
      w.v[k] = from_acc<T>(scaled_add(to_acc(w.v[k]), to_acc(dv.v[k]), scale));
    }
  }
  reinterpret_cast<Vec4<T>*>(target)[q] = w;
}

// The mask bytes of a whole group (4q + 3 < n) as one little-endian 32-bit word.
DA_HD uint32_t drop_mask_packed(int64_t q, uint64_t seed, uint64_t counter, uint64_t threshold) {
  const Philox4x32Result r = mask_words(seed, counter, static_cast<uint64_t>(q));
  uint32_t packed = 0;
DA_UNROLL
  for (int k = 0; k < 4; ++k) {
    packed |= (static_cast<uint64_t>(r.v[k]) < threshold ? 1u : 0u) << (8 * k);
  }
  return packed;
}

// ---------------------------------------------------------------------------------------
// Kernels.

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t grid_threads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// partial[b] = combine_lanes(lane sums of norm block b), one CTA tile of
// kNormBlocksPerCta norm blocks at a time; thread t of a tile is lane t % 8 of block
// t / 8. Launched with kThreads threads. `rows` == nullptr selects the dense sum.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    norm_partials_kernel(const T* __restrict__ d, const int64_t* __restrict__ rows, int64_t nrows,
                         int64_t row_size, int64_t n, int64_t nblocks, double* __restrict__ partial) {
  __shared__ double lanes[kThreads];
  const int lane = static_cast<int>(threadIdx.x % kNormLanes);
  const int local = static_cast<int>(threadIdx.x / kNormLanes);
  const int64_t ntiles = (nblocks + kNormBlocksPerCta - 1) / kNormBlocksPerCta;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const int64_t block = tile * kNormBlocksPerCta + local;
    double sum = 0.0;
    if (block < nblocks) {
      sum = rows == nullptr ? lane_squares_dense(d, n, block, lane)
                            : lane_squares_rows(d, rows, nrows, row_size, n, block, lane);
    }
    lanes[threadIdx.x] = sum;
    __syncthreads();
    if (lane == 0 && block < nblocks) partial[block] = combine_lanes(&lanes[threadIdx.x]);
    __syncthreads();
  }
}

// *out = ((0.0 + partial[0]) + partial[1]) + ..., the CPU's order. One CTA: its threads
// stage the partials in shared memory so thread 0's dependent adds do not wait on
// global loads.
__global__ void __launch_bounds__(kThreads)
    sum_partials_kernel(const double* __restrict__ partial, int64_t count, double* __restrict__ out) {
  __shared__ double staged[kSumChunk];
  double total = 0.0;
  for (int64_t base = 0; base < count; base += kSumChunk) {
    const int m = static_cast<int>(count - base < kSumChunk ? count - base : kSumChunk);
    for (int k = static_cast<int>(threadIdx.x); k < m; k += blockDim.x) staged[k] = partial[base + k];
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int k = 0; k < m; ++k) total = add_rn(total, staged[k]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = total;
}

// Dense masked add, one Philox block (4 elements) per thread per step. kVec: all three
// pointers are aligned for Vec4 accesses, used for every whole group. No __restrict__ on
// target/direction: perturb(w, w) passes the same buffer as both, which is well defined
// here (each element is read before it is written, by the one thread that owns it).
template <typename T, bool kAll, bool kVec>
__global__ void __launch_bounds__(kThreads)
    masked_add_kernel(T* target, const T* d, T* backup, int64_t n, acc_t<T> scale, uint64_t seed,
                      uint64_t counter, uint64_t threshold) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t q = global_thread(); q < groups; q += grid_threads()) {
    if (kVec && q * 4 + 4 <= n) {
      masked_add_vec4<T, kAll>(target, d, backup, q, scale, seed, counter, threshold);
    } else {
      masked_add_group<T, kAll>(target, d, backup, n, q, scale, seed, counter, threshold);
    }
  }
}

// Row-sparse masked add: work item t is Philox block t % gpr of row rows[t / gpr].
template <typename T, bool kAll>
__global__ void __launch_bounds__(kThreads)
    masked_add_rows_kernel(T* target, const T* d, T* backup, const int64_t* __restrict__ rows,
                           int64_t nrows, int64_t row_size, int64_t gpr, acc_t<T> scale,
                           uint64_t seed, uint64_t counter, uint64_t threshold) {
  const int64_t items = nrows * gpr;
  for (int64_t t = global_thread(); t < items; t += grid_threads()) {
    const int64_t j = t / gpr;
    masked_add_row_group<T, kAll>(target, d, backup, rows, j, t - j * gpr, row_size, scale, seed,
                                  counter, threshold);
  }
}

// Drop mask, one Philox block per thread per step; kVec: `out` is 4-byte aligned, so a
// whole group is one 32-bit store.
template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    drop_mask_kernel(uint8_t* __restrict__ out, int64_t n, uint64_t seed, uint64_t counter,
                     uint64_t threshold) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t q = global_thread(); q < groups; q += grid_threads()) {
    if (kVec && q * 4 + 4 <= n) {
      reinterpret_cast<uint32_t*>(out)[q] = drop_mask_packed(q, seed, counter, threshold);
    } else {
      drop_mask_group(out, n, q, seed, counter, threshold);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Launch helpers.

inline unsigned int grid_for(int64_t items) {
  int64_t blocks = (items + kThreads - 1) / kThreads;
  if (blocks < 1) blocks = 1;
  if (blocks > kMaxGrid) blocks = kMaxGrid;
  return static_cast<unsigned int>(blocks);
}

inline bool aligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

inline int64_t norm_blocks(int64_t n) { return (n + kNormBlock - 1) / kNormBlock; }

// Calls f(T{}) with T the C++ type of `dtype`; cudaErrorInvalidValue for anything else.
template <typename F>
cudaError_t dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32:
      return f(float{});
    case DType::Float64:
      return f(double{});
    case DType::Float16:
      return f(__half{});
    case DType::BFloat16:
      return f(__nv_bfloat16{});
  }
  return cudaErrorInvalidValue;
}

template <typename T>
cudaError_t squared_norm_impl(const T* d, const int64_t* rows, int64_t nrows, int64_t row_size,
                              int64_t n, double* scratch, double* out, cudaStream_t stream) {
  const int64_t nblocks = norm_blocks(n);
  const int64_t ntiles = (nblocks + kNormBlocksPerCta - 1) / kNormBlocksPerCta;
  const unsigned int grid = static_cast<unsigned int>(ntiles < kMaxGrid ? ntiles : kMaxGrid);
  norm_partials_kernel<T><<<grid, kThreads, 0, stream>>>(d, rows, nrows, row_size, n, nblocks, scratch);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  sum_partials_kernel<<<1, kThreads, 0, stream>>>(scratch, nblocks, out);
  return cudaGetLastError();
}

template <typename T, bool kAll>
cudaError_t masked_add_impl(T* target, const T* d, T* backup, int64_t n, acc_t<T> scale,
                            uint64_t seed, uint64_t counter, uint64_t threshold,
                            cudaStream_t stream) {
  const unsigned int grid = grid_for((n + 3) / 4);
  const size_t vec = sizeof(Vec4<T>);
  if (aligned(target, vec) && aligned(d, vec) && aligned(backup, vec)) {
    masked_add_kernel<T, kAll, true>
        <<<grid, kThreads, 0, stream>>>(target, d, backup, n, scale, seed, counter, threshold);
  } else {
    masked_add_kernel<T, kAll, false>
        <<<grid, kThreads, 0, stream>>>(target, d, backup, n, scale, seed, counter, threshold);
  }
  return cudaGetLastError();
}

template <typename T, bool kAll>
cudaError_t masked_add_rows_impl(T* target, const T* d, T* backup, const int64_t* rows,
                                 int64_t nrows, int64_t row_size, acc_t<T> scale, uint64_t seed,
                                 uint64_t counter, uint64_t threshold, cudaStream_t stream) {
  const int64_t gpr = groups_per_row(row_size);
  masked_add_rows_kernel<T, kAll><<<grid_for(nrows * gpr), kThreads, 0, stream>>>(
      target, d, backup, rows, nrows, row_size, gpr, scale, seed, counter, threshold);
  return cudaGetLastError();
}

// Every draw is below 2^32: the mask keeps everything and need not be drawn.
inline bool keeps_all(uint64_t threshold) { return threshold >= (uint64_t(1) << 32); }

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Launchers (perturb_kernel.h).

int64_t squared_norm_scratch_size(int64_t n) { return n > 0 ? detail::norm_blocks(n) : 0; }

cudaError_t launch_squared_norm(DType dtype, const void* direction, int64_t n, double* scratch,
                                double* out, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaMemsetAsync(out, 0, sizeof(double), stream);  // +0.0 is all zero bits
  return detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    return detail::squared_norm_impl<T>(static_cast<const T*>(direction), nullptr, 0, 0, n, scratch,
                                        out, stream);
  });
}

cudaError_t launch_squared_norm_rows(DType dtype, const void* direction, const int64_t* rows,
                                     int64_t nrows, int64_t row_size, int64_t n, double* scratch,
                                     double* out, cudaStream_t stream) {
  if (n < 0 || nrows < 0 || row_size < 0) return cudaErrorInvalidValue;
  if (n == 0 || nrows == 0 || row_size == 0) return cudaMemsetAsync(out, 0, sizeof(double), stream);
  return detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    return detail::squared_norm_impl<T>(static_cast<const T*>(direction), rows, nrows, row_size, n,
                                        scratch, out, stream);
  });
}

cudaError_t launch_masked_add(DType dtype, void* target, const void* direction, void* backup,
                              int64_t n, double scale, uint64_t seed, uint64_t counter,
                              uint64_t threshold, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  return detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    // The scale is rounded to the compute type once, as the CPU kernel does.
    const auto s = static_cast<detail::acc_t<T>>(scale);
    T* w = static_cast<T*>(target);
    const T* d = static_cast<const T*>(direction);
    T* bk = static_cast<T*>(backup);
    return detail::keeps_all(threshold)
               ? detail::masked_add_impl<T, true>(w, d, bk, n, s, seed, counter, threshold, stream)
               : detail::masked_add_impl<T, false>(w, d, bk, n, s, seed, counter, threshold, stream);
  });
}

cudaError_t launch_masked_add_rows(DType dtype, void* target, const void* direction, void* backup,
                                   const int64_t* rows, int64_t nrows, int64_t row_size,
                                   double scale, uint64_t seed, uint64_t counter,
                                   uint64_t threshold, cudaStream_t stream) {
  if (nrows < 0 || row_size < 0) return cudaErrorInvalidValue;
  if (nrows == 0 || row_size == 0) return cudaSuccess;
  return detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const auto s = static_cast<detail::acc_t<T>>(scale);
    T* w = static_cast<T*>(target);
    const T* d = static_cast<const T*>(direction);
    T* bk = static_cast<T*>(backup);
    return detail::keeps_all(threshold)
               ? detail::masked_add_rows_impl<T, true>(w, d, bk, rows, nrows, row_size, s, seed,
                                                       counter, threshold, stream)
               : detail::masked_add_rows_impl<T, false>(w, d, bk, rows, nrows, row_size, s, seed,
                                                        counter, threshold, stream);
  });
}

cudaError_t launch_drop_mask(uint8_t* out, int64_t n, uint64_t seed, uint64_t counter,
                             uint64_t threshold, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  const unsigned int grid = detail::grid_for((n + 3) / 4);
  if (detail::aligned(out, 4)) {
    detail::drop_mask_kernel<true><<<grid, detail::kThreads, 0, stream>>>(out, n, seed, counter, threshold);
  } else {
    detail::drop_mask_kernel<false><<<grid, detail::kThreads, 0, stream>>>(out, n, seed, counter, threshold);
  }
  return cudaGetLastError();
}

}  // namespace cuda_kernels
}  // namespace ops
}  // namespace dropattack
