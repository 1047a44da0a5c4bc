// none: plain training (docs/methods.md).
#include "../step.h"
#include "registry.h"

namespace dropattack {
namespace engine {
namespace methods {
namespace {

bool Run(StepContext& c) {
  c.result.clean_loss = c.LastPass(1.0);
  if (c.failed) {
    c.Fail("the clean loss is not finite");
    return false;
  }
  return true;
}

}  // namespace

Strategy NoneStrategy() {
  Strategy s;
  s.method = Method::kNone;
  s.name = "none";
  s.groups = Groups::kForbidden;
  s.needs_epsilon = false;
  s.run = Run;
  return s;
}

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
