// Trainer: the JS handle of an engine::Trainer bound to a Module. step() is one native
// call per batch, on the thread pool, with the module marked busy while it runs.
#pragma once

#include <napi.h>

#include <memory>

#include "engine/engine.h"
#include "distributed.h"
#include "module.h"

namespace dropattack {
namespace binding {

struct TrainerState {
  std::shared_ptr<ModuleState> module;
  std::unique_ptr<engine::Trainer> trainer;
  engine::LossSpec loss;
  // Forward passes under autocast to bfloat16 (parameters, gradients and the optimizer
  // stay in their own dtype: fp32 master weights).
  bool autocast_bf16 = false;
  // Data-parallel training: the group its steps use (marked busy while a step runs).
  std::shared_ptr<ProcessGroupState> group;
};

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Trainer(const Napi::CallbackInfo& info);
  std::shared_ptr<TrainerState> state;
};

}  // namespace binding
}  // namespace dropattack
