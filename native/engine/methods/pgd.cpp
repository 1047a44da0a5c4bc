// pgd: K projected gradient steps of size alpha per group, the last one's gradient kept
// (docs/methods.md).
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "../step.h"
#include "registry.h"

namespace dropattack {
namespace engine {
namespace methods {
namespace {

bool Run(StepContext& c) {
  const AttackConfig& a = c.attack();
  std::vector<std::vector<at::Tensor>> clean_end;
  if (!c.CleanPass(&clean_end)) return false;
  for (size_t g = 0; g < a.groups.size(); ++g) {
    const AttackGroup& group = a.groups[g];
    const auto& targets = c.targets(g);
    const std::vector<at::Tensor> offsets = c.Offsets(targets, clean_end[g], g == 0);
    const size_t mark = c.undo.size();
    std::vector<at::Tensor> w0(targets.size()), delta(targets.size()), steer(targets.size());
    std::vector<double> radius(targets.size());
    for (size_t j = 0; j < targets.size(); ++j) {
      at::Tensor& w = c.Tensor(targets[j]);
      radius[j] = c.Radius(group, w);
      w0[j] = w.detach().clone();
      delta[j] = at::zeros_like(w0[j]);
      steer[j] = c.Grad(targets[j]);
      if (offsets[j].defined()) steer[j] = steer[j] - offsets[j];
      c.SaveCopy(w, w0[j]);
    }
    c.SyncDirections(steer, targets);  // distributed, "allreduced" directions only
    double last = 0;
    for (int t = 0; t < a.k; ++t) {
      {
        at::NoGradGuard no_grad;
        const auto t0 = Clock::now();
        for (size_t j = 0; j < targets.size(); ++j) {
          if (!GradientStep(steer[j], *a.alpha, &delta[j])) {
            c.result.skipped[g]++;
            continue;
          }
          delta[j] = Project(delta[j], radius[j]);
          c.Tensor(targets[j]).copy_(w0[j] + delta[j]);
        }
        c.result.times.perturb += Seconds(t0, Clock::now());
      }
      const bool final_step = t == a.k - 1;
      if (final_step) {
        last = g + 1 == a.groups.size() ? c.LastPass(1.0) : c.Pass(1.0);
      } else {
        at::Tensor loss;
        last = c.Pass(1.0, /*backward=*/false, &loss);
        if (!c.failed) {
          std::vector<at::Tensor> inputs;
          for (const auto& target : targets) inputs.push_back(c.Tensor(target));
          const auto t0 = Clock::now();
          auto grads = torch::autograd::grad({loss}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                             /*allow_unused=*/true);
          c.result.times.backward += Seconds(t0, Clock::now());
          for (size_t j = 0; j < targets.size(); ++j) {
            steer[j] = grads[j].defined() ? grads[j] : at::zeros_like(w0[j]);
          }
          c.SyncDirections(steer, targets);
        }
      }
      if (c.failed) {
        c.Fail("an adversarial loss of group " + std::to_string(g) + " is not finite");
        return false;
      }
    }
    c.RestoreTo(mark);
    c.result.group_losses[g] = last;
  }
  return true;
}

}  // namespace

Strategy PgdStrategy() {
  Strategy s;
  s.method = Method::kPGD;
  s.name = "pgd";
  s.fields = {"groups", "k", "alpha"};
  s.group_fields = {"targets", "epsilon", "relative"};
  s.needs_alpha = true;
  s.sparse = false;
  s.run = Run;
  return s;
}

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
