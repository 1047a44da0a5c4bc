#include "module.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <fstream>

#include "common.h"
#include "engine/io.h"
#include "engine/models.h"
#include "tensor.h"
#include "trainer.h"

namespace dropattack {
namespace binding {

namespace {
using Info = const Napi::CallbackInfo&;

std::string BusyMessage(const char* fn, const ModuleState& s) {
  return std::string(fn) + ": the module is busy (" + s.busy_with +
         " is running); await it before starting another call on this module";
}

// moduleLoad(path) -> Promise<NativeModule>
Napi::Value Load(Info info) {
  Napi::Env env = info.Env();
  const std::string path = ArgString(info, 0, "Module.load", "path");
  // Optional device to load onto (a model saved on a GPU opens on a CPU-only machine).
  c10::optional<at::Device> device;
  if (!Arg(info, 1).IsUndefined() && !Arg(info, 1).IsNull()) device = ArgDevice(info, 1, "Module.load", "device");
  auto state = std::make_shared<ModuleState>();
  return PromiseWorker::Start(
      env, "dropattack.moduleLoad",
      [state, path, device] {
        {
          std::ifstream probe(path, std::ios::binary);
          if (!probe.good()) throw std::runtime_error("Module.load: cannot open '" + path + "' (missing or unreadable)");
        }
        try {
          state->module = torch::jit::load(path, device);
        } catch (const c10::Error& e) {
          throw std::runtime_error("Module.load: '" + path + "' is not a TorchScript file LibTorch can read: " +
                                   e.what_without_backtrace());
        }
      },
      [state](Napi::Env env) -> Napi::Value { return Module::Wrap(env, state); });
}

// moduleSave(m, path) -> Promise<void>
Napi::Value Save(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgModule(info, 0, "Module.save");
  const std::string path = ArgString(info, 1, "Module.save", "path");
  state->busy = true;
  state->busy_with = "save";
  return PromiseWorker::Start(
      env, "dropattack.moduleSave", [state, path] { engine::SaveModule(state->module, path, "Module.save"); },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, [state] { state->busy = false; });
}

// moduleForward(m, {args, kwargs}, grad) -> Promise<output>
Napi::Value Forward(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgModule(info, 0, "Module.forward");
  auto inputs = std::make_shared<engine::ModelInputs>(ReadModelInputs(env, Arg(info, 1), state->module, "Module.forward"));
  const bool grad = ArgBool(info, 2, "Module.forward", "grad");
  auto output = std::make_shared<c10::IValue>();
  state->busy = true;
  state->busy_with = "forward";
  return PromiseWorker::Start(
      env, "dropattack.moduleForward",
      [state, inputs, output, grad] {
        at::AutoGradMode mode(grad);
        std::vector<engine::BoundArgument> args = engine::BindArguments(state->module, *inputs, "Module.forward");
        // Tensor arguments go where the module's parameters are (nothing moves when they
        // are there already); the output stays on that device.
        const at::Device device = state->device();
        for (auto& a : args) {
          if (a.value.isTensor() && a.value.toTensor().device() != device) {
            a.value = a.value.toTensor().to(device, /*non_blocking=*/true);
          }
        }
        *output = engine::RunForward(state->module, args, "Module.forward");
      },
      [output](Napi::Env env) -> Napi::Value { return ToJs(env, *output, "Module.forward"); },
      [state] { state->busy = false; });
}

// moduleEvaluate(m, {args, kwargs}, target|null, loss, settings) -> Promise<{loss, count, logits}>
Napi::Value Evaluate(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgModule(info, 0, "evaluate");
  auto inputs = std::make_shared<engine::ModelInputs>(ReadModelInputs(env, Arg(info, 1), state->module, "evaluate"));
  at::Tensor target;
  if (!Arg(info, 2).IsNull() && !Arg(info, 2).IsUndefined()) target = ArgTensor(info, 2, "evaluate", "target");
  Napi::Value lv = Arg(info, 3);
  if (!lv.IsObject() || lv.IsArray()) ThrowType(env, "evaluate", "loss", "an object", lv);
  engine::LossFromModuleOptions options;
  options.loss = ReadLoss(env, lv.As<Napi::Object>());
  Napi::Value sv = Arg(info, 4);
  if (sv.IsObject() && !sv.IsArray()) {
    options.autocast_bf16 = StringField(env, sv.As<Napi::Object>(), "evaluate", "autocast", "off") == "bf16";
  }
  auto result = std::make_shared<engine::EvalResult>();
  state->busy = true;
  state->busy_with = "evaluate";
  return PromiseWorker::Start(
      env, "dropattack.moduleEvaluate",
      [state, inputs, target, options, result] {
        engine::LossFromModule loss(state->module, options);
        *result = loss.Evaluate(*inputs, target);
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("loss", result->loss);
        o.Set("count", static_cast<double>(result->count));
        o.Set("logits", result->logits.defined() ? Tensor::Wrap(env, result->logits) : env.Null());
        return o;
      },
      [state] { state->busy = false; });
}
Napi::Array NamedList(Napi::Env env, const std::vector<std::pair<std::string, at::Tensor>>& items) {
  Napi::Array out = Napi::Array::New(env, items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", items[k].first);
    o.Set("tensor", Tensor::Wrap(env, items[k].second, /*external=*/true));
    out.Set(static_cast<uint32_t>(k), o);
  }
  return out;
}

// moduleNamedParameters(m) -> {name, tensor}[] (the module's own tensors, not copies)
Napi::Value NamedParameters(Info info) {
  auto state = ArgModule(info, 0, "Module.namedParameters");
  std::vector<std::pair<std::string, at::Tensor>> items;
  for (const auto& p : state->module.named_parameters(/*recurse=*/true)) items.emplace_back(p.name, p.value);
  return NamedList(info.Env(), items);
}

// moduleStateDict(m) -> {name, tensor}[]: parameters then buffers, detached copies.
Napi::Value StateDict(Info info) {
  auto state = ArgModule(info, 0, "Module.stateDict");
  std::vector<std::pair<std::string, at::Tensor>> items;
  for (const auto& p : state->module.named_parameters(true)) items.emplace_back(p.name, p.value.detach().clone());
  for (const auto& b : state->module.named_buffers(true)) items.emplace_back(b.name, b.value.detach().clone());
  Napi::Array out = Napi::Array::New(info.Env(), items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("name", items[k].first);
    o.Set("tensor", Tensor::Wrap(info.Env(), items[k].second));
    out.Set(static_cast<uint32_t>(k), o);
  }
  return out;
}

// moduleLoadStateDict(m, entries: {name, tensor}[], strict) -> void
Napi::Value LoadStateDict(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgModule(info, 0, "Module.loadStateDict");
  Napi::Value v = Arg(info, 1);
  if (!v.IsArray()) ThrowType(env, "Module.loadStateDict", "state", "an array of {name, tensor}", v);
  const bool strict = ArgBool(info, 2, "Module.loadStateDict", "strict");
  std::unordered_map<std::string, at::Tensor> own;
  for (const auto& p : state->module.named_parameters(true)) own.emplace(p.name, p.value);
  for (const auto& b : state->module.named_buffers(true)) own.emplace(b.name, b.value);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;
  std::unordered_map<std::string, bool> seen;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value e = a.Get(k);
    if (!e.IsObject()) ThrowType(env, "Module.loadStateDict", "state entries", "{name, tensor} objects", e);
    Napi::Object o = e.As<Napi::Object>();
    Napi::Value name_v = o.Get("name");
    if (!name_v.IsString()) ThrowType(env, "Module.loadStateDict", "state[].name", "a string", name_v);
    const std::string name = name_v.As<Napi::String>().Utf8Value();
    Tensor* t = UnwrapAs<Tensor>(env, o.Get("tensor"), Data(env).tensor_class);
    if (t == nullptr || t->disposed()) {
      ThrowType(env, "Module.loadStateDict", ("state entry '" + name + "' tensor").c_str(), "a live Tensor", o.Get("tensor"));
    }
    auto it = own.find(name);
    if (it == own.end()) {
      if (strict) throw TorchError(env, "Module.loadStateDict: unexpected key '" + name + "' (the module has no such parameter or buffer)");
      continue;
    }
    TORCH_CHECK(it->second.sizes() == t->value().sizes(), "Module.loadStateDict: '", name, "' has shape ",
                t->value().sizes(), " but the module's is ", it->second.sizes());
    copies.emplace_back(it->second, t->value());
    seen[name] = true;
  }
  if (strict) {
    for (const auto& kv : own) {
      if (!seen.count(kv.first)) throw TorchError(env, "Module.loadStateDict: missing key '" + kv.first + "'");
    }
  }
  at::NoGradGuard no_grad;
  for (auto& c : copies) c.first.copy_(c.second);
  return env.Undefined();
}

Napi::Value SetTraining(Info info) {
  auto state = ArgModule(info, 0, "Module.train");
  state->module.train(ArgBool(info, 1, "Module.train", "on"));
  return info.Env().Undefined();
}

Napi::Value IsTraining(Info info) {
  auto state = ArgModule(info, 0, "Module.isTraining", /*allow_busy=*/true);
  return Napi::Boolean::New(info.Env(), state->module.is_training());
}

// moduleTo(m, device|null, dtype|null)
Napi::Value To(Info info) {
  auto state = ArgModule(info, 0, "Module.to");
  const bool has_device = !Arg(info, 1).IsNull() && !Arg(info, 1).IsUndefined();
  const bool has_dtype = !Arg(info, 2).IsNull() && !Arg(info, 2).IsUndefined();
  if (has_dtype) {
    const at::ScalarType dtype = ArgDtype(info, 2, "Module.to", "dtype");
    TORCH_CHECK(at::isFloatingType(dtype), "Module.to: dtype must be a float type, got ", DtypeName(dtype));
    if (has_device) state->module.to(ArgDevice(info, 1, "Module.to", "device"), dtype);
    else state->module.to(dtype);
  } else if (has_device) {
    state->module.to(ArgDevice(info, 1, "Module.to", "device"));
  }
  SyncModuleReport(info.Env(), *state);
  return info.Env().Undefined();
}

// moduleBuild(spec: object, seed) -> NativeModule (a built-in model; see engine/models.h)
Napi::Value Build(Info info) {
  Napi::Env env = info.Env();
  Napi::Value sv = Arg(info, 0);
  if (!sv.IsObject() || sv.IsArray()) ThrowType(env, "Module.build", "model", "an object", sv);
  Napi::Object o = sv.As<Napi::Object>();
  const uint64_t seed = ArgUint64(info, 1, "Module.build", "seed");
  engine::ModelSpec spec;
  spec.kind = StringField(env, o, "model", "kind", "");
  spec.num_classes = IntField(env, o, "model", "numClasses", spec.num_classes);
  spec.dropout = NumberField(env, o, "model", "dropout", spec.dropout);
  spec.vocab_size = IntField(env, o, "model", "vocabSize", spec.vocab_size);
  spec.embed_dim = IntField(env, o, "model", "embedDim", spec.embed_dim);
  spec.padding_idx = IntField(env, o, "model", "paddingIdx", spec.padding_idx);
  Napi::Value pre = o.Get("pretrainedEmbedding");
  if (!pre.IsUndefined() && !pre.IsNull()) {
    Tensor* t = UnwrapAs<Tensor>(env, pre, Data(env).tensor_class);
    if (t == nullptr || t->disposed()) throw Napi::TypeError::New(env, "model.pretrainedEmbedding must be a live Tensor, got " + Describe(pre));
    spec.pretrained_embedding = t->value();
  }
  spec.freeze_embedding = BoolField(env, o, "model", "freezeEmbedding", spec.freeze_embedding);
  spec.sparse_embedding = BoolField(env, o, "model", "sparseEmbedding", spec.sparse_embedding);
  spec.cell = StringField(env, o, "model", "cell", spec.cell);
  spec.hidden_size = IntField(env, o, "model", "hiddenSize", spec.hidden_size);
  spec.num_layers = IntField(env, o, "model", "numLayers", spec.num_layers);
  spec.bidirectional = BoolField(env, o, "model", "bidirectional", spec.bidirectional);
  spec.output_dropout = NumberField(env, o, "model", "outputDropout", spec.output_dropout);
  spec.num_filters = IntField(env, o, "model", "numFilters", spec.num_filters);
  spec.kernel_sizes = IntListField(env, o, "model", "kernelSizes", spec.kernel_sizes);
  spec.input_dim = IntField(env, o, "model", "inputDim", spec.input_dim);
  spec.hidden_sizes = IntListField(env, o, "model", "hiddenSizes", spec.hidden_sizes);
  spec.channels = IntListField(env, o, "model", "channels", spec.channels);
  spec.width = IntField(env, o, "model", "width", spec.width);
  spec.blocks_per_stage = IntField(env, o, "model", "blocksPerStage", spec.blocks_per_stage);
  auto state = std::make_shared<ModuleState>();
  state->module = engine::build_model(spec, seed);
  return Module::Wrap(env, state);
}

Napi::Value IsBusy(Info info) {
  auto state = ArgModule(info, 0, "Module.busy", /*allow_busy=*/true);
  return Napi::Boolean::New(info.Env(), state->busy);
}

Module* ArgModuleObject(Info info, size_t i, const char* fn) {
  Napi::Value v = Arg(info, i);
  Module* m = UnwrapAs<Module>(info.Env(), v, Data(info.Env()).module_class);
  if (m == nullptr || !m->state) ThrowType(info.Env(), fn, "module", "a Module", v);
  return m;
}

Napi::Value IsDisposed(Info info) {
  return Napi::Boolean::New(info.Env(), ArgModuleObject(info, 0, "Module.isDisposed")->state->disposed);
}

// moduleDispose(m): releases the module and the trainers built on it. Refused while a
// call runs on it (the job on the thread pool uses the module until it ends); a second
// dispose does nothing.
Napi::Value Dispose(Info info) {
  Napi::Env env = info.Env();
  ModuleState& s = *ArgModuleObject(info, 0, "Module.dispose")->state;
  if (s.disposed) return env.Undefined();
  if (s.busy) {
    throw TorchError(env, "Module.dispose: the module is busy (" + s.busy_with +
                              " is running); await it before disposing the module");
  }
  for (auto& weak : s.trainers) {
    if (auto trainer = weak.lock()) ReleaseTrainer(env, *trainer);
  }
  s.trainers.clear();
  s.disposed = true;
  s.module = torch::jit::Module();
  SyncModuleReport(env, s);
  return env.Undefined();
}

// moduleMemory(m) -> {parameters, buffers, gradients, total, devices}: bytes of the
// distinct storages the module holds, per device. Refused while busy: a step on the
// thread pool assigns the gradients meanwhile.
Napi::Value Memory(Info info) {
  auto state = ArgModule(info, 0, "Module.memory");
  std::vector<at::Tensor> parameters, buffers, gradients;
  state->Tensors(&parameters, &buffers, &gradients);
  StorageTally tally({"parameters", "buffers", "gradients"});
  for (const auto& t : parameters) tally.Add(t, "parameters");
  for (const auto& t : buffers) tally.Add(t, "buffers");
  for (const auto& t : gradients) tally.Add(t, "gradients");
  return tally.ToJs(info.Env());
}
}  // namespace

void ModuleState::Tensors(std::vector<at::Tensor>* parameters, std::vector<at::Tensor>* buffers,
                          std::vector<at::Tensor>* gradients) const {
  if (disposed) return;
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    if (parameters != nullptr) parameters->push_back(p);
    if (gradients != nullptr && p.grad().defined()) {
      if (p.grad().is_sparse()) {  // a sparse gradient's storages are its indices and values
        gradients->push_back(p.grad()._indices());
        gradients->push_back(p.grad()._values());
      } else {
        gradients->push_back(p.grad());
      }
    }
  }
  if (buffers != nullptr) {
    for (const auto& b : module.buffers(/*recurse=*/true)) buffers->push_back(b);
  }
}

void SyncModuleReport(Napi::Env env, ModuleState& state) {
  std::vector<at::Tensor> tensors;
  state.Tensors(&tensors, &tensors, nullptr);
  const int64_t bytes = DistinctBytes(tensors);
  if (bytes != state.reported_bytes) AdjustExternalMemory(env, bytes - state.reported_bytes);
  state.reported_bytes = bytes;
}

namespace {

c10::IValue Infer(Napi::Env env, const Napi::Value& v, const std::string& where);

[[noreturn]] void Wrong(Napi::Env env, const std::string& where, const std::string& expected, const Napi::Value& v) {
  throw Napi::TypeError::New(env, where + " must be " + expected + ", got " + Describe(v));
}

at::Tensor TensorValue(Napi::Env env, const Napi::Value& v, const std::string& where) {
  Tensor* t = UnwrapAs<Tensor>(env, v, Data(env).tensor_class);
  if (t == nullptr) Wrong(env, where, "a Tensor", v);
  if (t->disposed()) throw TorchError(env, where + " is a disposed Tensor");
  return t->value();
}

bool IsPlainObject(Napi::Env env, const Napi::Value& v) {
  return v.IsObject() && !v.IsArray() && !v.IsFunction() && !IsTensor(env, v);
}

// A JS value as the TorchScript type forward's schema declares.
c10::IValue Convert(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const std::string& where) {
  if (auto opt = type->cast<c10::OptionalType>()) {
    if (v.IsNull() || v.IsUndefined()) return c10::IValue();
    return Convert(env, v, opt->getElementType(), where);
  }
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return TensorValue(env, v, where);
    case c10::TypeKind::IntType: {
      if (v.IsBigInt()) {
        bool lossless = false;
        const int64_t i = v.As<Napi::BigInt>().Int64Value(&lossless);
        if (!lossless) throw Napi::RangeError::New(env, where + " does not fit in int64");
        return i;
      }
      if (!v.IsNumber()) Wrong(env, where, "an integer (int)", v);
      const double d = v.As<Napi::Number>().DoubleValue();
      if (d != std::floor(d) || std::abs(d) > 9007199254740991.0) Wrong(env, where, "an integer (int)", v);
      return static_cast<int64_t>(d);
    }
    case c10::TypeKind::FloatType:
      if (!v.IsNumber()) Wrong(env, where, "a number (float)", v);
      return v.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::NumberType: {
      if (!v.IsNumber()) Wrong(env, where, "a number", v);
      const double d = v.As<Napi::Number>().DoubleValue();
      if (d == std::floor(d) && std::abs(d) <= 9007199254740991.0) return static_cast<int64_t>(d);
      return d;
    }
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) Wrong(env, where, "a boolean (bool)", v);
      return v.As<Napi::Boolean>().Value();
    case c10::TypeKind::StringType:
      if (!v.IsString()) Wrong(env, where, "a string (str)", v);
      return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::NoneType:
      if (!v.IsNull() && !v.IsUndefined()) Wrong(env, where, "null (None)", v);
      return c10::IValue();
    case c10::TypeKind::ListType: {
      if (!v.IsArray()) Wrong(env, where, "an array (" + type->annotation_str() + ")", v);
      const c10::TypePtr elem = type->expectRef<c10::ListType>().getElementType();
      c10::impl::GenericList list(elem);
      Napi::Array a = v.As<Napi::Array>();
      for (uint32_t k = 0; k < a.Length(); ++k) list.push_back(Convert(env, a.Get(k), elem, where + "[" + std::to_string(k) + "]"));
      return list;
    }
    case c10::TypeKind::TupleType: {
      const auto& elems = type->expectRef<c10::TupleType>().elements();
      if (!v.IsArray() || v.As<Napi::Array>().Length() != elems.size()) {
        Wrong(env, where, "an array of " + std::to_string(elems.size()) + " items (" + type->annotation_str() + ")", v);
      }
      Napi::Array a = v.As<Napi::Array>();
      std::vector<c10::IValue> items;
      for (uint32_t k = 0; k < elems.size(); ++k) items.push_back(Convert(env, a.Get(k), elems[k], where + "[" + std::to_string(k) + "]"));
      return c10::ivalue::Tuple::create(std::move(items));
    }
    case c10::TypeKind::DictType: {
      const auto& dt = type->expectRef<c10::DictType>();
      if (dt.getKeyType()->kind() != c10::TypeKind::StringType) {
        throw Napi::TypeError::New(env, where + ": only dicts with str keys can be passed (" + type->annotation_str() + ")");
      }
      if (!IsPlainObject(env, v)) Wrong(env, where, "an object (" + type->annotation_str() + ")", v);
      c10::impl::GenericDict dict(dt.getKeyType(), dt.getValueType());
      Napi::Object o = v.As<Napi::Object>();
      Napi::Array keys = o.GetPropertyNames();
      for (uint32_t k = 0; k < keys.Length(); ++k) {
        const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
        dict.insert(key, Convert(env, o.Get(key), dt.getValueType(), where + "['" + key + "']"));
      }
      return dict;
    }
    default:
      return Infer(env, v, where);
  }
}

// A value whose type the schema leaves open (Any), or one that matches no parameter (the
// binding of arguments then names the problem): its natural TorchScript type.
c10::IValue Infer(Napi::Env env, const Napi::Value& v, const std::string& where) {
  if (IsTensor(env, v)) return TensorValue(env, v, where);
  if (v.IsNull() || v.IsUndefined()) return c10::IValue();
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (v.IsNumber()) return Convert(env, v, c10::NumberType::get(), where);
  if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    bool tensors = true;
    for (uint32_t k = 0; k < a.Length(); ++k) tensors = tensors && IsTensor(env, a.Get(k));
    if (tensors) return Convert(env, v, c10::ListType::ofTensors(), where);
    std::vector<c10::IValue> items;
    for (uint32_t k = 0; k < a.Length(); ++k) items.push_back(Infer(env, a.Get(k), where + "[" + std::to_string(k) + "]"));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (IsPlainObject(env, v)) return Convert(env, v, c10::DictType::create(c10::StringType::get(), c10::TensorType::get()), where);
  Wrong(env, where, "a Tensor, number, boolean, string, null, array or object", v);
}

}  // namespace

engine::ModelInputs ReadModelInputs(Napi::Env env, const Napi::Value& v, const torch::jit::Module& module,
                                    const std::string& where) {
  if (!IsPlainObject(env, v)) ThrowType(env, where.c_str(), "inputs", "{args, kwargs}", v);
  Napi::Object o = v.As<Napi::Object>();
  auto method = module.find_method("forward");
  if (!method) throw TorchError(env, where + ": the module has no forward method");
  const auto& params = method->function().getSchema().arguments();
  engine::ModelInputs out;
  Napi::Value args = o.Get("args");
  if (!args.IsUndefined() && !args.IsNull()) {
    if (!args.IsArray()) ThrowType(env, where.c_str(), "inputs", "an array of forward arguments", args);
    Napi::Array a = args.As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length(); ++k) {
      std::string w = where + ": inputs[" + std::to_string(k) + "]";
      if (k + 1 < params.size()) {
        w += " ('" + params[k + 1].name() + "')";
        out.args.push_back(Convert(env, a.Get(k), params[k + 1].type(), w));
      } else {
        out.args.push_back(Infer(env, a.Get(k), w));
      }
    }
  }
  Napi::Value kwargs = o.Get("kwargs");
  if (!kwargs.IsUndefined() && !kwargs.IsNull()) {
    if (!IsPlainObject(env, kwargs)) ThrowType(env, where.c_str(), "inputs", "an object of named forward arguments", kwargs);
    Napi::Object ko = kwargs.As<Napi::Object>();
    Napi::Array keys = ko.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      const std::string name = keys.Get(k).As<Napi::String>().Utf8Value();
      c10::TypePtr t;
      for (size_t i = 1; i < params.size(); ++i) {
        if (params[i].name() == name) t = params[i].type();
      }
      const std::string w = where + ": argument '" + name + "'";
      out.kwargs.emplace_back(name, t ? Convert(env, ko.Get(name), t, w) : Infer(env, ko.Get(name), w));
    }
  }
  return out;
}

Napi::Value ToJs(Napi::Env env, const c10::IValue& v, const std::string& where) {
  if (v.isTensor()) return Tensor::Wrap(env, v.toTensor());
  if (v.isTuple() || v.isList()) {
    std::vector<c10::IValue> items;
    if (v.isTuple()) {
      for (const auto& e : v.toTupleRef().elements()) items.push_back(e);
    } else {
      for (const auto& e : v.toListRef()) items.push_back(e);
    }
    Napi::Array a = Napi::Array::New(env, items.size());
    for (size_t k = 0; k < items.size(); ++k) a.Set(static_cast<uint32_t>(k), ToJs(env, items[k], where));
    return a;
  }
  if (v.isGenericDict()) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& e : v.toGenericDict()) {
      const c10::IValue& key = e.key();
      std::string k;
      if (key.isString()) k = key.toStringRef();
      else if (key.isInt()) k = std::to_string(key.toInt());
      else if (key.isBool()) k = key.toBool() ? "true" : "false";
      else throw TorchError(env, where + ": cannot return a dict with " + std::string(key.tagKind()) + " keys");
      o.Set(k, ToJs(env, e.value(), where));
    }
    return o;
  }
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isNone()) return env.Null();
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  throw TorchError(env, where + ": cannot return a value of type " + v.tagKind());
}

std::shared_ptr<ModuleState> ArgModule(const Napi::CallbackInfo& info, size_t i, const char* fn, bool allow_busy) {
  Napi::Value v = Arg(info, i);
  Module* m = UnwrapAs<Module>(info.Env(), v, Data(info.Env()).module_class);
  if (m == nullptr || !m->state) ThrowType(info.Env(), fn, "module", "a Module", v);
  if (m->state->disposed) throw TorchError(info.Env(), std::string(fn) + ": the Module has been disposed");
  if (m->state->busy && !allow_busy) throw TorchError(info.Env(), BusyMessage(fn, *m->state));
  return m->state;
}

void Module::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeModule", {});
  Data(env).module_class = Napi::Persistent(cls);
  exports.Set("moduleLoad", Napi::Function::New(env, &Guard<Load>, "moduleLoad"));
  exports.Set("moduleSave", Napi::Function::New(env, &Guard<Save>, "moduleSave"));
  exports.Set("moduleForward", Napi::Function::New(env, &Guard<Forward>, "moduleForward"));
  exports.Set("moduleEvaluate", Napi::Function::New(env, &Guard<Evaluate>, "moduleEvaluate"));
  exports.Set("moduleNamedParameters", Napi::Function::New(env, &Guard<NamedParameters>, "moduleNamedParameters"));
  exports.Set("moduleStateDict", Napi::Function::New(env, &Guard<StateDict>, "moduleStateDict"));
  exports.Set("moduleLoadStateDict", Napi::Function::New(env, &Guard<LoadStateDict>, "moduleLoadStateDict"));
  exports.Set("moduleTrain", Napi::Function::New(env, &Guard<SetTraining>, "moduleTrain"));
  exports.Set("moduleIsTraining", Napi::Function::New(env, &Guard<IsTraining>, "moduleIsTraining"));
  exports.Set("moduleTo", Napi::Function::New(env, &Guard<To>, "moduleTo"));
  exports.Set("moduleBuild", Napi::Function::New(env, &Guard<Build>, "moduleBuild"));
  exports.Set("moduleIsBusy", Napi::Function::New(env, &Guard<IsBusy>, "moduleIsBusy"));
  exports.Set("moduleIsDisposed", Napi::Function::New(env, &Guard<IsDisposed>, "moduleIsDisposed"));
  exports.Set("moduleDispose", Napi::Function::New(env, &Guard<Dispose>, "moduleDispose"));
  exports.Set("moduleMemory", Napi::Function::New(env, &Guard<Memory>, "moduleMemory"));
}

Napi::Object Module::Wrap(Napi::Env env, std::shared_ptr<ModuleState> state) {
  Napi::Object obj = Data(env).module_class.New({Napi::External<std::shared_ptr<ModuleState>>::New(env, &state)});
  SyncModuleReport(env, *state);
  return obj;
}

Module::Module(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Module>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeModule cannot be constructed from JavaScript; use Module.load()");
  }
  state = *info[0].As<Napi::External<std::shared_ptr<ModuleState>>>().Data();
}

Module::~Module() {
  // The report goes with the handle (a JS Trainer holds its Module's handle, so the
  // state does not outlive it by much).
  if (state && state->reported_bytes > 0) AdjustExternalMemory(Env(), -state->reported_bytes);
  if (state) state->reported_bytes = 0;
}

}  // namespace binding
}  // namespace dropattack
