// Raw CUDA launchers of the perturbation op, on device pointers and a stream.
//
// This header has no LibTorch include on purpose: perturb_kernel.cu then compiles with
// nothing but nvcc and the project's headers (scripts/compile-cuda-kernels.sh checks it
// on machines without a CUDA LibTorch), and the at::Tensor glue in perturb_cuda.cpp is
// the only place that knows about tensors. Every launcher enqueues its kernels on
// `stream` without synchronizing and returns cudaGetLastError() after its last launch
// (cudaErrorInvalidValue for an unknown dtype or a negative size).
//
// The kernels compute exactly what cpu/perturb_kernel.cpp computes: the mask bit of
// element i is mask_bit(seed, counter, i, threshold), the add is scaled_add(), and the
// squared norm follows the fixed block/lane order of perturb_common.h, so a CPU and a
// CUDA run give the same bits.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dropattack {
namespace ops {
namespace cuda_kernels {

/// Element type of the target/direction/backup buffers. Float16 is IEEE half (__half),
/// BFloat16 is __nv_bfloat16; both are computed in float and rounded to nearest even.
enum class DType : int { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

/// Doubles of device scratch the squared-norm launchers need for a tensor of `n`
/// elements (one partial per norm block of kNormBlock elements; 0 for n == 0).
int64_t squared_norm_scratch_size(int64_t n);

/// *out = squared L2 norm of direction[0, n), in the block/lane order of
/// perturb_common.h. `scratch` holds squared_norm_scratch_size(n) doubles. For n == 0
/// writes 0.0 to *out.
cudaError_t launch_squared_norm(DType dtype, const void* direction, int64_t n, double* scratch,
                                double* out, cudaStream_t stream);

/// *out = the same sum over the elements of rows[0, nrows) only, where row r holds the
/// elements [r * row_size, (r + 1) * row_size) of a table of n elements. `rows` is a
/// device array of sorted, unique, in-range indices. Equals launch_squared_norm() bit
/// for bit when the direction is zero outside those rows. `scratch` holds
/// squared_norm_scratch_size(n) doubles (n is the whole table, not the rows).
cudaError_t launch_squared_norm_rows(DType dtype, const void* direction, const int64_t* rows,
                                     int64_t nrows, int64_t row_size, int64_t n, double* scratch,
                                     double* out, cudaStream_t stream);

/// For i in [0, n): backup[i] = target[i]; then, where mask_bit(seed, counter, i,
/// threshold), target[i] = target[i] + scale * direction[i] (scaled_add, in double for
/// Float64 and in float, with scale rounded to float, for the other dtypes).
cudaError_t launch_masked_add(DType dtype, void* target, const void* direction, void* backup,
                              int64_t n, double scale, uint64_t seed, uint64_t counter,
                              uint64_t threshold, cudaStream_t stream);

/// The same for the elements of rows[0, nrows) only (sorted, unique, in range; device
/// array): element rows[j] * row_size + k is backed up to backup[j * row_size + k].
cudaError_t launch_masked_add_rows(DType dtype, void* target, const void* direction, void* backup,
                                   const int64_t* rows, int64_t nrows, int64_t row_size,
                                   double scale, uint64_t seed, uint64_t counter,
                                   uint64_t threshold, cudaStream_t stream);

/// out[i] = mask_bit(seed, counter, i, threshold) as 0/1 bytes (a bool tensor's storage).
cudaError_t launch_drop_mask(uint8_t* out, int64_t n, uint64_t seed, uint64_t counter,
                             uint64_t threshold, cudaStream_t stream);

}  // namespace cuda_kernels
}  // namespace ops
}  // namespace dropattack
