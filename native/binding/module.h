// Module: the JS handle of a torch::jit::Module (a TorchScript file or a built-in model).
// Slow work (load, save, forward) runs on the thread pool; while a forward or a training
// step uses the module, every other call on it is refused instead of racing.
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "memory.h"

#include "engine/module_loss.h"

namespace dropattack {
namespace binding {

struct TrainerState;

struct ModuleState {
  torch::jit::Module module;
  bool busy = false;         // read and written on the JS thread only
  std::string busy_with;     // what holds it, for the error message
  // After dispose() the module is released and every call on it is refused. Its trainers
  // hold the parameters too (the optimizer's parameter groups), so they are released
  // with it: the memory comes back at once, not when the last trainer is collected.
  bool disposed = false;
  std::vector<std::weak_ptr<TrainerState>> trainers;
  int64_t reported_bytes = 0;  // parameters and buffers, as reported to V8

  /// The module's own tensors: parameters, buffers and the parameters' gradients.
  void Tensors(std::vector<at::Tensor>* parameters, std::vector<at::Tensor>* buffers,
               std::vector<at::Tensor>* gradients) const;

  /// Where the module's parameters are (its first parameter's device; the CPU when it
  /// has none): batches and loaded state go there.
  at::Device device() const {
    for (const auto& p : module.parameters(/*recurse=*/true)) return p.device();
    return at::kCPU;
  }
};

class Module : public Napi::ObjectWrap<Module>, public Tracked<Module> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ModuleState> state);
  explicit Module(const Napi::CallbackInfo& info);
  ~Module() override;
  std::shared_ptr<ModuleState> state;
};

/// Reports the bytes of the module's parameters and buffers to V8 (the difference from
/// the last report), so the garbage collector weighs what a Module handle keeps alive.
void SyncModuleReport(Napi::Env env, ModuleState& state);
/// A model's forward arguments from JS: `{args: [...], kwargs: {...}}` whose values are
/// Tensors, numbers, booleans, strings, null, arrays and plain objects (dicts), each
/// converted to the type forward's schema declares for it. `where` starts messages.
engine::ModelInputs ReadModelInputs(Napi::Env env, const Napi::Value& v, const torch::jit::Module& module,
                                    const std::string& where);

/// A forward's output as JS: Tensors, numbers, booleans, strings, null, arrays (tuples and
/// lists) and plain objects (dicts).
Napi::Value ToJs(Napi::Env env, const c10::IValue& v, const std::string& where);

/// The module behind argument i, refusing it when busy (`fn` names the call).
std::shared_ptr<ModuleState> ArgModule(const Napi::CallbackInfo& info, size_t i, const char* fn, bool allow_busy = false);

}  // namespace binding
}  // namespace dropattack
