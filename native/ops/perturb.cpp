// Device-independent part of the perturbation op: argument checks, the norm, the
// skip rule, backup allocation, restore. The kernels live in cpu/ and cuda/.
#include "perturb.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <deque>
#include <mutex>

#include "cpu_cache.h"
#include "perturb_common.h"

namespace dropattack {
namespace ops {

namespace {

bool is_float_type(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

void check_options(const PerturbOptions& o) {
  TORCH_CHECK(std::isfinite(o.epsilon) && o.epsilon >= 0.0,
              "perturb: epsilon must be a finite number >= 0, got ", o.epsilon);
  TORCH_CHECK(o.p >= 0.0 && o.p <= 1.0, "perturb: p must be in [0, 1], got ", o.p);
}

void check_pair(const at::Tensor& target, const at::Tensor& direction) {
  TORCH_CHECK(target.defined(), "perturb: target is an undefined tensor");
  TORCH_CHECK(direction.defined(), "perturb: direction is an undefined tensor");
  TORCH_CHECK(is_float_type(target.scalar_type()),
              "perturb: target must be float32, float64, float16 or bfloat16, got ",
              target.scalar_type());
  TORCH_CHECK(direction.scalar_type() == target.scalar_type(), "perturb: direction dtype ",
              direction.scalar_type(), " does not match target dtype ", target.scalar_type());
  TORCH_CHECK(direction.sizes() == target.sizes(), "perturb: direction shape ", direction.sizes(),
              " does not match target shape ", target.sizes());
  TORCH_CHECK(direction.device() == target.device(), "perturb: direction is on ",
              direction.device(), " but target is on ", target.device());
  TORCH_CHECK(target.is_contiguous(), "perturb: target must be contiguous (it is updated in place)");
  TORCH_CHECK(target.layout() == at::kStrided && direction.layout() == at::kStrided,
              "perturb: sparse tensors are not supported; pass rows for the row-sparse path");
}

bool is_cuda(const at::Tensor& t) { return t.device().is_cuda(); }

void require_cuda_build(const at::Tensor& t) {
#ifndef DROPATTACK_WITH_CUDA
  TORCH_CHECK(!is_cuda(t), "perturb: this build of dropattack has no CUDA kernels; rebuild against a CUDA LibTorch");
#else
  (void)t;
#endif
}

double run_squared_norm(const at::Tensor& direction, const at::Tensor* rows) {
  require_cuda_build(direction);
#ifdef DROPATTACK_WITH_CUDA
  if (is_cuda(direction)) return cuda::squared_norm_kernel(direction, rows);
#endif
  return cpu::squared_norm_kernel(direction, rows);
}

void run_masked_add(at::Tensor& target, const at::Tensor& direction, at::Tensor& backup,
                    const at::Tensor* rows, double scale, const PerturbOptions& o) {
  const uint64_t threshold = mask_threshold(o.p);
#ifdef DROPATTACK_WITH_CUDA
  if (is_cuda(target)) {
    cuda::masked_add_kernel(target, direction, backup, rows, scale, o.seed, o.counter, threshold);
    return;
  }
#endif
  cpu::masked_add_kernel(target, direction, backup, rows, scale, o.seed, o.counter, threshold);
}

// Backups of the same size come back every step (the same parameters are attacked each
// batch). A fresh multi-megabyte allocation is mmap'd and faulted in page by page, which
// costs more than the perturbation itself, so restored backups wait here for reuse. A
// buffer serves any request of the same dtype and device up to its size. CPU backups skip
// the pool when the caching CPU allocator (cpu_cache.h) keeps freed blocks instead.
class BackupPool {
 public:
  static constexpr size_t kMaxBuffers = 8;

  at::Tensor acquire(int64_t numel, const at::TensorOptions& options) {
    std::lock_guard<std::mutex> lock(mu_);
    auto best = buffers_.end();
    for (auto it = buffers_.begin(); it != buffers_.end(); ++it) {
      if (it->scalar_type() == options.dtype().toScalarType() && it->device() == options.device() &&
          it->numel() >= numel && it->numel() <= 2 * numel + 4096 &&
          (best == buffers_.end() || it->numel() < best->numel())) {
        best = it;
      }
    }
    if (best == buffers_.end()) return at::empty({numel}, options);
    at::Tensor out = *best;
    buffers_.erase(best);
    return out;
  }

  void release(at::Tensor buffer) {
    // With the caching CPU allocator installed, a freed CPU backup goes back to it, where
    // any tensor of its size can reuse it (the optimizer's temporaries after the attack);
    // kept here it would add its size to the step's peak memory.
    if (buffer.device().is_cpu() && cpu_cache_stats().installed) return;
    std::lock_guard<std::mutex> lock(mu_);
    buffers_.push_back(std::move(buffer));
    if (buffers_.size() > kMaxBuffers) buffers_.pop_front();
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    buffers_.clear();
  }

  std::vector<at::Tensor> buffers() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::vector<at::Tensor>(buffers_.begin(), buffers_.end());
  }

  int64_t bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t total = 0;
    for (const auto& b : buffers_) total += static_cast<int64_t>(b.nbytes());
    return total;
  }

 private:
  std::mutex mu_;
  std::deque<at::Tensor> buffers_;
};

BackupPool& pool() {
  static BackupPool* instance = new BackupPool();  // never destroyed: safe at exit
  return *instance;
}

// Shared tail of the dense and sparse paths once the squared norm is known.
// `compact`: direction holds only the rows `rows` (CPU only).
PerturbState apply(at::Tensor& target, const at::Tensor& direction, const at::Tensor* rows,
                   double sumsq, const PerturbOptions& o, bool compact = false) {
  PerturbState state;
  state.sparse = rows != nullptr;
  state.norm = std::sqrt(sumsq);
  if (!(sumsq > 0.0) || !std::isfinite(sumsq)) {
    state.skipped = true;
    return state;
  }
  state.scale = o.epsilon / state.norm;
  if (o.epsilon == 0.0 || mask_threshold(o.p) == 0) {
    // Nothing would change: no backup, restore() is a no-op.
    return state;
  }
  std::vector<int64_t> shape(target.sizes().begin(), target.sizes().end());
  int64_t numel = target.numel();
  if (rows != nullptr) {
    state.rows = *rows;
    numel = numel / target.size(0) * rows->size(0);
    shape[0] = rows->size(0);
  }
  const auto options = at::TensorOptions().dtype(target.scalar_type()).device(target.device());
  state.backup_buffer = pool().acquire(numel, options);
  state.backup = state.backup_buffer.narrow(0, 0, numel).view(shape);
  if (compact) {
    cpu::masked_add_compact_kernel(target, direction, state.backup, *rows, state.scale, o.seed, o.counter,
                                   mask_threshold(o.p));
  } else {
    run_masked_add(target, direction, state.backup, rows, state.scale, o);
  }
  return state;
}

}  // namespace

double squared_norm(const at::Tensor& t) {
  TORCH_CHECK(t.defined() && is_float_type(t.scalar_type()),
              "squared_norm: expected a float tensor");
  return run_squared_norm(t.contiguous(), nullptr);
}

PerturbState perturb(at::Tensor& target, const at::Tensor& direction, const PerturbOptions& options) {
  check_pair(target, direction);
  check_options(options);
  require_cuda_build(target);
  const at::Tensor d = direction.contiguous();
  if (target.numel() == 0) {
    PerturbState state;
    state.skipped = true;
    return state;
  }
  const double sumsq = run_squared_norm(d, nullptr);
  return apply(target, d, nullptr, sumsq, options);
}

PerturbState perturb_rows(at::Tensor& target, const at::Tensor& direction, const at::Tensor& rows,
                          const PerturbOptions& options) {
  check_pair(target, direction);
  check_options(options);
  require_cuda_build(target);
  TORCH_CHECK(rows.defined(), "perturb: rows is an undefined tensor");
  TORCH_CHECK(target.dim() >= 1, "perturb: rows needs a target with at least one dimension");
  TORCH_CHECK(rows.dim() == 1, "perturb: rows must be one-dimensional, got shape ", rows.sizes());
  TORCH_CHECK(rows.scalar_type() == at::kLong || rows.scalar_type() == at::kInt,
              "perturb: rows must be int64 or int32, got ", rows.scalar_type());
  at::Tensor r = rows.to(target.device(), at::kLong);
  r = std::get<0>(at::_unique(r, /*sorted=*/true, /*return_inverse=*/false));
  if (r.numel() > 0) {
    const int64_t lo = r.min().item<int64_t>();
    const int64_t hi = r.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < target.size(0), "perturb: rows holds index ", lo < 0 ? lo : hi,
                ", out of range for a target with ", target.size(0), " rows");
  }
  const at::Tensor d = direction.contiguous();
  if (r.numel() == 0 || target.numel() == 0) {
    PerturbState state;
    state.sparse = true;
    state.skipped = true;
    return state;
  }
  const double sumsq = run_squared_norm(d, &r);
  return apply(target, d, &r, sumsq, options);
}

PerturbState perturb_sparse(at::Tensor& target, const at::Tensor& rows, const at::Tensor& values,
                            const PerturbOptions& options) {
  check_options(options);
  TORCH_CHECK(target.defined() && values.defined() && rows.defined(), "perturb_sparse: undefined tensor");
  require_cuda_build(target);
  TORCH_CHECK(is_float_type(target.scalar_type()), "perturb_sparse: target must be a float tensor, got ",
              target.scalar_type());
  TORCH_CHECK(target.dim() >= 1 && target.is_contiguous(), "perturb_sparse: target must be contiguous with rows");
  TORCH_CHECK(rows.dim() == 1 && rows.scalar_type() == at::kLong, "perturb_sparse: rows must be 1-D int64");
  TORCH_CHECK(values.dim() == target.dim() && values.size(0) == rows.size(0) &&
                  values.sizes().slice(1) == target.sizes().slice(1),
              "perturb_sparse: values shape ", values.sizes(), " does not fit ", rows.size(0), " rows of a target of shape ",
              target.sizes());
  TORCH_CHECK(values.scalar_type() == target.scalar_type() && values.device() == target.device() &&
                  rows.device() == target.device(),
              "perturb_sparse: values and rows must have the target's dtype and device");
  if (rows.numel() == 0 || target.numel() == 0) {
    PerturbState state;
    state.sparse = true;
    state.skipped = true;
    return state;
  }
  if (!target.device().is_cpu()) {
    // The device kernels read a dense direction: scatter the rows into one.
    at::NoGradGuard no_grad;
    const at::Tensor dense = at::zeros_like(target).index_copy_(0, rows, values);
    return perturb_rows(target, dense, rows, options);
  }
  const at::Tensor v = values.contiguous();
  const at::Tensor r = rows.contiguous();
  const int64_t row_size = target.numel() / target.size(0);
  const double sumsq = cpu::squared_norm_compact_kernel(v, r, row_size);
  return apply(target, v, &r, sumsq, options, /*compact=*/true);
}

void restore(at::Tensor& target, PerturbState& state) {
  if (!state.backup.defined()) return;
  at::NoGradGuard no_grad;
  if (state.sparse) {
    target.index_copy_(0, state.rows, state.backup);
  } else {
    target.copy_(state.backup);
  }
  state.backup = at::Tensor();
  state.rows = at::Tensor();
  pool().release(std::move(state.backup_buffer));
  state.backup_buffer = at::Tensor();
}

void release_cached_backups() { pool().clear(); }

int64_t cached_backup_bytes() { return pool().bytes(); }

std::vector<at::Tensor> cached_backups() { return pool().buffers(); }

at::Tensor drop_mask(int64_t numel, double p, uint64_t seed, uint64_t counter, const at::Device& device) {
  TORCH_CHECK(numel >= 0, "dropMask: numel must be >= 0, got ", numel);
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "dropMask: p must be in [0, 1], got ", p);
  at::Tensor out = at::empty({numel}, at::TensorOptions().dtype(at::kBool).device(device));
  if (numel == 0) return out;
#ifdef DROPATTACK_WITH_CUDA
  if (device.is_cuda()) {
    cuda::drop_mask_kernel(out, seed, counter, mask_threshold(p));
    return out;
  }
#else
  TORCH_CHECK(!device.is_cuda(), "dropMask: this build of dropattack has no CUDA kernels");
#endif
  cpu::drop_mask_kernel(out, seed, counter, mask_threshold(p));
  return out;
}

}  // namespace ops
}  // namespace dropattack
