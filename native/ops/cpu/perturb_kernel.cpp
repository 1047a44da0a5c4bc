// CPU kernels of the perturbation op. Compiled with -ffp-contract=off (see CMakeLists.txt)
// so the scaled add rounds exactly as perturb_common.h says, whatever the target ISA.
//
// Two passes over the data: the squared norm of the direction (fixed blocks and lanes,
// so the sum is the same for any thread count), then one fused pass that writes the
// backup and the masked scaled add. The mask for a chunk is generated into a small
// buffer first, which keeps the add loop branch-free and vectorizable.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../perturb.h"
#include "../perturb_common.h"

namespace dropattack {
namespace ops {
namespace cpu {

namespace {

constexpr int64_t kChunk = 2048;  // elements per mask buffer (multiple of 4)

template <typename T>
using acc_t = typename std::conditional<std::is_same<T, double>::value, double, float>::type;

// Squared norm of elements [begin, end) of one norm block, `begin` a multiple of kNormLanes.
template <typename T>
double block_squares(const T* d, int64_t begin, int64_t end) {
  double lanes[kNormLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = begin;
  for (; i + kNormLanes <= end; i += kNormLanes) {
    for (int j = 0; j < kNormLanes; ++j) {
      const double v = static_cast<double>(d[i + j]);
      lanes[j] += v * v;
    }
  }
  for (; i < end; ++i) {
    const double v = static_cast<double>(d[i]);
    lanes[i % kNormLanes] += v * v;
  }
  return combine_lanes(lanes);
}

template <typename T>
double dense_squares(const T* d, int64_t n) {
  const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(blocks, 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      partial[b] = block_squares(d, b * kNormBlock, std::min(n, (b + 1) * kNormBlock));
    }
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

// The same sum over the elements of `rows` only (sorted, unique). Elements outside the
// rows are zero in the direction, so each lane sees the same nonzero terms in the same
// order as in dense_squares, and the skipped +0.0 terms change nothing.
// With `compact`, d holds the rows only (d[r * row_size + k] is element k of row rows[r]).
template <typename T>
double row_squares(const T* d, const int64_t* rows, int64_t nrows, int64_t row_size, bool compact = false) {
  double total = 0.0;
  double lanes[kNormLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t current_block = -1;
  for (int64_t r = 0; r < nrows; ++r) {
    const int64_t start = rows[r] * row_size;
    const int64_t end = start + row_size;
    int64_t i = start;
    while (i < end) {
      const int64_t block = i / kNormBlock;
      if (block != current_block) {
        if (current_block >= 0) total += combine_lanes(lanes);
        std::fill(lanes, lanes + kNormLanes, 0.0);
        current_block = block;
      }
      const int64_t stop = std::min(end, (block + 1) * kNormBlock);
      const int64_t shift = compact ? start - r * row_size : 0;  // d[i - shift] is element i
      for (; i < stop; ++i) {
        const double v = static_cast<double>(d[i - shift]);
        lanes[i % kNormLanes] += v * v;
      }
    }
  }
  if (current_block >= 0) total += combine_lanes(lanes);
  return total;
}

// Philox-4x32-10 words of blocks first_block .. first_block + nblocks - 1 into
// out[4 * k + j], straight from the shared header.
void philox_blocks_scalar(uint32_t* out, uint64_t first_block, int64_t nblocks, uint64_t seed, uint64_t counter) {
  for (int64_t k = 0; k < nblocks; ++k, out += 4) {
    const Philox4x32Result r = mask_words(seed, counter, first_block + static_cast<uint64_t>(k));
    out[0] = r.v[0];
    out[1] = r.v[1];
    out[2] = r.v[2];
    out[3] = r.v[3];
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DA_HAVE_AVX2_PATH 1
// One Philox round on eight counters.
__attribute__((target("avx2"))) inline void philox_round_avx2(__m256i& c0, __m256i& c1, __m256i& c2, __m256i& c3,
                                                               __m256i m0, __m256i m1, __m256i key0, __m256i key1) {
  const __m256i e0 = _mm256_mul_epu32(c0, m0);
  const __m256i o0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
  const __m256i lo0 = _mm256_blend_epi32(e0, _mm256_slli_epi64(o0, 32), 0xAA);
  const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(e0, 32), o0, 0xAA);
  const __m256i e1 = _mm256_mul_epu32(c2, m1);
  const __m256i o1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
  const __m256i lo1 = _mm256_blend_epi32(e1, _mm256_slli_epi64(o1, 32), 0xAA);
  const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(e1, 32), o1, 0xAA);
  c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), key0);
  c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), key1);
  c1 = lo1;
  c3 = lo0;
}

// Transposes 4 x 8 words (word j of counters 0..7) into 8 blocks of 4 words at `out`.
__attribute__((target("avx2"))) inline void store_blocks_avx2(uint32_t* out, __m256i c0, __m256i c1, __m256i c2,
                                                               __m256i c3) {
  const __m256i t0 = _mm256_unpacklo_epi32(c0, c1);  // blocks 0,1 | 4,5: words 0,1
  const __m256i t1 = _mm256_unpackhi_epi32(c0, c1);  // blocks 2,3 | 6,7: words 0,1
  const __m256i t2 = _mm256_unpacklo_epi32(c2, c3);  // blocks 0,1 | 4,5: words 2,3
  const __m256i t3 = _mm256_unpackhi_epi32(c2, c3);  // blocks 2,3 | 6,7: words 2,3
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2);  // block 0 | block 4
  const __m256i u1 = _mm256_unpackhi_epi64(t0, t2);  // block 1 | block 5
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3);  // block 2 | block 6
  const __m256i u3 = _mm256_unpackhi_epi64(t1, t3);  // block 3 | block 7
  __m256i* o = reinterpret_cast<__m256i*>(out);
  _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
  _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
  _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
  _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
}

// Philox-4x32-10 for blocks first_block .. first_block + nblocks - 1 into out[4 * k + j],
// sixteen counters at a time with AVX2 (the 32x32->64 multiplies as two vpmuludq, even
// and odd lanes), the tail with the shared header.
__attribute__((target("avx2"))) void philox_blocks_avx2(uint32_t* out, uint64_t first_block, int64_t nblocks,
                                                         uint64_t seed, uint64_t counter) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  int64_t b = 0;
  // Two independent groups of eight per iteration: one group's multiply latency hides
  // behind the other's.
  for (; b + 16 <= nblocks; b += 16) {
    alignas(32) uint32_t lo[16], hi[16];
    for (int l = 0; l < 16; ++l) {
      const uint64_t block = first_block + static_cast<uint64_t>(b + l);
      lo[l] = static_cast<uint32_t>(block);
      hi[l] = static_cast<uint32_t>(block >> 32);
    }
    __m256i a0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    __m256i a1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo + 8));
    __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi + 8));
    __m256i a2 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter)));
    __m256i a3 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter >> 32)));
    __m256i b2 = a2, b3 = a3;
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      const __m256i key0 = _mm256_set1_epi32(static_cast<int>(k0));
      const __m256i key1 = _mm256_set1_epi32(static_cast<int>(k1));
      philox_round_avx2(a0, a1, a2, a3, m0, m1, key0, key1);
      philox_round_avx2(b0, b1, b2, b3, m0, m1, key0, key1);
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    store_blocks_avx2(out + 4 * b, a0, a1, a2, a3);
    store_blocks_avx2(out + 4 * (b + 8), b0, b1, b2, b3);
  }
  philox_blocks_scalar(out + 4 * b, first_block + static_cast<uint64_t>(b), nblocks - b, seed, counter);
}
#endif

// The generator is the cost of the masked pass once memory is fast enough, and compilers
// do not vectorize its 32x32->64 multiplies by themselves: AVX2 where the CPU has it
// (checked once at run time), the header's scalar code otherwise. Both give the same words.
void philox_blocks(uint32_t* out, uint64_t first_block, int64_t nblocks, uint64_t seed, uint64_t counter) {
#ifdef DA_HAVE_AVX2_PATH
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2) {
    philox_blocks_avx2(out, first_block, nblocks, seed, counter);
    return;
  }
#endif
  philox_blocks_scalar(out, first_block, nblocks, seed, counter);
}

// Mask words of elements [begin, end): word[k] belongs to element begin + k. The same
// values as mask_words() in perturb_common.h (the tests check it against the header).
const uint32_t* mask_word_range(uint32_t* buffer, int64_t begin, int64_t end, uint64_t seed, uint64_t counter) {
  const int64_t first_block = begin >> 2;
  const int64_t nblocks = ((end + 3) >> 2) - first_block;
  philox_blocks(buffer, static_cast<uint64_t>(first_block), nblocks, seed, counter);
  return buffer + (begin & 3);
}

// Words needed for one chunk: whole Philox blocks (a chunk may start mid-block).
constexpr int64_t kWordBuffer = kChunk + 8;

// mask[k] = 1 when element begin + k is attacked, for k in [0, end - begin).
void fill_mask(uint8_t* mask, int64_t begin, int64_t end, uint64_t seed, uint64_t counter, uint64_t threshold) {
  alignas(64) uint32_t words[kWordBuffer];
  const uint32_t* w = mask_word_range(words, begin, end, seed, counter);
  const int64_t n = end - begin;
  for (int64_t k = 0; k < n; ++k) mask[k] = static_cast<uint64_t>(w[k]) < threshold;
}

// The add loops are kept free of branches so they vectorize. The mask selects between the
// moved and the original value bit-wise (an all-ones or all-zeros word of the element's
// width): a ternary on floats with an integer condition stays scalar and mispredicts on
// every other element at p = 0.5, five times slower.
template <typename T>
struct Bits;
template <> struct Bits<float> { using type = uint32_t; };
template <> struct Bits<double> { using type = uint64_t; };
template <> struct Bits<c10::Half> { using type = uint16_t; };
template <> struct Bits<c10::BFloat16> { using type = uint16_t; };

template <typename T>
inline T select_bits(bool keep_moved, T moved, T original) {
  using U = typename Bits<T>::type;
  static_assert(sizeof(U) == sizeof(T), "bit width");
  U a, b;
  std::memcpy(&a, &moved, sizeof(T));
  std::memcpy(&b, &original, sizeof(T));
  const U m = static_cast<U>(U(0) - static_cast<U>(keep_moved));
  const U r = static_cast<U>((a & m) | (b & static_cast<U>(~m)));
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DA_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DA_CLONES
#endif

template <typename T>
inline void add_full(T* __restrict w, const T* __restrict d, T* __restrict bk, int64_t n, acc_t<T> scale) {
  for (int64_t k = 0; k < n; ++k) {
    const T wk = w[k];
    bk[k] = wk;
    w[k] = static_cast<T>(scaled_add(static_cast<acc_t<T>>(wk), static_cast<acc_t<T>>(d[k]), scale));
  }
}

template <typename T>
inline void add_masked(T* __restrict w, const T* __restrict d, T* __restrict bk, const uint32_t* __restrict words,
                       int64_t n, acc_t<T> scale, uint32_t threshold) {
  for (int64_t k = 0; k < n; ++k) {
    const T wk = w[k];
    bk[k] = wk;
    const T moved = static_cast<T>(scaled_add(static_cast<acc_t<T>>(wk), static_cast<acc_t<T>>(d[k]), scale));
    w[k] = select_bits(words[k] < threshold, moved, wk);
  }
}

// Non-template entry points so each carries an AVX2 clone chosen at run time.
DA_CLONES void add_full_f32(float* w, const float* d, float* bk, int64_t n, float scale) { add_full(w, d, bk, n, scale); }
DA_CLONES void add_masked_f32(float* w, const float* d, float* bk, const uint32_t* words, int64_t n, float scale,
                              uint32_t threshold) {
  add_masked(w, d, bk, words, n, scale, threshold);
}
DA_CLONES void add_full_f64(double* w, const double* d, double* bk, int64_t n, double scale) { add_full(w, d, bk, n, scale); }
DA_CLONES void add_masked_f64(double* w, const double* d, double* bk, const uint32_t* words, int64_t n, double scale,
                              uint32_t threshold) {
  add_masked(w, d, bk, words, n, scale, threshold);
}

// One chunk, element-wise, safe when the target is also the direction (each element is
// read before it is written): the restrict-qualified loops above must not see aliasing.
template <typename T>
void add_chunk_aliased(T* w, T* bk, const uint32_t* words, int64_t n, acc_t<T> scale, bool full, uint32_t threshold) {
  for (int64_t k = 0; k < n; ++k) {
    const T wk = w[k];
    bk[k] = wk;
    const T moved = static_cast<T>(scaled_add(static_cast<acc_t<T>>(wk), static_cast<acc_t<T>>(wk), scale));
    w[k] = (full || words[k] < threshold) ? moved : wk;
  }
}

template <typename T>
void add_chunk(T* w, const T* d, T* bk, const uint32_t* words, int64_t n, acc_t<T> scale, bool full, uint32_t threshold) {
  if (full) add_full(w, d, bk, n, scale);
  else add_masked(w, d, bk, words, n, scale, threshold);
}
template <>
void add_chunk<float>(float* w, const float* d, float* bk, const uint32_t* words, int64_t n, float scale, bool full,
                      uint32_t threshold) {
  if (full) add_full_f32(w, d, bk, n, scale);
  else add_masked_f32(w, d, bk, words, n, scale, threshold);
}
template <>
void add_chunk<double>(double* w, const double* d, double* bk, const uint32_t* words, int64_t n, double scale, bool full,
                       uint32_t threshold) {
  if (full) add_full_f64(w, d, bk, n, scale);
  else add_masked_f64(w, d, bk, words, n, scale, threshold);
}

// target[i] <- mask ? target[i] + scale * d[i] : target[i], backup[i - begin] <- target[i],
// for i in [begin, end).
// `shift`: the direction's element i is d[i - shift] (0 for a dense direction; `begin`
// for one row of a compact direction, d then pointing at that row).
template <typename T>
void masked_add_range(T* target, const T* d, T* backup, int64_t begin, int64_t end,
                      acc_t<T> scale, uint64_t seed, uint64_t counter, uint64_t threshold, int64_t shift = 0) {
  const bool full = threshold >= (uint64_t(1) << 32);
  const uint32_t thr = static_cast<uint32_t>(full ? 0 : threshold);
  alignas(64) uint32_t words[kWordBuffer];
  const bool aliased = static_cast<const void*>(target + shift) == static_cast<const void*>(d);
  for (int64_t c = begin; c < end; c += kChunk) {
    const int64_t stop = std::min(end, c + kChunk);
    const uint32_t* mw = full ? nullptr : mask_word_range(words, c, stop, seed, counter);
    T* bk = backup + (c - begin);
    if (aliased) add_chunk_aliased(target + c, bk, mw, stop - c, scale, full, thr);
    else add_chunk(target + c, d + (c - shift), bk, mw, stop - c, scale, full, thr);
  }
}

}  // namespace

double squared_norm_kernel(const at::Tensor& direction, const at::Tensor* rows) {
  double result = 0.0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, direction.scalar_type(), "squared_norm", [&] {
    const scalar_t* d = direction.data_ptr<scalar_t>();
    if (rows == nullptr) {
      result = dense_squares(d, direction.numel());
    } else {
      const int64_t row_size = direction.numel() / direction.size(0);
      result = row_squares(d, rows->data_ptr<int64_t>(), rows->numel(), row_size);
    }
  });
  return result;
}

void masked_add_kernel(at::Tensor& target, const at::Tensor& direction, at::Tensor& backup,
                       const at::Tensor* rows, double scale, uint64_t seed, uint64_t counter,
                       uint64_t threshold) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, target.scalar_type(), "masked_add", [&] {
    scalar_t* w = target.data_ptr<scalar_t>();
    const scalar_t* d = direction.data_ptr<scalar_t>();
    scalar_t* bk = backup.data_ptr<scalar_t>();
    const acc_t<scalar_t> s = static_cast<acc_t<scalar_t>>(scale);
    if (rows == nullptr) {
      const int64_t n = target.numel();
      // Ranges start on multiples of 4 so each Philox block is drawn by one thread.
      at::parallel_for(0, (n + 3) / 4, 8192, [&](int64_t q0, int64_t q1) {
        const int64_t begin = q0 * 4;
        const int64_t end = std::min(n, q1 * 4);
        masked_add_range(w, d, bk + begin, begin, end, s, seed, counter, threshold);
      });
    } else {
      const int64_t* r = rows->data_ptr<int64_t>();
      const int64_t row_size = target.numel() / target.size(0);
      at::parallel_for(0, rows->numel(), std::max<int64_t>(1, 32768 / std::max<int64_t>(1, row_size)),
                       [&](int64_t j0, int64_t j1) {
                         for (int64_t j = j0; j < j1; ++j) {
                           const int64_t begin = r[j] * row_size;
                           masked_add_range(w, d, bk + j * row_size, begin, begin + row_size, s, seed,
                                            counter, threshold);
                         }
                       });
    }
  });
}

double squared_norm_compact_kernel(const at::Tensor& values, const at::Tensor& rows, int64_t row_size) {
  double result = 0.0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, values.scalar_type(), "squared_norm_compact", [&] {
    result = row_squares(values.data_ptr<scalar_t>(), rows.data_ptr<int64_t>(), rows.numel(), row_size, true);
  });
  return result;
}

void masked_add_compact_kernel(at::Tensor& target, const at::Tensor& values, at::Tensor& backup,
                               const at::Tensor& rows, double scale, uint64_t seed, uint64_t counter,
                               uint64_t threshold) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, target.scalar_type(), "masked_add_compact", [&] {
    scalar_t* w = target.data_ptr<scalar_t>();
    const scalar_t* d = values.data_ptr<scalar_t>();
    scalar_t* bk = backup.data_ptr<scalar_t>();
    const acc_t<scalar_t> s = static_cast<acc_t<scalar_t>>(scale);
    const int64_t* r = rows.data_ptr<int64_t>();
    const int64_t row_size = target.numel() / target.size(0);
    at::parallel_for(0, rows.numel(), std::max<int64_t>(1, 32768 / std::max<int64_t>(1, row_size)),
                     [&](int64_t j0, int64_t j1) {
                       for (int64_t j = j0; j < j1; ++j) {
                         const int64_t begin = r[j] * row_size;
                         masked_add_range(w, d + j * row_size, bk + j * row_size, begin, begin + row_size, s, seed,
                                          counter, threshold, begin);
                       }
                     });
  });
}

void drop_mask_kernel(at::Tensor& out, uint64_t seed, uint64_t counter, uint64_t threshold) {
  static_assert(sizeof(bool) == 1, "bool tensors are one byte per element");
  uint8_t* m = reinterpret_cast<uint8_t*>(out.data_ptr<bool>());
  const int64_t n = out.numel();
  at::parallel_for(0, (n + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      fill_mask(m + c * kChunk, c * kChunk, std::min(n, (c + 1) * kChunk), seed, counter, threshold);
    }
  });
}

}  // namespace cpu
}  // namespace ops
}  // namespace dropattack
