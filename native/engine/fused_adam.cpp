// The fused CPU Adam step (fused_adam.h).
#include "fused_adam.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

namespace dropattack {
namespace engine {
namespace {

bool Fusable(const at::Tensor& p, const torch::optim::AdamOptions& o) {
  const at::Tensor& g = p.grad();
  return !o.amsgrad() && p.device().is_cpu() && p.scalar_type() == at::kFloat && p.is_contiguous() &&
         g.layout() == at::kStrided && g.device().is_cpu() && g.scalar_type() == at::kFloat && g.is_contiguous();
}

// The element loop: grad += wd * p (when wd), m = m * b1 + (1 - b1) * g,
// v = v * b2 + (1 - b2) * g * g, p += -step_size * m / (sqrt(v) / sqrt(bc2) + eps),
// each operation in float32 as ATen's mul_/add_/addcmul_/sqrt/div/add_/addcdiv_ round it.
void Update(float* p, const float* g, float* m, float* v, int64_t n, float wd, float b1, float one_b1, float b2,
            float one_b2, float sqrt_bc2, float eps, float neg_step) {
  at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float gi = g[i];
      if (wd != 0.0f) gi = gi + wd * p[i];
      const float mi = m[i] * b1 + one_b1 * gi;
      const float vi = v[i] * b2 + one_b2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) / sqrt_bc2 + eps;
      p[i] = p[i] + neg_step * mi / denom;
    }
  });
}

// The key torch::optim::Optimizer files a parameter's state under: the TensorImpl's
// address as a string (LibTorch 1.13) or as a pointer (2.x).
template <typename K>
K StateKey(const at::Tensor& p) {
  if constexpr (std::is_same_v<K, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return reinterpret_cast<K>(p.unsafeGetTensorImpl());
  }
}

}  // namespace

torch::optim::AdamParamState& FusedAdam::State(const at::Tensor& p) {
  // The state under the key torch::optim::Adam uses, so save() and load() see it.
  using Key = typename std::remove_reference_t<decltype(state_)>::key_type;
  const Key key = StateKey<Key>(p);
  auto it = state_.find(key);
  if (it == state_.end()) {
    auto s = std::make_unique<torch::optim::AdamParamState>();
    s->step(0);
    s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
    s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    it = state_.emplace(key, std::move(s)).first;
  }
  return static_cast<torch::optim::AdamParamState&>(*it->second);
}

// torch.optim.SparseAdam's update (torch/optim/_functional.py, sparse_adam), element by
// element in the same float32 operations:
//   m_upd = (g - m) * (1 - b1); m = m + m_upd; numer = m_upd + m_old
//   v_upd = (g * g - v) * (1 - b2); v = v + v_upd; denom = sqrt(v_upd + v_old) + eps
//   p = p + (-step_size * (numer / denom)),  step_size = lr * sqrt(bc2) / bc1 (double)
void FusedAdam::SparseStep(at::Tensor& p, const torch::optim::AdamOptions& o) {
  TORCH_CHECK(o.weight_decay() == 0 && !o.amsgrad(), "optimizer: the gradient of a parameter of shape ", p.sizes(),
              " is sparse (model.sparseEmbedding or nn.Embedding(sparse=True)); Adam updates it row-wise as "
              "torch.optim.SparseAdam, which has no weight decay and no amsgrad: set optimizer.weightDecay to 0 "
              "and amsgrad to false for it (e.g. an optimizer group for the embedding with weightDecay 0), got "
              "weightDecay ", o.weight_decay(), ", amsgrad ", o.amsgrad() ? "true" : "false");
  at::Tensor grad = p.grad().coalesce();
  TORCH_CHECK(grad.sparse_dim() == 1, "optimizer: a sparse gradient must have one sparse dimension (rows), got ",
              grad.sparse_dim());
  auto& s = State(p);
  s.step(s.step() + 1);
  const double beta1 = std::get<0>(o.betas());
  const double beta2 = std::get<1>(o.betas());
  const double bc1 = 1 - std::pow(beta1, s.step());
  const double bc2 = 1 - std::pow(beta2, s.step());
  const double step_size = o.lr() * std::sqrt(bc2) / bc1;
  at::Tensor& m = s.exp_avg();
  at::Tensor& v = s.exp_avg_sq();
  const at::Tensor rows = grad._indices().select(0, 0).contiguous();
  const at::Tensor values = grad._values().contiguous();
  const int64_t nnz = rows.numel();
  if (nnz == 0) return;
  const bool fast = p.device().is_cpu() && p.scalar_type() == at::kFloat && p.is_contiguous() &&
                    values.scalar_type() == at::kFloat && m.scalar_type() == at::kFloat && m.is_contiguous() &&
                    v.scalar_type() == at::kFloat && v.is_contiguous() && m.sizes() == p.sizes() &&
                    v.sizes() == p.sizes();
  if (fast) {
    const int64_t row_size = p.numel() / p.size(0);
    const int64_t* r = rows.data_ptr<int64_t>();
    const float* g = values.data_ptr<float>();
    float* pp = p.data_ptr<float>();
    float* mm = m.data_ptr<float>();
    float* vv = v.data_ptr<float>();
    const float one_b1 = static_cast<float>(1 - beta1), one_b2 = static_cast<float>(1 - beta2);
    const float eps = static_cast<float>(o.eps()), neg_step = static_cast<float>(-step_size);
    // The coalesced rows are unique, so rows can be updated in parallel.
    at::parallel_for(0, nnz, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, row_size)), [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t base = r[j] * row_size;
        const float* gj = g + j * row_size;
        for (int64_t k = 0; k < row_size; ++k) {
          const int64_t i = base + k;
          const float gi = gj[k];
          const float m_old = mm[i], v_old = vv[i];
          const float m_upd = (gi - m_old) * one_b1;
          const float v_upd = (gi * gi - v_old) * one_b2;
          mm[i] = m_old + m_upd;
          vv[i] = v_old + v_upd;
          const float numer = m_upd + m_old;
          const float denom = std::sqrt(v_upd + v_old) + eps;
          pp[i] = pp[i] + neg_step * (numer / denom);
        }
      }
    });
    return;
  }
  // Any device or dtype: the same operations with ATen, as PyTorch runs them.
  const at::Tensor m_old = m.index_select(0, rows);
  const at::Tensor m_upd = (values - m_old).mul_(1 - beta1);
  m.index_add_(0, rows, m_upd);
  const at::Tensor v_old = v.index_select(0, rows);
  const at::Tensor v_upd = values.pow(2).sub_(v_old).mul_(1 - beta2);
  v.index_add_(0, rows, v_upd);
  const at::Tensor numer = m_upd.add(m_old);
  const at::Tensor denom = v_upd.add(v_old).sqrt_().add_(o.eps());
  p.index_add_(0, rows, numer.div_(denom).mul_(-step_size));
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  bool fallback = false;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (p.grad().defined() && !p.grad().is_sparse() && !Fusable(p, o)) fallback = true;
    }
  }
  // Sparse gradients first: row-wise, as torch.optim.SparseAdam.
  std::vector<std::pair<at::Tensor, at::Tensor>> hidden;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined() || !p.grad().is_sparse()) continue;
      SparseStep(p, o);
      if (fallback) {
        // torch::optim::Adam::step() refuses sparse gradients: hide them from it.
        hidden.emplace_back(p, p.grad());
        p.mutable_grad() = at::Tensor();
      }
    }
  }
  if (fallback) {
    try {
      torch::optim::Adam::step();
    } catch (...) {
      for (auto& h : hidden) h.first.mutable_grad() = h.second;
      throw;
    }
    for (auto& h : hidden) h.first.mutable_grad() = h.second;
    return loss;
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined() || p.grad().is_sparse()) continue;
      auto& s = State(p);
      at::Tensor& m = s.exp_avg();
      at::Tensor& v = s.exp_avg_sq();
      if (!m.is_contiguous() || !v.is_contiguous() || m.scalar_type() != at::kFloat || v.scalar_type() != at::kFloat) {
        // A state loaded from elsewhere in another layout: contiguous float copies.
        m = m.to(at::kFloat).contiguous();
        v = v.to(at::kFloat).contiguous();
      }
      s.step(s.step() + 1);
      const double beta1 = std::get<0>(o.betas());
      const double beta2 = std::get<1>(o.betas());
      const double bc1 = 1 - std::pow(beta1, s.step());
      const double bc2 = 1 - std::pow(beta2, s.step());
      const at::Tensor g = p.grad();
      Update(p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), p.numel(),
             static_cast<float>(o.weight_decay()), static_cast<float>(beta1), static_cast<float>(1 - beta1),
             static_cast<float>(beta2), static_cast<float>(1 - beta2), static_cast<float>(std::sqrt(bc2)),
             static_cast<float>(o.eps()), static_cast<float>(-(o.lr() / bc1)));
    }
  }
  return loss;
}

namespace {
bool SameTensor(const at::Tensor& a, const at::Tensor& b) { return a.unsafeGetTensorImpl() == b.unsafeGetTensorImpl(); }
}  // namespace

void CheckSparseGradient(torch::optim::Optimizer& optimizer, const at::Tensor& p, const std::string& name) {
  const std::string what = "optimizer: the gradient of " + name +
                           " is sparse (model.sparseEmbedding, or nn.Embedding(sparse=True) in the model)";
  for (auto& group : optimizer.param_groups()) {
    bool member = false;
    for (const auto& q : group.params()) member = member || SameTensor(p, q);
    if (!member) continue;
    if (dynamic_cast<FusedAdam*>(&optimizer) != nullptr) {
      const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
      TORCH_CHECK(o.weight_decay() == 0 && !o.amsgrad(), what,
                  "; optimizer 'adam' updates it row-wise as torch.optim.SparseAdam, which has no weight decay and "
                  "no amsgrad: set optimizer.weightDecay to 0 and optimizer.amsgrad to false for it (an optimizer "
                  "group for it may set weightDecay 0), got weightDecay ",
                  o.weight_decay(), ", amsgrad ", o.amsgrad() ? "true" : "false");
      return;
    }
    if (auto* sgd = dynamic_cast<torch::optim::SGD*>(&optimizer)) {
      (void)sgd;
      const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
      TORCH_CHECK(o.momentum() == 0 && o.weight_decay() == 0, what,
                  "; optimizer 'sgd' takes it only without momentum and weight decay (as torch.optim.SGD), got "
                  "momentum ", o.momentum(), ", weightDecay ", o.weight_decay(),
                  "; use optimizer.type 'adam' (row-wise, as torch.optim.SparseAdam)");
      return;
    }
    const bool adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr;
    const bool adam = dynamic_cast<torch::optim::Adam*>(&optimizer) != nullptr;
    TORCH_CHECK(!adamw && !adam, what, "; optimizer.type '", adamw ? "adamw" : "adam (torch::optim::Adam)",
                "' cannot update a sparse gradient: use optimizer.type 'adam' (row-wise, as torch.optim.SparseAdam) "
                "or 'sgd' without momentum and weight decay, or a dense embedding");
    return;  // another optimizer: its own business
  }
}

}  // namespace engine
}  // namespace dropattack
