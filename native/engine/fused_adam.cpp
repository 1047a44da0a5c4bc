// The fused CPU Adam step (fused_adam.h).
#include "fused_adam.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/grad_mode.h>

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

torch::Tensor FusedAdam::step(LossClosure closure) {
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (p.grad().defined() && !Fusable(p, o)) return torch::optim::Adam::step(closure);
    }
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  using Key = typename std::remove_reference_t<decltype(state_)>::key_type;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      // The state under the key torch::optim::Adam uses, so save() and load() see it.
      const Key key = StateKey<Key>(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto s = std::make_unique<torch::optim::AdamParamState>();
        s->step(0);
        s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(s)).first;
      }
      auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
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

}  // namespace engine
}  // namespace dropattack
