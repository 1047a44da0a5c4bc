// LibTorch glue of the CUDA perturbation kernels: the dropattack::ops::cuda functions
// that perturb.cpp calls for tensors on a CUDA device.
//
// The kernels themselves (perturb_kernel.cu) see only raw pointers, so that they build
// with nvcc alone; this file is where tensors are checked, the device is selected, the
// caller's current stream is used (work on the stream PyTorch code would use, no extra
// synchronization), scratch comes from the caching allocator, and launch errors become
// c10::Error exceptions. perturb.cpp has already checked shapes, dtypes, devices and
// contiguity of the user's arguments; the checks here guard the internal contract.
//
// It includes <c10/cuda/CUDAStream.h> rather than <ATen/cuda/CUDAContext.h>: that is
// where getCurrentCUDAStream is declared (at::cuda names c10::cuda), and it spares the
// build the cuBLAS/cuSPARSE/cuSOLVER headers CUDAContext.h pulls in.
#ifdef DROPATTACK_WITH_CUDA

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../perturb.h"
#include "perturb_kernel.h"

namespace dropattack {
namespace ops {
namespace cuda {

namespace {

namespace k = ::dropattack::ops::cuda_kernels;

k::DType kernel_dtype(const at::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return k::DType::Float32;
    case at::kDouble:
      return k::DType::Float64;
    case at::kHalf:
      return k::DType::Float16;
    case at::kBFloat16:
      return k::DType::BFloat16;
    default:
      TORCH_CHECK(false, op, ": unsupported dtype ", t.scalar_type(),
                  " (expected float32, float64, float16 or bfloat16)");
  }
  return k::DType::Float32;  // not reached: TORCH_CHECK(false, ...) throws
}

void check_launch(cudaError_t err, const char* kernel) {
  TORCH_CHECK(err == cudaSuccess, "dropattack CUDA kernel ", kernel, " failed: ",
              cudaGetErrorString(err));
}

void check_cuda_tensor(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
  TORCH_CHECK(t.is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", t.device());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

// The row list and the row length of a row-sparse call on `t` (rows of dim 0).
int64_t check_rows(const at::Tensor& t, const at::Tensor& rows, const char* op) {
  check_cuda_tensor(rows, op, "rows");
  TORCH_CHECK(rows.scalar_type() == at::kLong, op, ": rows must be int64, got ", rows.scalar_type());
  TORCH_CHECK(rows.dim() == 1, op, ": rows must be one-dimensional, got shape ", rows.sizes());
  TORCH_CHECK(rows.device() == t.device(), op, ": rows is on ", rows.device(), " but the data is on ",
              t.device());
  TORCH_CHECK(t.dim() >= 1, op, ": rows needs a tensor with at least one dimension");
  return t.size(0) > 0 ? t.numel() / t.size(0) : 0;
}

}  // namespace

double squared_norm_kernel(const at::Tensor& direction, const at::Tensor* rows) {
  constexpr const char* op = "squared_norm";
  check_cuda_tensor(direction, op, "direction");
  const k::DType dtype = kernel_dtype(direction, op);
  const int64_t n = direction.numel();
  if (n == 0) return 0.0;
  int64_t row_size = 0;
  if (rows != nullptr) {
    row_size = check_rows(direction, *rows, op);
    if (rows->numel() == 0) return 0.0;
  }

  const c10::cuda::CUDAGuard device_guard(direction.device());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  // Block partials, then the total in the last slot.
  const int64_t scratch = k::squared_norm_scratch_size(n);
  at::Tensor buffer =
      at::empty({scratch + 1}, at::TensorOptions().dtype(at::kDouble).device(direction.device()));
  double* partials = buffer.data_ptr<double>();
  double* total = partials + scratch;

  if (rows == nullptr) {
    check_launch(k::launch_squared_norm(dtype, direction.data_ptr(), n, partials, total, stream),
                 "squared_norm");
  } else {
    check_launch(k::launch_squared_norm_rows(dtype, direction.data_ptr(), rows->data_ptr<int64_t>(),
                                             rows->numel(), row_size, n, partials, total, stream),
                 "squared_norm_rows");
  }
  // The caller needs the value on the host to decide the scale; item() waits for it.
  return buffer[scratch].item<double>();
}

void masked_add_kernel(at::Tensor& target, const at::Tensor& direction, at::Tensor& backup,
                       const at::Tensor* rows, double scale, uint64_t seed, uint64_t counter,
                       uint64_t threshold) {
  constexpr const char* op = "masked_add";
  check_cuda_tensor(target, op, "target");
  check_cuda_tensor(direction, op, "direction");
  check_cuda_tensor(backup, op, "backup");
  const k::DType dtype = kernel_dtype(target, op);
  TORCH_CHECK(direction.scalar_type() == target.scalar_type() &&
                  backup.scalar_type() == target.scalar_type(),
              op, ": target, direction and backup must share a dtype, got ", target.scalar_type(), ", ",
              direction.scalar_type(), " and ", backup.scalar_type());
  TORCH_CHECK(direction.device() == target.device() && backup.device() == target.device(), op,
              ": target, direction and backup must be on one device");
  TORCH_CHECK(direction.numel() == target.numel(), op, ": direction has ", direction.numel(),
              " elements, target has ", target.numel());
  const int64_t n = target.numel();
  if (n == 0) return;

  const c10::cuda::CUDAGuard device_guard(target.device());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  if (rows == nullptr) {
    TORCH_CHECK(backup.numel() == n, op, ": backup has ", backup.numel(), " elements, expected ", n);
    check_launch(k::launch_masked_add(dtype, target.data_ptr(), direction.data_ptr(), backup.data_ptr(),
                                      n, scale, seed, counter, threshold, stream),
                 "masked_add");
  } else {
    const int64_t row_size = check_rows(target, *rows, op);
    const int64_t nrows = rows->numel();
    TORCH_CHECK(backup.numel() == nrows * row_size, op, ": backup has ", backup.numel(),
                " elements, expected ", nrows, " rows of ", row_size);
    if (nrows == 0) return;
    check_launch(k::launch_masked_add_rows(dtype, target.data_ptr(), direction.data_ptr(),
                                           backup.data_ptr(), rows->data_ptr<int64_t>(), nrows,
                                           row_size, scale, seed, counter, threshold, stream),
                 "masked_add_rows");
  }
}

void drop_mask_kernel(at::Tensor& out, uint64_t seed, uint64_t counter, uint64_t threshold) {
  constexpr const char* op = "drop_mask";
  check_cuda_tensor(out, op, "out");
  TORCH_CHECK(out.scalar_type() == at::kBool, op, ": out must be a bool tensor, got ", out.scalar_type());
  static_assert(sizeof(bool) == 1, "bool tensors are one byte per element");
  const int64_t n = out.numel();
  if (n == 0) return;

  const c10::cuda::CUDAGuard device_guard(out.device());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  check_launch(k::launch_drop_mask(reinterpret_cast<uint8_t*>(out.data_ptr<bool>()), n, seed, counter,
                                   threshold, stream),
               "drop_mask");
}

}  // namespace cuda
}  // namespace ops
}  // namespace dropattack

#endif  // DROPATTACK_WITH_CUDA
