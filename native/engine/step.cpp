// The step context shared by every method (step.h).
#include "step.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "fused_adam.h"
#include "methods/registry.h"
#include "reducer.h"

namespace dropattack {
namespace engine {

namespace {
// Zeroes a gradient; a sparse one is dropped instead, so that the next backward's sparse
// gradient becomes .grad as it is (a sparse zero would be concatenated with it).
void ClearGrad(at::Tensor& g) {
  if (g.is_sparse()) g = at::Tensor();
  else g.zero_();
}
}  // namespace

StepContext::StepContext(Trainer& t, const Batch& b, const LossFn& f, const StepOptions& o)
    : tr(t), batch(b), loss_fn(f), opt(o) {}

StepContext::~StepContext() {
  try {
    RestoreAll();
  } catch (...) {
    // Restores are copies into tensors we hold; nothing sensible is left to do.
  }
  if (reducer_busy) tr.reducer_->Reset();
}

void StepContext::RestoreTo(size_t mark) {
  at::NoGradGuard no_grad;
  while (undo.size() > mark) {
    Undo& u = undo.back();
    const auto t0 = Clock::now();
    if (u.original.defined()) u.target.copy_(u.original);
    else ops::restore(u.target, u.state);
    result.times.perturb += Seconds(t0, Clock::now());
    undo.pop_back();
  }
}

at::Tensor StepContext::RawGrad(const Target& t) {
  at::Tensor g = Tensor(t).grad();
  return g.defined() ? g : at::zeros_like(Tensor(t));
}

at::Tensor StepContext::Grad(const Target& t) {
  at::Tensor g = RawGrad(t);
  return g.is_sparse() ? g.to_dense() : g;
}

double StepContext::Pass(double weight, bool backward, at::Tensor* keep) {
  const auto t0 = Clock::now();
  at::Tensor loss = loss_fn(x);
  const auto t1 = Clock::now();
  result.times.forward += Seconds(t0, t1);
  TORCH_CHECK(loss.defined() && loss.numel() == 1, "the loss must be a single number, got shape ",
              loss.defined() ? loss.sizes() : at::IntArrayRef{});
  const double value = loss.item<double>();
  if (!std::isfinite(value)) {
    if (distributed()) {
      // No early exit: the other ranks wait in this step's collectives (see local_failure).
      if (local_failure.empty()) {
        local_failure = "a loss is not finite on rank " + std::to_string(tr.dist_.comm->rank());
      }
      return value;
    }
    failed = true;
    return value;
  }
  if (keep != nullptr) *keep = loss;
  if (backward) {
    (loss * (weight * opt.loss_scale)).backward();
    result.times.backward += Seconds(t1, Clock::now());
  }
  return value;
}

double StepContext::LastPass(double weight) {
  GradientReducer* r = tr.reducer_.get();
  if (r == nullptr || !tr.dist_.overlap || opt.accumulate) return Pass(weight);
  reducer_busy = true;
  r->Arm();
  struct Disarm {
    GradientReducer* r;
    ~Disarm() { r->Disarm(); }
  } disarm{r};
  return Pass(weight);
}

ops::PerturbOptions StepContext::PerturbOpts(double radius, double p, size_t g, size_t j) const {
  ops::PerturbOptions o;
  o.epsilon = radius;
  o.p = p;
  o.seed = tr.attack_.seed;
  o.counter = (static_cast<uint64_t>(tr.global_step_) << 16) | (static_cast<uint64_t>(g) << 8) | j;
  return o;
}

bool StepContext::Perturb(const Target& t, const at::Tensor& d, double radius, double p, size_t g, size_t j) {
  const auto t0 = Clock::now();
  at::Tensor& w = Tensor(t);
  Undo u;
  u.target = w;
  if (d.is_sparse()) {
    // A sparse gradient says itself which rows it has: they are the row-sparse path's
    // rows, read from the gradient's values without a dense direction. The group's
    // sparse 'off' and the methods without the row-sparse path take the dense direction.
    at::NoGradGuard no_grad;
    const bool rowwise = tr.attack_.groups[g].sparse != "off" && methods::Of(tr.attack_.method).sparse &&
                         t.param_index >= 0 && d.sparse_dim() == 1 && d.dense_dim() + 1 == w.dim();
    if (rowwise) {
      const at::Tensor c = d.coalesce();
      u.state = ops::perturb_sparse(w, c._indices().select(0, 0), c._values(), PerturbOpts(radius, p, g, j));
      if (std::find(result.sparse_targets.begin(), result.sparse_targets.end(), t.name) ==
          result.sparse_targets.end()) {
        result.sparse_targets.push_back(t.name);
      }
      const bool skipped = u.state.skipped;
      undo.push_back(std::move(u));
      result.times.perturb += Seconds(t0, Clock::now());
      return !skipped;
    }
    return Perturb(t, d.to_dense(), radius, p, g, j);
  }
  if (t.sparse && rows.defined() && !t.sparse_verified) {
    // "auto" guessed an embedding table from its name. Check once that its gradient
    // vanishes outside the batch's token rows (a positional table or tied weights would
    // not): if not, this target takes the dense path from now on.
    // With "on" the same check guards against ids that are not this table's (another
    // int64 input taken for the token ids would perturb the wrong rows silently).
    const auto& cfg = tr.attack_.groups[g];
    at::NoGradGuard no_grad;
    const bool rows_in_range =
        rows.numel() > 0 && rows.min().item<int64_t>() >= 0 && rows.max().item<int64_t>() < d.size(0);
    const bool ok = rows_in_range && d.index_fill(0, rows, 0).abs().max().item<double>() == 0.0;
    if (!ok && cfg.sparse == "on") {
      TORCH_CHECK(false, "attack.groups[", g, "].sparse is 'on' but the gradient of ", t.name,
                  " is not zero outside the rows of the batch's token ids", rows_in_range ? "" : " (ids out of range)",
                  ": the ids are not this table's rows (pass the table's ids as the step's tokenIds) or the table is "
                  "also used elsewhere (use sparse 'auto' or 'off')");
    }
    if (!ok) t.sparse = false;
    t.sparse_verified = true;
  }
  if (t.sparse && rows.defined()) {
    u.state = ops::perturb_rows(w, d, rows, PerturbOpts(radius, p, g, j));
    if (std::find(result.sparse_targets.begin(), result.sparse_targets.end(), t.name) == result.sparse_targets.end()) {
      result.sparse_targets.push_back(t.name);
    }
  } else {
    u.state = ops::perturb(w, d, PerturbOpts(radius, p, g, j));
  }
  const bool skipped = u.state.skipped;
  undo.push_back(std::move(u));
  result.times.perturb += Seconds(t0, Clock::now());
  return !skipped;
}

void StepContext::ZeroGrads() {
  for (size_t i = 0; i < tr.params_.size(); ++i) {
    at::Tensor& g = tr.params_[i].second.mutable_grad();
    if (!g.defined()) continue;
    if (!pending_grads.empty() && pending_grads[i].defined()) {
      if (g.is_sparse() || pending_grads[i].is_sparse()) g = pending_grads[i].clone();
      else g.copy_(pending_grads[i]);
    } else {
      ClearGrad(g);
    }
  }
  if (x.defined() && x.grad().defined()) x.mutable_grad().zero_();
}

double StepContext::Radius(const AttackGroup& group, const at::Tensor& w) const {
  // The Trainer checked that the methods calling this have every group's epsilon.
  if (!group.relative) return *group.epsilon;
  return *group.epsilon * std::sqrt(ops::squared_norm(w.detach()));
}

StepResult StepContext::Fail(const std::string& reason) {
  RestoreAll();
  for (auto& p : tr.params_) {
    at::Tensor& g = p.second.mutable_grad();
    if (g.defined()) ClearGrad(g);
  }
  tr.has_pending_micro_batch_ = false;
  result.applied = false;
  result.reason = reason;
  return result;
}

StepResult StepContext::Run() {
  const AttackConfig& a = tr.attack_;
  result.group_losses.assign(a.groups.size(), 0.0);
  result.skipped.assign(a.groups.size(), 0);
  x = batch.input;
  if (tr.targets_input_) {
    TORCH_CHECK(batch.input.defined() && at::isFloatingType(batch.input.scalar_type()), "an attack targets '",
                tr.attacked_input_, "', but the batch's attacked input is ",
                batch.input.defined() ? std::string("of dtype ") + c10::toString(batch.input.scalar_type()) : "missing",
                ", not a float tensor");
    x = batch.input.detach().clone().set_requires_grad(true);
  }
  if (batch.token_ids.defined()) rows = batch.token_ids.reshape({-1}).to(at::kLong);
  for (size_t g = 0; g < a.groups.size(); ++g) {
    if (a.groups[g].sparse != "on") continue;
    TORCH_CHECK(rows.defined(), "attack.groups[", g, "].sparse is 'on' but the batch gives no token ids");
  }
  if (tr.has_pending_micro_batch_) {
    for (auto& p : tr.params_) {
      const at::Tensor& g = p.second.grad();
      pending_grads.push_back(g.defined() ? g.clone() : at::Tensor());
    }
  } else {
    for (auto& p : tr.params_) {
      at::Tensor& g = p.second.mutable_grad();
      if (g.defined()) ClearGrad(g);
    }
  }
  // A method that fails has called Fail(), which set the result.
  if (!methods::Of(a.method).run(*this)) return result;
  RestoreAll();
  return Update();
}

std::vector<at::Tensor> StepContext::Offsets(const std::vector<Target>& targets, const std::vector<at::Tensor>& clean_end,
                                             bool first_group) {
  std::vector<at::Tensor> out(targets.size());
  for (size_t j = 0; j < targets.size(); ++j) {
    const auto& t = targets[j];
    at::Tensor pre = (t.param_index >= 0 && !pending_grads.empty()) ? pending_grads[t.param_index] : at::Tensor();
    if (first_group) {
      out[j] = pre;  // undefined when there is nothing to subtract
    } else {
      // offset = grad at group start - (clean_end - pre)
      at::Tensor o = RawGrad(t) - clean_end[j];
      if (pre.defined()) o = o + pre;
      out[j] = o;
    }
  }
  return out;
}

bool StepContext::CleanPass(std::vector<std::vector<at::Tensor>>* clean_end) {
  result.clean_loss = Pass(1.0);
  if (failed) {
    Fail("the clean loss is not finite");
    return false;
  }
  clean_end->assign(tr.attack_.groups.size(), {});
  for (size_t g = 1; g < tr.attack_.groups.size(); ++g) {
    for (const auto& t : tr.targets_[g]) (*clean_end)[g].push_back(RawGrad(t).clone());
  }
  return true;
}

bool StepContext::WeightAscent(const std::function<bool(std::vector<Move>&)>& plan) {
  const AttackConfig& a = tr.attack_;
  result.clean_loss = Pass(1.0);
  if (failed) {
    Fail("the clean loss is not finite");
    return false;
  }
  std::vector<Move> moves;
  for (size_t g = 0; g < a.groups.size(); ++g) {
    const std::vector<at::Tensor> offsets = Offsets(tr.targets_[g], {}, true);
    for (size_t j = 0; j < tr.targets_[g].size(); ++j) {
      const Target& t = tr.targets_[g][j];
      at::Tensor grad = Grad(t);
      if (offsets[j].defined()) grad = grad - offsets[j];
      moves.push_back(Move{&t, grad, 0.0, g, j});
    }
  }
  if (distributed()) {
    std::vector<at::Tensor> directions;
    std::vector<const Target*> which;
    for (const Move& m : moves) {
      directions.push_back(m.direction);
      which.push_back(m.target);
    }
    SyncDirections(directions, which);
    for (size_t k = 0; k < moves.size(); ++k) moves[k].direction = directions[k];
  }
  if (plan(moves)) {
    for (Move& m : moves) {
      if (!Perturb(*m.target, m.direction.contiguous(), m.radius, 1.0, m.g, m.j)) result.skipped[m.g]++;
    }
  } else {
    for (const Move& m : moves) result.skipped[m.g]++;
  }
  ZeroGrads();
  const double adv = LastPass(1.0);
  if (failed) {
    Fail("the adversarial loss is not finite");
    return false;
  }
  for (auto& v : result.group_losses) v = adv;
  return true;
}

StepResult StepContext::Update() {
  result.lr = tr.optimizer_->param_groups().empty() ? 0 : tr.optimizer_->param_groups()[0].options().get_lr();
  if (opt.accumulate) {
    if (distributed() && !local_failure.empty() && tr.dist_pending_failure_.empty()) {
      tr.dist_pending_failure_ = local_failure;
    }
    tr.has_pending_micro_batch_ = true;
    result.accumulated = true;
    result.applied = false;
    return result;
  }
  if (distributed()) {
    std::string reason = local_failure.empty() ? tr.dist_pending_failure_ : local_failure;
    tr.dist_pending_failure_.clear();
    if (!AverageGradients(reason)) return result;
  }
  const auto t0 = Clock::now();
  std::vector<at::Tensor> grads;
  for (auto& p : tr.params_) {
    at::Tensor& g = p.second.mutable_grad();
    if (!g.defined()) continue;
    if (g.is_sparse()) {
      // Refused before any change when the optimizer cannot take it; coalesced once
      // (duplicate rows summed) for the norm, the clipping and the optimizer.
      CheckSparseGradient(*tr.optimizer_, p.second, p.first);
      at::NoGradGuard no_grad;
      g = g.coalesce();
    }
    grads.push_back(g);
  }
  // The norm reads every gradient once more (300 MB for a 250k x 300 embedding): only
  // when it is asked for or clipping needs it.
  if (opt.grad_norm || opt.clip_grad_norm > 0) {
    double sq = 0;
    // The fused squared-norm kernel of the op (double accumulation, no temporaries): a
    // float64 copy of a 300 MB embedding gradient per step cost more than Adam itself.
    for (const auto& g : grads) {
      const at::Tensor values = g.is_sparse() ? g._values() : g.detach();  // coalesced: its rows' values
      sq += at::isFloatingType(g.scalar_type()) ? ops::squared_norm(values)
                                                : values.to(at::kDouble).pow(2).sum().item<double>();
    }
    result.grad_norm = std::sqrt(sq);
    if (!std::isfinite(result.grad_norm)) {
      result.times.optimizer += Seconds(t0, Clock::now());
      return Fail("the gradient is not finite");
    }
  } else {
    result.grad_norm = std::numeric_limits<double>::quiet_NaN();
  }
  if (opt.clip_grad_norm > 0) {
    // As torch.nn.utils.clip_grad_norm_ does.
    const double factor = opt.clip_grad_norm / (result.grad_norm + 1e-6);
    if (factor < 1) {
      at::NoGradGuard no_grad;
      for (auto& g : grads) g.mul_(factor);
    }
  }
  if (opt.lr >= 0) {
    // Group 0 takes the step's rate; every other group keeps its ratio to group 0.
    auto& groups = tr.optimizer_->param_groups();
    for (size_t k = 0; k < groups.size(); ++k) {
      const bool ratio = k < tr.base_lrs_.size() && !tr.base_lrs_.empty() && tr.base_lrs_[0] > 0;
      groups[k].options().set_lr(ratio ? opt.lr * (tr.base_lrs_[k] / tr.base_lrs_[0]) : opt.lr);
    }
    result.lr = opt.lr;
  }
  tr.optimizer_->step();
  for (auto& p : tr.params_) {
    at::Tensor& g = p.second.mutable_grad();
    if (g.defined()) ClearGrad(g);
  }
  tr.has_pending_micro_batch_ = false;
  tr.global_step_++;
  result.applied = true;
  result.times.optimizer += Seconds(t0, Clock::now());
  return result;
}

namespace {
// Distributed training all-reduces dense buffers only.
void CheckDense(const at::Tensor& g, const std::string& name) {
  TORCH_CHECK(!g.defined() || !g.is_sparse(), "distributed training does not support sparse gradients: the gradient of ",
              name, " is sparse (model.sparseEmbedding, or nn.Embedding(sparse=True) in the model); train with a "
              "dense embedding (sparseEmbedding: false) or in one process");
}
}  // namespace

bool StepContext::AverageGradients(const std::string& reason) {
  // Every parameter takes part on every rank (zeros where this rank has no gradient), and
  // one more all-reduce says whether any rank's step failed, so that all ranks agree to
  // skip the update.
  for (const auto& p : tr.params_) CheckDense(p.second.grad(), p.first);
  reducer_busy = true;
  const double failures = tr.reducer_->Finish(reason.empty() ? 0.0 : 1.0, &result.times.communication);
  reducer_busy = false;
  result.buckets = static_cast<int64_t>(tr.reducer_->buckets());
  result.buckets_in_backward = static_cast<int64_t>(tr.reducer_->started_in_backward());
  if (failures > 0) {
    Fail(reason.empty() ? "a loss is not finite on another rank" : reason);
    return false;
  }
  return true;
}

void StepContext::SyncDirections(std::vector<at::Tensor>& directions, const std::vector<const Target*>& targets) {
  if (!distributed() || tr.dist_.direction != "allreduced") return;
  std::vector<at::Tensor> list;
  for (size_t j = 0; j < targets.size(); ++j) {
    if (targets[j]->param_index < 0 || !directions[j].defined()) continue;
    CheckDense(directions[j], targets[j]->name);
    // A copy: the direction may be the parameter's .grad itself.
    directions[j] = directions[j].clone(at::MemoryFormat::Contiguous);
    list.push_back(directions[j]);
  }
  tr.dist_.comm->AllReduceMean(list, tr.dist_.bucket_bytes, &result.times.communication);
}

void StepContext::SyncDirections(std::vector<at::Tensor>& directions, const std::vector<Target>& targets) {
  std::vector<const Target*> p;
  for (const auto& t : targets) p.push_back(&t);
  SyncDirections(directions, p);
}

at::Tensor Project(const at::Tensor& delta, double radius) {
  const at::Tensor n = delta.norm().to(at::kDouble);
  const at::Tensor factor = at::where(n > radius, radius / n, at::ones_like(n));
  // A 0-dim factor does not change the result's dtype; float (or double) as a scalar would be.
  return delta * factor.to(delta.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
}

bool GradientStep(const at::Tensor& g, double alpha, at::Tensor* delta) {
  const double n = std::sqrt(ops::squared_norm(g.contiguous()));
  if (!(n > 0) || !std::isfinite(n)) return false;
  *delta = *delta + g * (alpha / n);
  return true;
}

}  // namespace engine
}  // namespace dropattack
