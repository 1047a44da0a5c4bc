// Module: the JS handle of a torch::jit::Module (a TorchScript file or a built-in model).
// Slow work (load, save, forward) runs on the thread pool; while a forward or a training
// step uses the module, every other call on it is refused instead of racing.
#pragma once

#include <napi.h>
#include <torch/script.h>

#include <memory>
#include <string>

#include "engine/module_loss.h"

namespace dropattack {
namespace binding {

struct ModuleState {
  torch::jit::Module module;
  bool busy = false;         // read and written on the JS thread only
  std::string busy_with;     // what holds it, for the error message

  /// Where the module's parameters are (its first parameter's device; the CPU when it
  /// has none): batches and loaded state go there.
  at::Device device() const {
    for (const auto& p : module.parameters(/*recurse=*/true)) return p.device();
    return at::kCPU;
  }
};

class Module : public Napi::ObjectWrap<Module> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ModuleState> state);
  explicit Module(const Napi::CallbackInfo& info);
  std::shared_ptr<ModuleState> state;
};

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
