#include "common.h"

#include <cmath>
#include <sstream>

#include "tensor.h"

namespace dropattack {
namespace binding {

void ReleaseQueue::Release(napi_ref ref) {
  std::lock_guard<std::mutex> lock(mu);
  if (!alive) return;  // the environment is gone and took its references with it
  if (std::this_thread::get_id() == js_thread) {
    napi_delete_reference(env, ref);
  } else {
    pending.push_back(ref);
    has_pending.store(true, std::memory_order_release);
  }
}

void ReleaseQueue::Drain() {
  if (!has_pending.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mu);
  for (napi_ref ref : pending) napi_delete_reference(env, ref);
  pending.clear();
  has_pending.store(false, std::memory_order_release);
}

namespace {
// Stops the release queue: a cleanup hook runs before Node finalizes the environment's
// references, so a tensor freed later (on any thread) never touches a reference Node
// has already deleted. The references left are freed with the environment.
void StopReleases(std::shared_ptr<ReleaseQueue>& releases) {
  std::lock_guard<std::mutex> lock(releases->mu);
  releases->alive = false;
  releases->pending.clear();
}

void OnEnvCleanup(void* arg) {
  auto* releases = static_cast<std::shared_ptr<ReleaseQueue>*>(arg);
  StopReleases(*releases);
  delete releases;
}
}  // namespace

InstanceData::~InstanceData() { StopReleases(releases); }

InstanceData& InitInstanceData(Napi::Env env) {
  auto* data = new InstanceData();
  data->releases->env = env;
  data->releases->js_thread = std::this_thread::get_id();
  env.SetInstanceData<InstanceData>(data);  // deleted by its finalizer with the environment
  auto* hook_arg = new std::shared_ptr<ReleaseQueue>(data->releases);
  if (napi_add_env_cleanup_hook(env, OnEnvCleanup, hook_arg) != napi_ok) delete hook_arg;
  return *data;
}

InstanceData& Data(Napi::Env env) { return *env.GetInstanceData<InstanceData>(); }

void ClearPendingException(Napi::Env env) noexcept {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored = nullptr;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

void ThrowToJs(Napi::Env env, const Napi::Error& e) noexcept {
  try {
    napi_value value = e.Value();
    if (value == nullptr || napi_throw(env, value) != napi_ok) ClearPendingException(env);
  } catch (...) {
    ClearPendingException(env);
  }
}

void ThrowTorchErrorToJs(Napi::Env env, const std::string& message) noexcept {
  try {
    Napi::Error e = TorchError(env, message);
    if (napi_throw(env, e.Value()) != napi_ok) ClearPendingException(env);
  } catch (...) {
    ClearPendingException(env);
  }
}

void AdjustExternalMemory(Napi::Env env, int64_t delta) noexcept {
  int64_t total = 0;
  napi_adjust_external_memory(env, delta, &total);  // a failure only skews V8's GC heuristics
}

Napi::Error TorchError(Napi::Env env, const std::string& message) {
  InstanceData& data = Data(env);
  if (!data.torch_error.IsEmpty()) {
    Napi::Object err = data.torch_error.New({Napi::String::New(env, message)});
    return Napi::Error(env, err);
  }
  return Napi::Error::New(env, message);
}

std::string Describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return v.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: {
      std::ostringstream s;
      s << "number " << v.As<Napi::Number>().DoubleValue();
      return s.str();
    }
    case napi_string: {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "string '" + s + "'";
    }
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    case napi_external: return "an external";
    case napi_object: {
      if (v.IsArray()) return "an array";
      if (v.IsTypedArray()) return "a typed array";
      if (IsTensor(v.Env(), v)) return "a Tensor";
      return "an object";
    }
    default: return "a value";
  }
}

void ThrowType(Napi::Env env, const char* fn, const char* arg, const char* expected, const Napi::Value& got) {
  throw Napi::TypeError::New(env, std::string(fn) + ": " + arg + " must be " + expected + ", got " +
                                      Describe(got));
}

void ThrowRange(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

Napi::Value Arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsNumber()) ThrowType(info.Env(), fn, name, "a number", v);
  return v.As<Napi::Number>().DoubleValue();
}

double ArgFinite(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  const double x = ArgNumber(info, i, fn, name);
  if (!std::isfinite(x)) ThrowRange(info.Env(), std::string(fn) + ": " + name + " must be finite, got " + std::to_string(x));
  return x;
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (v.IsBigInt()) {
    bool lossless = false;
    const int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) ThrowRange(info.Env(), std::string(fn) + ": " + name + " does not fit in 64 bits");
    return x;
  }
  if (!v.IsNumber()) ThrowType(info.Env(), fn, name, "an integer", v);
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || std::floor(x) != x || std::fabs(x) > 9007199254740991.0) {
    ThrowRange(info.Env(), std::string(fn) + ": " + name + " must be a safe integer, got " + Describe(v));
  }
  return static_cast<int64_t>(x);
}

uint64_t ArgUint64(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (v.IsBigInt()) {
    bool lossless = false;
    const uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowRange(info.Env(), std::string(fn) + ": " + name + " must be a bigint in [0, 2^64)");
    return x;
  }
  if (!v.IsNumber()) ThrowType(info.Env(), fn, name, "a non-negative integer or bigint", v);
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || std::floor(x) != x || x < 0 || x > 9007199254740991.0) {
    ThrowRange(info.Env(), std::string(fn) + ": " + name + " must be a non-negative safe integer, got " + Describe(v));
  }
  return static_cast<uint64_t>(x);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsBoolean()) ThrowType(info.Env(), fn, name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsString()) ThrowType(info.Env(), fn, name, "a string", v);
  return v.As<Napi::String>().Utf8Value();
}

namespace {
std::vector<int64_t> ReadIntArray(const Napi::CallbackInfo& info, Napi::Value v, const char* fn, const char* name) {
  if (!v.IsArray()) ThrowType(info.Env(), fn, name, "an array of integers", v);
  Napi::Array a = v.As<Napi::Array>();
  const uint32_t n = a.Length();
  if (n > 64) ThrowRange(info.Env(), std::string(fn) + ": " + name + " has " + std::to_string(n) + " entries (at most 64)");
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; ++k) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) ThrowType(info.Env(), fn, name, "an array of integers", v);
    const double x = e.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(x) || std::floor(x) != x || std::fabs(x) > 9007199254740991.0) {
      ThrowRange(info.Env(), std::string(fn) + ": " + name + "[" + std::to_string(k) + "] must be an integer, got " + Describe(e));
    }
    out[k] = static_cast<int64_t>(x);
  }
  return out;
}
}  // namespace

std::vector<int64_t> ArgShape(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                              bool allow_infer) {
  std::vector<int64_t> shape = ReadIntArray(info, Arg(info, i), fn, name);
  int inferred = 0;
  // Product in floating point to detect absurd sizes before LibTorch tries to allocate.
  double product = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == -1 && allow_infer) {
      if (++inferred > 1) ThrowRange(info.Env(), std::string(fn) + ": " + name + " may contain -1 only once");
      continue;
    }
    if (shape[k] < 0) {
      ThrowRange(info.Env(), std::string(fn) + ": " + name + "[" + std::to_string(k) + "] must be >= 0, got " +
                                 std::to_string(shape[k]));
    }
    product *= static_cast<double>(shape[k]);
  }
  if (product > 9.0e15) ThrowRange(info.Env(), std::string(fn) + ": " + name + " describes too many elements");
  return shape;
}

std::vector<int64_t> ArgDims(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, bool* given) {
  Napi::Value v = Arg(info, i);
  if (v.IsNull() || v.IsUndefined()) {
    *given = false;
    return {};
  }
  *given = true;
  return ReadIntArray(info, v, fn, name);
}

double NumberField(Napi::Env env, Napi::Object o, const std::string& where, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(env, where + "." + key + " must be a number, got " + Describe(v));
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x)) throw Napi::RangeError::New(env, where + "." + key + " must be finite, got " + Describe(v));
  return x;
}

int64_t IntField(Napi::Env env, Napi::Object o, const std::string& where, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  const double x = NumberField(env, o, where, key, 0);
  if (std::floor(x) != x || std::fabs(x) > 1e12) {
    throw Napi::RangeError::New(env, where + "." + key + " must be an integer, got " + Describe(v));
  }
  return static_cast<int64_t>(x);
}

bool BoolField(Napi::Env env, Napi::Object o, const std::string& where, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(env, where + "." + key + " must be a boolean, got " + Describe(v));
  return v.As<Napi::Boolean>().Value();
}

std::string StringField(Napi::Env env, Napi::Object o, const std::string& where, const char* key,
                        const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(env, where + "." + key + " must be a string, got " + Describe(v));
  return v.As<Napi::String>().Utf8Value();
}

namespace {
Napi::Value RequiredField(Napi::Env env, Napi::Object o, const std::string& where, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    throw Napi::TypeError::New(env, where + "." + key + " is required (the options come complete from the TypeScript schema)");
  }
  return v;
}
}  // namespace

double NumberField(Napi::Env env, Napi::Object o, const std::string& where, const char* key) {
  RequiredField(env, o, where, key);
  return NumberField(env, o, where, key, 0);
}

int64_t IntField(Napi::Env env, Napi::Object o, const std::string& where, const char* key) {
  RequiredField(env, o, where, key);
  return IntField(env, o, where, key, 0);
}

bool BoolField(Napi::Env env, Napi::Object o, const std::string& where, const char* key) {
  RequiredField(env, o, where, key);
  return BoolField(env, o, where, key, false);
}

std::string StringField(Napi::Env env, Napi::Object o, const std::string& where, const char* key) {
  RequiredField(env, o, where, key);
  return StringField(env, o, where, key, "");
}

std::vector<int64_t> IntListField(Napi::Env env, Napi::Object o, const std::string& where, const char* key,
                                  std::vector<int64_t> fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  const std::string name = where + "." + key;
  if (!v.IsArray()) throw Napi::TypeError::New(env, name + " must be an array of integers, got " + Describe(v));
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 64) throw Napi::RangeError::New(env, name + " has too many entries");
  std::vector<int64_t> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) throw Napi::TypeError::New(env, name + " must be an array of integers, got " + Describe(e));
    const double x = e.As<Napi::Number>().DoubleValue();
    if (std::floor(x) != x || std::fabs(x) > 1e9) throw Napi::RangeError::New(env, name + " entries must be integers, got " + Describe(e));
    out.push_back(static_cast<int64_t>(x));
  }
  return out;
}

at::ScalarType ArgDtype(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsString()) ThrowType(info.Env(), fn, name, "a dtype name", v);
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "float32") return at::kFloat;
  if (s == "float64") return at::kDouble;
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name +
                                             " must be one of float32, float64, float16, bfloat16, int64, int32, uint8, bool; got '" + s + "'");
}

at::Device ArgDevice(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsString()) ThrowType(info.Env(), fn, name, "a device string such as 'cpu' or 'cuda:0'", v);
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "cpu") return at::Device(at::kCPU);
  if (s == "cuda") return at::Device(at::kCUDA, 0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9 &&
      s.find_first_not_of("0123456789", 5) == std::string::npos) {
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(s.substr(5))));
  }
  throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be 'cpu', 'cuda' or 'cuda:N', got '" + s + "'");
}

bool IsTensor(Napi::Env env, const Napi::Value& v) {
  return UnwrapAs<Tensor>(env, v, Data(env).tensor_class) != nullptr;
}

at::Scalar ScalarFor(const at::Tensor& t, double value) {
  if (at::isIntegralType(t.scalar_type(), /*includeBool=*/false) && std::floor(value) == value &&
      std::fabs(value) <= 9007199254740992.0) {
    return at::Scalar(static_cast<int64_t>(value));
  }
  return at::Scalar(value);
}

at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  Tensor* t = UnwrapAs<Tensor>(info.Env(), v, Data(info.Env()).tensor_class);
  if (t == nullptr) ThrowType(info.Env(), fn, name, "a Tensor", v);
  if (t->disposed()) {
    throw TorchError(info.Env(), std::string(fn) + ": " + name + " is a disposed Tensor");
  }
  return t->value();
}

std::string DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return std::string(c10::toString(t));
  }
}

std::string DeviceName(const at::Device& d) {
  if (d.is_cpu()) return "cpu";
  return d.str();
}

}  // namespace binding
}  // namespace dropattack
