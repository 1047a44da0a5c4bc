#include "generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

#include "common.h"
#include "tensor.h"

namespace dropattack {
namespace binding {

namespace {
using Info = const Napi::CallbackInfo&;

Generator* ArgGeneratorObject(Info info, size_t i, const char* fn, bool allow_disposed = false) {
  Napi::Value v = Arg(info, i);
  Generator* g = UnwrapAs<Generator>(info.Env(), v, Data(info.Env()).generator_class);
  if (g == nullptr) ThrowType(info.Env(), fn, "generator", "a Generator", v);
  if (g->disposed() && !allow_disposed) throw TorchError(info.Env(), std::string(fn) + ": the Generator has been disposed");
  return g;
}

// generatorDispose(g): frees the generator's state (a few KB: the Mersenne Twister's);
// a second dispose does nothing.
Napi::Value GeneratorDispose(Info info) {
  ArgGeneratorObject(info, 0, "Generator.dispose", /*allow_disposed=*/true)->Dispose();
  return info.Env().Undefined();
}

Napi::Value GeneratorIsDisposed(Info info) {
  return Napi::Boolean::New(info.Env(), ArgGeneratorObject(info, 0, "Generator.isDisposed", /*allow_disposed=*/true)->disposed());
}

// generatorNew(seed)
Napi::Value GeneratorNew(Info info) {
  const uint64_t seed = ArgUint64(info, 0, "Generator", "seed");
  return Data(info.Env()).generator_class.New({Napi::BigInt::New(info.Env(), seed)});
}

Napi::Value GeneratorSeed(Info info) {
  Generator* g = ArgGeneratorObject(info, 0, "generatorSeed");
  std::lock_guard<std::mutex> lock(g->value().mutex());
  return Napi::BigInt::New(info.Env(), g->value().current_seed());
}

Napi::Value GeneratorGetState(Info info) {
  Generator* g = ArgGeneratorObject(info, 0, "generatorGetState");
  std::lock_guard<std::mutex> lock(g->value().mutex());
  return Tensor::Wrap(info.Env(), g->value().get_state());
}

Napi::Value GeneratorSetState(Info info) {
  Generator* g = ArgGeneratorObject(info, 0, "generatorSetState");
  const at::Tensor& state = ArgTensor(info, 1, "generatorSetState", "state");
  TORCH_CHECK(state.scalar_type() == at::kByte && state.device().is_cpu(),
              "generatorSetState: state must be a uint8 CPU tensor from getState()");
  std::lock_guard<std::mutex> lock(g->value().mutex());
  g->value().set_state(state);
  return info.Env().Undefined();
}
// The global CPU generator (dropout and other random ops inside models draw from it).
Napi::Value GlobalSeed(Info info) {
  const uint64_t seed = ArgUint64(info, 0, "manualSeed", "seed");
  at::Generator g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
  return info.Env().Undefined();
}

Napi::Value GlobalGetState(Info info) {
  at::Generator g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  return Tensor::Wrap(info.Env(), g.get_state());
}

Napi::Value GlobalSetState(Info info) {
  const at::Tensor& state = ArgTensor(info, 0, "setGlobalGeneratorState", "state");
  TORCH_CHECK(state.scalar_type() == at::kByte && state.device().is_cpu(),
              "setGlobalGeneratorState: state must be a uint8 CPU tensor from globalGeneratorState()");
  at::Generator g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
  return info.Env().Undefined();
}
}  // namespace

void Generator::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeGenerator", {});
  Data(env).generator_class = Napi::Persistent(cls);
  exports.Set("generatorNew", Napi::Function::New(env, &Guard<GeneratorNew>, "generatorNew"));
  exports.Set("generatorSeed", Napi::Function::New(env, &Guard<GeneratorSeed>, "generatorSeed"));
  exports.Set("generatorGetState", Napi::Function::New(env, &Guard<GeneratorGetState>, "generatorGetState"));
  exports.Set("generatorDispose", Napi::Function::New(env, &Guard<GeneratorDispose>, "generatorDispose"));
  exports.Set("generatorIsDisposed", Napi::Function::New(env, &Guard<GeneratorIsDisposed>, "generatorIsDisposed"));
  exports.Set("manualSeed", Napi::Function::New(env, &Guard<GlobalSeed>, "manualSeed"));
  exports.Set("globalGeneratorState", Napi::Function::New(env, &Guard<GlobalGetState>, "globalGeneratorState"));
  exports.Set("setGlobalGeneratorState", Napi::Function::New(env, &Guard<GlobalSetState>, "setGlobalGeneratorState"));
  exports.Set("generatorSetState", Napi::Function::New(env, &Guard<GeneratorSetState>, "generatorSetState"));
}

Generator::Generator(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Generator>(info) {
  if (info.Length() != 1 || !info[0].IsBigInt()) {
    throw Napi::TypeError::New(info.Env(), "NativeGenerator cannot be constructed from JavaScript; use generatorNew(seed)");
  }
  bool lossless = false;
  const uint64_t seed = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  value_ = at::make_generator<at::CPUGeneratorImpl>(seed);
}

c10::optional<at::Generator> ArgGenerator(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  Napi::Value v = Arg(info, i);
  if (v.IsNull() || v.IsUndefined()) return c10::nullopt;
  return ArgGeneratorObject(info, i, fn)->value();
}

}  // namespace binding
}  // namespace dropattack
