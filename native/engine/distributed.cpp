// The process group (distributed.h) over c10d's TCPStore and ProcessGroupGloo, and
// ProcessGroupNCCL when the LibTorch has it.
#include "distributed.h"

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <chrono>
#include <stdexcept>
#include <utility>

#ifdef DROPATTACK_WITH_DISTRIBUTED
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef DROPATTACK_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

#include <cstdlib>

namespace dropattack {
namespace engine {

namespace {

std::string Address(const DistributedOptions& o) { return o.master_addr + ":" + std::to_string(o.master_port); }

std::string Seconds(std::chrono::milliseconds t) {
  const double s = static_cast<double>(t.count()) / 1000.0;
  std::string out = std::to_string(s);
  out.erase(out.find_last_not_of('0') + 1);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out + " s";
}

std::string What(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

#ifdef DROPATTACK_WITH_DISTRIBUTED

bool DistributedAvailable() { return true; }

std::vector<std::string> DistributedBackends() {
#ifdef DROPATTACK_WITH_NCCL
  return {"gloo", "nccl"};
#else
  return {"gloo"};
#endif
}

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef DROPATTACK_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  bool closed = false;

  // Runs f on the backend in use.
  template <typename F>
  auto With(F&& f) {
    TORCH_CHECK(!closed, "distributed: the process group is closed");
#ifdef DROPATTACK_WITH_NCCL
    if (nccl) return f(*nccl);
#endif
    return f(*gloo);
  }
};

Communicator::Communicator(const DistributedOptions& options) : options_(options), impl_(std::make_unique<Impl>()) {}

Communicator::~Communicator() = default;

std::shared_ptr<Communicator> Communicator::Create(const DistributedOptions& o) {
  TORCH_CHECK(o.world_size >= 1, "distributed: worldSize must be >= 1, got ", o.world_size);
  TORCH_CHECK(o.rank >= 0 && o.rank < o.world_size, "distributed: rank must be in [0, ", o.world_size, "), got ",
              o.rank);
  TORCH_CHECK(o.master_port >= 1 && o.master_port <= 65535, "distributed: masterPort must be in [1, 65535], got ",
              o.master_port);
  TORCH_CHECK(!o.master_addr.empty(), "distributed: masterAddr must not be empty");
  TORCH_CHECK(o.timeout.count() > 0, "distributed: the timeout must be > 0");
#ifdef DROPATTACK_WITH_NCCL
  TORCH_CHECK(o.backend == "gloo" || o.backend == "nccl", "distributed: backend must be gloo or nccl, got '", o.backend,
              "'");
#else
  TORCH_CHECK(o.backend == "gloo", "distributed: backend must be gloo",
              o.backend == "nccl" ? " (this build has no NCCL: its LibTorch has no CUDA)" : "", ", got '", o.backend,
              "'");
#endif
  std::shared_ptr<Communicator> c(new Communicator(o));
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.master_port);
  so.isServer = o.rank == 0 && !o.agent_store;
  so.numWorkers = static_cast<std::size_t>(o.world_size);
  so.waitWorkers = true;
  so.timeout = o.timeout;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  // The libuv server is optional in LibTorch builds; the classic one is always there.
  so.useLibUV = false;
#endif
  try {
    c->impl_->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    const std::string role = so.isServer ? "rank 0 could not serve the rendezvous store at "
                                         : "rank " + std::to_string(o.rank) + " could not reach the rendezvous store at ";
    throw std::runtime_error("distributed: " + role + Address(o) + " (MASTER_ADDR:MASTER_PORT) within " +
                             Seconds(o.timeout) + " with world size " + std::to_string(o.world_size) + ": " + What(e));
  }
  // Groups made one after another on the same store (a test, a second run in one
  // process) must not read each other's keys.
  auto store = c10::make_intrusive<c10d::PrefixStore>("dropattack/" + o.backend, c->impl_->store);
  try {
#ifdef DROPATTACK_WITH_NCCL
    if (o.backend == "nccl") {
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = o.timeout;
      c->impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.world_size, nopts);
      return c;
    }
#endif
    auto gopts = c10d::ProcessGroupGloo::Options::create(o.timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname != nullptr && *ifname != '\0') {
      gopts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (IsLoopback(o.master_addr)) {
      // Every rank is on this machine: loopback, whatever the host name resolves to.
      gopts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gopts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    c->impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, gopts);
  } catch (const std::exception& e) {
    throw std::runtime_error("distributed: rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) +
                             " could not connect to the other ranks (store at " + Address(o) + "): " + What(e));
  }
  return c;
}

namespace {

template <typename W>
void Wait(W& work, const DistributedOptions& o, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("distributed: ") + what + " failed on rank " + std::to_string(o.rank) + " of " +
                             std::to_string(o.world_size) + " (another rank has exited, failed or not answered within " +
                             Seconds(o.timeout) + "): " + What(e));
  }
}

}  // namespace

namespace {

template <typename W>
class GlooPending : public Communicator::Pending {
 public:
  GlooPending(W work, const DistributedOptions& o) : work_(std::move(work)), options_(o) {}
  void Wait(const char* what) override { ::dropattack::engine::Wait(work_, options_, what); }

 private:
  W work_;
  DistributedOptions options_;
};

}  // namespace

std::unique_ptr<Communicator::Pending> Communicator::StartSum(const at::Tensor& flat) {
  TORCH_CHECK(flat.is_contiguous(), "distributed: an all-reduce needs a contiguous tensor");
  std::vector<at::Tensor> one{flat};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  auto work = impl_->With([&](auto& pg) { return pg.allreduce(one, opts); });
  return std::make_unique<GlooPending<decltype(work)>>(std::move(work), options_);
}

void Communicator::AllReduceMean(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes, double* seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::vector<size_t>> plan = PlanBuckets(tensors, bucket_bytes);
  std::vector<BucketAllReduce> buckets(plan.size());
  try {
    for (size_t b = 0; b < plan.size(); ++b) {
      std::vector<at::Tensor> members;
      for (size_t i : plan[b]) members.push_back(tensors[i]);
      buckets[b].Start(*this, std::move(members), nullptr);  // every one started before any wait
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("distributed: all-reduce of the gradients failed on rank " + std::to_string(rank()) + ": " +
                             What(e));
  }
  for (auto& b : buckets) b.FinishMean("the gradients' all-reduce", world_size());
  if (seconds != nullptr) *seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Communicator::AllReduce(at::Tensor& tensor, const std::string& op) {
  c10d::AllreduceOptions opts;
  if (op == "sum") opts.reduceOp = c10d::ReduceOp::SUM;
  else if (op == "max") opts.reduceOp = c10d::ReduceOp::MAX;
  else if (op == "min") opts.reduceOp = c10d::ReduceOp::MIN;
  else TORCH_CHECK(false, "distributed: all-reduce op must be sum, max or min, got '", op, "'");
  TORCH_CHECK(tensor.is_contiguous(), "distributed: all-reduce needs a contiguous tensor");
#ifdef DROPATTACK_WITH_NCCL
  if (impl_->nccl && !tensor.is_cuda()) {
    // NCCL reduces CUDA tensors only: a host tensor goes through the current CUDA device.
    at::Tensor staged = tensor.to(at::kCUDA);
    AllReduce(staged, op);
    tensor.copy_(staged);
    return;
  }
#endif
  std::vector<at::Tensor> one{tensor};
  auto work = impl_->With([&](auto& pg) { return pg.allreduce(one, opts); });
  Wait(work, options_, "all-reduce");
}

void Communicator::Broadcast(const std::vector<at::Tensor>& tensors, int root) {
  TORCH_CHECK(root >= 0 && root < world_size(), "distributed: broadcast root must be in [0, ", world_size(), "), got ",
              root);
  // Coalesced: one broadcast per bucket of consecutive tensors of one dtype and device (a
  // ResNet's BatchNorm statistics are dozens of small tensors, each a round trip alone).
  constexpr int64_t kBucketBytes = 25 << 20;
  const std::vector<std::vector<size_t>> plan = PlanBuckets(tensors, kBucketBytes);
  using WorkPtr = decltype(impl_->gloo->barrier());
  std::vector<WorkPtr> works;
  std::vector<FlatBucket> flats(plan.size());
  for (size_t b = 0; b < plan.size(); ++b) {
    std::vector<at::Tensor> members;
    for (size_t i : plan[b]) members.push_back(tensors[i]);
    flats[b].Pack(std::move(members), nullptr);
#ifdef DROPATTACK_WITH_NCCL
    if (impl_->nccl && !flats[b].flat.is_cuda()) flats[b].MoveTo(at::kCUDA);  // NCCL: CUDA tensors only
#endif
    std::vector<at::Tensor> one{flats[b].flat};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    works.push_back(impl_->With([&](auto& pg) { return pg.broadcast(one, opts); }));
  }
  for (auto& w : works) Wait(w, options_, "broadcast");
  for (auto& f : flats) f.Unpack();
}

void Communicator::Barrier() {
  auto work = impl_->With([&](auto& pg) { return pg.barrier(); });
  Wait(work, options_, "barrier");
}

void Communicator::Close() {
  if (impl_->closed) return;
  impl_->closed = true;
#ifdef DROPATTACK_WITH_NCCL
  impl_->nccl.reset();
#endif
  impl_->gloo.reset();
  impl_->store.reset();
}

#else  // !DROPATTACK_WITH_DISTRIBUTED

bool DistributedAvailable() { return false; }
std::vector<std::string> DistributedBackends() { return {}; }

struct Communicator::Impl {};
Communicator::Communicator(const DistributedOptions& options) : options_(options) {}
Communicator::~Communicator() = default;

namespace {
[[noreturn]] void NotBuilt() {
  throw std::runtime_error(
      "distributed: this build of dropattack has no distributed support (it needs LibTorch's c10d with Gloo and the "
      "Gloo headers: on Debian, apt-get install libgloo-dev, then rebuild the addon)");
}
}  // namespace

std::shared_ptr<Communicator> Communicator::Create(const DistributedOptions&) { NotBuilt(); }
void Communicator::AllReduceMean(const std::vector<at::Tensor>&, int64_t, double*) { NotBuilt(); }
std::unique_ptr<Communicator::Pending> Communicator::StartSum(const at::Tensor&) { NotBuilt(); }
void Communicator::AllReduce(at::Tensor&, const std::string&) { NotBuilt(); }
void Communicator::Broadcast(const std::vector<at::Tensor>&, int) { NotBuilt(); }
void Communicator::Barrier() { NotBuilt(); }
void Communicator::Close() {}

#endif

std::vector<std::vector<size_t>> PlanBuckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes,
                                             int64_t first_bucket_bytes) {
  std::vector<std::vector<size_t>> plan;
  int64_t bytes = 0;
  const at::Tensor* first = nullptr;  // the last bucket's first member
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    if (!t.defined() || t.numel() == 0) continue;
    const int64_t n = t.numel() * static_cast<int64_t>(t.element_size());
    if (first == nullptr || first->scalar_type() != t.scalar_type() || first->device() != t.device() ||
        bytes + n > (plan.size() == 1 && first_bucket_bytes > 0 ? first_bucket_bytes : bucket_bytes)) {
      plan.emplace_back();
      first = &t;
      bytes = 0;
    }
    plan.back().push_back(i);
    bytes += n;
  }
  return plan;
}

void FlatBucket::Pack(std::vector<at::Tensor> members, at::Tensor* buffer) {
  TORCH_CHECK(!members.empty(), "distributed: an empty bucket");
  members_ = std::move(members);
  if (members_.size() == 1 && members_[0].is_contiguous()) {
    flat = members_[0].view({-1});  // in place, no copy
    copied_ = false;
    return;
  }
  int64_t n = 0;
  for (const at::Tensor& m : members_) n += m.numel();
  const at::Tensor& m0 = members_[0];
  if (buffer != nullptr && buffer->defined() && buffer->numel() == n && buffer->scalar_type() == m0.scalar_type() &&
      buffer->device() == m0.device()) {
    flat = *buffer;
  } else {
    flat = at::empty({n}, m0.options().memory_format(at::MemoryFormat::Contiguous));
    if (buffer != nullptr) *buffer = flat;
  }
  int64_t at = 0;
  for (const at::Tensor& m : members_) {
    flat.narrow(0, at, m.numel()).view_as(m).copy_(m);
    at += m.numel();
  }
  copied_ = true;
}

void FlatBucket::MoveTo(at::Device device) {
  flat = flat.to(device);
  copied_ = true;
}

void FlatBucket::Unpack() {
  if (copied_) {
    int64_t at = 0;
    for (const at::Tensor& m : members_) {
      m.copy_(flat.narrow(0, at, m.numel()).view_as(m));
      at += m.numel();
    }
  }
  members_.clear();
  flat = at::Tensor();
}

void BucketAllReduce::Start(Communicator& comm, std::vector<at::Tensor> members, at::Tensor* buffer) {
  bucket_.Pack(std::move(members), buffer);
  work_ = comm.StartSum(bucket_.flat);
}

void BucketAllReduce::FinishMean(const char* what, double world_size) {
  TORCH_CHECK(work_ != nullptr, "distributed: a bucket waited on before it was started");
  std::unique_ptr<Communicator::Pending> work = std::move(work_);
  work->Wait(what);
  bucket_.flat.mul_(1.0 / world_size);
  bucket_.Unpack();
}

}  // namespace engine
}  // namespace dropattack
