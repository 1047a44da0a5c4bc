// Checks the CUDA perturbation kernels against a plain re-statement of the CPU kernels
// (cpu/perturb_kernel.cpp), bit for bit, without LibTorch.
//
// Most machines that build this project have nvcc but no GPU, so the check has two
// halves: the per-thread functions of perturb_kernel.cu (which are __host__ __device__)
// are run on the host in exactly the decomposition the kernels use (one call per (norm
// block, lane), per Philox group, per (row, group)), which checks the index arithmetic
// and the summation order everywhere; and when a CUDA device is present, the real
// launchers are run on it too and their output compared with the same reference.
//
//   nvcc -std=c++17 -gencode arch=compute_90,code=sm_90 test/native/cuda_kernel_host_check.cu
//     -o /tmp/cuda_kernel_host_check && /tmp/cuda_kernel_host_check
#include "../../native/ops/cuda/perturb_kernel.cu"

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace dropattack::ops;
namespace ck = dropattack::ops::cuda_kernels;
namespace dt = dropattack::ops::cuda_kernels::detail;

int g_failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

template <typename T>
const char* type_name();
template <> const char* type_name<float>() { return "float32"; }
template <> const char* type_name<double>() { return "float64"; }
template <> const char* type_name<__half>() { return "float16"; }
template <> const char* type_name<__nv_bfloat16>() { return "bfloat16"; }

template <typename T>
ck::DType dtype_of();
template <> ck::DType dtype_of<float>() { return ck::DType::Float32; }
template <> ck::DType dtype_of<double>() { return ck::DType::Float64; }
template <> ck::DType dtype_of<__half>() { return ck::DType::Float16; }
template <> ck::DType dtype_of<__nv_bfloat16>() { return ck::DType::BFloat16; }

// ---- Reference: the CPU kernel's algorithm, restated. --------------------------------

template <typename T>
double ref_block_squares(const T* d, int64_t begin, int64_t end) {
  double lanes[kNormLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = begin; i < end; ++i) {
    const double v = static_cast<double>(dt::to_acc(d[i]));
    lanes[i % kNormLanes] += v * v;
  }
  return combine_lanes(lanes);
}

template <typename T>
double ref_dense_squares(const std::vector<T>& d) {
  const int64_t n = static_cast<int64_t>(d.size());
  double total = 0.0;
  for (int64_t b = 0; b * kNormBlock < n; ++b) {
    total += ref_block_squares(d.data(), b * kNormBlock, std::min(n, (b + 1) * kNormBlock));
  }
  return total;
}

template <typename T>
double ref_row_squares(const std::vector<T>& d, const std::vector<int64_t>& rows, int64_t row_size) {
  double total = 0.0;
  double lanes[kNormLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t current = -1;
  for (int64_t r : rows) {
    for (int64_t i = r * row_size; i < (r + 1) * row_size; ++i) {
      const int64_t block = i / kNormBlock;
      if (block != current) {
        if (current >= 0) total += combine_lanes(lanes);
        std::fill(lanes, lanes + kNormLanes, 0.0);
        current = block;
      }
      const double v = static_cast<double>(dt::to_acc(d[i]));
      lanes[i % kNormLanes] += v * v;
    }
  }
  if (current >= 0) total += combine_lanes(lanes);
  return total;
}

template <typename T>
T ref_moved(T w, T d, double scale) {
  using A = dt::acc_t<T>;
  return dt::from_acc<T>(scaled_add(dt::to_acc(w), dt::to_acc(d), static_cast<A>(scale)));
}

// ---- Host emulation of the kernels' thread decomposition. ----------------------------

template <typename T>
double emu_squares(const std::vector<T>& d, const std::vector<int64_t>* rows, int64_t row_size) {
  const int64_t n = static_cast<int64_t>(d.size());
  const int64_t nblocks = ck::squared_norm_scratch_size(n);
  std::vector<double> partial(static_cast<size_t>(nblocks));
  for (int64_t b = 0; b < nblocks; ++b) {
    double lanes[kNormLanes];
    for (int l = 0; l < kNormLanes; ++l) {
      lanes[l] = rows == nullptr
                     ? dt::lane_squares_dense(d.data(), n, b, l)
                     : dt::lane_squares_rows(d.data(), rows->data(), static_cast<int64_t>(rows->size()),
                                             row_size, n, b, l);
    }
    partial[b] = combine_lanes(lanes);
  }
  double total = 0.0;
  for (double p : partial) total = dt::add_rn(total, p);
  return total;
}

template <typename T, bool kAll>
void emu_masked_add(std::vector<T>& w, const std::vector<T>& d, std::vector<T>& bk, double scale,
                    uint64_t seed, uint64_t counter, uint64_t threshold, bool vec) {
  const int64_t n = static_cast<int64_t>(w.size());
  const auto s = static_cast<dt::acc_t<T>>(scale);
  for (int64_t q = 0; q < (n + 3) / 4; ++q) {
    if (vec && q * 4 + 4 <= n) {
      dt::masked_add_vec4<T, kAll>(w.data(), d.data(), bk.data(), q, s, seed, counter, threshold);
    } else {
      dt::masked_add_group<T, kAll>(w.data(), d.data(), bk.data(), n, q, s, seed, counter, threshold);
    }
  }
}

template <typename T, bool kAll>
void emu_masked_add_rows(std::vector<T>& w, const std::vector<T>& d, std::vector<T>& bk,
                         const std::vector<int64_t>& rows, int64_t row_size, double scale,
                         uint64_t seed, uint64_t counter, uint64_t threshold) {
  const auto s = static_cast<dt::acc_t<T>>(scale);
  const int64_t gpr = dt::groups_per_row(row_size);
  for (int64_t j = 0; j < static_cast<int64_t>(rows.size()); ++j) {
    for (int64_t g = 0; g < gpr; ++g) {
      dt::masked_add_row_group<T, kAll>(w.data(), d.data(), bk.data(), rows.data(), j, g, row_size, s,
                                        seed, counter, threshold);
    }
  }
}

// ---- Device runs (only with a GPU). --------------------------------------------------

bool g_have_device = false;

#define CK(expr)                                                                        \
  do {                                                                                  \
    const cudaError_t err_ = (expr);                                                    \
    if (err_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                \
                   cudaGetErrorString(err_));                                           \
      std::exit(2);                                                                     \
    }                                                                                   \
  } while (0)

template <typename T>
T* to_device(const std::vector<T>& v) {
  T* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(1, v.size()) * sizeof(T)));
  if (!v.empty()) CK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

template <typename T>
std::vector<T> to_host(const T* p, size_t n) {
  std::vector<T> v(n);
  if (n > 0) CK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

template <typename T>
double dev_squares(const std::vector<T>& d, const std::vector<int64_t>* rows, int64_t row_size) {
  const int64_t n = static_cast<int64_t>(d.size());
  T* dd = to_device(d);
  double* scratch = nullptr;
  CK(cudaMalloc(&scratch, (ck::squared_norm_scratch_size(n) + 1) * sizeof(double)));
  double* out = scratch + ck::squared_norm_scratch_size(n);
  if (rows == nullptr) {
    CK(ck::launch_squared_norm(dtype_of<T>(), dd, n, scratch, out, nullptr));
  } else {
    int64_t* dr = to_device(*rows);
    CK(ck::launch_squared_norm_rows(dtype_of<T>(), dd, dr, static_cast<int64_t>(rows->size()), row_size,
                                    n, scratch, out, nullptr));
    CK(cudaDeviceSynchronize());
    CK(cudaFree(dr));
  }
  double result = 0.0;
  CK(cudaMemcpy(&result, out, sizeof(double), cudaMemcpyDeviceToHost));
  CK(cudaFree(scratch));
  CK(cudaFree(dd));
  return result;
}

// ---- Cases. ---------------------------------------------------------------------------

template <typename T>
std::vector<T> random_values(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = dt::from_acc<T>(static_cast<dt::acc_t<T>>(dist(rng)));
  return v;
}

template <typename T>
void check_case(int64_t num_rows, int64_t row_size, double p, uint64_t seed, uint64_t counter,
                std::mt19937_64& rng) {
  const int64_t n = num_rows * row_size;
  const std::string tag = std::string(type_name<T>()) + " rows=" + std::to_string(num_rows) +
                          " row_size=" + std::to_string(row_size) + " p=" + std::to_string(p);
  const uint64_t threshold = mask_threshold(p);
  const double scale = 0.37;

  // Sorted unique rows, about a third of the table (at least one).
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < num_rows; ++r) {
    if (rng() % 3 == 0) rows.push_back(r);
  }
  if (rows.empty() && num_rows > 0) rows.push_back(num_rows / 2);

  std::vector<T> dense_dir = random_values<T>(n, rng);
  std::vector<T> sparse_dir(static_cast<size_t>(n), dt::from_acc<T>(0));
  for (int64_t r : rows) {
    for (int64_t k = 0; k < row_size; ++k) sparse_dir[r * row_size + k] = dense_dir[r * row_size + k];
  }
  const std::vector<T> target0 = random_values<T>(n, rng);

  // Norms.
  const double ref_dense = ref_dense_squares(dense_dir);
  const double ref_sparse_dense = ref_dense_squares(sparse_dir);
  const double ref_sparse = ref_row_squares(sparse_dir, rows, row_size);
  expect(same_bits(ref_sparse, ref_sparse_dense), tag + ": reference row norm != dense norm");
  expect(same_bits(emu_squares(dense_dir, nullptr, 0), ref_dense), tag + ": emulated dense norm");
  expect(same_bits(emu_squares(sparse_dir, &rows, row_size), ref_sparse), tag + ": emulated row norm");

  // Dense masked add.
  std::vector<T> ref_target = target0;
  for (int64_t i = 0; i < n; ++i) {
    if (mask_bit(seed, counter, static_cast<uint64_t>(i), threshold)) {
      ref_target[i] = ref_moved(target0[i], dense_dir[i], scale);
    }
  }
  for (int vec = 0; vec < 2; ++vec) {
    std::vector<T> w = target0;
    std::vector<T> bk(static_cast<size_t>(n));
    if (dt::keeps_all(threshold)) {
      emu_masked_add<T, true>(w, dense_dir, bk, scale, seed, counter, threshold, vec != 0);
    } else {
      emu_masked_add<T, false>(w, dense_dir, bk, scale, seed, counter, threshold, vec != 0);
    }
    expect(same_bits(w, ref_target), tag + ": emulated masked add, vec=" + std::to_string(vec));
    expect(same_bits(bk, target0), tag + ": emulated backup, vec=" + std::to_string(vec));
  }

  // Row-sparse masked add: the rows move as in the dense op, the rest stays.
  std::vector<T> ref_rows_target = target0;
  std::vector<T> ref_rows_backup;
  for (int64_t r : rows) {
    for (int64_t k = 0; k < row_size; ++k) {
      const int64_t i = r * row_size + k;
      ref_rows_backup.push_back(target0[i]);
      if (mask_bit(seed, counter, static_cast<uint64_t>(i), threshold)) {
        ref_rows_target[i] = ref_moved(target0[i], sparse_dir[i], scale);
      }
    }
  }
  {
    std::vector<T> w = target0;
    std::vector<T> bk(rows.size() * static_cast<size_t>(row_size));
    if (dt::keeps_all(threshold)) {
      emu_masked_add_rows<T, true>(w, sparse_dir, bk, rows, row_size, scale, seed, counter, threshold);
    } else {
      emu_masked_add_rows<T, false>(w, sparse_dir, bk, rows, row_size, scale, seed, counter, threshold);
    }
    expect(same_bits(w, ref_rows_target), tag + ": emulated row masked add");
    expect(same_bits(bk, ref_rows_backup), tag + ": emulated row backup");
  }

  if (!g_have_device) return;

  expect(same_bits(dev_squares(dense_dir, nullptr, 0), ref_dense), tag + ": device dense norm");
  expect(same_bits(dev_squares(sparse_dir, &rows, row_size), ref_sparse), tag + ": device row norm");
  {
    T* w = to_device(target0);
    T* d = to_device(dense_dir);
    T* bk = to_device(std::vector<T>(static_cast<size_t>(n)));
    CK(ck::launch_masked_add(dtype_of<T>(), w, d, bk, n, scale, seed, counter, threshold, nullptr));
    expect(same_bits(to_host(w, n), ref_target), tag + ": device masked add");
    expect(same_bits(to_host(bk, n), target0), tag + ": device backup");
    CK(cudaFree(w));
    CK(cudaFree(d));
    CK(cudaFree(bk));
  }
  {
    T* w = to_device(target0);
    T* d = to_device(sparse_dir);
    T* bk = to_device(std::vector<T>(rows.size() * static_cast<size_t>(row_size)));
    int64_t* dr = to_device(rows);
    CK(ck::launch_masked_add_rows(dtype_of<T>(), w, d, bk, dr, static_cast<int64_t>(rows.size()), row_size,
                                  scale, seed, counter, threshold, nullptr));
    expect(same_bits(to_host(w, n), ref_rows_target), tag + ": device row masked add");
    expect(same_bits(to_host(bk, ref_rows_backup.size()), ref_rows_backup), tag + ": device row backup");
    CK(cudaFree(w));
    CK(cudaFree(d));
    CK(cudaFree(bk));
    CK(cudaFree(dr));
  }
}

void check_drop_mask(int64_t n, double p, uint64_t seed, uint64_t counter) {
  const uint64_t threshold = mask_threshold(p);
  std::vector<uint8_t> ref(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ref[i] = mask_bit(seed, counter, static_cast<uint64_t>(i), threshold);
  std::vector<uint8_t> emu(static_cast<size_t>(n));
  for (int64_t q = 0; q < (n + 3) / 4; ++q) {
    if (q * 4 + 4 <= n) {
      const uint32_t packed = dt::drop_mask_packed(q, seed, counter, threshold);
      std::memcpy(&emu[q * 4], &packed, 4);  // little-endian host, as on the device
    } else {
      dt::drop_mask_group(emu.data(), n, q, seed, counter, threshold);
    }
  }
  const std::string tag = "drop_mask n=" + std::to_string(n) + " p=" + std::to_string(p);
  expect(same_bits(emu, ref), tag + ": emulated");
  if (!g_have_device) return;
  uint8_t* out = to_device(std::vector<uint8_t>(static_cast<size_t>(n) + 1));
  CK(ck::launch_drop_mask(out, n, seed, counter, threshold, nullptr));
  expect(same_bits(to_host(out, n), ref), tag + ": device");
  CK(ck::launch_drop_mask(out + 1, n, seed, counter, threshold, nullptr));  // unaligned path
  expect(same_bits(to_host(out + 1, n), ref), tag + ": device, unaligned");
  CK(cudaFree(out));
}

template <typename T>
void check_type(std::mt19937_64& rng) {
  const int64_t shapes[][2] = {{1, 1},   {3, 5},    {7, 3},      {100, 128}, {2050, 33},
                               {40, 1000}, {5, 16385}, {70000, 1}, {3, 16384 * 2 + 9}};
  const double ps[] = {0.0, 0.3, 1.0};
  uint64_t counter = 0;
  for (const auto& s : shapes) {
    for (double p : ps) {
      check_case<T>(s[0], s[1], p, 0x123456789abcdefULL, (counter++) << 20 | 7, rng);
    }
  }
}

}  // namespace

int main() {
  int devices = 0;
  g_have_device = cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
  (void)cudaGetLastError();  // clear the error of a device-less query
  std::printf("cuda_kernel_host_check: host emulation%s\n",
              g_have_device ? " and device runs" : " only (no CUDA device)");

  std::mt19937_64 rng(20240229);
  check_type<float>(rng);
  check_type<double>(rng);
  check_type<__half>(rng);
  check_type<__nv_bfloat16>(rng);
  for (int64_t n : {0, 1, 3, 4, 5, 4097, 100003}) {
    for (double p : {0.0, 0.5, 1.0}) check_drop_mask(n, p, 42, 9);
  }
  // Size 0: the norm launchers still define the total.
  expect(ck::squared_norm_scratch_size(0) == 0, "scratch size of an empty tensor");

  if (g_failures == 0) {
    std::printf("cuda_kernel_host_check: all checks passed\n");
    return 0;
  }
  std::fprintf(stderr, "cuda_kernel_host_check: %d check(s) failed\n", g_failures);
  return 1;
}
