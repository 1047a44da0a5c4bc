// The GPU check (scripts/gpu-check.sh, docs/gpu-check.md): the CUDA build of the op and
// the engine against the CPU build, and their speed, written as one JSON document.
//
//   gpu_check [--json FILE] [--quick] [--sections ops,engine,bandwidth,steptime]
//     (a) ops:       the perturbation op on CUDA against the CPU op, bit for bit: every
//                    dtype, dense and row-sparse, odd shapes, p in {0, 0.3, 1}; the mask
//                    and the squared norm too.
//     (b) engine:    three engine steps of every method on a small torch::nn MLP, CUDA
//                    against CPU; parameters within 1e-5.
//     (c) bandwidth: perturb() on a large float32 tensor at p = 0.5 against
//                    tensor.copy_() of the same size, timed with CUDA events.
//     (d) steptime:  a DropAttack (K = 1) engine step against a plain step, same MLP.
//   Without CUDA, (a) and (c) are reported as skipped: no CUDA, after a self-check of the
//   same code (CPU with 1 thread against CPU with 2 threads; a small CPU timing), and (b)
//   compares CPU with 1 thread against CPU with 2 threads.
//
//   gpu_check --train-bench --device cuda|cpu --model textrnn|textcnn --vocab V --embed E
//     [--hidden H] [--filters F --kernels 3,4,5] --batch B --length T --batches N
//     --warmup W --steps S --k K [--group NAME:EPS:P]... [--threads N] [--seed S] [--json FILE]
//   One engine training run of a built-in model (bench/configs.json's models, the batches
//   of bench/python/common.py), timed per step like bench/python/train.py.
//
// Exit status: 0 when every check that ran passed (timings are reported, not judged), 1
// when a check failed, 2 on bad arguments.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#ifdef DROPATTACK_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/models.h"
#include "ops/perturb.h"

namespace de = dropattack::engine;
namespace ops = dropattack::ops;

namespace {

// ---------------------------------------------------------------- JSON

std::string Quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += c;
        }
    }
  }
  return o + "\"";
}

std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// An object built field by field, in order.
class Obj {
 public:
  Obj& Add(const std::string& k, const std::string& raw) {
    fields_.emplace_back(k, raw);
    return *this;
  }
  Obj& Str(const std::string& k, const std::string& v) { return Add(k, Quote(v)); }
  Obj& Dbl(const std::string& k, double v) { return Add(k, Num(v)); }
  Obj& Int(const std::string& k, int64_t v) { return Add(k, std::to_string(v)); }
  Obj& Bool(const std::string& k, bool v) { return Add(k, v ? "true" : "false"); }
  std::string Json() const {
    std::string o = "{";
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (i) o += ", ";
      o += Quote(fields_[i].first) + ": " + fields_[i].second;
    }
    return o + "}";
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

std::string Arr(const std::vector<std::string>& items) {
  std::string o = "[";
  for (size_t i = 0; i < items.size(); ++i) o += (i ? ",\n  " : "\n  ") + items[i];
  return o + (items.empty() ? "]" : "\n]");
}

std::string NumArr(const std::vector<double>& v) {
  std::string o = "[";
  for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + Num(v[i]);
  return o + "]";
}

std::string ErrorText(const std::exception& e) {
  const auto* ce = dynamic_cast<const c10::Error*>(&e);
  std::string m = ce ? ce->what_without_backtrace() : e.what();
  return m.substr(0, 600);
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string ShapeText(at::IntArrayRef s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

bool HasCuda() {
#ifdef DROPATTACK_WITH_CUDA
  return torch::cuda::is_available();
#else
  return false;
#endif
}

void Sync(const at::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Milliseconds of `fn` on `device`: CUDA events on the current stream for a CUDA device,
// the steady clock otherwise.
double TimeMs(const at::Device& device, const std::function<void()>& fn) {
#ifdef DROPATTACK_WITH_CUDA
  if (device.is_cuda()) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    cudaEvent_t start, stop;
    TORCH_CHECK(cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess,
                "cudaEventCreate failed");
    TORCH_CHECK(cudaEventRecord(start, stream) == cudaSuccess, "cudaEventRecord failed");
    fn();
    TORCH_CHECK(cudaEventRecord(stop, stream) == cudaSuccess, "cudaEventRecord failed");
    TORCH_CHECK(cudaEventSynchronize(stop) == cudaSuccess, "cudaEventSynchronize failed");
    float ms = 0;
    TORCH_CHECK(cudaEventElapsedTime(&ms, start, stop) == cudaSuccess, "cudaEventElapsedTime failed");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms;
  }
#endif
  Sync(device);
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  Sync(device);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------- (a) the op, bit for bit

// The two sides of a comparison: the reference (CPU, 1 thread) and the candidate (CUDA,
// or CPU with 2 threads when there is no CUDA).
struct Side {
  at::Device device;
  int threads;
  std::string Name() const { return device.is_cuda() ? "cuda" : "cpu/" + std::to_string(threads) + "t"; }
};

bool SameBits(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  const at::Tensor x = a.to(at::kCPU).contiguous();
  const at::Tensor y = b.to(at::kCPU).contiguous();
  return x.scalar_type() == y.scalar_type() && x.sizes() == y.sizes() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

// First differing element, for the report.
std::string FirstDiff(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() != b.defined()) return "one side has no tensor";
  const at::Tensor x = a.to(at::kCPU).to(at::kDouble).reshape({-1});
  const at::Tensor y = b.to(at::kCPU).to(at::kDouble).reshape({-1});
  if (x.numel() != y.numel()) return "sizes differ";
  const at::Tensor ne = (x != y).nonzero();
  if (ne.numel() == 0) return "values equal, bits differ (signed zero?)";
  const int64_t i = ne[0][0].item<int64_t>();
  std::ostringstream o;
  o << ne.size(0) << " elements differ; first at " << i << ": " << x[i].item<double>() << " vs "
    << y[i].item<double>();
  return o.str();
}

struct Tally {
  int64_t cases = 0, passed = 0;
  std::vector<std::string> failures;  // the first few
  void Record(bool ok, const std::string& what) {
    ++cases;
    if (ok) {
      ++passed;
    } else if (failures.size() < 25) {
      failures.push_back(what);
    }
  }
};

const char* DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: return "?";
  }
}

// One perturb + restore on one side; the state, the perturbed target and the restored one.
struct OpRun {
  ops::PerturbState state;
  at::Tensor perturbed, restored, backup;
};

OpRun RunOp(const Side& side, const at::Tensor& target, const at::Tensor& direction, const at::Tensor* rows,
            const ops::PerturbOptions& o) {
  at::set_num_threads(side.threads);
  OpRun r;
  at::Tensor t = target.to(side.device).clone();
  const at::Tensor d = direction.to(side.device);
  if (rows != nullptr) {
    r.state = ops::perturb_rows(t, d, rows->to(side.device), o);
  } else {
    r.state = ops::perturb(t, d, o);
  }
  r.perturbed = t.to(at::kCPU).clone();
  if (r.state.backup.defined()) r.backup = r.state.backup.to(at::kCPU).clone();
  ops::restore(t, r.state);
  r.restored = t.to(at::kCPU);
  return r;
}

void CompareOps(Tally& tally, const std::string& label, const OpRun& ref, const OpRun& got, const at::Tensor& original) {
  std::string why;
  if (ref.state.skipped != got.state.skipped) why = "skipped differs";
  else if (!(ref.state.norm == got.state.norm)) {
    std::ostringstream o;
    o.precision(17);
    o << "norm differs: " << ref.state.norm << " vs " << got.state.norm;
    why = o.str();
  } else if (!(ref.state.scale == got.state.scale)) why = "scale differs";
  else if (!SameBits(ref.perturbed, got.perturbed)) why = "perturbed target differs: " + FirstDiff(ref.perturbed, got.perturbed);
  else if (!SameBits(ref.backup, got.backup)) why = "backup differs";
  else if (!SameBits(got.restored, original)) why = "restore is not exact";
  else if (!SameBits(ref.restored, original)) why = "reference restore is not exact";
  tally.Record(why.empty(), label + (why.empty() ? "" : ": " + why));
}

std::string TallyJson(const Tally& t, const std::string& extra = "") {
  std::vector<std::string> f;
  for (const auto& s : t.failures) f.push_back(Quote(s));
  Obj o;
  o.Int("cases", t.cases).Int("passed", t.passed).Add("failures", Arr(f));
  std::string j = o.Json();
  if (!extra.empty()) j = j.substr(0, j.size() - 1) + ", " + extra + "}";
  return j;
}

std::string SectionOps(const Side& ref, const Side& cand, bool quick, bool* ok) {
  const std::vector<at::ScalarType> dtypes = {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16};
  std::vector<std::vector<int64_t>> shapes = {{1},     {3},         {5, 7},       {1023},          {4097},
                                              {33, 17, 3}, {16384 + 5}, {3 * 16384 + 1}, {257, 129}};
  if (!quick) shapes.push_back({(1 << 20) + 3});
  const std::vector<double> ps = {0.0, 0.3, 1.0};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2024);
  std::vector<std::string> per_dtype;
  Tally all;
  uint64_t counter = 1;
  for (at::ScalarType dt : dtypes) {
    Tally dense, sparse;
    for (const auto& shape : shapes) {
      const at::Tensor w = at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)).to(dt);
      const at::Tensor d = at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)).to(dt);
      for (double p : ps) {
        ops::PerturbOptions o;
        o.epsilon = 0.75;
        o.p = p;
        o.seed = 0x5eed0000u + counter;
        o.counter = counter++;
        const std::string label = std::string(DtypeName(dt)) + " dense " + ShapeText(shape) + " p=" + Num(p);
        try {
          CompareOps(dense, label, RunOp(ref, w, d, nullptr, o), RunOp(cand, w, d, nullptr, o), w);
        } catch (const std::exception& e) {
          dense.Record(false, label + ": threw: " + ErrorText(e));
        }
      }
    }
    // Row-sparse: an embedding-like direction, zero outside the rows (with repeats, in
    // any order, int64 and int32); the CUDA sparse op must equal the CPU sparse op and
    // the CPU dense op.
    struct Table { int64_t vocab, dim, nrows; };
    const std::vector<Table> tables = {{37, 3, 5}, {1000, 16, 64}, {5003, 300, 200}, {20000, 7, 3000}};
    for (const auto& tb : tables) {
      const at::Tensor w = at::randn({tb.vocab, tb.dim}, gen, at::TensorOptions().dtype(at::kFloat)).to(dt);
      const at::Tensor rows = at::randint(0, tb.vocab, {tb.nrows}, gen, at::TensorOptions().dtype(at::kLong));
      at::Tensor d = at::zeros({tb.vocab, tb.dim}, at::kFloat);
      d.index_copy_(0, std::get<0>(at::_unique(rows)), at::randn({std::get<0>(at::_unique(rows)).size(0), tb.dim}, gen));
      d = d.to(dt);
      for (double p : ps) {
        for (bool int32 : {false, true}) {
          ops::PerturbOptions o;
          o.epsilon = 2.0;
          o.p = p;
          o.seed = 99;
          o.counter = counter++;
          const at::Tensor r = int32 ? rows.to(at::kInt) : rows;
          const std::string label = std::string(DtypeName(dt)) + " rows " + ShapeText({tb.vocab, tb.dim}) + " x" +
                                    std::to_string(tb.nrows) + (int32 ? " int32" : " int64") + " p=" + Num(p);
          try {
            const OpRun ref_sparse = RunOp(ref, w, d, &r, o);
            const OpRun got_sparse = RunOp(cand, w, d, &r, o);
            CompareOps(sparse, label, ref_sparse, got_sparse, w);
            const OpRun ref_dense = RunOp(ref, w, d, nullptr, o);
            const bool same = SameBits(ref_dense.perturbed, got_sparse.perturbed) && ref_dense.state.norm == got_sparse.state.norm;
            sparse.Record(same, label + " = dense" + (same ? "" : ": the sparse result differs from the dense op"));
          } catch (const std::exception& e) {
            sparse.Record(false, label + ": threw: " + ErrorText(e));
          }
        }
      }
    }
    for (auto* t : {&dense, &sparse}) {
      all.cases += t->cases;
      all.passed += t->passed;
      for (const auto& f : t->failures) all.failures.push_back(f);
    }
    per_dtype.push_back(Obj().Str("dtype", DtypeName(dt)).Add("dense", TallyJson(dense)).Add("sparse", TallyJson(sparse)).Json());
  }
  // The mask and the squared norm on their own.
  Tally mask, norm;
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(4099), int64_t(16384 * 2 + 3), int64_t(1000003)}) {
    for (double p : {0.0, 0.3, 0.5, 1.0}) {
      const std::string label = "mask n=" + std::to_string(n) + " p=" + Num(p);
      try {
        at::set_num_threads(ref.threads);
        const at::Tensor a = ops::drop_mask(n, p, 7, 11, ref.device);
        at::set_num_threads(cand.threads);
        const at::Tensor b = ops::drop_mask(n, p, 7, 11, cand.device);
        mask.Record(SameBits(a, b), label);
      } catch (const std::exception& e) {
        mask.Record(false, label + ": threw: " + ErrorText(e));
      }
    }
    for (at::ScalarType dt : dtypes) {
      const std::string label = std::string("squared_norm ") + DtypeName(dt) + " n=" + std::to_string(n);
      try {
        const at::Tensor x = at::randn({n}, gen, at::TensorOptions().dtype(at::kFloat)).to(dt);
        at::set_num_threads(ref.threads);
        const double a = ops::squared_norm(x.to(ref.device));
        at::set_num_threads(cand.threads);
        const double b = ops::squared_norm(x.to(cand.device));
        norm.Record(a == b, label + (a == b ? "" : ": " + Num(a) + " vs " + Num(b)));
      } catch (const std::exception& e) {
        norm.Record(false, label + ": threw: " + ErrorText(e));
      }
    }
  }
  at::set_num_threads(ref.threads);
  *ok = all.passed == all.cases && mask.passed == mask.cases && norm.passed == norm.cases;
  Obj o;
  o.Str("reference", ref.Name()).Str("candidate", cand.Name()).Bool("passed", *ok);
  o.Int("cases", all.cases + mask.cases + norm.cases).Int("passed_cases", all.passed + mask.passed + norm.passed);
  o.Add("by_dtype", Arr(per_dtype)).Add("drop_mask", TallyJson(mask)).Add("squared_norm", TallyJson(norm));
  return o.Json();
}

// ---------------------------------------------------------------- (b) the engine, CUDA vs CPU

struct Mlp : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, out{nullptr};
  Mlp(int64_t in, int64_t hidden, int64_t classes) {
    fc1 = register_module("fc1", torch::nn::Linear(in, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, hidden));
    out = register_module("out", torch::nn::Linear(hidden, classes));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return out->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(x)))));
  }
};

de::AttackGroup Group(std::vector<std::string> targets, double eps, double p = 1.0, bool relative = false) {
  de::AttackGroup g;
  g.targets = std::move(targets);
  g.epsilon = eps;
  g.p = p;
  g.relative = relative;
  g.sparse = "off";
  return g;
}

de::AttackConfig MethodConfig(const std::string& method) {
  de::AttackConfig c;
  c.method = de::ParseMethod(method);
  c.seed = 1234;
  if (method == "dropattack") {
    c.k = 2;
    c.groups = {Group({"fc1.weight"}, 0.5, 0.5), Group({"fc2.*"}, 0.3, 0.7), Group({"input"}, 0.2, 0.5)};
  } else if (method == "fgm") {
    c.groups = {Group({"input"}, 0.5), Group({"fc1.weight"}, 0.3)};
  } else if (method == "pgd") {
    c.k = 3;
    c.alpha = 0.1;
    c.groups = {Group({"input"}, 0.5), Group({"fc1.weight"}, 0.2)};
  } else if (method == "freelb") {
    c.k = 2;
    c.alpha = 0.1;
    c.groups = {Group({"input"}, 0.5)};
  } else if (method == "awp") {
    c.groups = {Group({"fc1.weight", "fc2.weight"}, 0.01, 1.0, true)};
  } else if (method == "sam") {
    c.rho = 0.05;
    c.groups = {Group({"*.weight"}, 1.0)};
  } else if (method == "asam") {
    c.rho = 0.5;
    c.eta = 0.01;
    c.groups = {Group({"*"}, 1.0)};
  }
  return c;
}

struct EngineRun {
  std::vector<at::Tensor> params;  // CPU copies after the steps
  std::vector<double> clean_losses;
  std::string error;
};

EngineRun RunEngine(const std::string& method, const Side& side, int steps) {
  EngineRun run;
  try {
    at::set_num_threads(side.threads);
    torch::manual_seed(5);
    auto net = std::make_shared<Mlp>(16, 32, 4);
    net->to(side.device);
    std::vector<de::NamedParameter> params;
    std::vector<at::Tensor> tensors;
    for (const auto& p : net->named_parameters()) {
      params.emplace_back(p.key(), p.value());
      tensors.push_back(p.value());
    }
    de::OptimizerSpec opt;
    opt.type = "sgd";
    opt.lr = 0.1;
    opt.momentum = 0.9;
    de::Trainer trainer(params, MethodConfig(method), de::MakeOptimizer(tensors, opt));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(77);
    const at::Tensor x = at::randn({24, 16}, gen).to(side.device);
    const at::Tensor y = at::randint(0, 4, {24}, gen, at::TensorOptions().dtype(at::kLong)).to(side.device);
    de::LossSpec loss;
    for (int s = 0; s < steps; ++s) {
      de::Batch batch;
      batch.input = x;
      const de::StepResult r = trainer.step(batch, [&](const at::Tensor& in) { return de::ComputeLoss(loss, net->forward(in), y); });
      if (!r.applied) throw std::runtime_error("step " + std::to_string(s) + " not applied: " + r.reason);
      run.clean_losses.push_back(r.clean_loss);
    }
    for (const auto& p : net->parameters()) run.params.push_back(p.detach().to(at::kCPU).clone());
  } catch (const std::exception& e) {
    run.error = ErrorText(e);
  }
  return run;
}

std::string SectionEngine(const Side& ref, const Side& cand, bool* ok) {
  const std::vector<std::string> methods = {"none", "dropattack", "fgm", "pgd", "freelb", "awp", "sam", "asam"};
  const double tol = 1e-5;
  std::vector<std::string> rows;
  *ok = true;
  for (const auto& m : methods) {
    const EngineRun a = RunEngine(m, ref, 3);
    const EngineRun b = RunEngine(m, cand, 3);
    Obj o;
    o.Str("method", m);
    if (!a.error.empty() || !b.error.empty()) {
      o.Bool("passed", false).Str("error", !a.error.empty() ? ref.Name() + ": " + a.error : cand.Name() + ": " + b.error);
      *ok = false;
      rows.push_back(o.Json());
      continue;
    }
    double max_diff = 0;
    for (size_t i = 0; i < a.params.size(); ++i) {
      max_diff = std::max(max_diff, (a.params[i].to(at::kDouble) - b.params[i].to(at::kDouble)).abs().max().item<double>());
    }
    double loss_diff = 0;
    for (size_t i = 0; i < a.clean_losses.size(); ++i) loss_diff = std::max(loss_diff, std::abs(a.clean_losses[i] - b.clean_losses[i]));
    const bool pass = std::isfinite(max_diff) && max_diff <= tol;
    *ok = *ok && pass;
    o.Bool("passed", pass).Dbl("max_abs_param_diff", max_diff).Dbl("max_abs_loss_diff", loss_diff);
    o.Add("clean_losses_" + ref.Name(), NumArr(a.clean_losses)).Add("clean_losses_" + cand.Name(), NumArr(b.clean_losses));
    rows.push_back(o.Json());
  }
  at::set_num_threads(ref.threads);
  return Obj().Str("reference", ref.Name()).Str("candidate", cand.Name()).Dbl("tolerance", tol).Int("steps", 3)
      .Bool("passed", *ok).Add("methods", Arr(rows)).Json();
}

// ---------------------------------------------------------------- (c) bandwidth

std::string SectionBandwidth(const at::Device& device, int64_t n, int iters) {
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor target = at::randn({n}, opts);
  const at::Tensor direction = at::randn({n}, opts);
  at::Tensor dst = at::empty({n}, opts);
  at::Tensor backup = at::empty({n}, opts);
  const double bytes = static_cast<double>(n) * sizeof(float);
  ops::PerturbOptions o;
  o.epsilon = 1e-3;
  o.p = 0.5;
  o.seed = 3;
  std::vector<double> copy_ms, op_ms, add_ms, norm_ms;
  const double scale = o.epsilon / std::sqrt(ops::squared_norm(direction));
  const uint64_t threshold = static_cast<uint64_t>(0.5 * 4294967296.0);
  for (int i = 0; i < iters + 2; ++i) {
    const bool keep = i >= 2;  // two warm-up rounds
    const double c = TimeMs(device, [&] { dst.copy_(target); });
    ops::PerturbState state;
    o.counter = static_cast<uint64_t>(i);
    const double p = TimeMs(device, [&] { state = ops::perturb(target, direction, o); });
    ops::restore(target, state);
    const double a = TimeMs(device, [&] {
#ifdef DROPATTACK_WITH_CUDA
      if (device.is_cuda()) {
        ops::cuda::masked_add_kernel(target, direction, backup, nullptr, scale, 3, 1000 + i, threshold);
        return;
      }
#endif
      ops::cpu::masked_add_kernel(target, direction, backup, nullptr, scale, 3, 1000 + i, threshold);
    });
    target.copy_(backup);
    const double nm = TimeMs(device, [&] { (void)ops::squared_norm(direction); });
    if (keep) {
      copy_ms.push_back(c);
      op_ms.push_back(p);
      add_ms.push_back(a);
      norm_ms.push_back(nm);
    }
  }
  Sync(device);
  ops::release_cached_backups();
  const double copy_gbs = 2 * bytes / (Median(copy_ms) * 1e-3) / 1e9;
  // perturb(): the norm reads the direction; the masked add reads target and direction
  // and writes the backup and the target.
  const double op_gbs = 5 * bytes / (Median(op_ms) * 1e-3) / 1e9;
  const double add_gbs = 4 * bytes / (Median(add_ms) * 1e-3) / 1e9;
  const double norm_gbs = bytes / (Median(norm_ms) * 1e-3) / 1e9;
  const double pct = 100 * op_gbs / copy_gbs;
  Obj r;
  r.Str("device", device.str()).Int("elements", n).Str("dtype", "float32").Dbl("p", 0.5).Int("iterations", iters);
  r.Dbl("copy_ms", Median(copy_ms)).Dbl("copy_gbs", copy_gbs);
  r.Dbl("perturb_ms", Median(op_ms)).Dbl("perturb_gbs", op_gbs).Dbl("perturb_pct_of_copy", pct);
  r.Dbl("masked_add_ms", Median(add_ms)).Dbl("masked_add_gbs", add_gbs).Dbl("masked_add_pct_of_copy", 100 * add_gbs / copy_gbs);
  r.Dbl("squared_norm_ms", Median(norm_ms)).Dbl("squared_norm_gbs", norm_gbs).Dbl("squared_norm_pct_of_copy", 100 * norm_gbs / copy_gbs);
  r.Dbl("target_pct", 80).Bool("meets_target", pct >= 80);
  r.Str("bytes_model", "copy 2N, perturb 5N (norm N + masked add 4N), masked add 4N, norm N (N = elements x 4 bytes)");
  return r.Json();
}

// ---------------------------------------------------------------- (d) step time

std::string StepTime(const at::Device& device, int64_t in, int64_t hidden, int64_t classes, int64_t batch_size,
                     int warmup, int steps) {
  auto run = [&](bool attack) {
    torch::manual_seed(9);
    auto net = std::make_shared<Mlp>(in, hidden, classes);
    net->to(device);
    std::vector<de::NamedParameter> params;
    std::vector<at::Tensor> tensors;
    for (const auto& p : net->named_parameters()) {
      params.emplace_back(p.key(), p.value());
      tensors.push_back(p.value());
    }
    de::AttackConfig c;
    if (attack) {
      c.method = de::Method::kDropAttack;
      c.k = 1;
      c.seed = 4;
      c.groups = {Group({"fc1.weight"}, 0.5, 0.5), Group({"fc2.weight"}, 0.5, 0.5)};
    }
    de::OptimizerSpec opt;
    opt.type = "sgd";
    opt.lr = 0.01;
    de::Trainer trainer(params, c, de::MakeOptimizer(tensors, opt));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const at::Tensor x = at::randn({batch_size, in}, gen).to(device);
    const at::Tensor y = at::randint(0, classes, {batch_size}, gen, at::TensorOptions().dtype(at::kLong)).to(device);
    de::LossSpec loss;
    std::vector<double> ms;
    for (int s = 0; s < warmup + steps; ++s) {
      de::Batch b;
      b.input = x;
      Sync(device);
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = trainer.step(b, [&](const at::Tensor& v) { return de::ComputeLoss(loss, net->forward(v), y); });
      Sync(device);
      const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      TORCH_CHECK(r.applied, "step not applied: ", r.reason);
      if (s >= warmup) ms.push_back(dt);
    }
    return Median(ms);
  };
  const double plain = run(false);
  const double da = run(true);
  return Obj().Str("device", device.str()).Str("mlp", std::to_string(in) + "-" + std::to_string(hidden) + "-" +
                                                        std::to_string(hidden) + "-" + std::to_string(classes))
      .Int("batch", batch_size).Int("steps", steps).Dbl("plain_ms", plain).Dbl("dropattack_k1_ms", da)
      .Dbl("ratio", da / plain).Json();
}

// ---------------------------------------------------------------- train bench

struct Lcg {
  uint32_t s;
  uint32_t Next() { return s = 1664525u * s + 1013904223u; }
};

int TrainBench(int argc, char** argv) {
  std::string device_name = "cpu", model = "textrnn", json, kernels = "3,4,5";
  int64_t vocab = 0, embed = 0, hidden = 128, filters = 100, batch = 0, length = 0, batches = 1;
  int warmup = 1, steps = 3, k = 1, threads = 0;
  uint64_t seed = 1;
  std::vector<std::string> groups;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "gpu_check --train-bench: %s needs a value\n", a.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--device") device_name = v;
    else if (a == "--model") model = v;
    else if (a == "--vocab") vocab = std::stoll(v);
    else if (a == "--embed") embed = std::stoll(v);
    else if (a == "--hidden") hidden = std::stoll(v);
    else if (a == "--filters") filters = std::stoll(v);
    else if (a == "--kernels") kernels = v;
    else if (a == "--batch") batch = std::stoll(v);
    else if (a == "--length") length = std::stoll(v);
    else if (a == "--batches") batches = std::stoll(v);
    else if (a == "--warmup") warmup = std::stoi(v);
    else if (a == "--steps") steps = std::stoi(v);
    else if (a == "--k") k = std::stoi(v);
    else if (a == "--threads") threads = std::stoi(v);
    else if (a == "--seed") seed = std::stoull(v);
    else if (a == "--group") groups.push_back(v);
    else if (a == "--json") json = v;
    else {
      std::fprintf(stderr, "gpu_check --train-bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (vocab <= 0 || embed <= 0 || batch <= 0 || length < 4 || batches <= 0 || steps <= 0) {
    std::fprintf(stderr, "gpu_check --train-bench: --vocab, --embed, --batch, --steps must be > 0 and --length >= 4\n");
    return 2;
  }
  if (device_name == "cuda" && !HasCuda()) {
    std::fprintf(stderr, "gpu_check --train-bench: --device cuda but this build or machine has no CUDA\n");
    return 2;
  }
  if (threads > 0) at::set_num_threads(threads);
  const at::Device device(device_name);
  de::ModelSpec spec;
  spec.kind = model;
  spec.num_classes = 2;
  spec.vocab_size = vocab;
  spec.embed_dim = embed;
  spec.hidden_size = hidden;
  spec.num_filters = filters;
  spec.kernel_sizes.clear();
  {
    std::stringstream ss(kernels);
    std::string item;
    while (std::getline(ss, item, ',')) spec.kernel_sizes.push_back(std::stoll(item));
  }
  torch::jit::Module m = de::build_model(spec, seed);
  m.to(device);
  std::vector<de::NamedParameter> params;
  std::vector<at::Tensor> tensors;
  for (const auto& p : m.named_parameters(true)) {
    if (!p.value.requires_grad()) continue;
    params.emplace_back(p.name, p.value);
    tensors.push_back(p.value);
  }
  de::AttackConfig attack;
  if (!groups.empty()) {
    attack.method = de::Method::kDropAttack;
    attack.k = k;
    attack.seed = 42;
    for (const auto& g : groups) {
      const size_t a = g.find(':'), b = g.rfind(':');
      if (a == std::string::npos || a == b) {
        std::fprintf(stderr, "gpu_check --train-bench: --group wants NAME:EPSILON:P, got %s\n", g.c_str());
        return 2;
      }
      de::AttackGroup grp;
      grp.targets = {g.substr(0, a)};
      grp.epsilon = std::stod(g.substr(a + 1, b - a - 1));
      grp.p = std::stod(g.substr(b + 1));
      attack.groups.push_back(grp);
    }
  }
  de::OptimizerSpec opt;
  opt.type = "adam";
  opt.lr = 1e-3;
  de::Trainer trainer(params, attack, de::MakeOptimizer(tensors, opt));
  // bench/python/common.py make_batches: the same LCG, so the same ids, lengths, labels.
  struct B { at::Tensor tokens, lengths, labels; };
  std::vector<B> data;
  Lcg r{static_cast<uint32_t>(seed)};
  const int64_t lo = length / 4;
  for (int64_t j = 0; j < batches; ++j) {
    at::Tensor tokens = at::zeros({batch, length}, at::kLong), lengths = at::zeros({batch}, at::kLong),
               labels = at::zeros({batch}, at::kLong);
    auto t = tokens.accessor<int64_t, 2>();
    auto l = lengths.accessor<int64_t, 1>();
    auto y = labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < batch; ++i) {
      const int64_t n = lo + r.Next() % static_cast<uint32_t>(length - lo + 1);
      l[i] = n;
      for (int64_t c = 0; c < n; ++c) t[i][c] = 1 + r.Next() % static_cast<uint32_t>(vocab - 1);
      y[i] = r.Next() % 2;
    }
    data.push_back({tokens.to(device), lengths, labels.to(device)});
  }
  de::LossSpec loss;
  std::vector<double> seconds;
  for (int s = 0; s < warmup + steps; ++s) {
    const B& b = data[s % data.size()];
    de::Batch batch_in;
    batch_in.input = b.tokens;
    batch_in.token_ids = b.tokens;
    Sync(device);
    const auto t0 = std::chrono::steady_clock::now();
    const auto res = trainer.step(batch_in, [&](const at::Tensor& in) {
      return de::ComputeLoss(loss, m.forward({in, b.lengths}).toTensor(), b.labels);
    });
    Sync(device);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!res.applied) {
      std::fprintf(stderr, "gpu_check --train-bench: step %d not applied: %s\n", s, res.reason.c_str());
      return 1;
    }
    if (s >= warmup) seconds.push_back(dt);
  }
  const std::string out = Obj().Str("side", "cpp-engine").Str("device", device.str()).Str("model", model)
      .Int("k", attack.method == de::Method::kNone ? 0 : k).Int("threads", at::get_num_threads()).Int("warmup", warmup)
      .Add("stepSeconds", NumArr(seconds)).Dbl("medianSeconds", Median(seconds)).Json();
  if (json.empty()) {
    std::printf("%s\n", out.c_str());
  } else {
    std::ofstream(json) << out << "\n";
  }
  return 0;
}

// ---------------------------------------------------------------- main

std::string Section(const std::string& name, const std::function<std::string(bool*)>& body, bool* all_ok) {
  std::fprintf(stderr, "gpu_check: %s ...\n", name.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  std::string json;
  bool ok = true;
  try {
    json = body(&ok);
  } catch (const std::exception& e) {
    ok = false;
    json = Obj().Str("status", "error").Str("error", ErrorText(e)).Json();
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "gpu_check: %s %s (%.1f s)\n", name.c_str(), ok ? "done" : "FAILED", sec);
  *all_ok = *all_ok && ok;
  return json.substr(0, json.size() - 1) + ", \"seconds\": " + Num(sec) + "}";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--train-bench") == 0) {
    try {
      return TrainBench(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gpu_check --train-bench: %s\n", ErrorText(e).c_str());
      return 1;
    }
  }
  std::string json_path, sections = "ops,engine,bandwidth,steptime";
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--sections" && i + 1 < argc) {
      sections = argv[++i];
    } else {
      std::fprintf(stderr, "usage: gpu_check [--json FILE] [--quick] [--sections ops,engine,bandwidth,steptime]\n"
                           "       gpu_check --train-bench ... (see the source)\n");
      return 2;
    }
  }
  auto wants = [&](const char* s) { return ("," + sections + ",").find(std::string(",") + s + ",") != std::string::npos; };
  const bool cuda = HasCuda();
  const Side ref{at::Device(at::kCPU), 1};
  const Side cand = cuda ? Side{at::Device(at::kCUDA, 0), 1} : Side{at::Device(at::kCPU), 2};
  const std::string no_cuda =
#ifdef DROPATTACK_WITH_CUDA
      "skipped: no CUDA device (torch::cuda::is_available() is false)";
#else
      "skipped: no CUDA (this build has no CUDA kernels)";
#endif

  Obj doc;
  doc.Str("torch", TORCH_VERSION).Bool("cuda_build",
#ifdef DROPATTACK_WITH_CUDA
                                       true
#else
                                       false
#endif
                                       ).Bool("cuda_available", cuda);
  doc.Int("cuda_devices", cuda ? static_cast<int64_t>(torch::cuda::device_count()) : 0).Bool("quick", quick);
  bool all_ok = true;

  if (wants("ops")) {
    doc.Add("ops", Section("(a) ops", [&](bool* ok) {
      std::string j = SectionOps(ref, cand, quick, ok);
      if (!cuda) j = j.substr(0, j.size() - 1) + ", \"status\": " + Quote(no_cuda) + ", \"self_check\": true}";
      else j = j.substr(0, j.size() - 1) + ", \"status\": " + Quote(*ok ? "passed" : "failed") + "}";
      return j;
    }, &all_ok));
  }
  if (wants("engine")) {
    doc.Add("engine", Section("(b) engine", [&](bool* ok) {
      std::string j = SectionEngine(ref, cand, ok);
      return j.substr(0, j.size() - 1) + ", \"status\": " + Quote(*ok ? "passed" : "failed") + "}";
    }, &all_ok));
  }
  if (wants("bandwidth")) {
    doc.Add("bandwidth", Section("(c) bandwidth", [&](bool* ok) {
      *ok = true;  // timings are reported, not judged
      const int64_t n = cuda ? (quick ? (int64_t(64) << 20) : (int64_t(256) << 20)) : (int64_t(4) << 20);
      at::set_num_threads(1);
      std::string j = SectionBandwidth(cuda ? cand.device : ref.device, n, cuda ? (quick ? 5 : 10) : 3);
      return j.substr(0, j.size() - 1) + ", \"status\": " + Quote(cuda ? "measured" : no_cuda) +
             (cuda ? "" : ", \"self_check\": true") + "}";
    }, &all_ok));
  }
  if (wants("steptime")) {
    doc.Add("steptime", Section("(d) step time", [&](bool* ok) {
      *ok = true;
      const at::Device d = cuda ? cand.device : ref.device;
      at::set_num_threads(cuda ? 4 : 1);
      std::vector<std::string> runs;
      runs.push_back(StepTime(d, 16, 32, 4, 24, 10, quick ? 20 : 50));
      if (cuda) runs.push_back(StepTime(d, 1024, 4096, 10, 512, 5, quick ? 10 : 30));
      return Obj().Str("status", "measured").Add("runs", Arr(runs)).Json();
    }, &all_ok));
  }
  doc.Bool("passed", all_ok);
  const std::string text = doc.Json();
  if (json_path.empty()) {
    std::printf("%s\n", text.c_str());
  } else {
    std::ofstream f(json_path);
    f << text << "\n";
    if (!f) {
      std::fprintf(stderr, "gpu_check: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return all_ok ? 0 : 1;
}
