#include "trainer.h"

#include <torch/serialize.h>

#include <algorithm>

#include <chrono>

#include "common.h"
#include "engine/module_loss.h"
#include "distributed.h"
#include "engine/io.h"
#include "engine/methods/registry.h"
#include "tensor.h"

namespace dropattack {
namespace binding {

engine::LossSpec ReadLoss(Napi::Env env, Napi::Object o) {
  engine::LossSpec l;
  l.type = StringField(env, o, "loss", "type");
  if (l.type != "cross_entropy" && l.type != "bce_with_logits" && l.type != "mse" && l.type != "model") {
    throw Napi::TypeError::New(env, "loss.type must be cross_entropy, bce_with_logits, mse or model, got '" + l.type + "'");
  }
  l.label_smoothing = NumberField(env, o, "loss", "labelSmoothing");
  if (l.label_smoothing < 0 || l.label_smoothing > 1) throw Napi::RangeError::New(env, "loss.labelSmoothing must be in [0, 1]");
  l.ignore_index = IntField(env, o, "loss", "ignoreIndex");
  Napi::Value w = o.Get("classWeights");
  if (!w.IsUndefined() && !w.IsNull()) {
    Tensor* t = UnwrapAs<Tensor>(env, w, Data(env).tensor_class);
    if (t == nullptr || t->disposed()) throw Napi::TypeError::New(env, "loss.classWeights must be a live Tensor, got " + Describe(w));
    l.class_weights = t->value().detach().clone();
  }
  return l;
}

namespace {
using Info = const Napi::CallbackInfo&;

Napi::Object ObjectArg(Info info, size_t i, const char* fn, const char* name) {
  Napi::Value v = Arg(info, i);
  if (!v.IsObject() || v.IsArray()) ThrowType(info.Env(), fn, name, "an object", v);
  return v.As<Napi::Object>();
}

// The options below come validated and complete from the TypeScript layer (the schema in
// lib/core/options.ts fills every default), so these readers hold no defaults: a missing
// field is an error, and the engine checks the values as its own API's contract.
engine::OptimizerSpec ReadOptimizer(Napi::Env env, Napi::Object o) {
  engine::OptimizerSpec s;
  const std::string w = "optimizer";
  s.type = StringField(env, o, w, "type");
  s.lr = NumberField(env, o, w, "lr");
  s.momentum = NumberField(env, o, w, "momentum");
  s.nesterov = BoolField(env, o, w, "nesterov");
  s.dampening = NumberField(env, o, w, "dampening");
  s.weight_decay = NumberField(env, o, w, "weightDecay");
  Napi::Value betas = o.Get("betas");
  if (!betas.IsArray() || betas.As<Napi::Array>().Length() != 2) {
    throw Napi::TypeError::New(env, "optimizer.betas must be an array of two numbers, got " + Describe(betas));
  }
  Napi::Array b = betas.As<Napi::Array>();
  if (!b.Get(0u).IsNumber() || !b.Get(1u).IsNumber()) {
    throw Napi::TypeError::New(env, "optimizer.betas must be an array of two numbers");
  }
  s.beta1 = b.Get(0u).As<Napi::Number>().DoubleValue();
  s.beta2 = b.Get(1u).As<Napi::Number>().DoubleValue();
  s.eps = NumberField(env, o, w, "eps");
  s.amsgrad = BoolField(env, o, w, "amsgrad");
  Napi::Value groups = o.Get("groups");
  if (!groups.IsUndefined() && !groups.IsNull()) {
    if (!groups.IsArray()) throw Napi::TypeError::New(env, "optimizer.groups must be an array, got " + Describe(groups));
    Napi::Array ga = groups.As<Napi::Array>();
    for (uint32_t g = 0; g < ga.Length(); ++g) {
      const std::string gw = "optimizer.groups[" + std::to_string(g) + "]";
      Napi::Value gv = ga.Get(g);
      if (!gv.IsObject() || gv.IsArray()) throw Napi::TypeError::New(env, gw + " must be an object, got " + Describe(gv));
      Napi::Object go = gv.As<Napi::Object>();
      engine::OptimizerGroupSpec group;
      Napi::Value params = go.Get("params");
      if (!params.IsArray()) throw Napi::TypeError::New(env, gw + ".params must be an array of strings, got " + Describe(params));
      Napi::Array pa = params.As<Napi::Array>();
      for (uint32_t k = 0; k < pa.Length(); ++k) {
        if (!pa.Get(k).IsString()) throw Napi::TypeError::New(env, gw + ".params must be an array of strings");
        group.params.push_back(pa.Get(k).As<Napi::String>().Utf8Value());
      }
      group.lr = NumberField(env, go, gw, "lr", -1);
      group.weight_decay = NumberField(env, go, gw, "weightDecay", -1);
      group.momentum = NumberField(env, go, gw, "momentum", -1);
      s.groups.push_back(std::move(group));
    }
  }
  return s;
}

engine::AttackConfig ReadAttack(Napi::Env env, Napi::Object o) {
  engine::AttackConfig a;
  const std::string w = "attack";
  a.method = engine::ParseMethod(StringField(env, o, w, "method"));
  const double k = NumberField(env, o, w, "k");
  // Only what an int holds is passed on; the engine checks the range.
  if (k != std::floor(k) || std::fabs(k) > 1e9) throw Napi::RangeError::New(env, "attack.k must be an integer, got " + std::to_string(k));
  a.k = static_cast<int>(k);
  if (!o.Get("alpha").IsUndefined() && !o.Get("alpha").IsNull()) a.alpha = NumberField(env, o, w, "alpha");
  a.rho = NumberField(env, o, w, "rho");
  a.eta = NumberField(env, o, w, "eta");
  Napi::Value seed = o.Get("seed");
  if (seed.IsBigInt()) {
    bool lossless = false;
    a.seed = seed.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "attack.seed must be in [0, 2^64)");
  } else {
    const double s = NumberField(env, o, w, "seed");
    if (s < 0 || s != std::floor(s) || s > 9007199254740991.0) throw Napi::RangeError::New(env, "attack.seed must be a non-negative integer");
    a.seed = static_cast<uint64_t>(s);
  }
  Napi::Value groups = o.Get("groups");
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
    if (!go.Get("epsilon").IsUndefined() && !go.Get("epsilon").IsNull()) group.epsilon = NumberField(env, go, gw, "epsilon");
    group.p = NumberField(env, go, gw, "p");
    group.relative = BoolField(env, go, gw, "relative");
    group.sparse = StringField(env, go, gw, "sparse");
    a.groups.push_back(std::move(group));
  }
  return a;
}

// trainerNew(module, optimizer, attack, loss, settings) -> NativeTrainer
Napi::Value CreateTrainer(Info info) {
  Napi::Env env = info.Env();
  auto module = ArgModule(info, 0, "Trainer");
  const engine::OptimizerSpec optimizer = ReadOptimizer(env, ObjectArg(info, 1, "Trainer", "optimizer"));
  engine::AttackConfig attack = ReadAttack(env, ObjectArg(info, 2, "Trainer", "attack"));
  const engine::LossSpec loss = ReadLoss(env, ObjectArg(info, 3, "Trainer", "loss"));
  // Every parameter, frozen ones included: the engine trains those that require grad and
  // names the others when a target or an optimizer group asks for them.
  std::vector<engine::NamedParameter> params;
  for (const auto& p : module->module.named_parameters(true)) params.emplace_back(p.name, p.value);
  auto state = std::make_shared<TrainerState>();
  state->module = module;
  engine::LossFromModuleOptions loss_options;
  loss_options.loss = loss;
  Napi::Object settings = ObjectArg(info, 4, "Trainer", "settings");
  const std::string autocast = StringField(env, settings, "Trainer", "autocast");
  if (autocast != "off" && autocast != "bf16") {
    throw Napi::RangeError::New(env, "Trainer: autocast must be 'off' or 'bf16', got '" + autocast + "'");
  }
  loss_options.autocast_bf16 = autocast == "bf16";
  loss_options.freeze_buffers_in_attack = BoolField(env, settings, "Trainer", "freezeBuffersInAttack");
  state->loss = std::make_unique<engine::LossFromModule>(module->module, loss_options);
  auto optimizer_ = engine::MakeOptimizer(params, optimizer);
  state->trainer = std::make_unique<engine::Trainer>(std::move(params), std::move(attack), std::move(optimizer_));
  Napi::Object handle = Data(env).trainer_class.New({Napi::External<std::shared_ptr<TrainerState>>::New(env, &state)});
  auto& trainers = module->trainers;
  trainers.erase(std::remove_if(trainers.begin(), trainers.end(), [](const auto& w) { return w.expired(); }), trainers.end());
  trainers.push_back(state);
  SyncTrainerReport(env, *state);
  return handle;
}

Trainer* ArgTrainerObject(Info info, size_t i, const char* fn) {
  Napi::Value v = Arg(info, i);
  Trainer* t = UnwrapAs<Trainer>(info.Env(), v, Data(info.Env()).trainer_class);
  if (t == nullptr || !t->state) ThrowType(info.Env(), fn, "trainer", "a Trainer", v);
  return t;
}

std::shared_ptr<TrainerState> ArgTrainer(Info info, size_t i, const char* fn) {
  const std::shared_ptr<TrainerState>& state = ArgTrainerObject(info, i, fn)->state;
  if (state->module->disposed) throw TorchError(info.Env(), std::string(fn) + ": the Trainer's Module has been disposed");
  if (state->disposed) throw TorchError(info.Env(), std::string(fn) + ": the Trainer has been disposed");
  return state;
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
  if (r.buckets > 0) {
    Napi::Object a = Napi::Object::New(env);
    a.Set("buckets", static_cast<double>(r.buckets));
    a.Set("startedInBackward", static_cast<double>(r.buckets_in_backward));
    o.Set("allReduce", a);
  }
  if (times) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("forward", r.times.forward);
    t.Set("backward", r.times.backward);
    t.Set("perturb", r.times.perturb);
    t.Set("optimizer", r.times.optimizer);
    t.Set("communication", r.times.communication);
    o.Set("times", t);
  }
  return o;
}

// The module's floating-point buffers, from rank 0 to every rank.
void BroadcastBuffers(const TrainerState& state) {
  std::vector<at::Tensor> buffers;
  for (const auto& b : state.module->module.named_buffers(/*recurse=*/true)) {
    if (b.value.defined() && at::isFloatingType(b.value.scalar_type())) buffers.push_back(b.value);
  }
  if (!buffers.empty()) state.group->comm->Broadcast(buffers, 0);
}

// trainerSetDistributed(trainer, group, {direction, bucketBytes, overlap}) -> Promise<void>: a
// collective (rank 0's parameters and buffers are copied to every rank).
Napi::Value SetDistributed(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgTrainer(info, 0, "Trainer");
  auto group = ArgProcessGroup(info, 1, "Trainer", false);
  Napi::Object o = ObjectArg(info, 2, "Trainer", "distributed");
  engine::DistributedConfig config;
  config.comm = group->comm;
  config.direction = StringField(env, o, "distributed", "direction");
  if (config.direction != "local" && config.direction != "allreduced") {
    throw Napi::RangeError::New(env, "Trainer: distributed.direction must be 'local' or 'allreduced', got '" + config.direction + "'");
  }
  config.bucket_bytes = IntField(env, o, "distributed", "bucketBytes");
  if (config.bucket_bytes < 1) throw Napi::RangeError::New(env, "Trainer: distributed.bucketBytes must be >= 1");
  config.overlap = BoolField(env, o, "distributed", "overlap");
  if (state->module->busy) throw TorchError(env, "Trainer: the module is busy (" + state->module->busy_with + " is running)");
  if (state->group) throw TorchError(env, "Trainer: distributed training is already set up");
  state->module->busy = true;
  state->module->busy_with = "the distributed set-up";
  group->busy = true;
  group->busy_with = "the Trainer's set-up";
  return PromiseWorker::Start(
      env, "dropattack.trainerSetDistributed",
      [state, group, config] {
        state->trainer->set_distributed(config);
        state->group = group;
        BroadcastBuffers(*state);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); },
      [state, group] {
        state->module->busy = false;
        group->busy = false;
      });
}

// trainerStep(trainer, {args, kwargs}, target|null, options) -> Promise<result>
Napi::Value Step(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgTrainer(info, 0, "Trainer.step");
  if (state->module->busy) {
    throw TorchError(env, "Trainer.step: the module is busy (" + state->module->busy_with +
                              " is running); await the previous step before starting another");
  }
  auto inputs = std::make_shared<engine::ModelInputs>(ReadModelInputs(env, Arg(info, 1), state->module->module, "Trainer.step"));
  at::Tensor target;
  if (!Arg(info, 2).IsNull() && !Arg(info, 2).IsUndefined()) target = ArgTensor(info, 2, "Trainer.step", "target");
  Napi::Object o = ObjectArg(info, 3, "Trainer.step", "options");
  engine::StepOptions options;
  options.lr = NumberField(env, o, "step options", "lr", -1);
  options.clip_grad_norm = NumberField(env, o, "step options", "clipGradNorm", 0);
  options.accumulate = BoolField(env, o, "step options", "accumulate", false);
  options.loss_scale = NumberField(env, o, "step options", "lossScale", 1.0);
  options.time_phases = BoolField(env, o, "step options", "timePhases", false);
  options.grad_norm = BoolField(env, o, "step options", "gradNorm", true);
  at::Tensor token_ids;
  Napi::Value ids = o.Get("tokenIds");
  if (!ids.IsUndefined() && !ids.IsNull()) {
    Tensor* t = UnwrapAs<Tensor>(env, ids, Data(env).tensor_class);
    if (t == nullptr || t->disposed()) throw Napi::TypeError::New(env, "step options.tokenIds must be a live Tensor, got " + Describe(ids));
    token_ids = t->value();
  }
  if (state->group) {
    if (!state->group->comm) throw TorchError(env, "Trainer.step: the trainer's process group is closed");
    if (state->group->busy) {
      throw TorchError(env, "Trainer.step: the process group is busy (" + state->group->busy_with +
                                " is running); await it before the step");
    }
    state->group->busy = true;
    state->group->busy_with = "a training step";
  }
  auto result = std::make_shared<engine::StepResult>();
  state->module->busy = true;
  state->module->busy_with = "a training step";
  return PromiseWorker::Start(
      env, "dropattack.trainerStep",
      [state, inputs, target, token_ids, options, result] {
        *result = state->loss->Step(*state->trainer, *inputs, target, options, token_ids);
        if (state->group && result->applied) {
          // Buffers (BatchNorm statistics) follow rank 0's after each update, as a DDP
          // model's do, so that the replicas stay identical.
          const auto t0 = std::chrono::steady_clock::now();
          BroadcastBuffers(*state);
          result->times.communication += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
      },
      [state, result, options](Napi::Env env) -> Napi::Value {
        SyncTrainerReport(env, *state);
        return ResultToJs(env, *result, options.time_phases);
      },
      [state] {
        state->module->busy = false;
        if (state->group) state->group->busy = false;
      });
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
      [state](Napi::Env env) -> Napi::Value {
        SyncTrainerReport(env, *state);
        return env.Undefined();
      },
      [state] { state->module->busy = false; });
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
// engineDefaults() -> the engine's default option structs and limits, named as in the
// TypeScript schema, so that a test can check that the two agree.
Napi::Value EngineDefaults(Info info) {
  Napi::Env env = info.Env();
  const engine::OptimizerSpec opt;
  const engine::AttackConfig attack;
  const engine::AttackGroup group;
  const engine::LossSpec loss;
  Napi::Object o = Napi::Object::New(env);
  Napi::Object optimizer = Napi::Object::New(env);
  optimizer.Set("type", opt.type);
  optimizer.Set("lr", opt.lr);
  optimizer.Set("momentum", opt.momentum);
  optimizer.Set("nesterov", opt.nesterov);
  optimizer.Set("dampening", opt.dampening);
  Napi::Object decay = Napi::Object::New(env);
  for (const char* type : {"sgd", "adam", "adamw"}) decay.Set(type, engine::DefaultWeightDecay(type));
  optimizer.Set("weightDecay", opt.weight_decay ? Napi::Value(Napi::Number::New(env, *opt.weight_decay)) : Napi::Value(decay));
  Napi::Array betas = Napi::Array::New(env, 2);
  betas.Set(0u, opt.beta1);
  betas.Set(1u, opt.beta2);
  optimizer.Set("betas", betas);
  optimizer.Set("eps", opt.eps);
  optimizer.Set("amsgrad", opt.amsgrad);
  optimizer.Set("groups", Napi::Array::New(env, opt.groups.size()));
  o.Set("optimizer", optimizer);
  Napi::Object a = Napi::Object::New(env);
  a.Set("method", engine::MethodName(attack.method));
  a.Set("groups", Napi::Array::New(env, attack.groups.size()));
  a.Set("k", attack.k);
  a.Set("alpha", attack.alpha ? Napi::Value(Napi::Number::New(env, *attack.alpha)) : env.Undefined());
  a.Set("rho", attack.rho);
  a.Set("eta", attack.eta);
  a.Set("seed", static_cast<double>(attack.seed));
  o.Set("attack", a);
  Napi::Object g = Napi::Object::New(env);
  g.Set("epsilon", group.epsilon ? Napi::Value(Napi::Number::New(env, *group.epsilon)) : env.Undefined());
  g.Set("p", group.p);
  g.Set("relative", group.relative);
  g.Set("sparse", group.sparse);
  o.Set("group", g);
  Napi::Object l = Napi::Object::New(env);
  l.Set("type", loss.type);
  l.Set("labelSmoothing", loss.label_smoothing);
  l.Set("ignoreIndex", static_cast<double>(loss.ignore_index));
  o.Set("loss", l);
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxK", engine::kMaxAttackSteps);
  limits.Set("maxGroups", static_cast<double>(engine::kMaxGroups));
  limits.Set("maxTargetsPerGroup", static_cast<double>(engine::kMaxTargetsPerGroup));
  o.Set("limits", limits);
  return o;
}

Napi::Value IsDisposed(Info info) {
  const auto& state = ArgTrainerObject(info, 0, "Trainer.isDisposed")->state;
  return Napi::Boolean::New(info.Env(), state->disposed || state->module->disposed);
}

// trainerDispose(trainer): frees the optimizer state now; the module stays. Refused while
// a call runs on the module (a step of this trainer may be using the engine); a second
// dispose does nothing.
Napi::Value Dispose(Info info) {
  Napi::Env env = info.Env();
  TrainerState& s = *ArgTrainerObject(info, 0, "Trainer.dispose")->state;
  if (s.disposed) return env.Undefined();
  if (s.module->busy) {
    throw TorchError(env, "Trainer.dispose: the module is busy (" + s.module->busy_with +
                              " is running); await it before disposing the trainer");
  }
  ReleaseTrainer(env, s);
  return env.Undefined();
}

// trainerMemory(trainer) -> {optimizerState, lossState, total, devices}
Napi::Value Memory(Info info) {
  auto state = ArgTrainer(info, 0, "Trainer.memory");
  // A step creates the optimizer's state on the thread pool meanwhile.
  if (state->module->busy) {
    throw TorchError(info.Env(), "Trainer.memory: the module is busy (" + state->module->busy_with +
                                     " is running); await it first");
  }
  std::vector<at::Tensor> optimizer_state, loss_state;
  state->Tensors(&optimizer_state, &loss_state);
  StorageTally tally({"optimizerState", "lossState"});
  for (const auto& t : optimizer_state) tally.Add(t, "optimizerState");
  for (const auto& t : loss_state) tally.Add(t, "lossState");
  return tally.ToJs(info.Env());
}
}  // namespace

void TrainerState::Tensors(std::vector<at::Tensor>* optimizer_state, std::vector<at::Tensor>* loss_state) const {
  if (disposed) return;
  if (optimizer_state != nullptr && trainer) {
    // The optimizers MakeOptimizer makes (SGD, Adam, AdamW) and their per-parameter state.
    for (const auto& entry : trainer->optimizer().state()) {
      const torch::optim::OptimizerParamState* ps = entry.second.get();
      if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(ps)) {
        optimizer_state->push_back(sgd->momentum_buffer());
      } else if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(ps)) {
        optimizer_state->insert(optimizer_state->end(), {adam->exp_avg(), adam->exp_avg_sq(), adam->max_exp_avg_sq()});
      } else if (const auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(ps)) {
        optimizer_state->insert(optimizer_state->end(), {adamw->exp_avg(), adamw->exp_avg_sq(), adamw->max_exp_avg_sq()});
      }
    }
  }
  if (loss_state != nullptr && loss && loss->options().loss.class_weights.defined()) {
    loss_state->push_back(loss->options().loss.class_weights);
  }
}

void ReleaseTrainer(Napi::Env env, TrainerState& state) {
  if (state.disposed) return;
  state.disposed = true;
  state.trainer.reset();
  state.loss.reset();
  SyncTrainerReport(env, state);
}

void SyncTrainerReport(Napi::Env env, TrainerState& state) {
  std::vector<at::Tensor> tensors;
  state.Tensors(&tensors, &tensors);
  const int64_t bytes = DistinctBytes(tensors);
  if (bytes != state.reported_bytes) AdjustExternalMemory(env, bytes - state.reported_bytes);
  state.reported_bytes = bytes;
}

void Trainer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeTrainer", {});
  Data(env).trainer_class = Napi::Persistent(cls);
  exports.Set("trainerNew", Napi::Function::New(env, &Guard<CreateTrainer>, "trainerNew"));
  exports.Set("trainerStep", Napi::Function::New(env, &Guard<Step>, "trainerStep"));
  exports.Set("trainerInfo", Napi::Function::New(env, &Guard<InfoOf>, "trainerInfo"));
  exports.Set("trainerSaveState", Napi::Function::New(env, &Guard<SaveState>, "trainerSaveState"));
  exports.Set("trainerLoadState", Napi::Function::New(env, &Guard<LoadState>, "trainerLoadState"));
  exports.Set("attackMethods", Napi::Function::New(env, &Guard<AttackMethods>, "attackMethods"));
  exports.Set("engineDefaults", Napi::Function::New(env, &Guard<EngineDefaults>, "engineDefaults"));
  exports.Set("trainerSetDistributed", Napi::Function::New(env, &Guard<SetDistributed>, "trainerSetDistributed"));
  exports.Set("trainerSetGlobalStep", Napi::Function::New(env, &Guard<SetGlobalStep>, "trainerSetGlobalStep"));
  exports.Set("trainerIsDisposed", Napi::Function::New(env, &Guard<IsDisposed>, "trainerIsDisposed"));
  exports.Set("trainerDispose", Napi::Function::New(env, &Guard<Dispose>, "trainerDispose"));
  exports.Set("trainerMemory", Napi::Function::New(env, &Guard<Memory>, "trainerMemory"));
}

Trainer::Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeTrainer cannot be constructed from JavaScript; use new Trainer()");
  }
  state = *info[0].As<Napi::External<std::shared_ptr<TrainerState>>>().Data();
}

Trainer::~Trainer() {
  if (state && state->reported_bytes > 0) AdjustExternalMemory(Env(), -state->reported_bytes);
  if (state) state->reported_bytes = 0;
}

}  // namespace binding
}  // namespace dropattack
