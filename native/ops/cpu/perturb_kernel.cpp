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
template <typename T>
double row_squares(const T* d, const int64_t* rows, int64_t nrows, int64_t row_size) {
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
      for (; i < stop; ++i) {
        const double v = static_cast<double>(d[i]);
        lanes[i % kNormLanes] += v * v;
      }
    }
  }
  if (current_block >= 0) total += combine_lanes(lanes);
  return total;
}

// mask[k] = 1 when element begin + k is attacked, for k in [0, end - begin).
void fill_mask(uint8_t* mask, int64_t begin, int64_t end, uint64_t seed, uint64_t counter,
               uint64_t threshold) {
  uint32_t words[kChunk + 8];
  const int64_t first_block = begin >> 2;
  const int64_t last_block = (end + 3) >> 2;
  const int64_t nblocks = last_block - first_block;
  for (int64_t b = 0; b < nblocks; ++b) {
    const Philox4x32Result r = mask_words(seed, counter, static_cast<uint64_t>(first_block + b));
    words[4 * b + 0] = r.v[0];
    words[4 * b + 1] = r.v[1];
    words[4 * b + 2] = r.v[2];
    words[4 * b + 3] = r.v[3];
  }
  const uint32_t* w = words + (begin & 3);
  const int64_t n = end - begin;
  for (int64_t k = 0; k < n; ++k) mask[k] = static_cast<uint64_t>(w[k]) < threshold;
}

// target[i] <- mask ? target[i] + scale * d[i] : target[i], backup[i - begin] <- target[i],
// for i in [begin, end).
template <typename T>
void masked_add_range(T* target, const T* d, T* backup, int64_t begin, int64_t end,
                      acc_t<T> scale, uint64_t seed, uint64_t counter, uint64_t threshold) {
  const bool full = threshold >= (uint64_t(1) << 32);
  uint8_t mask[kChunk + 8];
  for (int64_t c = begin; c < end; c += kChunk) {
    const int64_t stop = std::min(end, c + kChunk);
    const int64_t n = stop - c;
    T* w = target + c;
    const T* dd = d + c;
    T* bk = backup + (c - begin);
    if (full) {
      for (int64_t k = 0; k < n; ++k) {
        const T wk = w[k];
        bk[k] = wk;
        w[k] = static_cast<T>(scaled_add(static_cast<acc_t<T>>(wk), static_cast<acc_t<T>>(dd[k]), scale));
      }
    } else {
      fill_mask(mask, c, stop, seed, counter, threshold);
      for (int64_t k = 0; k < n; ++k) {
        const T wk = w[k];
        bk[k] = wk;
        const T moved =
            static_cast<T>(scaled_add(static_cast<acc_t<T>>(wk), static_cast<acc_t<T>>(dd[k]), scale));
        w[k] = mask[k] ? moved : wk;
      }
    }
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
