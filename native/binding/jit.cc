// How TorchScript executes a module's forward: the executor and the fuser, set
// explicitly so that every LibTorch behaves the same way.
//
// LibTorch's default is the profiling executor: after two profiling runs it specializes
// the graph, builds differentiable subgraphs and, with the TensorExpr fuser on, compiles
// fused kernels. On LibTorch 2.x that compile (LLVM on CPU) runs on a module's third
// forward call; from a libuv worker it hangs, and without LLVM it fails. DropAttack
// changes parameters in place between forwards, which is what eager PyTorch and the
// simple executor handle naturally. The default here is therefore the simple executor
// (no graph optimization; autograd records op by op) with no fuser.
#include <torch/csrc/jit/passes/graph_fuser.h>
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cstdlib>
#include <cstring>

#include "common.h"

// Declared in torch/csrc/jit/codegen/fuser/interface.h, which not every LibTorch
// package ships; exported by libtorch_cpu in 1.13 and 2.x.
namespace torch {
namespace jit {
TORCH_API void overrideCanFuseOnCPU(bool value);
TORCH_API void overrideCanFuseOnGPU(bool value);
}  // namespace jit
}  // namespace torch

namespace dropattack {
namespace binding {

JitSettings& Jit() {
  static JitSettings* settings = [] {
    auto* s = new JitSettings();
    // DROPATTACK_JIT_EXECUTOR=simple|profiling|legacy, DROPATTACK_JIT_FUSER=none|tensorexpr:
    // the same settings for programs that cannot call setJitOptions before their first model.
    if (const char* e = std::getenv("DROPATTACK_JIT_EXECUTOR")) {
      if (std::strcmp(e, "profiling") == 0) s->executor = static_cast<int>(JitExecutor::kProfiling);
      if (std::strcmp(e, "legacy") == 0) s->executor = static_cast<int>(JitExecutor::kLegacy);
    }
    if (const char* f = std::getenv("DROPATTACK_JIT_FUSER")) s->fuser = std::strcmp(f, "tensorexpr") == 0;
    return s;
  }();
  return *settings;
}

void ApplyJitGlobals() {
  const auto executor = static_cast<JitExecutor>(Jit().executor.load());
  const bool fuser = Jit().fuser.load();
  // Profiling mode and executor mode are process-wide atomics in LibTorch.
  torch::jit::getProfilingMode() = executor == JitExecutor::kProfiling;
  torch::jit::getExecutorMode() = executor == JitExecutor::kProfiling;
  torch::jit::setTensorExprFuserEnabled(fuser);
  // The legacy fuser (used by the legacy executor) compiles C++ at run time on CPU.
  torch::jit::overrideCanFuseOnCPU(fuser && executor == JitExecutor::kLegacy);
  torch::jit::overrideCanFuseOnGPU(fuser && executor == JitExecutor::kLegacy);
  torch::jit::overrideCanFuseOnCPULegacy(fuser && executor == JitExecutor::kLegacy);
}

void ApplyJitToThisThread() {
  // Graph optimization is thread-local in LibTorch: every thread that runs a forward
  // sets it, each time (the settings may have changed since).
  torch::jit::setGraphExecutorOptimize(static_cast<JitExecutor>(Jit().executor.load()) != JitExecutor::kSimple);
}

namespace {
using Info = const Napi::CallbackInfo&;

const char* ExecutorName(JitExecutor e) {
  switch (e) {
    case JitExecutor::kSimple: return "simple";
    case JitExecutor::kProfiling: return "profiling";
    case JitExecutor::kLegacy: return "legacy";
  }
  return "simple";
}

Napi::Value GetJitOptions(Info info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("executor", ExecutorName(static_cast<JitExecutor>(Jit().executor.load())));
  o.Set("fuser", Jit().fuser.load() ? "tensorexpr" : "none");
  return o;
}

// setJitOptions({executor?, fuser?}); the TypeScript side has checked the values.
Napi::Value SetJitOptions(Info info) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, 0);
  if (!v.IsObject() || v.IsArray()) ThrowType(env, "setJitOptions", "options", "an object", v);
  Napi::Object o = v.As<Napi::Object>();
  const std::string executor = StringField(env, o, "jit options", "executor",
                                           ExecutorName(static_cast<JitExecutor>(Jit().executor.load())));
  const std::string fuser = StringField(env, o, "jit options", "fuser", Jit().fuser.load() ? "tensorexpr" : "none");
  JitExecutor e;
  if (executor == "simple") {
    e = JitExecutor::kSimple;
  } else if (executor == "profiling") {
    e = JitExecutor::kProfiling;
  } else if (executor == "legacy") {
    e = JitExecutor::kLegacy;
  } else {
    throw Napi::RangeError::New(env, "jit.executor must be 'simple', 'profiling' or 'legacy', got '" + executor + "'");
  }
  if (fuser != "none" && fuser != "tensorexpr") {
    throw Napi::RangeError::New(env, "jit.fuser must be 'none' or 'tensorexpr', got '" + fuser + "'");
  }
  Jit().executor = static_cast<int>(e);
  Jit().fuser = fuser == "tensorexpr";
  ApplyJitGlobals();
  ApplyJitToThisThread();
  return GetJitOptions(info);
}
}  // namespace

void InitJit(Napi::Env env, Napi::Object exports) {
  ApplyJitGlobals();
  ApplyJitToThisThread();
  exports.Set("setJitOptions", Napi::Function::New(env, &Guard<SetJitOptions>, "setJitOptions"));
  exports.Set("getJitOptions", Napi::Function::New(env, &Guard<GetJitOptions>, "getJitOptions"));
}

}  // namespace binding
}  // namespace dropattack
