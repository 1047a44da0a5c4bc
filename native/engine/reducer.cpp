// The overlapped gradient averaging of distributed training (reducer.h).
#include "reducer.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace dropattack {
namespace engine {

// Runs after a parameter's AccumulateGrad node has written its .grad.
struct GradientReducer::Hook : torch::autograd::FunctionPostHook {
  Hook(GradientReducer* r, size_t i) : reducer(r), index(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    reducer->Ready(index);
    return outputs;
  }
  GradientReducer* reducer;
  size_t index;
};

GradientReducer::GradientReducer(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params,
                                 int64_t bucket_bytes)
    : comm_(std::move(comm)), params_(std::move(params)) {
  TORCH_CHECK(comm_ != nullptr, "GradientReducer: no process group");
  // Reverse model order: the last layers' gradients come first in a backward pass. The
  // first bucket is small (1 MiB, as DDP's), so that communication starts early.
  std::vector<at::Tensor> reversed(params_.rbegin(), params_.rend());
  plan_ = PlanBuckets(reversed, bucket_bytes, std::min<int64_t>(bucket_bytes, kFirstBucketBytes));
  const size_t n = params_.size();
  bucket_of_.assign(n, plan_.size());  // an empty parameter belongs to no bucket
  for (auto& bucket : plan_) {
    for (size_t& i : bucket) i = n - 1 - i;  // back to indices into params_
  }
  for (size_t b = 0; b < plan_.size(); ++b) {
    for (size_t i : plan_[b]) bucket_of_[i] = b;
  }
  buffers_.resize(plan_.size());
  seen_.assign(n, 0);
  missing_.resize(plan_.size());
  for (size_t b = 0; b < plan_.size(); ++b) missing_[b] = plan_[b].size();
  running_.resize(plan_.size());
  for (size_t i = 0; i < n; ++i) {
    TORCH_CHECK(params_[i].requires_grad() && params_[i].is_leaf(),
                "GradientReducer: every parameter must be a leaf that requires grad");
    // Kept alive here, so that every graph built from now on uses this accumulator (and its hook).
    std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(params_[i]);
    TORCH_CHECK(acc != nullptr, "GradientReducer: a parameter has no gradient accumulator");
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<Hook>(this, i)));
    accumulators_.push_back(std::move(acc));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
}

void GradientReducer::Arm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = true;
}

void GradientReducer::Disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;
}

void GradientReducer::Ready(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!armed_ || seen_[i] != 0 || bucket_of_[i] >= plan_.size()) return;
  seen_[i] = 1;
  --missing_[bucket_of_[i]];
  try {
    while (next_ < plan_.size() && missing_[next_] == 0) {
      // A sparse gradient is refused in Finish, before anything else starts.
      for (size_t p : plan_[next_]) {
        if (params_[p].grad().is_sparse()) {
          armed_ = false;
          return;
        }
      }
      StartBucket(next_, nullptr);
      ++next_;
      ++started_in_backward_;
    }
  } catch (...) {
    // Reported by Finish on the step's thread, not thrown into the autograd engine.
    error_ = std::current_exception();
    armed_ = false;
  }
}

void GradientReducer::StartBucket(size_t b, std::vector<at::Tensor>* stand_ins) {
  std::vector<at::Tensor> members;
  members.reserve(plan_[b].size());
  for (size_t i : plan_[b]) {
    at::Tensor g = params_[i].grad();
    if (!g.defined()) {
      TORCH_CHECK(stand_ins != nullptr, "GradientReducer: a bucket started without a gradient");
      g = at::zeros_like(params_[i], at::MemoryFormat::Contiguous);
      (*stand_ins)[i] = g;
    }
    members.push_back(g);
  }
  at::NoGradGuard no_grad;
  running_[b].Start(*comm_, std::move(members), &buffers_[b]);
}

double GradientReducer::Finish(double flag, double* seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;
  last_started_in_backward_ = started_in_backward_;
  struct Clear {
    GradientReducer* r;
    ~Clear() {
      r->next_ = 0;
      r->started_in_backward_ = 0;
      std::fill(r->seen_.begin(), r->seen_.end(), 0);
      for (size_t b = 0; b < r->plan_.size(); ++b) r->missing_[b] = r->plan_[b].size();
    }
  } clear{this};
  if (error_ != nullptr) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> stand_ins(params_.size());
  for (; next_ < plan_.size(); ++next_) StartBucket(next_, &stand_ins);
  const at::Tensor& first = params_.front();
  at::Tensor f = at::full({1}, flag, first.options().dtype(at::kFloat));
  auto flag_work = comm_->StartSum(f);
  const double world = static_cast<double>(comm_->world_size());
  for (auto& r : running_) r.FinishMean("the gradients' all-reduce", world);
  flag_work->Wait("the gradients' all-reduce");
  for (size_t i = 0; i < params_.size(); ++i) {
    // A gradient on another rank only (a branch this rank's batch did not take).
    if (stand_ins[i].defined() && stand_ins[i].abs().max().item<double>() > 0) params_[i].mutable_grad() = stand_ins[i];
  }
  if (seconds != nullptr) *seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return f.item<double>();
}

void GradientReducer::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;
  error_ = nullptr;
  next_ = 0;
  started_in_backward_ = 0;
  std::fill(seen_.begin(), seen_.end(), 0);
  for (size_t b = 0; b < plan_.size(); ++b) missing_[b] = plan_[b].size();
  for (auto& r : running_) r = BucketAllReduce();
}

}  // namespace engine
}  // namespace dropattack
