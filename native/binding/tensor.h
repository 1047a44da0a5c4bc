// Tensor: the JS handle of one at::Tensor. It owns a reference to the tensor, reports
// the native memory it alone owns to V8, and releases it on dispose() or when collected.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include "memory.h"

namespace dropattack {
namespace binding {

class Tensor : public Napi::ObjectWrap<Tensor>, public Tracked<Tensor> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  /// Wraps `value`. `external` says the memory is already accounted elsewhere (a
  /// zero-copy view of a JS ArrayBuffer), so it is not reported to V8 again.
  static Napi::Object Wrap(Napi::Env env, at::Tensor value, bool external = false);
  static Tensor* Unwrap(Napi::Object obj) { return Napi::ObjectWrap<Tensor>::Unwrap(obj); }

  explicit Tensor(const Napi::CallbackInfo& info);
  ~Tensor() override;

  bool disposed() const { return !value_.defined(); }
  at::Tensor& value() { return value_; }
  void Dispose();

 private:
  at::Tensor value_;
  int64_t reported_bytes_ = 0;
};

void InitTensorFunctions(Napi::Env env, Napi::Object exports);

}  // namespace binding
}  // namespace dropattack
