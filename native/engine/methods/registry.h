// The training methods as registered strategies: what each one is called, which attack
// settings it reads, the rules its AttackConfig must follow, and its run over the step
// context (step.h). Each method's file defines its strategy; registry.cpp lists them all.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"

namespace dropattack {
namespace engine {

class StepContext;

namespace methods {

/// What a method needs of attack.groups.
enum class Groups {
  kForbidden,  // must be empty
  kRequired,   // at least one
  kOptional,   // empty means one group over every parameter ("*", radius 0)
};

struct Strategy {
  Method method;
  std::string name;
  /// The AttackConfig fields it reads (besides method), and those of each group.
  std::vector<std::string> fields;
  std::vector<std::string> group_fields;
  Groups groups = Groups::kRequired;
  int max_k = kMaxAttackSteps;
  std::string k_rule;      // the error message when k > max_k
  bool needs_alpha = false;    // alpha must be given (its default is no sensible step)
  bool needs_epsilon = true;   // every group must give epsilon
  bool sparse = true;          // targets may take the row-sparse path
  bool one_group_per_tensor = false;  // moves all groups at once
  bool full_p = false;         // p is forced to 1 (every element)
  /// The method's part of a step, between the set-up and the update. False when the step
  /// failed (after calling StepContext::Fail).
  bool (*run)(StepContext&) = nullptr;
};

/// Every method, in the order of docs/methods.md.
const std::vector<Strategy>& All();
/// The method called `name`, or nullptr.
const Strategy* Find(const std::string& name);
/// The strategy of a Method.
const Strategy& Of(Method m);

/// Checks the method's rules on groups and k (and adds SAM's default group).
void Validate(const Strategy& s, AttackConfig& a);

/// DropAttack's run, which FGM shares (with p forced to 1).
bool RunDropAttack(StepContext& c);

}  // namespace methods
}  // namespace engine
}  // namespace dropattack
