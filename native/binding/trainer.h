// Trainer: the JS handle of an engine::Trainer bound to a Module. step() is one native
// call per batch, on the thread pool, with the module marked busy while it runs.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "engine/engine.h"
#include "memory.h"
#include "engine/module_loss.h"
#include "distributed.h"
#include "module.h"

namespace dropattack {
namespace binding {

struct TrainerState {
  std::shared_ptr<ModuleState> module;
  std::unique_ptr<engine::Trainer> trainer;
  // The engine's policy for turning the module's forward into the loss (the loss spec
  // with its class weights, bf16 autocast, buffers during attack passes, train/eval mode).
  std::unique_ptr<engine::LossFromModule> loss;
  // After dispose() (its own, or its module's) the engine and the optimizer state are
  // gone and every call is refused.
  bool disposed = false;
  int64_t reported_bytes = 0;  // optimizer state and class weights, as reported to V8

  /// What the trainer holds besides the module: the optimizer's state tensors (momentum
  /// buffers, Adam's moments) and the loss's class weights.
  void Tensors(std::vector<at::Tensor>* optimizer_state, std::vector<at::Tensor>* loss_state) const;
  // Data-parallel training: the group its steps use (marked busy while a step runs).
  std::shared_ptr<ProcessGroupState> group;
};

/// The loss options of a JS object ({type, labelSmoothing, classWeights, ignoreIndex}),
/// already validated and complete (lib/core/options.ts holds the defaults).
engine::LossSpec ReadLoss(Napi::Env env, Napi::Object o);

class Trainer : public Napi::ObjectWrap<Trainer>, public Tracked<Trainer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Trainer(const Napi::CallbackInfo& info);
  ~Trainer() override;
  std::shared_ptr<TrainerState> state;
};

/// Frees the engine and the optimizer state now (the module stays); idempotent.
void ReleaseTrainer(Napi::Env env, TrainerState& state);
/// Reports the bytes of the optimizer state and class weights to V8 (the difference
/// from the last report): Adam's moments double what a model holds.
void SyncTrainerReport(Napi::Env env, TrainerState& state);

}  // namespace binding
}  // namespace dropattack
