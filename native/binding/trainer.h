// Trainer: the JS handle of an engine::Trainer bound to a Module. step() is one native
// call per batch, on the thread pool, with the module marked busy while it runs.
#pragma once

#include <napi.h>

#include <memory>

#include "engine/engine.h"
#include "engine/module_loss.h"
#include "module.h"

namespace dropattack {
namespace binding {

struct TrainerState {
  std::shared_ptr<ModuleState> module;
  std::unique_ptr<engine::Trainer> trainer;
  // The engine's policy for turning the module's forward into the loss (the loss spec,
  // bf16 autocast, buffers during attack passes, train/eval mode).
  std::unique_ptr<engine::LossFromModule> loss;
};

/// The loss options of a JS object ({type, labelSmoothing, classWeights, ignoreIndex}).
engine::LossSpec ReadLoss(Napi::Env env, Napi::Object o);

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Trainer(const Napi::CallbackInfo& info);
  std::shared_ptr<TrainerState> state;
};

}  // namespace binding
}  // namespace dropattack
