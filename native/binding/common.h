// Shared machinery of the binding: per-environment state, the one place where C++
// exceptions become JS errors, and argument readers that name what was wrong.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dropattack {
namespace binding {

// References to JS ArrayBuffers that back zero-copy tensors. A tensor can die on any
// thread (a worker may drop the last reference), but a napi_ref may only be deleted on
// the JS thread: releases from other threads wait here until the JS thread drains them.
struct ReleaseQueue {
  napi_env env = nullptr;
  std::thread::id js_thread;
  std::mutex mu;
  std::vector<napi_ref> pending;
  std::atomic<bool> has_pending{false};
  bool alive = true;

  void Release(napi_ref ref);
  void Drain();
};

struct InstanceData {
  Napi::FunctionReference torch_error;  // the TorchError class from lib/core/errors.ts
  Napi::FunctionReference tensor_class;
  Napi::FunctionReference generator_class;
  Napi::FunctionReference perturbation_class;
  Napi::FunctionReference module_class;
  Napi::FunctionReference trainer_class;
  std::shared_ptr<ReleaseQueue> releases = std::make_shared<ReleaseQueue>();
  ~InstanceData();
};

/// Per-environment set-up: the instance data (freed by its finalizer) and a cleanup hook
/// that stops the release queue before Node frees the environment's references.
InstanceData& InitInstanceData(Napi::Env env);

InstanceData& Data(Napi::Env env);

/// How TorchScript runs a module's forward (process-wide; see docs/jit.md).
///  - kSimple: no graph optimization: the graph runs op by op through the dispatcher, as
///    eager PyTorch does, and autograd records every op (the default: predictable, and
///    the same on every LibTorch).
///  - kProfiling: LibTorch's default executor: profiling runs, then shape specialization,
///    differentiable subgraphs and (with a fuser) fused kernels.
///  - kLegacy: the older optimizing executor without profiling.
enum class JitExecutor { kSimple = 0, kProfiling = 1, kLegacy = 2 };
struct JitSettings {
  std::atomic<int> executor{static_cast<int>(JitExecutor::kSimple)};
  std::atomic<bool> fuser{false};  // TensorExpr fusion (CPU needs LibTorch built with LLVM)
};
JitSettings& Jit();
/// Installs the process-wide part of the settings (executor mode, fusers).
void ApplyJitGlobals();
/// Installs the thread-local part (graph optimization on/off) on the calling thread:
/// called at the start of every job on a worker thread and by every synchronous forward.
void ApplyJitToThisThread();
void InitJit(Napi::Env env, Napi::Object exports);

/// A JS TorchError (or a plain Error before the class is registered).
Napi::Error TorchError(Napi::Env env, const std::string& message);

// Throwing into JS without letting a C++ exception escape. While an environment is torn
// down (a terminated worker) JS cannot run and every napi call that would fails; an
// exception escaping into Node there terminates the whole process, so these drop the
// error instead (nobody is left to observe it).

/// Throws the error `e` into JS; never throws.
void ThrowToJs(Napi::Env env, const Napi::Error& e) noexcept;
/// Throws a TorchError with `message` into JS; never throws.
void ThrowTorchErrorToJs(Napi::Env env, const std::string& message) noexcept;
/// Clears an exception left pending by a napi call that failed; never throws.
void ClearPendingException(Napi::Env env) noexcept;
/// napi_adjust_external_memory for destructors and finalizers; never throws.
void AdjustExternalMemory(Napi::Env env, int64_t delta) noexcept;

/// Runs F and turns every C++ exception into a JS exception: c10::Error and
/// std::exception become TorchError (without LibTorch's backtrace); Napi errors pass.
/// Nothing escapes: the throw into JS itself cannot fail with a C++ exception.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guard(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  try {
    return F(info);
  } catch (const Napi::Error& e) {
    ThrowToJs(env, e);
  } catch (const c10::Error& e) {
    ThrowTorchErrorToJs(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    ThrowTorchErrorToJs(env, e.what());
  } catch (...) {
    ThrowTorchErrorToJs(env, "unknown native error");
  }
  return Napi::Value();
}

// ---- argument readers: each names the function and the argument on failure ----

std::string Describe(const Napi::Value& v);
[[noreturn]] void ThrowType(Napi::Env env, const char* fn, const char* arg, const char* expected,
                            const Napi::Value& got);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

Napi::Value Arg(const Napi::CallbackInfo& info, size_t i);
double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
double ArgFinite(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
uint64_t ArgUint64(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
/// Array of integers >= 0 (or -1 once, when allow_infer) as a shape.
std::vector<int64_t> ArgShape(const Napi::CallbackInfo& info, size_t i, const char* fn,
                              const char* name, bool allow_infer = false);
/// Array of integers (dims, may be negative); null/undefined -> empty with *given=false.
std::vector<int64_t> ArgDims(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                             bool* given);
// Readers of option objects: `where` names the object in messages ("optimizer",
// "model"); undefined or null gives the fallback.
double NumberField(Napi::Env env, Napi::Object o, const std::string& where, const char* key, double fallback);
int64_t IntField(Napi::Env env, Napi::Object o, const std::string& where, const char* key, int64_t fallback);
bool BoolField(Napi::Env env, Napi::Object o, const std::string& where, const char* key, bool fallback);
std::string StringField(Napi::Env env, Napi::Object o, const std::string& where, const char* key,
                        const std::string& fallback);
std::vector<int64_t> IntListField(Napi::Env env, Napi::Object o, const std::string& where, const char* key,
                                  std::vector<int64_t> fallback);

at::ScalarType ArgDtype(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
at::Device ArgDevice(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
/// A live Tensor handle.
at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
bool IsTensor(Napi::Env env, const Napi::Value& v);

/// The native object behind a handle of class `cls`, or nullptr when `v` is not one
/// (including objects that merely inherit the class's prototype).
template <typename T>
T* UnwrapAs(Napi::Env env, const Napi::Value& v, const Napi::FunctionReference& cls) {
  if (!v.IsObject() || cls.IsEmpty() || !v.As<Napi::Object>().InstanceOf(cls.Value())) return nullptr;
  void* p = nullptr;
  if (napi_unwrap(env, v, &p) != napi_ok || p == nullptr) return nullptr;
  return static_cast<T*>(static_cast<Napi::ObjectWrap<T>*>(p));
}

/// A number as a LibTorch scalar for an operation on `t`: integral when `t` is an
/// integer tensor and the number is an integer (so int64 math stays exact), else double.
at::Scalar ScalarFor(const at::Tensor& t, double value);

std::string DtypeName(at::ScalarType t);
std::string DeviceName(const at::Device& d);

}  // namespace binding
}  // namespace dropattack

namespace dropattack {
namespace binding {

/// A Promise-returning job on the libuv thread pool: `work` runs off the JS thread and
/// must not touch JS values; `done` builds the resolution on the JS thread; `finally`
/// runs on the JS thread either way (e.g. to clear a busy flag). C++ exceptions from
/// `work` reject the promise with a TorchError.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  using Finally = std::function<void()>;

  static Napi::Promise Start(Napi::Env env, const char* name, Work work, Done done, Finally finally = nullptr) {
    auto* w = new PromiseWorker(env, name, std::move(work), std::move(done), std::move(finally));
    Napi::Promise promise = w->deferred_.Promise();
    try {
      w->Queue();
    } catch (...) {
      w->RunFinally();
      delete w;
      throw;
    }
    return promise;
  }

 protected:
  void Execute() override {
    try {
      ApplyJitToThisThread();
      work_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  // OnOK and OnError run on the JS thread, also while a worker's environment is torn
  // down: Node then completes the jobs still running before it frees the environment, but
  // JS can no longer run and every napi call fails. Nothing may escape from them (it would
  // reach libuv and terminate the process); a promise nobody can observe stays pending.
  void OnOK() override {
    RunFinally();
    const Napi::Env env = Env();
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      try {
        deferred_.Reject(e.Value());
      } catch (...) {
        ClearPendingException(env);
      }
    } catch (const c10::Error& e) {
      Reject(e.what_without_backtrace());
    } catch (const std::exception& e) {
      Reject(e.what());
    } catch (...) {
      Reject("unknown native error");
    }
  }
  void OnError(const Napi::Error& e) override {
    RunFinally();
    Reject(e.Message());  // Message() does not throw
  }
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (status == napi_cancelled) RunFinally();  // OnOK/OnError are skipped then
    try {
      Napi::AsyncWorker::OnWorkComplete(env, status);  // OnOK or OnError, then deletes this
    } catch (...) {
      // Only node-addon-api's own scaffolding can get here (a handle scope or the error
      // object failed to be made in a dying environment); it threw before deleting us.
      ClearPendingException(env);
      Destroy();
    }
  }

 private:
  PromiseWorker(Napi::Env env, const char* name, Work work, Done done, Finally finally)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)),
        finally_(std::move(finally)) {}

  // Runs `finally` once, whichever way the job ends.
  void RunFinally() noexcept {
    if (!finally_) return;
    Finally f = std::move(finally_);
    finally_ = nullptr;
    try {
      f();
    } catch (...) {
      // It clears a flag; there is nobody to report a failure to.
    }
  }
  void Reject(const std::string& message) noexcept {
    const Napi::Env env = Env();
    try {
      deferred_.Reject(TorchError(env, message).Value());
    } catch (...) {
      ClearPendingException(env);
    }
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Finally finally_;
};

}  // namespace binding
}  // namespace dropattack
