// freelb: K ascent steps on every group at once, the gradients of all K passes averaged
// (docs/methods.md).
#include <torch/csrc/autograd/grad_mode.h>

#include "../step.h"
#include "registry.h"

namespace dropattack {
namespace engine {
namespace methods {
namespace {

bool Run(StepContext& c) {
  const AttackConfig& a = c.attack();
  std::vector<const StepContext::Target*> all;
  std::vector<double> radius;
  for (size_t g = 0; g < a.groups.size(); ++g) {
    for (const auto& t : c.targets(g)) {
      all.push_back(&t);
      radius.push_back(c.Radius(a.groups[g], c.Tensor(t)));
    }
  }
  std::vector<at::Tensor> w0(all.size()), delta(all.size());
  for (size_t j = 0; j < all.size(); ++j) {
    at::Tensor& w = c.Tensor(*all[j]);
    w0[j] = w.detach().clone();
    delta[j] = at::zeros_like(w0[j]);
    c.SaveCopy(w, w0[j]);
  }
  const double k = static_cast<double>(a.k);
  double total = 0;
  for (int t = 0; t < a.k; ++t) {
    std::vector<at::Tensor> before(all.size());
    for (size_t j = 0; j < all.size(); ++j) before[j] = c.Grad(*all[j]).clone();
    const double loss = t == a.k - 1 ? c.LastPass(1.0 / k) : c.Pass(1.0 / k);
    if (c.failed) {
      c.Fail(t == 0 ? "the clean loss is not finite" : "an adversarial loss is not finite");
      return false;
    }
    if (t == 0) c.result.clean_loss = loss;
    total += loss / k;
    if (t == a.k - 1) break;  // the last δ update would not be used
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> gws(all.size());
    for (size_t j = 0; j < all.size(); ++j) gws[j] = c.Grad(*all[j]) - before[j];
    c.SyncDirections(gws, all);  // distributed, "allreduced" directions only
    const auto t0 = Clock::now();
    size_t j = 0;
    for (size_t g = 0; g < a.groups.size(); ++g) {
      for (size_t i = 0; i < c.targets(g).size(); ++i, ++j) {
        const at::Tensor& gw = gws[j];
        if (!GradientStep(gw, *a.alpha, &delta[j])) {
          c.result.skipped[g]++;
          continue;
        }
        delta[j] = Project(delta[j], radius[j]);
        c.Tensor(*all[j]).copy_(w0[j] + delta[j]);
      }
    }
    c.result.times.perturb += Seconds(t0, Clock::now());
  }
  for (auto& v : c.result.group_losses) v = total;
  return true;
}

}  // namespace

Strategy FreeLbStrategy() {
  Strategy s;
  s.method = Method::kFreeLB;
  s.name = "freelb";
  s.fields = {"groups", "k", "alpha"};
  s.group_fields = {"targets", "epsilon", "relative"};
  s.needs_alpha = true;
  s.sparse = false;
  s.one_group_per_tensor = true;
  s.run = Run;
  return s;
}

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
