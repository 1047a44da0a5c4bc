// The fused DropAttack perturbation op on LibTorch tensors.
//
//   target <- target + epsilon * M (.) direction / ||direction||_2,   M ~ Bernoulli(p)
//
// done in place with an exact backup, so restore() puts back the original bits. The
// mask M comes from perturb_common.h; the device of the target picks the kernel.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace dropattack {
namespace ops {

struct PerturbOptions {
  double epsilon = 0.0;  // L2 radius of the step (>= 0, finite)
  double p = 1.0;        // keep probability of the mask, in [0, 1]
  uint64_t seed = 0;     // Philox key
  uint64_t counter = 0;  // Philox counter high word (e.g. step, group, tensor)
};

/// What perturb() did, and what restore() needs to undo it.
struct PerturbState {
  bool skipped = false;   // the direction's norm was 0 or not finite: nothing changed
  double norm = 0.0;      // ||direction||_2 over the whole tensor (or over `rows`)
  double scale = 0.0;     // epsilon / norm, as applied
  bool sparse = false;    // only `rows` were touched
  at::Tensor backup;      // dense: the whole target; sparse: [rows, ...] of the target
  at::Tensor backup_buffer;  // the pooled flat buffer `backup` is a view of
  at::Tensor rows;        // sparse: sorted unique row indices (int64, target's device)
  int64_t backup_bytes() const { return backup.defined() ? backup.nbytes() : 0; }
};

/// Squared L2 norm of `t` with the fixed block/lane order of perturb_common.h.
double squared_norm(const at::Tensor& t);

/// Dense perturbation of the whole target. `target` must be contiguous; `direction` has
/// its shape, dtype and device.
PerturbState perturb(at::Tensor& target, const at::Tensor& direction, const PerturbOptions& options);

/// Row-sparse perturbation: `direction` must be zero outside `rows` (the rows of an
/// embedding table a batch touched). Only those rows are backed up, perturbed and
/// restored; the result equals the dense op bit for bit.
PerturbState perturb_rows(at::Tensor& target, const at::Tensor& direction, const at::Tensor& rows,
                          const PerturbOptions& options);

/// Row-sparse perturbation from a compact direction, as a coalesced sparse gradient holds
/// it: `rows` (sorted, unique, int64) and `values` [rows.size(0), ...] with the direction's
/// rows; every other row of the direction is zero. The same as perturb_rows() with the
/// dense direction, bit for bit, without ever making the dense direction.
PerturbState perturb_sparse(at::Tensor& target, const at::Tensor& rows, const at::Tensor& values,
                            const PerturbOptions& options);

/// Puts the backed-up values back, bit for bit, and releases the backup.
void restore(at::Tensor& target, PerturbState& state);

/// Frees the backup buffers kept for reuse (restore() returns each backup to a small
/// pool so the next perturbation of the same size does not fault in fresh pages).
void release_cached_backups();

/// Bytes held by that pool now.
int64_t cached_backup_bytes();

/// The buffers in that pool now (handles sharing their storage), for per-device reports.
std::vector<at::Tensor> cached_backups();

/// The mask perturb() uses for a tensor of `numel` elements, as a bool tensor.
at::Tensor drop_mask(int64_t numel, double p, uint64_t seed, uint64_t counter, const at::Device& device);

// Device kernels, selected by perturb() from the target's device.
namespace cpu {
double squared_norm_kernel(const at::Tensor& direction, const at::Tensor* rows);
void masked_add_kernel(at::Tensor& target, const at::Tensor& direction, at::Tensor& backup,
                       const at::Tensor* rows, double scale, uint64_t seed, uint64_t counter,
                       uint64_t threshold);
void drop_mask_kernel(at::Tensor& out, uint64_t seed, uint64_t counter, uint64_t threshold);
// The row-sparse kernels with a compact direction (values[j] is row rows[j]).
double squared_norm_compact_kernel(const at::Tensor& values, const at::Tensor& rows, int64_t row_size);
void masked_add_compact_kernel(at::Tensor& target, const at::Tensor& values, at::Tensor& backup,
                               const at::Tensor& rows, double scale, uint64_t seed, uint64_t counter,
                               uint64_t threshold);
}  // namespace cpu

#ifdef DROPATTACK_WITH_CUDA
namespace cuda {
double squared_norm_kernel(const at::Tensor& direction, const at::Tensor* rows);
void masked_add_kernel(at::Tensor& target, const at::Tensor& direction, at::Tensor& backup,
                       const at::Tensor* rows, double scale, uint64_t seed, uint64_t counter,
                       uint64_t threshold);
void drop_mask_kernel(at::Tensor& out, uint64_t seed, uint64_t counter, uint64_t threshold);
}  // namespace cuda
#endif

}  // namespace ops
}  // namespace dropattack
