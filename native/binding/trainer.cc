#include "trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/serialize.h>
#include <torch/version.h>

#include "common.h"
#include "engine/io.h"
#include "engine/methods/registry.h"
#include "tensor.h"

namespace dropattack {
namespace binding {

namespace {
using Info = const Napi::CallbackInfo&;

Napi::Object ObjectArg(Info info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsObject() || v.IsArray()) ThrowType(info.Env(), fn, name, "an object", v);
  return v.As<Napi::Object>();
}

engine::OptimizerSpec ReadOptimizer(Napi::Env env, Napi::Object o) {
  engine::OptimizerSpec s;
  const std::string w = "optimizer";
  s.type = StringField(env, o, w, "type", "sgd");
  s.lr = NumberField(env, o, w, "lr", s.lr);
  s.momentum = NumberField(env, o, w, "momentum", 0);
  s.nesterov = BoolField(env, o, w, "nesterov", false);
  s.dampening = NumberField(env, o, w, "dampening", 0);
  s.weight_decay = NumberField(env, o, w, "weightDecay", s.type == "adamw" ? 0.01 : 0.0);
  Napi::Value betas = o.Get("betas");
  if (!betas.IsUndefined() && !betas.IsNull()) {
    if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2) {
      throw Napi::TypeError::New(env, "optimizer.betas must be an array of two numbers, got " + Describe(betas));
    }
    Napi::Array b = betas.As<Napi::Array>();
    if (!b.Get(0u).IsNumber() || !b.Get(1u).IsNumber()) {
      throw Napi::TypeError::New(env, "optimizer.betas must be an array of two numbers");
    }
    s.beta1 = b.Get(0u).As<Napi::Number>().DoubleValue();
    s.beta2 = b.Get(1u).As<Napi::Number>().DoubleValue();
  }
  s.eps = NumberField(env, o, w, "eps", s.eps);
  s.amsgrad = BoolField(env, o, w, "amsgrad", false);
  return s;
}

engine::AttackConfig ReadAttack(Napi::Env env, Napi::Object o) {
  engine::AttackConfig a;
  const std::string w = "attack";
  a.method = engine::ParseMethod(StringField(env, o, w, "method", "none"));
  const double k = NumberField(env, o, w, "k", 1);
  if (k != std::floor(k) || k < 1 || k > 1000) throw Napi::RangeError::New(env, "attack.k must be an integer in [1, 1000], got " + std::to_string(k));
  a.k = static_cast<int>(k);
  a.alpha = NumberField(env, o, w, "alpha", a.alpha);
  a.rho = NumberField(env, o, w, "rho", a.rho);
  a.eta = NumberField(env, o, w, "eta", a.eta);
  Napi::Value seed = o.Get("seed");
  if (seed.IsBigInt()) {
    bool lossless = false;
    a.seed = seed.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "attack.seed must be in [0, 2^64)");
  } else if (!seed.IsUndefined() && !seed.IsNull()) {
    const double s = NumberField(env, o, w, "seed", 0);
    if (s < 0 || s != std::floor(s) || s > 9007199254740991.0) throw Napi::RangeError::New(env, "attack.seed must be a non-negative integer");
    a.seed = static_cast<uint64_t>(s);
  }
  Napi::Value groups = o.Get("groups");
  if (!groups.IsUndefined() && !groups.IsNull()) {
    if (!groups.IsArray()) throw Napi::TypeError::New(env, "attack.groups must be an array, got " + Describe(groups));
    Napi::Array ga = groups.As<Napi::Array>();
    for (uint32_t g = 0; g < ga.Length(); ++g) {
      const std::string gw = "attack.groups[" + std::to_string(g) + "]";
      Napi::Value gv = ga.Get(g);
      if (!gv.IsObject() || gv.IsArray()) throw Napi::TypeError::New(env, gw + " must be an object, got " + Describe(gv));
      Napi::Object go = gv.As<Napi::Object>();
      engine::AttackGroup group;
      Napi::Value targets = go.Get("targets");
      if (!targets.IsArray()) throw Napi::TypeError::New(env, gw + ".targets must be an array of strings, got " + Describe(targets));
      Napi::Array ta = targets.As<Napi::Array>();
      for (uint32_t t = 0; t < ta.Length(); ++t) {
        Napi::Value tv = ta.Get(t);
        if (!tv.IsString()) throw Napi::TypeError::New(env, gw + ".targets must be an array of strings, got " + Describe(tv));
        group.targets.push_back(tv.As<Napi::String>().Utf8Value());
      }
      group.epsilon = NumberField(env, go, gw, "epsilon", group.epsilon);
      group.p = NumberField(env, go, gw, "p", 1.0);
      group.relative = BoolField(env, go, gw, "relative", false);
      group.sparse = StringField(env, go, gw, "sparse", "auto");
      a.groups.push_back(std::move(group));
    }
  }
  return a;
}

// Autocast of one forward pass to bfloat16 on the parameters' device. The region ends
// (and its cache of casted weights is cleared) before the engine perturbs or restores a
// parameter in place, so no pass can see a stale cast.
class AutocastScope {
 public:
  AutocastScope(bool on, at::DeviceType device) : on_(on), device_(device) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    was_enabled_ = at::autocast::is_autocast_enabled(device_);
    was_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::set_autocast_enabled(device_, true);
#else
    TORCH_CHECK(device_ == at::kCUDA || device_ == at::kCPU, "autocast: bf16 autocast on this LibTorch is for CPU and CUDA only");
    if (device_ == at::kCUDA) {
      was_enabled_ = at::autocast::is_enabled();
      was_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      was_enabled_ = at::autocast::is_cpu_enabled();
      was_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(device_, was_enabled_);
    at::autocast::set_autocast_dtype(device_, was_dtype_);
#else
    if (device_ == at::kCUDA) {
      at::autocast::set_enabled(was_enabled_);
      at::autocast::set_autocast_gpu_dtype(was_dtype_);
    } else {
      at::autocast::set_cpu_enabled(was_enabled_);
      at::autocast::set_autocast_cpu_dtype(was_dtype_);
    }
#endif
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_;
  at::DeviceType device_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

engine::LossSpec ReadLoss(Napi::Env env, Napi::Object o) {
  engine::LossSpec l;
  l.type = StringField(env, o, "loss", "type", "cross_entropy");
  if (l.type != "cross_entropy" && l.type != "bce_with_logits" && l.type != "mse") {
    throw Napi::TypeError::New(env, "loss.type must be cross_entropy, bce_with_logits or mse, got '" + l.type + "'");
  }
  l.label_smoothing = NumberField(env, o, "loss", "labelSmoothing", 0);
  if (l.label_smoothing < 0 || l.label_smoothing > 1) throw Napi::RangeError::New(env, "loss.labelSmoothing must be in [0, 1]");
  Napi::Value w = o.Get("classWeights");
  if (!w.IsUndefined() && !w.IsNull()) {
    Tensor* t = UnwrapAs<Tensor>(env, w, Data(env).tensor_class);
    if (t == nullptr || t->disposed()) throw Napi::TypeError::New(env, "loss.classWeights must be a live Tensor, got " + Describe(w));
    l.class_weights = t->value().detach().clone();
  }
  return l;
}

// trainerNew(module, optimizer, attack, loss) -> NativeTrainer
Napi::Value CreateTrainer(Info info) {
  Napi::Env env = info.Env();
  auto module = ArgModule(info, 0, "Trainer");
  const engine::OptimizerSpec optimizer = ReadOptimizer(env, ObjectArg(info, 1, "Trainer", "optimizer"));
  engine::AttackConfig attack = ReadAttack(env, ObjectArg(info, 2, "Trainer", "attack"));
  const engine::LossSpec loss = ReadLoss(env, ObjectArg(info, 3, "Trainer", "loss"));
  std::vector<engine::NamedParameter> params;
  std::vector<at::Tensor> tensors;
  for (const auto& p : module->module.named_parameters(true)) {
    if (!p.value.requires_grad()) continue;  // frozen
    params.emplace_back(p.name, p.value);
    tensors.push_back(p.value);
  }
  TORCH_CHECK(!params.empty(), "Trainer: the module has no trainable parameters");
  auto state = std::make_shared<TrainerState>();
  state->module = module;
  state->loss = loss;
  Napi::Value settings = Arg(info, 4);
  if (settings.IsObject() && !settings.IsArray()) {
    const std::string autocast = StringField(env, settings.As<Napi::Object>(), "Trainer", "autocast", "off");
    if (autocast != "off" && autocast != "bf16") {
      throw Napi::RangeError::New(env, "Trainer: autocast must be 'off' or 'bf16', got '" + autocast + "'");
    }
    state->autocast_bf16 = autocast == "bf16";
  }
  state->trainer = std::make_unique<engine::Trainer>(std::move(params), std::move(attack),
                                                     engine::MakeOptimizer(tensors, optimizer));
  return Data(env).trainer_class.New({Napi::External<std::shared_ptr<TrainerState>>::New(env, &state)});
}

std::shared_ptr<TrainerState> ArgTrainer(Info info, size_t i, const char* fn) {
  Napi::Value v = Arg(info, i);
  Trainer* t = UnwrapAs<Trainer>(info.Env(), v, Data(info.Env()).trainer_class);
  if (t == nullptr || !t->state) ThrowType(info.Env(), fn, "trainer", "a Trainer", v);
  return t->state;
}

Napi::Object ResultToJs(Napi::Env env, const engine::StepResult& r, bool times) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("cleanLoss", r.clean_loss);
  Napi::Array losses = Napi::Array::New(env, r.group_losses.size());
  Napi::Array skipped = Napi::Array::New(env, r.skipped.size());
  for (size_t g = 0; g < r.group_losses.size(); ++g) {
    losses.Set(static_cast<uint32_t>(g), r.group_losses[g]);
    skipped.Set(static_cast<uint32_t>(g), static_cast<double>(r.skipped[g]));
  }
  o.Set("groupLosses", losses);
  o.Set("skipped", skipped);
  o.Set("gradNorm", r.grad_norm);
  o.Set("lr", r.lr);
  o.Set("applied", r.applied);
  o.Set("accumulated", r.accumulated);
  o.Set("reason", r.reason.empty() ? env.Null() : Napi::String::New(env, r.reason));
  Napi::Array sparse = Napi::Array::New(env, r.sparse_targets.size());
  for (size_t k = 0; k < r.sparse_targets.size(); ++k) sparse.Set(static_cast<uint32_t>(k), r.sparse_targets[k]);
  o.Set("sparseTargets", sparse);
  if (times) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("forward", r.times.forward);
    t.Set("backward", r.times.backward);
    t.Set("perturb", r.times.perturb);
    t.Set("optimizer", r.times.optimizer);
    o.Set("times", t);
  }
  return o;
}

// trainerStep(trainer, inputs: Tensor[], target: Tensor, options) -> Promise<result>
Napi::Value Step(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgTrainer(info, 0, "Trainer.step");
  if (state->module->busy) {
    throw TorchError(env, "Trainer.step: the module is busy (" + state->module->busy_with +
                              " is running); await the previous step before starting another");
  }
  Napi::Value iv = Arg(info, 1);
  if (!iv.IsArray() || iv.As<Napi::Array>().Length() == 0) ThrowType(env, "Trainer.step", "inputs", "a non-empty array of Tensors", iv);
  Napi::Array ia = iv.As<Napi::Array>();
  auto inputs = std::make_shared<std::vector<at::Tensor>>();
  for (uint32_t k = 0; k < ia.Length(); ++k) {
    Napi::Value e = ia.Get(k);
    Tensor* t = UnwrapAs<Tensor>(env, e, Data(env).tensor_class);
    if (t == nullptr) ThrowType(env, "Trainer.step", "inputs", "an array of Tensors", e);
    if (t->disposed()) throw TorchError(env, "Trainer.step: inputs[" + std::to_string(k) + "] is a disposed Tensor");
    inputs->push_back(t->value());
  }
  at::Tensor target = ArgTensor(info, 2, "Trainer.step", "target");
  Napi::Object o = ObjectArg(info, 3, "Trainer.step", "options");
  engine::StepOptions options;
  options.lr = NumberField(env, o, "step options", "lr", -1);
  options.clip_grad_norm = NumberField(env, o, "step options", "clipGradNorm", 0);
  options.accumulate = BoolField(env, o, "step options", "accumulate", false);
  options.loss_scale = NumberField(env, o, "step options", "lossScale", 1.0);
  options.time_phases = BoolField(env, o, "step options", "timePhases", false);
  options.grad_norm = BoolField(env, o, "step options", "gradNorm", true);
  engine::Batch batch;
  batch.input = (*inputs)[0];
  Napi::Value ids = o.Get("tokenIds");
  if (!ids.IsUndefined() && !ids.IsNull()) {
    Tensor* t = UnwrapAs<Tensor>(env, ids, Data(env).tensor_class);
    if (t == nullptr || t->disposed()) throw Napi::TypeError::New(env, "step options.tokenIds must be a live Tensor, got " + Describe(ids));
    batch.token_ids = t->value();
  } else if (batch.input.scalar_type() == at::kLong) {
    batch.token_ids = batch.input;  // the token ids of a text model
  }
  auto result = std::make_shared<engine::StepResult>();
  state->module->busy = true;
  state->module->busy_with = "a training step";
  return PromiseWorker::Start(
      env, "dropattack.trainerStep",
      [state, inputs, target_in = target, batch_in = batch, options, result] {
        auto& module = state->module->module;
        const at::Device device = state->module->device();
        const bool moves = device != at::Device(at::kCPU);
        // Class weights follow the parameters once (kept in the trainer), not on each pass.
        if (state->loss.class_weights.defined() && state->loss.class_weights.device() != device) {
          state->loss.class_weights = state->loss.class_weights.to(device);
        }
        const engine::LossSpec& loss = state->loss;
        // Class indices are read once per batch (before the copy: on the host when the
        // target comes from there), so no pass waits on the device for them.
        std::pair<int64_t, int64_t> range{0, -1};
        const bool check_classes = loss.type == "cross_entropy" && target_in.scalar_type() == at::kLong;
        if (check_classes) range = engine::TargetRange(target_in);
        // The batch goes where the parameters are (a copy per step; nothing when it is
        // there already).
        at::Tensor target = moves ? target_in.to(device, /*non_blocking=*/true) : target_in;
        engine::Batch batch = batch_in;
        if (moves) {
          for (auto& t : *inputs) t = t.to(device, /*non_blocking=*/true);
          batch.input = (*inputs)[0];
          if (batch.token_ids.defined()) batch.token_ids = batch.token_ids.to(device, /*non_blocking=*/true);
        }
        bool first = true;
        const bool autocast = state->autocast_bf16;
        engine::LossFn fn = [&module, &loss, inputs, &target, &first, check_classes, range, autocast,
                             device](const at::Tensor& input) {
          std::vector<c10::IValue> args;
          args.reserve(inputs->size());
          args.emplace_back(input);
          for (size_t k = 1; k < inputs->size(); ++k) args.emplace_back((*inputs)[k]);
          c10::IValue out;
          {
            AutocastScope scope(autocast, device.type());
            out = module.forward(args);
          }
          at::Tensor output;
          if (out.isTensor()) {
            output = out.toTensor();
          } else if (out.isTuple() && !out.toTupleRef().elements().empty() && out.toTupleRef().elements()[0].isTensor()) {
            output = out.toTupleRef().elements()[0].toTensor();
          } else {
            TORCH_CHECK(false, "Trainer.step: the model must return a Tensor (or a tuple whose first item is one)");
          }
          // The loss in float32 from a reduced-precision (autocast) output.
          if (output.scalar_type() == at::kBFloat16 || output.scalar_type() == at::kHalf) output = output.to(at::kFloat);
          if (first) {
            first = false;
            if (check_classes && output.dim() >= 2) engine::CheckTargetRange(range.first, range.second, output.size(1));
          }
          return engine::ComputeLoss(loss, output, target, /*check_targets=*/false);
        };
        *result = state->trainer->step(batch, fn, options);
      },
      [result, options](Napi::Env env) -> Napi::Value { return ResultToJs(env, *result, options.time_phases); },
      [state] { state->module->busy = false; });
}

// trainerInfo(trainer) -> {method, globalStep, targets}
Napi::Value InfoOf(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgTrainer(info, 0, "Trainer.info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("method", engine::MethodName(state->trainer->attack().method));
  o.Set("globalStep", static_cast<double>(state->trainer->global_step()));
  const auto& groups = state->trainer->resolved_targets();
  Napi::Array ga = Napi::Array::New(env, groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    Napi::Array ta = Napi::Array::New(env, groups[g].size());
    for (size_t t = 0; t < groups[g].size(); ++t) ta.Set(static_cast<uint32_t>(t), groups[g][t]);
    ga.Set(static_cast<uint32_t>(g), ta);
  }
  o.Set("targets", ga);
  return o;
}

Napi::Value SetGlobalStep(Info info) {
  auto state = ArgTrainer(info, 0, "Trainer.setGlobalStep");
  const int64_t s = ArgInt(info, 1, "Trainer.setGlobalStep", "step");
  if (s < 0 || s >= (int64_t(1) << 47)) ThrowRange(info.Env(), "Trainer.setGlobalStep: step must be in [0, 2^47)");
  if (state->module->busy) throw TorchError(info.Env(), "Trainer.setGlobalStep: a step is running");
  state->trainer->set_global_step(s);
  return info.Env().Undefined();
}
// trainerSaveState(trainer, path) -> Promise<void>: the optimizer's state (moments,
// momentum buffers, step counts) and the global step, for checkpoints.
Napi::Value SaveState(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgTrainer(info, 0, "Trainer.saveState");
  const std::string path = ArgString(info, 1, "Trainer.saveState", "path");
  if (state->module->busy) throw TorchError(env, "Trainer.saveState: a step is running; await it first");
  state->module->busy = true;
  state->module->busy_with = "saving the optimizer state";
  return PromiseWorker::Start(
      env, "dropattack.trainerSaveState",
      [state, path] {
        torch::serialize::OutputArchive archive;
        state->trainer->optimizer().save(archive);
        archive.write("dropattack_global_step", at::tensor({state->trainer->global_step()}, at::kLong));
        engine::SaveArchive(archive, path, "Trainer.saveState");
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, [state] { state->module->busy = false; });
}

// trainerLoadState(trainer, path) -> Promise<void>
Napi::Value LoadState(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgTrainer(info, 0, "Trainer.loadState");
  const std::string path = ArgString(info, 1, "Trainer.loadState", "path");
  if (state->module->busy) throw TorchError(env, "Trainer.loadState: a step is running; await it first");
  state->module->busy = true;
  state->module->busy_with = "loading the optimizer state";
  return PromiseWorker::Start(
      env, "dropattack.trainerLoadState",
      [state, path] {
        torch::serialize::InputArchive archive;
        try {
          // The optimizer state goes where the parameters are now, whichever device
          // it was saved from.
          archive.load_from(path, state->module->device());
        } catch (const c10::Error& e) {
          throw std::runtime_error("Trainer.loadState: cannot read '" + path + "': " + e.what_without_backtrace());
        }
        state->trainer->optimizer().load(archive);
        at::Tensor step;
        if (archive.try_read("dropattack_global_step", step)) state->trainer->set_global_step(step.item<int64_t>());
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, [state] { state->module->busy = false; });
}

// attackMethods() -> [{name, fields, groupFields, groups, needsGroups, maxK, needsAlpha,
// needsEpsilon, sparse, oneGroupPerTensor, fullP}]: the engine's methods and their rules.
Napi::Value AttackMethods(Info info) {
  Napi::Env env = info.Env();
  const auto& all = engine::methods::All();
  Napi::Array out = Napi::Array::New(env, all.size());
  auto strings = [&env](const std::vector<std::string>& v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t k = 0; k < v.size(); ++k) a.Set(static_cast<uint32_t>(k), v[k]);
    return a;
  };
  for (size_t m = 0; m < all.size(); ++m) {
    const engine::methods::Strategy& s = all[m];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", s.name);
    o.Set("fields", strings(s.fields));
    o.Set("groupFields", strings(s.group_fields));
    const char* groups = s.groups == engine::methods::Groups::kForbidden  ? "forbidden"
                         : s.groups == engine::methods::Groups::kRequired ? "required"
                                                                          : "optional";
    o.Set("groups", groups);
    o.Set("needsGroups", s.groups == engine::methods::Groups::kRequired);
    o.Set("maxK", s.max_k);
    o.Set("needsAlpha", s.needs_alpha);
    o.Set("needsEpsilon", s.needs_epsilon);
    o.Set("sparse", s.sparse);
    o.Set("oneGroupPerTensor", s.one_group_per_tensor);
    o.Set("fullP", s.full_p);
    out.Set(static_cast<uint32_t>(m), o);
  }
  return out;
}
}  // namespace

void Trainer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeTrainer", {});
  Data(env).trainer_class = Napi::Persistent(cls);
  exports.Set("trainerNew", Napi::Function::New(env, &Guard<CreateTrainer>, "trainerNew"));
  exports.Set("trainerStep", Napi::Function::New(env, &Guard<Step>, "trainerStep"));
  exports.Set("trainerInfo", Napi::Function::New(env, &Guard<InfoOf>, "trainerInfo"));
  exports.Set("trainerSaveState", Napi::Function::New(env, &Guard<SaveState>, "trainerSaveState"));
  exports.Set("trainerLoadState", Napi::Function::New(env, &Guard<LoadState>, "trainerLoadState"));
  exports.Set("attackMethods", Napi::Function::New(env, &Guard<AttackMethods>, "attackMethods"));
  exports.Set("trainerSetGlobalStep", Napi::Function::New(env, &Guard<SetGlobalStep>, "trainerSetGlobalStep"));
}

Trainer::Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeTrainer cannot be constructed from JavaScript; use new Trainer()");
  }
  state = *info[0].As<Napi::External<std::shared_ptr<TrainerState>>>().Data();
}

}  // namespace binding
}  // namespace dropattack
