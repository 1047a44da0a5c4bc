// What the CPU and CUDA perturbation kernels compute identically: the counter-based
// dropout mask (Philox-4x32-10) and the scaled masked add. This header is compiled by
// the host compiler and by nvcc; it depends on nothing but <cstdint>, so the mask of an
// element is a pure function of (seed, counter, element index) on every device and for
// every way of splitting the work.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DA_HOST_DEVICE inline
#endif

namespace dropattack {
namespace ops {

struct Philox4x32Result {
  uint32_t v[4];
};

// Philox-4x32 constants from Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"
// (SC'11), as published with Random123.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

DA_HOST_DEVICE uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(product >> 32);
  return static_cast<uint32_t>(product);
}

/// Philox-4x32 with 10 rounds: counter c[0..3], key k[0..1] -> four 32-bit words.
DA_HOST_DEVICE Philox4x32Result philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                             uint32_t k0, uint32_t k1) {
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = philox_mulhilo(kPhiloxM0, c0, &hi0);
    const uint32_t lo1 = philox_mulhilo(kPhiloxM1, c2, &hi1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  Philox4x32Result r;
  r.v[0] = c0;
  r.v[1] = c1;
  r.v[2] = c2;
  r.v[3] = c3;
  return r;
}

/// The mask keeps an element when its 32-bit draw is below this threshold, so the keep
/// probability is threshold / 2^32: exactly p for p in {0, 1}, within 2^-32 otherwise.
DA_HOST_DEVICE uint64_t mask_threshold(double p) {
  if (!(p > 0.0)) return 0;
  if (p >= 1.0) return uint64_t(1) << 32;
  return static_cast<uint64_t>(p * 4294967296.0);
}

/// The mask words of elements 4*block .. 4*block+3 for (seed, counter).
/// Key = seed (low word, high word); Philox counter = (block low, block high,
/// counter low, counter high).
DA_HOST_DEVICE Philox4x32Result mask_words(uint64_t seed, uint64_t counter, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

/// Mask bit of one element: 1 when element `index` is attacked.
DA_HOST_DEVICE bool mask_bit(uint64_t seed, uint64_t counter, uint64_t index, uint64_t threshold) {
  const Philox4x32Result r = mask_words(seed, counter, index >> 2);
  return static_cast<uint64_t>(r.v[index & 3]) < threshold;
}

// The scaled add w + scale * d, rounded once after the product and once after the sum,
// with no contraction into an FMA on either side (the CPU kernel is compiled with
// -ffp-contract=off): the same float in, the same float out, on CPU and on CUDA.
DA_HOST_DEVICE float scaled_add(float w, float d, float scale) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(w, __fmul_rn(scale, d));
#else
  return w + scale * d;
#endif
}

DA_HOST_DEVICE double scaled_add(double w, double d, double scale) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(w, __dmul_rn(scale, d));
#else
  return w + scale * d;
#endif
}

/// Elements of a squared-norm block: the norm is a sum over fixed blocks of this many
/// elements, each summed in kNormLanes interleaved lanes (lane = index mod kNormLanes), the
/// lanes then the blocks combined in a fixed order. The result depends only on the data,
/// not on threads, and a row-sparse pass that skips exact zeros reproduces it bit for bit.
constexpr int64_t kNormBlock = 16384;
constexpr int kNormLanes = 8;

DA_HOST_DEVICE double combine_lanes(const double* lanes) {
  // Fixed pairwise tree over the 8 lanes.
  return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) +
         ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
}

}  // namespace ops
}  // namespace dropattack
