// awp: one move of every target by epsilon * ||w|| along its clean gradient, then the
// update from the gradient at the moved weights (docs/methods.md).
#include <cmath>

#include "../step.h"
#include "registry.h"

namespace dropattack {
namespace engine {
namespace methods {
namespace {

bool Run(StepContext& c) {
  return c.WeightAscent([&c](std::vector<StepContext::Move>& moves) {
    for (StepContext::Move& m : moves) {
      m.radius = *c.attack().groups[m.g].epsilon * std::sqrt(ops::squared_norm(c.Tensor(*m.target).detach().contiguous()));
    }
    return true;
  });
}

}  // namespace

Strategy AwpStrategy() {
  Strategy s;
  s.method = Method::kAWP;
  s.name = "awp";
  s.fields = {"groups"};
  s.group_fields = {"targets", "epsilon", "sparse"};
  s.max_k = 1;
  s.k_rule = "attack.k must be 1 for awp";
  s.one_group_per_tensor = true;
  s.run = Run;
  return s;
}

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
