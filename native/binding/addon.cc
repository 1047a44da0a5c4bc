// Entry point of the addon: per-environment state, the error class hand-over, and what
// the build can do (backends, threads).
#include <ATen/Parallel.h>
#include <napi.h>
#include <torch/version.h>

#include "common.h"
#include "generator.h"
#include "module.h"
#include "perturbation.h"
#include "tensor.h"
#include "trainer.h"

#ifdef DROPATTACK_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace dropattack {
namespace binding {
namespace {
using Info = const Napi::CallbackInfo&;

// setErrorClass(TorchError): lib/core/errors.ts hands its class over once at load.
Napi::Value SetErrorClass(Info info) {
  Napi::Value v = Arg(info, 0);
  if (!v.IsFunction()) ThrowType(info.Env(), "setErrorClass", "errorClass", "a class", v);
  Data(info.Env()).torch_error = Napi::Persistent(v.As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value Backends(Info info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", Napi::Boolean::New(env, true));
  bool cuda = false;
  int devices = 0;
#ifdef DROPATTACK_WITH_CUDA
  devices = static_cast<int>(at::cuda::device_count());
  cuda = devices > 0;
#endif
  o.Set("cuda", Napi::Boolean::New(env, cuda));
  o.Set("cudaDeviceCount", Napi::Number::New(env, devices));
#ifdef DROPATTACK_WITH_CUDA
  o.Set("cudaKernels", Napi::Boolean::New(env, true));
#else
  o.Set("cudaKernels", Napi::Boolean::New(env, false));
#endif
  o.Set("libtorch", Napi::String::New(env, TORCH_VERSION));
  o.Set("threads", Napi::Number::New(env, at::get_num_threads()));
  o.Set("interopThreads", Napi::Number::New(env, at::get_num_interop_threads()));
  o.Set("parallel", Napi::String::New(env, at::get_parallel_info()));
  return o;
}

Napi::Value SetNumThreads(Info info) {
  const int64_t n = ArgInt(info, 0, "setNumThreads", "threads");
  if (n < 1 || n > 1024) ThrowRange(info.Env(), "setNumThreads: threads must be in [1, 1024], got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(Info info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitInstanceData(env);
  Tensor::Init(env, exports);
  InitTensorFunctions(env, exports);
  Generator::Init(env, exports);
  Perturbation::Init(env, exports);
  Module::Init(env, exports);
  Trainer::Init(env, exports);
  InitJit(env, exports);
  exports.Set("setErrorClass", Napi::Function::New(env, &Guard<SetErrorClass>, "setErrorClass"));
  exports.Set("backends", Napi::Function::New(env, &Guard<Backends>, "backends"));
  exports.Set("setNumThreads", Napi::Function::New(env, &Guard<SetNumThreads>, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, &Guard<GetNumThreads>, "getNumThreads"));
  return exports;
}
}  // namespace
}  // namespace binding
}  // namespace dropattack

static Napi::Object InitDropattack(Napi::Env env, Napi::Object exports) {
  return dropattack::binding::Init(env, exports);
}

NODE_API_MODULE(dropattack, InitDropattack)
