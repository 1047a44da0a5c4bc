// Perturbation: the JS handle of one applied perturbation. It holds the target and its
// exact backup until restore(), and reports the backup's memory to V8 meanwhile.
#pragma once

#include <napi.h>

#include "memory.h"
#include "ops/perturb.h"

namespace dropattack {
namespace binding {

class Perturbation : public Napi::ObjectWrap<Perturbation>, public Tracked<Perturbation> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Perturbation(const Napi::CallbackInfo& info);
  ~Perturbation() override;

  at::Tensor target;
  ops::PerturbState state;
  bool restored = false;
  bool disposed = false;  // dispose() restored it (when needed) and ended its use
  bool made_by_perturb = false;  // false for objects made with `new handle.constructor()`
  int64_t reported_bytes = 0;
  void Report(Napi::Env env);
  void Unreport(Napi::Env env);
};

}  // namespace binding
}  // namespace dropattack
