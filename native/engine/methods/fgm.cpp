// fgm: one step along the normalized clean gradient, per group: DropAttack with K = 1
// and p = 1 (docs/methods.md).
#include "../step.h"
#include "registry.h"

namespace dropattack {
namespace engine {
namespace methods {

Strategy FgmStrategy() {
  Strategy s;
  s.method = Method::kFGM;
  s.name = "fgm";
  s.fields = {"groups"};
  s.group_fields = {"targets", "epsilon", "relative", "sparse"};
  s.max_k = 1;
  s.k_rule = "attack.k must be 1 for fgm (use pgd or dropattack for several steps)";
  s.full_p = true;
  s.run = RunDropAttack;
  return s;
}

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
