// sam and asam: one move of all targets together, of joint radius rho, along the clean
// gradient (ASAM: scaled by |w| + eta), then the update from the gradient there
// (docs/methods.md).
#include <cmath>

#include "../step.h"
#include "registry.h"

namespace dropattack {
namespace engine {
namespace methods {
namespace {

// Each move's radius: rho * ||direction|| / the joint norm; nothing moves when the joint
// norm is 0 or not finite.
bool Scale(double rho, double joint, std::vector<StepContext::Move>& moves) {
  const bool ok = joint > 0 && std::isfinite(joint);
  joint = std::sqrt(joint);
  if (!ok) return false;
  for (StepContext::Move& m : moves) m.radius = rho * std::sqrt(ops::squared_norm(m.direction.contiguous())) / joint;
  return true;
}

bool RunSam(StepContext& c) {
  return c.WeightAscent([&c](std::vector<StepContext::Move>& moves) {
    double joint = 0;
    for (const StepContext::Move& m : moves) joint += ops::squared_norm(m.direction.contiguous());
    return Scale(c.attack().rho, joint, moves);
  });
}

bool RunAsam(StepContext& c) {
  return c.WeightAscent([&c](std::vector<StepContext::Move>& moves) {
    double joint = 0;
    for (StepContext::Move& m : moves) {
      const at::Tensor scale = c.Tensor(*m.target).detach().abs() + c.attack().eta;
      joint += ops::squared_norm((scale * m.direction).contiguous());
      m.direction = scale * scale * m.direction;
    }
    return Scale(c.attack().rho, joint, moves);
  });
}

Strategy Common() {
  Strategy s;
  s.group_fields = {"targets", "sparse"};
  s.groups = Groups::kOptional;
  s.needs_epsilon = false;
  s.one_group_per_tensor = true;
  return s;
}

}  // namespace

Strategy SamStrategy() {
  Strategy s = Common();
  s.method = Method::kSAM;
  s.name = "sam";
  s.fields = {"groups", "rho"};
  s.run = RunSam;
  return s;
}

Strategy AsamStrategy() {
  Strategy s = Common();
  s.method = Method::kASAM;
  s.name = "asam";
  s.fields = {"groups", "rho", "eta"};
  s.run = RunAsam;
  return s;
}

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
