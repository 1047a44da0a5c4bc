// Native memory accounting for the memory() reports: the live handles of each class on
// this JS thread, and a tally of the bytes of distinct storages per device.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

namespace dropattack {
namespace binding {

/// Every live object of class T on this thread, in an intrusive list: adding and removing
/// cost a few pointer writes (a Tensor handle is made for every operation). Handles are
/// made and finalized on their environment's JS thread only (a worker has its own
/// thread and its own list), hence thread_local and no lock.
template <typename T>
class Tracked {
 public:
  template <typename F>
  static void ForEach(F f) {
    for (Tracked* x = List().head; x != nullptr; x = x->next_) f(static_cast<T&>(*x));
  }

 protected:
  Tracked() {
    Head& l = List();
    next_ = l.head;
    if (l.head != nullptr) l.head->prev_ = this;
    l.head = this;
  }
  ~Tracked() {
    Head& l = List();
    if (prev_ != nullptr) prev_->next_ = next_;
    else l.head = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;

 private:
  struct Head {
    Tracked* head = nullptr;
  };
  static Head& List() {
    thread_local Head head;
    return head;
  }
  Tracked* prev_ = nullptr;
  Tracked* next_ = nullptr;
};

/// Bytes of distinct storages by device and kind. A storage seen before (a view, a
/// second handle, a parameter also held by a tensor handle) counts once, under the kind
/// that claimed it first.
class StorageTally {
 public:
  explicit StorageTally(std::vector<std::string> kinds) : kinds_(std::move(kinds)) {}
  /// Counts `t`'s storage under `kind` unless it was counted already; returns the bytes added.
  int64_t Add(const at::Tensor& t, const std::string& kind);
  /// Counts `bytes` under `kind` on `device` without a storage to deduplicate.
  void AddBytes(const at::Device& device, const std::string& kind, int64_t bytes);
  int64_t Total() const;
  /// {<kind>: bytes, ..., total, devices: {<device>: {<kind>: bytes, ..., total}}}
  Napi::Object ToJs(Napi::Env env) const;

 private:
  std::vector<std::string> kinds_;
  std::unordered_set<const void*> seen_;
  std::map<std::string, std::map<std::string, int64_t>> by_device_;
};

/// Bytes of the distinct storages of `tensors` (the V8 report of modules and trainers).
int64_t DistinctBytes(const std::vector<at::Tensor>& tensors);

void InitMemory(Napi::Env env, Napi::Object exports);

}  // namespace binding
}  // namespace dropattack
