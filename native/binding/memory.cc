#include "memory.h"

#include "common.h"
#include "module.h"
#include "ops/perturb.h"
#include "perturbation.h"
#include "tensor.h"
#include "trainer.h"

namespace dropattack {
namespace binding {

int64_t StorageTally::Add(const at::Tensor& t, const std::string& kind) {
  if (!t.defined() || !t.has_storage()) return 0;
  const c10::StorageImpl* storage = t.storage().unsafeGetStorageImpl();
  if (storage == nullptr || !seen_.insert(storage).second) return 0;
  const int64_t bytes = static_cast<int64_t>(storage->nbytes());
  AddBytes(t.device(), kind, bytes);
  return bytes;
}

void StorageTally::AddBytes(const at::Device& device, const std::string& kind, int64_t bytes) {
  by_device_[DeviceName(device)][kind] += bytes;
}

int64_t StorageTally::Total() const {
  int64_t total = 0;
  for (const auto& d : by_device_) {
    for (const auto& k : d.second) total += k.second;
  }
  return total;
}

Napi::Object StorageTally::ToJs(Napi::Env env) const {
  Napi::Object out = Napi::Object::New(env);
  Napi::Object devices = Napi::Object::New(env);
  std::map<std::string, int64_t> sums;
  for (const auto& d : by_device_) {
    Napi::Object o = Napi::Object::New(env);
    int64_t total = 0;
    for (const auto& kind : kinds_) {
      auto it = d.second.find(kind);
      const int64_t bytes = it == d.second.end() ? 0 : it->second;
      o.Set(kind, Napi::Number::New(env, static_cast<double>(bytes)));
      sums[kind] += bytes;
      total += bytes;
    }
    o.Set("total", Napi::Number::New(env, static_cast<double>(total)));
    devices.Set(d.first, o);
  }
  for (const auto& kind : kinds_) out.Set(kind, Napi::Number::New(env, static_cast<double>(sums[kind])));
  out.Set("total", Napi::Number::New(env, static_cast<double>(Total())));
  out.Set("devices", devices);
  return out;
}

int64_t DistinctBytes(const std::vector<at::Tensor>& tensors) {
  StorageTally tally({"bytes"});
  int64_t total = 0;
  for (const auto& t : tensors) total += tally.Add(t, "bytes");
  return total;
}

namespace {

// memory() -> {modules, optimizerState, backups, cachedBackups, tensors, total, devices,
// counts}: the native bytes held by this thread's live handles, per device. A storage
// counts once, under the first of these that holds it: modules (parameters, buffers,
// gradients), trainers (optimizer state, class weights), perturbations not yet restored
// (their backups), the pool of reusable backups, then tensor handles. A step running on
// the thread pool assigns gradients and creates optimizer state meanwhile, so a busy
// module counts without its gradients and its trainers by their last report (from the
// end of their last step) instead of being read.
Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StorageTally tally({"modules", "optimizerState", "backups", "cachedBackups", "tensors"});
  double modules = 0, trainers = 0, perturbations = 0, tensors = 0;
  Tracked<Module>::ForEach([&](Module& m) {
    if (!m.state || m.state->disposed) return;
    ++modules;
    std::vector<at::Tensor> all;
    m.state->Tensors(&all, &all, m.state->busy ? nullptr : &all);
    for (const auto& t : all) tally.Add(t, "modules");
  });
  Tracked<Trainer>::ForEach([&](Trainer& t) {
    if (!t.state || t.state->disposed) return;
    ++trainers;
    if (t.state->module->busy) {
      tally.AddBytes(t.state->module->device(), "optimizerState", t.state->reported_bytes);
      return;
    }
    std::vector<at::Tensor> all;
    t.state->Tensors(&all, &all);
    for (const auto& x : all) tally.Add(x, "optimizerState");
  });
  Tracked<Perturbation>::ForEach([&](Perturbation& p) {
    if (!p.made_by_perturb || p.disposed || p.restored) return;
    ++perturbations;
    tally.Add(p.state.backup_buffer.defined() ? p.state.backup_buffer : p.state.backup, "backups");
    tally.Add(p.state.rows, "backups");
  });
  for (const auto& b : ops::cached_backups()) tally.Add(b, "cachedBackups");
  Tracked<Tensor>::ForEach([&](Tensor& t) {
    if (t.disposed()) return;
    ++tensors;
    tally.Add(t.value(), "tensors");
  });
  Napi::Object out = tally.ToJs(env);
  Napi::Object counts = Napi::Object::New(env);
  counts.Set("tensors", tensors);
  counts.Set("modules", modules);
  counts.Set("trainers", trainers);
  counts.Set("perturbations", perturbations);
  out.Set("counts", counts);
  return out;
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("memory", Napi::Function::New(env, &Guard<Memory>, "memory"));
}

}  // namespace binding
}  // namespace dropattack
