// The list of methods. Registration is this explicit list, not static initializers, so
// that linking the static library cannot drop a method's object file.
#include "registry.h"

#include <c10/util/Exception.h>

namespace dropattack {
namespace engine {
namespace methods {

// One per file under methods/.
Strategy NoneStrategy();
Strategy DropAttackStrategy();
Strategy FgmStrategy();
Strategy PgdStrategy();
Strategy FreeLbStrategy();
Strategy AwpStrategy();
Strategy SamStrategy();
Strategy AsamStrategy();

const std::vector<Strategy>& All() {
  static const std::vector<Strategy> all = {
      NoneStrategy(), DropAttackStrategy(), FgmStrategy(), PgdStrategy(),
      FreeLbStrategy(), AwpStrategy(),     SamStrategy(), AsamStrategy(),
  };
  return all;
}

const Strategy* Find(const std::string& name) {
  for (const Strategy& s : All()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Strategy& Of(Method m) {
  for (const Strategy& s : All()) {
    if (s.method == m) return s;
  }
  TORCH_CHECK(false, "unknown attack method ", static_cast<int>(m));
}

void Validate(const Strategy& s, AttackConfig& a) {
  switch (s.groups) {
    case Groups::kForbidden:
      TORCH_CHECK(a.groups.empty(), "attack.groups must be empty when attack.method is '", s.name, "'");
      break;
    case Groups::kOptional:
      if (a.groups.empty()) a.groups.push_back(AttackGroup{{"*"}, 0.0, 1.0, false, "off"});
      break;
    case Groups::kRequired:
      TORCH_CHECK(!a.groups.empty(), "attack.groups must name at least one group for method ", s.name);
      break;
  }
  TORCH_CHECK(a.k <= s.max_k, s.k_rule);
}

}  // namespace methods

Method ParseMethod(const std::string& name) {
  const methods::Strategy* s = methods::Find(name);
  if (s != nullptr) return s->method;
  std::string known;
  for (const methods::Strategy& m : methods::All()) known += (known.empty() ? "" : ", ") + m.name;
  TORCH_CHECK(false, "attack.method must be one of ", known, "; got '", name, "'");
}

std::string MethodName(Method m) {
  for (const methods::Strategy& s : methods::All()) {
    if (s.method == m) return s.name;
  }
  return "?";
}

}  // namespace engine
}  // namespace dropattack
