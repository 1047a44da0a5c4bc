#include "tensor.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <functional>
#include <unordered_map>

#include "common.h"
#include "generator.h"

namespace dropattack {
namespace binding {

// ---------------------------------------------------------------------------------
// The wrapped class

void Tensor::Init(Napi::Env env, Napi::Object exports) {
  (void)exports;  // not exported: handles are only made by native functions
  Napi::Function cls = DefineClass(env, "NativeTensor", {});
  Data(env).tensor_class = Napi::Persistent(cls);
}

Napi::Object Tensor::Wrap(Napi::Env env, at::Tensor value, bool external) {
  InstanceData& data = Data(env);
  data.releases->Drain();
  Napi::Object obj = data.tensor_class.New({Napi::External<at::Tensor>::New(env, &value)});
  Tensor* self = Unwrap(obj);
  if (!external && self->value_.defined() && self->value_.has_storage() &&
      self->value_.storage().use_count() == 1) {
    self->reported_bytes_ = static_cast<int64_t>(self->value_.storage().nbytes());
    if (self->reported_bytes_ > 0) AdjustExternalMemory(env, self->reported_bytes_);
  }
  return obj;
}

Tensor::Tensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tensor>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeTensor cannot be constructed from JavaScript; use the tensor functions");
  }
  value_ = *info[0].As<Napi::External<at::Tensor>>().Data();
}

void Tensor::Dispose() {
  if (reported_bytes_ > 0) AdjustExternalMemory(Env(), -reported_bytes_);
  reported_bytes_ = 0;
  value_ = at::Tensor();
}

Tensor::~Tensor() {
  if (reported_bytes_ > 0) AdjustExternalMemory(Env(), -reported_bytes_);
}

// ---------------------------------------------------------------------------------
// Functions

namespace {

using Info = const Napi::CallbackInfo&;

Napi::Value Out(Napi::Env env, const at::Tensor& t) {
  if (!t.defined()) return env.Null();
  return Tensor::Wrap(env, t);
}

Napi::Array ShapeArray(Napi::Env env, at::IntArrayRef sizes) {
  Napi::Array a = Napi::Array::New(env, sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k) a.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(sizes[k])));
  return a;
}

at::ScalarType TypedArrayScalar(Napi::Env env, napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return at::kByte;
    case napi_bigint64_array: return at::kLong;
    case napi_int8_array: return at::kChar;
    case napi_int16_array: return at::kShort;
    default:
      throw Napi::TypeError::New(env, "fromBuffer: data must be a Float32Array, Float64Array, Int32Array, "
                                      "Uint8Array, Int8Array, Int16Array or BigInt64Array");
  }
}

// fromBuffer(data: TypedArray, shape: number[], dtype: string, share: boolean)
Napi::Value FromBuffer(Info info) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, 0);
  if (!v.IsTypedArray()) ThrowType(env, "fromBuffer", "data", "a TypedArray", v);
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  const std::vector<int64_t> shape = ArgShape(info, 1, "fromBuffer", "shape");
  const at::ScalarType dtype = ArgDtype(info, 2, "fromBuffer", "dtype");
  const bool share = ArgBool(info, 3, "fromBuffer", "share");
  const at::ScalarType src = TypedArrayScalar(env, ta.TypedArrayType());
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  if (numel != static_cast<int64_t>(ta.ElementLength())) {
    ThrowRange(env, "fromBuffer: shape holds " + std::to_string(numel) + " elements but data has " +
                        std::to_string(ta.ElementLength()));
  }
  if (numel == 0) return Out(env, at::empty(shape, at::TensorOptions().dtype(dtype)));
  // The element pointer straight from the typed array: this also works for views of a
  // SharedArrayBuffer, which Napi::ArrayBuffer refuses.
  void* ptr = nullptr;
  napi_value buffer_value = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, ta, nullptr, nullptr, &ptr, &buffer_value, nullptr),
                       Napi::Value());
  const auto src_options = at::TensorOptions().dtype(src);
  // Only a plain, fixed-length ArrayBuffer can back a tensor: shared memory may change
  // under LibTorch and a resizable buffer may shrink under it, so those are copied.
  bool plain_buffer = false;
  NAPI_THROW_IF_FAILED(env, napi_is_arraybuffer(env, buffer_value, &plain_buffer), Napi::Value());
  if (plain_buffer) {
    Napi::Value resizable = Napi::Object(env, buffer_value).Get("resizable");
    plain_buffer = !(resizable.IsBoolean() && resizable.As<Napi::Boolean>().Value());
  }
  if (share && plain_buffer && src == dtype && dtype != at::kBool) {
    // Zero copy: the tensor keeps the typed array alive until its storage dies.
    napi_ref ref = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_create_reference(env, ta, 1, &ref), Napi::Value());
    std::shared_ptr<ReleaseQueue> queue = Data(env).releases;
    at::Tensor t = at::from_blob(ptr, shape, [queue, ref](void*) { queue->Release(ref); }, src_options);
    return Tensor::Wrap(env, t, /*external=*/true);
  }
  // Exactly one copy, converting on the way when the types differ.
  at::Tensor view = at::from_blob(ptr, shape, src_options);
  at::Tensor t;
  if (dtype == at::kBool) {
    t = view.ne(0);
  } else if (src == dtype) {
    t = view.clone();
  } else {
    t = view.to(dtype);
  }
  return Out(env, t);
}

at::TensorOptions Options(Info info, size_t dtype_at, size_t device_at, const char* fn) {
  return at::TensorOptions().dtype(ArgDtype(info, dtype_at, fn, "dtype")).device(ArgDevice(info, device_at, fn, "device"));
}

// full(shape, value, dtype, device)
Napi::Value Full(Info info) {
  const auto shape = ArgShape(info, 0, "full", "shape");
  const double value = ArgNumber(info, 1, "full", "value");
  return Out(info.Env(), at::full(shape, value, Options(info, 2, 3, "full")));
}

// rand/randn(shape, dtype, device, generator|null): drawn on the CPU and moved, so a
// seeded generator gives the same numbers on every device.
Napi::Value Random(Info info, bool normal, const char* fn) {
  const auto shape = ArgShape(info, 0, fn, "shape");
  const auto options = Options(info, 1, 2, fn);
  TORCH_CHECK(at::isFloatingType(options.dtype().toScalarType()), fn, ": dtype must be a float type, got ",
              DtypeName(options.dtype().toScalarType()));
  const auto gen = ArgGenerator(info, 3, fn);
  const auto cpu = at::TensorOptions().dtype(at::kFloat);
  at::Tensor t = normal ? at::randn(shape, gen, cpu) : at::rand(shape, gen, cpu);
  return Out(info.Env(), t.to(options.device(), options.dtype().toScalarType()));
}
Napi::Value Rand(Info info) { return Random(info, false, "rand"); }
Napi::Value Randn(Info info) { return Random(info, true, "randn"); }

// randint(low, high, shape, dtype, device, generator|null)
Napi::Value Randint(Info info) {
  const int64_t low = ArgInt(info, 0, "randint", "low");
  const int64_t high = ArgInt(info, 1, "randint", "high");
  if (high <= low) ThrowRange(info.Env(), "randint: high must be greater than low");
  const auto shape = ArgShape(info, 2, "randint", "shape");
  const auto options = Options(info, 3, 4, "randint");
  const auto gen = ArgGenerator(info, 5, "randint");
  at::Tensor t = at::randint(low, high, shape, gen, at::TensorOptions().dtype(at::kLong));
  return Out(info.Env(), t.to(options.device(), options.dtype().toScalarType()));
}

// arange(start, end, step, dtype, device)
Napi::Value Arange(Info info) {
  const double start = ArgFinite(info, 0, "arange", "start");
  const double end = ArgFinite(info, 1, "arange", "end");
  const double step = ArgFinite(info, 2, "arange", "step");
  if (step == 0) ThrowRange(info.Env(), "arange: step must not be 0");
  if ((end - start) / step > 9.0e15) ThrowRange(info.Env(), "arange: too many elements");
  return Out(info.Env(), at::arange(start, end, step, Options(info, 3, 4, "arange")));
}

Napi::Value Shape(Info info) { return ShapeArray(info.Env(), ArgTensor(info, 0, "shape", "tensor").sizes()); }
Napi::Value Dtype(Info info) {
  return Napi::String::New(info.Env(), DtypeName(ArgTensor(info, 0, "dtype", "tensor").scalar_type()));
}
Napi::Value DeviceOf(Info info) {
  return Napi::String::New(info.Env(), DeviceName(ArgTensor(info, 0, "device", "tensor").device()));
}

Napi::Value IsDisposed(Info info) {
  Napi::Value v = Arg(info, 0);
  Tensor* t = UnwrapAs<Tensor>(info.Env(), v, Data(info.Env()).tensor_class);
  if (t == nullptr) ThrowType(info.Env(), "isDisposed", "tensor", "a Tensor", v);
  return Napi::Boolean::New(info.Env(), t->disposed());
}

Napi::Value Dispose(Info info) {
  Napi::Value v = Arg(info, 0);
  Tensor* t = UnwrapAs<Tensor>(info.Env(), v, Data(info.Env()).tensor_class);
  if (t == nullptr) ThrowType(info.Env(), "dispose", "tensor", "a Tensor", v);
  t->Dispose();
  return info.Env().Undefined();
}

// toTypedArray(t): one copy into a new ArrayBuffer. float16/bfloat16 come back as
// Float32Array, bool as Uint8Array, int64 as BigInt64Array.
Napi::Value ToTypedArray(Info info) {
  Napi::Env env = info.Env();
  at::Tensor t = ArgTensor(info, 0, "toTypedArray", "tensor").detach();
  if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  t = t.to(at::kCPU).contiguous();
  napi_typedarray_type type;
  switch (t.scalar_type()) {
    case at::kFloat: type = napi_float32_array; break;
    case at::kDouble: type = napi_float64_array; break;
    case at::kLong: type = napi_bigint64_array; break;
    case at::kInt: type = napi_int32_array; break;
    case at::kByte:
    case at::kBool: type = napi_uint8_array; break;
    default: throw TorchError(env, "toTypedArray: unsupported dtype " + DtypeName(t.scalar_type()));
  }
  const size_t bytes = t.nbytes();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(buffer.Data(), t.data_ptr(), bytes);
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, type, t.numel(), buffer, 0, &out), Napi::Value());
  return Napi::Value(env, out);
}

Napi::Value Item(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "item", "tensor");
  TORCH_CHECK(t.numel() == 1, "item: tensor must have exactly one element, it has ", t.numel());
  return Napi::Number::New(info.Env(), t.item<double>());
}

// to(t, dtype|null, device|null)
Napi::Value To(Info info) {
  at::Tensor t = ArgTensor(info, 0, "to", "tensor");
  if (!Arg(info, 1).IsNull() && !Arg(info, 1).IsUndefined()) t = t.to(ArgDtype(info, 1, "to", "dtype"));
  if (!Arg(info, 2).IsNull() && !Arg(info, 2).IsUndefined()) t = t.to(ArgDevice(info, 2, "to", "device"));
  return Out(info.Env(), t);
}

Napi::Value Clone(Info info) { return Out(info.Env(), ArgTensor(info, 0, "clone", "tensor").clone()); }
Napi::Value Detach(Info info) { return Out(info.Env(), ArgTensor(info, 0, "detach", "tensor").detach()); }
Napi::Value Contiguous(Info info) { return Out(info.Env(), ArgTensor(info, 0, "contiguous", "tensor").contiguous()); }

using UnaryFn = std::function<at::Tensor(const at::Tensor&)>;
const std::unordered_map<std::string, UnaryFn>& UnaryOps() {
  static const std::unordered_map<std::string, UnaryFn> ops = {
      {"neg", [](const at::Tensor& t) { return at::neg(t); }},
      {"abs", [](const at::Tensor& t) { return at::abs(t); }},
      {"exp", [](const at::Tensor& t) { return at::exp(t); }},
      {"log", [](const at::Tensor& t) { return at::log(t); }},
      {"sqrt", [](const at::Tensor& t) { return at::sqrt(t); }},
      {"square", [](const at::Tensor& t) { return at::square(t); }},
      {"reciprocal", [](const at::Tensor& t) { return at::reciprocal(t); }},
      {"sigmoid", [](const at::Tensor& t) { return at::sigmoid(t); }},
      {"tanh", [](const at::Tensor& t) { return at::tanh(t); }},
      {"relu", [](const at::Tensor& t) { return at::relu(t); }},
      {"sin", [](const at::Tensor& t) { return at::sin(t); }},
      {"cos", [](const at::Tensor& t) { return at::cos(t); }},
      {"floor", [](const at::Tensor& t) { return at::floor(t); }},
      {"ceil", [](const at::Tensor& t) { return at::ceil(t); }},
      {"round", [](const at::Tensor& t) { return at::round(t); }},
      {"sign", [](const at::Tensor& t) { return at::sign(t); }},
      {"isfinite", [](const at::Tensor& t) { return at::isfinite(t); }},
      {"isnan", [](const at::Tensor& t) { return at::isnan(t); }},
      {"logicalNot", [](const at::Tensor& t) { return at::logical_not(t); }},
  };
  return ops;
}

// unary(op, t)
Napi::Value Unary(Info info) {
  const std::string op = ArgString(info, 0, "unary", "op");
  const auto& ops = UnaryOps();
  auto it = ops.find(op);
  if (it == ops.end()) throw Napi::TypeError::New(info.Env(), "unary: unknown op '" + op + "'");
  return Out(info.Env(), it->second(ArgTensor(info, 1, op.c_str(), "tensor")));
}

struct BinaryFn {
  std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> tensor;
  std::function<at::Tensor(const at::Tensor&, const at::Scalar&)> scalar;
};
const std::unordered_map<std::string, BinaryFn>& BinaryOps() {
  static const std::unordered_map<std::string, BinaryFn> ops = {
      {"add", {[](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); },
               [](const at::Tensor& a, const at::Scalar& b) { return at::add(a, b); }}},
      {"sub", {[](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); },
               [](const at::Tensor& a, const at::Scalar& b) { return at::sub(a, b); }}},
      {"mul", {[](const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); },
               [](const at::Tensor& a, const at::Scalar& b) { return at::mul(a, b); }}},
      {"div", {[](const at::Tensor& a, const at::Tensor& b) { return at::div(a, b); },
               [](const at::Tensor& a, const at::Scalar& b) { return at::div(a, b); }}},
      {"pow", {[](const at::Tensor& a, const at::Tensor& b) { return at::pow(a, b); },
               [](const at::Tensor& a, const at::Scalar& b) { return at::pow(a, b); }}},
      {"remainder", {[](const at::Tensor& a, const at::Tensor& b) { return at::remainder(a, b); },
                     [](const at::Tensor& a, const at::Scalar& b) { return at::remainder(a, b); }}},
      {"maximum", {[](const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); },
                   [](const at::Tensor& a, const at::Scalar& b) { return at::clamp_min(a, b); }}},
      {"minimum", {[](const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); },
                   [](const at::Tensor& a, const at::Scalar& b) { return at::clamp_max(a, b); }}},
      {"eq", {[](const at::Tensor& a, const at::Tensor& b) { return at::eq(a, b); },
              [](const at::Tensor& a, const at::Scalar& b) { return at::eq(a, b); }}},
      {"ne", {[](const at::Tensor& a, const at::Tensor& b) { return at::ne(a, b); },
              [](const at::Tensor& a, const at::Scalar& b) { return at::ne(a, b); }}},
      {"lt", {[](const at::Tensor& a, const at::Tensor& b) { return at::lt(a, b); },
              [](const at::Tensor& a, const at::Scalar& b) { return at::lt(a, b); }}},
      {"le", {[](const at::Tensor& a, const at::Tensor& b) { return at::le(a, b); },
              [](const at::Tensor& a, const at::Scalar& b) { return at::le(a, b); }}},
      {"gt", {[](const at::Tensor& a, const at::Tensor& b) { return at::gt(a, b); },
              [](const at::Tensor& a, const at::Scalar& b) { return at::gt(a, b); }}},
      {"ge", {[](const at::Tensor& a, const at::Tensor& b) { return at::ge(a, b); },
              [](const at::Tensor& a, const at::Scalar& b) { return at::ge(a, b); }}},
  };
  return ops;
}

// binary(op, a, b: Tensor | number)
Napi::Value Binary(Info info) {
  const std::string op = ArgString(info, 0, "binary", "op");
  const auto& ops = BinaryOps();
  auto it = ops.find(op);
  if (it == ops.end()) throw Napi::TypeError::New(info.Env(), "binary: unknown op '" + op + "'");
  const at::Tensor& a = ArgTensor(info, 1, op.c_str(), "self");
  if (Arg(info, 2).IsNumber()) {
    return Out(info.Env(), it->second.scalar(a, ScalarFor(a, ArgNumber(info, 2, op.c_str(), "other"))));
  }
  return Out(info.Env(), it->second.tensor(a, ArgTensor(info, 2, op.c_str(), "other")));
}

Napi::Value Matmul(Info info) {
  return Out(info.Env(), at::matmul(ArgTensor(info, 0, "matmul", "self"), ArgTensor(info, 1, "matmul", "other")));
}

// reduce(op: 'sum'|'mean', t, dims|null, keepdim)
Napi::Value Reduce(Info info) {
  const std::string op = ArgString(info, 0, "reduce", "op");
  if (op != "sum" && op != "mean") throw Napi::TypeError::New(info.Env(), "reduce: unknown op '" + op + "'");
  const at::Tensor& t = ArgTensor(info, 1, op.c_str(), "tensor");
  bool given = false;
  const auto dims = ArgDims(info, 2, op.c_str(), "dim", &given);
  const bool keepdim = ArgBool(info, 3, op.c_str(), "keepdim");
  if (op == "sum") return Out(info.Env(), given ? at::sum(t, dims, keepdim) : at::sum(t));
  return Out(info.Env(), given ? at::mean(t, dims, keepdim) : at::mean(t));
}

// extreme(op: 'max'|'min', t, dim|null, keepdim) -> Tensor, or [values, indices] with a dim
Napi::Value Extreme(Info info) {
  Napi::Env env = info.Env();
  const std::string op = ArgString(info, 0, "extreme", "op");
  if (op != "max" && op != "min") throw Napi::TypeError::New(env, "extreme: unknown op '" + op + "'");
  const at::Tensor& t = ArgTensor(info, 1, op.c_str(), "tensor");
  if (Arg(info, 2).IsNull() || Arg(info, 2).IsUndefined()) return Out(env, op == "max" ? at::max(t) : at::min(t));
  const int64_t dim = ArgInt(info, 2, op.c_str(), "dim");
  const bool keepdim = ArgBool(info, 3, op.c_str(), "keepdim");
  auto result = op == "max" ? at::max(t, dim, keepdim) : at::min(t, dim, keepdim);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Out(env, std::get<0>(result)));
  out.Set(1u, Out(env, std::get<1>(result)));
  return out;
}

// argExtreme(op: 'argmax'|'argmin', t, dim|null, keepdim)
Napi::Value ArgExtreme(Info info) {
  const std::string op = ArgString(info, 0, "argExtreme", "op");
  if (op != "argmax" && op != "argmin") throw Napi::TypeError::New(info.Env(), "argExtreme: unknown op '" + op + "'");
  const at::Tensor& t = ArgTensor(info, 1, op.c_str(), "tensor");
  c10::optional<int64_t> dim;
  if (!Arg(info, 2).IsNull() && !Arg(info, 2).IsUndefined()) dim = ArgInt(info, 2, op.c_str(), "dim");
  const bool keepdim = ArgBool(info, 3, op.c_str(), "keepdim");
  return Out(info.Env(), op == "argmax" ? at::argmax(t, dim, keepdim) : at::argmin(t, dim, keepdim));
}

// norm(t, p, dims|null, keepdim)
Napi::Value Norm(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "norm", "tensor");
  const double p = ArgNumber(info, 1, "norm", "p");
  if (std::isnan(p)) ThrowRange(info.Env(), "norm: p must not be NaN");
  bool given = false;
  const auto dims = ArgDims(info, 2, "norm", "dim", &given);
  const bool keepdim = ArgBool(info, 3, "norm", "keepdim");
  return Out(info.Env(), given ? at::norm(t, p, dims, keepdim) : at::norm(t, p));
}

Napi::Value Reshape(Info info) {
  return Out(info.Env(), at::reshape(ArgTensor(info, 0, "reshape", "tensor"), ArgShape(info, 1, "reshape", "shape", true)));
}
Napi::Value View(Info info) {
  return Out(info.Env(), ArgTensor(info, 0, "view", "tensor").view(ArgShape(info, 1, "view", "shape", true)));
}
Napi::Value Permute(Info info) {
  bool given = false;
  const auto dims = ArgDims(info, 1, "permute", "dims", &given);
  if (!given) ThrowType(info.Env(), "permute", "dims", "an array of integers", Arg(info, 1));
  return Out(info.Env(), ArgTensor(info, 0, "permute", "tensor").permute(dims));
}
Napi::Value Transpose(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "transpose", "tensor");
  return Out(info.Env(), t.transpose(ArgInt(info, 1, "transpose", "dim0"), ArgInt(info, 2, "transpose", "dim1")));
}
Napi::Value Squeeze(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "squeeze", "tensor");
  if (Arg(info, 1).IsNull() || Arg(info, 1).IsUndefined()) return Out(info.Env(), t.squeeze());
  return Out(info.Env(), t.squeeze(ArgInt(info, 1, "squeeze", "dim")));
}
Napi::Value Unsqueeze(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "unsqueeze", "tensor");
  return Out(info.Env(), t.unsqueeze(ArgInt(info, 1, "unsqueeze", "dim")));
}
Napi::Value Flatten(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "flatten", "tensor");
  return Out(info.Env(), t.flatten(ArgInt(info, 1, "flatten", "startDim"), ArgInt(info, 2, "flatten", "endDim")));
}
Napi::Value Narrow(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "narrow", "tensor");
  return Out(info.Env(), t.narrow(ArgInt(info, 1, "narrow", "dim"), ArgInt(info, 2, "narrow", "start"),
                                  ArgInt(info, 3, "narrow", "length")));
}
Napi::Value IndexSelect(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "indexSelect", "tensor");
  const int64_t dim = ArgInt(info, 1, "indexSelect", "dim");
  return Out(info.Env(), at::index_select(t, dim, ArgTensor(info, 2, "indexSelect", "index")));
}

std::vector<at::Tensor> ArgTensorList(Info info, size_t i, const char* fn) {
  Napi::Value v = Arg(info, i);
  if (!v.IsArray()) ThrowType(info.Env(), fn, "tensors", "an array of Tensors", v);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value e = a.Get(k);
    Tensor* t = UnwrapAs<Tensor>(info.Env(), e, Data(info.Env()).tensor_class);
    if (t == nullptr) ThrowType(info.Env(), fn, "tensors", "an array of Tensors", e);
    if (t->disposed()) throw TorchError(info.Env(), std::string(fn) + ": tensors[" + std::to_string(k) + "] is a disposed Tensor");
    out.push_back(t->value());
  }
  if (out.empty()) ThrowRange(info.Env(), std::string(fn) + ": tensors must not be empty");
  return out;
}
Napi::Value Cat(Info info) {
  const auto list = ArgTensorList(info, 0, "cat");
  return Out(info.Env(), at::cat(list, ArgInt(info, 1, "cat", "dim")));
}
Napi::Value Stack(Info info) {
  const auto list = ArgTensorList(info, 0, "stack");
  return Out(info.Env(), at::stack(list, ArgInt(info, 1, "stack", "dim")));
}
Napi::Value Where(Info info) {
  return Out(info.Env(), at::where(ArgTensor(info, 0, "where", "condition"), ArgTensor(info, 1, "where", "self"),
                                   ArgTensor(info, 2, "where", "other")));
}
// clamp(t, min|null, max|null)
Napi::Value Clamp(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "clamp", "tensor");
  c10::optional<at::Scalar> lo, hi;
  if (!Arg(info, 1).IsNull() && !Arg(info, 1).IsUndefined()) lo = ArgNumber(info, 1, "clamp", "min");
  if (!Arg(info, 2).IsNull() && !Arg(info, 2).IsUndefined()) hi = ArgNumber(info, 2, "clamp", "max");
  if (!lo && !hi) ThrowType(info.Env(), "clamp", "min or max", "a number", Arg(info, 1));
  return Out(info.Env(), at::clamp(t, lo, hi));
}

Napi::Value Softmax(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "softmax", "tensor");
  return Out(info.Env(), at::softmax(t, ArgInt(info, 1, "softmax", "dim")));
}
Napi::Value LogSoftmax(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "logSoftmax", "tensor");
  return Out(info.Env(), at::log_softmax(t, ArgInt(info, 1, "logSoftmax", "dim")));
}
// crossEntropy(logits, target, labelSmoothing)
Napi::Value CrossEntropy(Info info) {
  const at::Tensor& logits = ArgTensor(info, 0, "crossEntropy", "logits");
  const at::Tensor& target = ArgTensor(info, 1, "crossEntropy", "target");
  const double smoothing = ArgFinite(info, 2, "crossEntropy", "labelSmoothing");
  if (smoothing < 0 || smoothing > 1) ThrowRange(info.Env(), "crossEntropy: labelSmoothing must be in [0, 1]");
  return Out(info.Env(), at::cross_entropy_loss(logits, target, {}, at::Reduction::Mean, -100, smoothing));
}
Napi::Value MseLoss(Info info) {
  return Out(info.Env(), at::mse_loss(ArgTensor(info, 0, "mseLoss", "input"), ArgTensor(info, 1, "mseLoss", "target")));
}

// inplace(op, t, other: Tensor|number|null, alpha): in-place updates are not recorded
// by autograd (what an optimizer step wants).
Napi::Value Inplace(Info info) {
  const std::string op = ArgString(info, 0, "inplace", "op");
  static const char* const known[] = {"zero", "fill", "copy", "add", "sub", "mul", "div"};
  if (std::find(std::begin(known), std::end(known), op) == std::end(known)) {
    throw Napi::TypeError::New(info.Env(), "inplace: unknown op '" + op + "'");
  }
  const std::string fn = op + "_";
  at::Tensor& t = ArgTensor(info, 1, fn.c_str(), "tensor");
  at::NoGradGuard no_grad;
  const bool scalar = Arg(info, 2).IsNumber();
  if (op == "zero") {
    t.zero_();
  } else if (op == "fill") {
    t.fill_(ScalarFor(t, ArgNumber(info, 2, fn.c_str(), "value")));
  } else if (op == "copy") {
    t.copy_(ArgTensor(info, 2, fn.c_str(), "src"));
  } else if (op == "add" || op == "sub") {
    double alpha = Arg(info, 3).IsUndefined() ? 1.0 : ArgFinite(info, 3, fn.c_str(), "alpha");
    if (op == "sub") alpha = -alpha;
    if (scalar) t.add_(ScalarFor(t, ArgNumber(info, 2, fn.c_str(), "other")), ScalarFor(t, alpha));
    else t.add_(ArgTensor(info, 2, fn.c_str(), "other"), ScalarFor(t, alpha));
  } else if (op == "mul") {
    if (scalar) t.mul_(ScalarFor(t, ArgNumber(info, 2, fn.c_str(), "other")));
    else t.mul_(ArgTensor(info, 2, fn.c_str(), "other"));
  } else {
    if (scalar) t.div_(ScalarFor(t, ArgNumber(info, 2, fn.c_str(), "other")));
    else t.div_(ArgTensor(info, 2, fn.c_str(), "other"));
  }
  return info.Env().Undefined();
}

Napi::Value RequiresGrad(Info info) {
  return Napi::Boolean::New(info.Env(), ArgTensor(info, 0, "requiresGrad", "tensor").requires_grad());
}
Napi::Value SetRequiresGrad(Info info) {
  at::Tensor& t = ArgTensor(info, 0, "setRequiresGrad", "tensor");
  t.set_requires_grad(ArgBool(info, 1, "setRequiresGrad", "requiresGrad"));
  return info.Env().Undefined();
}
Napi::Value Grad(Info info) { return Out(info.Env(), ArgTensor(info, 0, "grad", "tensor").grad()); }
Napi::Value ZeroGrad(Info info) {
  at::Tensor& t = ArgTensor(info, 0, "zeroGrad", "tensor");
  t.mutable_grad() = at::Tensor();
  return info.Env().Undefined();
}
// backward(t, gradient|null, retainGraph)
Napi::Value Backward(Info info) {
  const at::Tensor& t = ArgTensor(info, 0, "backward", "tensor");
  at::Tensor gradient;
  if (!Arg(info, 1).IsNull() && !Arg(info, 1).IsUndefined()) gradient = ArgTensor(info, 1, "backward", "gradient");
  const bool retain = ArgBool(info, 2, "backward", "retainGraph");
  TORCH_CHECK(t.requires_grad(), "backward: tensor does not require grad and has no grad_fn");
  t.backward(gradient, retain);
  return info.Env().Undefined();
}

}  // namespace

void InitTensorFunctions(Napi::Env env, Napi::Object exports) {
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
#define DA_FN(name, F) \
  { name, &Guard<F> }
  const Entry entries[] = {
      DA_FN("fromBuffer", FromBuffer), DA_FN("full", Full), DA_FN("rand", Rand), DA_FN("randn", Randn),
      DA_FN("randint", Randint), DA_FN("arange", Arange), DA_FN("shape", Shape), DA_FN("dtype", Dtype),
      DA_FN("device", DeviceOf), DA_FN("isDisposed", IsDisposed), DA_FN("dispose", Dispose),
      DA_FN("toTypedArray", ToTypedArray), DA_FN("item", Item), DA_FN("to", To), DA_FN("clone", Clone),
      DA_FN("detach", Detach), DA_FN("contiguous", Contiguous), DA_FN("unary", Unary), DA_FN("binary", Binary),
      DA_FN("matmul", Matmul), DA_FN("reduce", Reduce), DA_FN("extreme", Extreme), DA_FN("argExtreme", ArgExtreme),
      DA_FN("norm", Norm), DA_FN("reshape", Reshape), DA_FN("view", View), DA_FN("permute", Permute),
      DA_FN("transpose", Transpose), DA_FN("squeeze", Squeeze), DA_FN("unsqueeze", Unsqueeze),
      DA_FN("flatten", Flatten), DA_FN("narrow", Narrow), DA_FN("indexSelect", IndexSelect), DA_FN("cat", Cat),
      DA_FN("stack", Stack), DA_FN("where", Where), DA_FN("clamp", Clamp), DA_FN("softmax", Softmax),
      DA_FN("logSoftmax", LogSoftmax), DA_FN("crossEntropy", CrossEntropy), DA_FN("mseLoss", MseLoss),
      DA_FN("inplace", Inplace), DA_FN("requiresGrad", RequiresGrad), DA_FN("setRequiresGrad", SetRequiresGrad),
      DA_FN("grad", Grad), DA_FN("zeroGrad", ZeroGrad), DA_FN("backward", Backward),
  };
#undef DA_FN
  for (const Entry& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
}

}  // namespace binding
}  // namespace dropattack
