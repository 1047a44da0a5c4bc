// Data-parallel gradient averaging overlapped with the backward pass, as PyTorch's
// DistributedDataParallel does it: the parameters are grouped into buckets in reverse
// order (the order in which a backward pass produces their gradients), a hook on each
// parameter's gradient accumulator marks it ready once its gradient is accumulated, and a
// bucket's all-reduce starts as soon as all of its parameters are ready, while the
// backward goes on with the layers below. Buckets start strictly in bucket order, so every
// rank issues the same collectives in the same order whatever order its gradients arrive
// in. Finish() starts whatever has not started (a parameter that got no gradient on this
// rank takes part with zeros), waits for all, and divides by the world size.
//
// The hooks only act while armed, during the step's last backward pass; every earlier
// pass of a step (the clean and the adversarial passes before the last) and every
// accumulating micro-batch leave the gradients alone.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "distributed.h"

namespace torch {
namespace autograd {
struct Node;
}  // namespace autograd
}  // namespace torch

namespace dropattack {
namespace engine {

class GradientReducer {
 public:
  static constexpr int64_t kFirstBucketBytes = 1 << 20;

  /// `params`: the trained parameters (leaves that require grad), in model order.
  GradientReducer(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params, int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// The next backward pass is the step's last: start each bucket during it.
  void Arm();
  /// The backward pass is over (or failed): later hooks do nothing.
  void Disarm();
  /// Starts every bucket not started yet, then a one-element sum of `flag` across ranks;
  /// waits for all; leaves every parameter's gradient averaged across ranks. A parameter
  /// with no gradient on this rank gets the average when another rank had one. Returns
  /// the flag's sum. Adds the seconds spent here (the communication the backward did not
  /// hide) to *seconds.
  double Finish(double flag, double* seconds);
  /// Forgets a step that ended with an exception (collectives already started run on).
  void Reset();

  size_t buckets() const { return plan_.size(); }
  /// Of the last Finish()ed step's buckets, those started during its backward pass (the
  /// rest started in Finish).
  size_t started_in_backward() const { return last_started_in_backward_; }

 private:
  struct Hook;
  void Ready(size_t param);
  void StartBucket(size_t b, std::vector<at::Tensor>* stand_ins);

  std::shared_ptr<Communicator> comm_;
  std::vector<at::Tensor> params_;
  std::vector<std::vector<size_t>> plan_;  // bucket -> parameter indices
  std::vector<size_t> bucket_of_;          // parameter -> bucket
  std::vector<at::Tensor> buffers_;        // each bucket's flat buffer, kept between steps
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;

  std::mutex mu_;
  bool armed_ = false;
  std::vector<char> seen_;      // parameter's gradient accumulated in this pass
  std::vector<size_t> missing_;  // bucket -> parameters not seen yet
  std::vector<BucketAllReduce> running_;
  size_t next_ = 0;  // the next bucket to start
  size_t started_in_backward_ = 0;
  size_t last_started_in_backward_ = 0;
  std::exception_ptr error_;
};

}  // namespace engine
}  // namespace dropattack
