// dropattack: K masked ascent passes per group from the clean gradient (docs/methods.md).
#include "../step.h"
#include "registry.h"

namespace dropattack {
namespace engine {
namespace methods {

bool RunDropAttack(StepContext& c) {
  const AttackConfig& a = c.attack();
  std::vector<std::vector<at::Tensor>> clean_end;
  if (!c.CleanPass(&clean_end)) return false;
  const double k = static_cast<double>(a.k);
  for (size_t g = 0; g < a.groups.size(); ++g) {
    const AttackGroup& group = a.groups[g];
    const auto& targets = c.targets(g);
    const std::vector<at::Tensor> offsets = c.Offsets(targets, clean_end[g], g == 0);
    std::vector<double> radius(targets.size());
    for (size_t j = 0; j < targets.size(); ++j) radius[j] = c.Radius(group, c.Tensor(targets[j]));
    const size_t mark = c.undo.size();
    double total = 0;
    for (int t = 0; t < a.k; ++t) {
      std::vector<at::Tensor> directions(targets.size());
      for (size_t j = 0; j < targets.size(); ++j) {
        directions[j] = c.Grad(targets[j]);
        if (offsets[j].defined()) directions[j] = directions[j] - offsets[j];
      }
      c.SyncDirections(directions, targets);  // distributed, "allreduced" directions only
      for (size_t j = 0; j < targets.size(); ++j) {
        if (!c.Perturb(targets[j], directions[j], radius[j], group.p, g, j)) c.result.skipped[g]++;
      }
      const bool last = g + 1 == a.groups.size() && t + 1 == a.k;
      const double loss = last ? c.LastPass(1.0 / k) : c.Pass(1.0 / k);
      if (c.failed) {
        c.Fail("an adversarial loss of group " + std::to_string(g) + " is not finite");
        return false;
      }
      total += loss / k;
    }
    c.RestoreTo(mark);
    c.result.group_losses[g] = total;
  }
  return true;
}

Strategy DropAttackStrategy() {
  Strategy s;
  s.method = Method::kDropAttack;
  s.name = "dropattack";
  s.fields = {"groups", "k", "seed"};
  s.group_fields = {"targets", "epsilon", "p", "relative", "sparse"};
  s.run = RunDropAttack;
  return s;
}

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
