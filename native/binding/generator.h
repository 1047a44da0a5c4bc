// Generator: a seeded CPU random generator for rand/randn/randint, with its state
// readable and restorable (checkpoints resume the same random stream).
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

namespace dropattack {
namespace binding {

class Generator : public Napi::ObjectWrap<Generator> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Generator(const Napi::CallbackInfo& info);
  at::Generator& value() { return value_; }
  bool disposed() const { return !value_.defined(); }
  void Dispose() { value_ = at::Generator(); }

 private:
  at::Generator value_;
};

/// A Generator argument; null/undefined means LibTorch's default generator.
c10::optional<at::Generator> ArgGenerator(const Napi::CallbackInfo& info, size_t i, const char* fn);

}  // namespace binding
}  // namespace dropattack
