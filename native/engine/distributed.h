// Data-parallel training across processes on LibTorch's c10d: a process group made by a
// TCPStore rendezvous (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE) over Gloo (CPU) or,
// in a build whose LibTorch has CUDA and NCCL, over NCCL. The Trainer uses it to average
// the gradients across ranks before each optimizer step (docs/methods.md, "Distributed
// training"). Built only when the LibTorch found ships c10d with Gloo and the Gloo headers
// are installed (DROPATTACK_WITH_DISTRIBUTED); otherwise Create() says so.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dropattack {
namespace engine {

struct DistributedOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  // Rendezvous and every collective: a rank that does not answer within this time makes
  // the others fail instead of waiting for ever.
  std::chrono::milliseconds timeout{300000};
  std::string backend = "gloo";  // gloo | nccl
  // Rank 0 serves the TCPStore unless a launcher serves one already (torchrun's agent:
  // TORCHELASTIC_USE_AGENT_STORE=True), when every rank is a client.
  bool agent_store = false;
};

/// Whether this build can make a process group, and which backends it has.
bool DistributedAvailable();
std::vector<std::string> DistributedBackends();

class Communicator {
 public:
  /// Joins the group: rank 0 serves the TCPStore at master_addr:master_port, every rank
  /// connects to it, then the backend's rendezvous runs. Fails with the address tried
  /// when the store cannot be reached within the timeout.
  static std::shared_ptr<Communicator> Create(const DistributedOptions& options);
  ~Communicator();

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  const DistributedOptions& options() const { return options_; }

  /// Averages the tensors across ranks in place. They are flattened into buckets of at most
  /// `bucket_bytes` (one per dtype and device run), every bucket's all-reduce is started
  /// before the first is waited on, so the backend overlaps them. Adds the seconds spent
  /// to *seconds when given.
  void AllReduceMean(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes, double* seconds = nullptr);

  /// A collective started and not yet waited on.
  class Pending {
   public:
    virtual ~Pending() = default;
    /// Blocks until it is done; fails naming `what` when another rank has exited, failed
    /// or not answered within the timeout.
    virtual void Wait(const char* what) = 0;
  };
  /// Starts summing one contiguous tensor across ranks, in place, and returns at once: the
  /// backend's threads do the work. Every rank must start the same collectives in the same
  /// order.
  std::unique_ptr<Pending> StartSum(const at::Tensor& flat);
  /// Sum, max or min in place ("sum" | "max" | "min").
  void AllReduce(at::Tensor& tensor, const std::string& op);
  /// Rank `root`'s values into every rank's tensors, in place.
  void Broadcast(const std::vector<at::Tensor>& tensors, int root);
  void Barrier();
  /// Leaves the group; later calls fail. Idempotent.
  void Close();

 private:
  struct Impl;
  explicit Communicator(const DistributedOptions& options);
  DistributedOptions options_;
  std::unique_ptr<Impl> impl_;
};

/// Groups `tensors` (by index, in the given order) into buckets of consecutive entries of
/// one dtype and device and at most `bucket_bytes` each (a larger tensor gets a bucket of
/// its own). Undefined and empty entries are left out. The first bucket holds at most
/// `first_bucket_bytes` when that is given (> 0).
std::vector<std::vector<size_t>> PlanBuckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes,
                                             int64_t first_bucket_bytes = 0);

/// A bucket's members as one flat, contiguous tensor for a collective: a lone contiguous
/// member is used in place (a view, no copy); otherwise the members are copied into
/// `buffer` (reused when it fits, else made) and Unpack() copies the result back.
class FlatBucket {
 public:
  void Pack(std::vector<at::Tensor> members, at::Tensor* buffer);
  /// The collective needs another device (NCCL: CUDA): `flat` becomes a copy there.
  void MoveTo(at::Device device);
  /// Writes `flat` back into the members when it is not their own memory; drops both.
  void Unpack();
  at::Tensor flat;

 private:
  std::vector<at::Tensor> members_;
  bool copied_ = false;
};

/// One bucket's averaging: its members packed (FlatBucket), summed across ranks, then
/// divided by the world size and unpacked.
class BucketAllReduce {
 public:
  /// Starts the sum. `buffer` is reused from one step to the next when it fits.
  void Start(Communicator& comm, std::vector<at::Tensor> members, at::Tensor* buffer);
  /// Waits, then writes the mean into the members.
  void FinishMean(const char* what, double world_size);

 private:
  FlatBucket bucket_;
  std::unique_ptr<Communicator::Pending> work_;
};

/// How a Trainer uses its Communicator.
struct DistributedConfig {
  std::shared_ptr<Communicator> comm;
  // The gradient each rank attacks with: "local" (its own batch's; no communication
  // beyond the update's all-reduce) or "allreduced" (averaged across ranks first, as a
  // DDP model would see it: one all-reduce of the attacked tensors' directions per attack
  // pass).
  std::string direction = "local";
  int64_t bucket_bytes = 25 << 20;
  // Start each bucket's all-reduce during the step's last backward pass, as soon as all of
  // its gradients are there (GradientReducer), rather than after it.
  bool overlap = true;
};

}  // namespace engine
}  // namespace dropattack
