#include "perturbation.h"

#include "common.h"
#include "ops/perturb_common.h"
#include "tensor.h"

namespace dropattack {
namespace binding {

namespace {
using Info = const Napi::CallbackInfo&;

Perturbation* ArgPerturbation(Info info, size_t i, const char* fn) {
  Napi::Value v = Arg(info, i);
  Perturbation* p = UnwrapAs<Perturbation>(info.Env(), v, Data(info.Env()).perturbation_class);
  if (p == nullptr || !p->made_by_perturb) ThrowType(info.Env(), fn, "perturbation", "a Perturbation from perturb()", v);
  if (p->disposed) throw TorchError(info.Env(), std::string(fn) + ": the Perturbation has been disposed");
  return p;
}

// perturb(target, direction, epsilon, p, seed, counter, rows|null) -> Perturbation
Napi::Value Perturb(Info info) {
  Napi::Env env = info.Env();
  at::Tensor& target = ArgTensor(info, 0, "perturb", "target");
  const at::Tensor& direction = ArgTensor(info, 1, "perturb", "direction");
  ops::PerturbOptions options;
  options.epsilon = ArgNumber(info, 2, "perturb", "epsilon");
  if (!std::isfinite(options.epsilon) || options.epsilon < 0) {
    ThrowRange(env, "perturb: epsilon must be a finite number >= 0, got " + Describe(Arg(info, 2)));
  }
  options.p = ArgNumber(info, 3, "perturb", "p");
  if (!(options.p >= 0 && options.p <= 1)) ThrowRange(env, "perturb: p must be in [0, 1], got " + Describe(Arg(info, 3)));
  options.seed = ArgUint64(info, 4, "perturb", "seed");
  options.counter = ArgUint64(info, 5, "perturb", "counter");
  Napi::Value rows_arg = Arg(info, 6);
  Napi::Object handle = Data(env).perturbation_class.New({});
  Perturbation* self = Napi::ObjectWrap<Perturbation>::Unwrap(handle);
  if (rows_arg.IsNull() || rows_arg.IsUndefined()) {
    self->state = ops::perturb(target, direction, options);
  } else {
    const at::Tensor& rows = ArgTensor(info, 6, "perturb", "rows");
    self->state = ops::perturb_rows(target, direction, rows, options);
  }
  self->target = target;
  self->made_by_perturb = true;
  self->Report(env);
  return handle;
}

Napi::Value PerturbationInfo(Info info) {
  Napi::Env env = info.Env();
  Perturbation* p = ArgPerturbation(info, 0, "perturbationInfo");
  Napi::Object o = Napi::Object::New(env);
  o.Set("skipped", Napi::Boolean::New(env, p->state.skipped));
  o.Set("norm", Napi::Number::New(env, p->state.norm));
  o.Set("scale", Napi::Number::New(env, p->state.scale));
  o.Set("sparse", Napi::Boolean::New(env, p->state.sparse));
  o.Set("restored", Napi::Boolean::New(env, p->restored));
  o.Set("backupBytes", Napi::Number::New(env, static_cast<double>(p->state.backup_bytes())));
  return o;
}

Napi::Value Restore(Info info) {
  Napi::Env env = info.Env();
  Perturbation* p = ArgPerturbation(info, 0, "restore");
  if (p->restored) throw TorchError(env, "restore: this perturbation was already restored");
  ops::restore(p->target, p->state);
  p->restored = true;
  p->target = at::Tensor();
  p->Unreport(env);
  return env.Undefined();
}

// perturbationDispose(h): restores the target when restore() has not run (so a scope
// that ends, even by an exception, never leaves the target perturbed), frees the backup
// and ends the handle's use; a second dispose does nothing.
Napi::Value Dispose(Info info) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, 0);
  Perturbation* p = UnwrapAs<Perturbation>(env, v, Data(env).perturbation_class);
  if (p == nullptr || !p->made_by_perturb) ThrowType(env, "Perturbation.dispose", "perturbation", "a Perturbation from perturb()", v);
  if (p->disposed) return env.Undefined();
  if (!p->restored) {
    ops::restore(p->target, p->state);
    p->restored = true;
  }
  p->target = at::Tensor();
  p->state.backup = at::Tensor();
  p->state.backup_buffer = at::Tensor();
  p->state.rows = at::Tensor();
  p->disposed = true;
  p->Unreport(env);
  return env.Undefined();
}

Napi::Value IsDisposed(Info info) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, 0);
  Perturbation* p = UnwrapAs<Perturbation>(env, v, Data(env).perturbation_class);
  if (p == nullptr || !p->made_by_perturb) ThrowType(env, "Perturbation.isDisposed", "perturbation", "a Perturbation from perturb()", v);
  return Napi::Boolean::New(env, p->disposed);
}

// dropMask(numel, p, seed, counter, device) -> bool Tensor [numel]
Napi::Value DropMask(Info info) {
  const int64_t numel = ArgInt(info, 0, "dropMask", "numel");
  if (numel < 0) ThrowRange(info.Env(), "dropMask: numel must be >= 0");
  const double p = ArgNumber(info, 1, "dropMask", "p");
  if (!(p >= 0 && p <= 1)) ThrowRange(info.Env(), "dropMask: p must be in [0, 1], got " + Describe(Arg(info, 1)));
  const uint64_t seed = ArgUint64(info, 2, "dropMask", "seed");
  const uint64_t counter = ArgUint64(info, 3, "dropMask", "counter");
  const at::Device device = ArgDevice(info, 4, "dropMask", "device");
  return Tensor::Wrap(info.Env(), ops::drop_mask(numel, p, seed, counter, device));
}

Napi::Value ReleaseCachedBackups(Info info) {
  ops::release_cached_backups();
  return info.Env().Undefined();
}

Napi::Value CachedBackupBytes(Info info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ops::cached_backup_bytes()));
}

uint32_t ArgWord(Info info, Napi::Array a, uint32_t k, const char* name) {
  Napi::Value v = a.Get(k);
  if (!v.IsNumber()) ThrowType(info.Env(), "philox4x32", name, "an array of 32-bit unsigned integers", v);
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= 0 && x <= 4294967295.0) || std::floor(x) != x) {
    ThrowRange(info.Env(), std::string("philox4x32: ") + name + " entries must be integers in [0, 2^32), got " + Describe(v));
  }
  return static_cast<uint32_t>(x);
}

// philox4x32(counter: number[4], key: number[2]) -> number[4]
Napi::Value Philox(Info info) {
  Napi::Env env = info.Env();
  Napi::Value c = Arg(info, 0), k = Arg(info, 1);
  if (!c.IsArray() || c.As<Napi::Array>().Length() != 4) ThrowType(env, "philox4x32", "counter", "an array of 4 words", c);
  if (!k.IsArray() || k.As<Napi::Array>().Length() != 2) ThrowType(env, "philox4x32", "key", "an array of 2 words", k);
  Napi::Array ca = c.As<Napi::Array>(), ka = k.As<Napi::Array>();
  const ops::Philox4x32Result r =
      ops::philox4x32_10(ArgWord(info, ca, 0, "counter"), ArgWord(info, ca, 1, "counter"), ArgWord(info, ca, 2, "counter"),
                         ArgWord(info, ca, 3, "counter"), ArgWord(info, ka, 0, "key"), ArgWord(info, ka, 1, "key"));
  Napi::Array out = Napi::Array::New(env, 4);
  for (uint32_t j = 0; j < 4; ++j) out.Set(j, Napi::Number::New(env, r.v[j]));
  return out;
}
}  // namespace

void Perturbation::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativePerturbation", {});
  Data(env).perturbation_class = Napi::Persistent(cls);
  exports.Set("perturb", Napi::Function::New(env, &Guard<Perturb>, "perturb"));
  exports.Set("perturbationInfo", Napi::Function::New(env, &Guard<PerturbationInfo>, "perturbationInfo"));
  exports.Set("restore", Napi::Function::New(env, &Guard<Restore>, "restore"));
  exports.Set("perturbationDispose", Napi::Function::New(env, &Guard<Dispose>, "perturbationDispose"));
  exports.Set("perturbationIsDisposed", Napi::Function::New(env, &Guard<IsDisposed>, "perturbationIsDisposed"));
  exports.Set("dropMask", Napi::Function::New(env, &Guard<DropMask>, "dropMask"));
  exports.Set("releaseCachedBackups", Napi::Function::New(env, &Guard<ReleaseCachedBackups>, "releaseCachedBackups"));
  exports.Set("cachedBackupBytes", Napi::Function::New(env, &Guard<CachedBackupBytes>, "cachedBackupBytes"));
  exports.Set("philox4x32", Napi::Function::New(env, &Guard<Philox>, "philox4x32"));
}

Perturbation::Perturbation(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Perturbation>(info) {}

Perturbation::~Perturbation() {
  if (reported_bytes > 0) AdjustExternalMemory(Env(), -reported_bytes);
}

void Perturbation::Report(Napi::Env env) {
  reported_bytes = state.backup_bytes();
  if (reported_bytes > 0) AdjustExternalMemory(env, reported_bytes);
}

void Perturbation::Unreport(Napi::Env env) {
  if (reported_bytes > 0) AdjustExternalMemory(env, -reported_bytes);
  reported_bytes = 0;
}

}  // namespace binding
}  // namespace dropattack
