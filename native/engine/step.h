// The context of one training step, shared by every method (native/engine/methods/): the
// (possibly perturbed) input, the undo stack of every perturbation not yet undone, the
// clean and adversarial passes, the perturbation and restore primitives, and the
// optimizer update. A method's run only sequences these; see docs/methods.md.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "engine.h"
#include "ops/perturb.h"

namespace dropattack {
namespace engine {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Its destructor restores whatever is still applied, so an exception from the loss
// closure cannot leave a parameter perturbed.
class StepContext {
 public:
  using Target = Trainer::Target;

  // Undo stack entry: a perturbation state, or a copy to write back (PGD/FreeLB).
  struct Undo {
    at::Tensor target;
    ops::PerturbState state;
    at::Tensor original;  // when set: target.copy_(original)
  };

  // One move of a target by the weight-ascent methods (AWP, SAM, ASAM).
  struct Move {
    const Target* target;
    at::Tensor direction;
    double radius;
    size_t g, j;
  };

  StepContext(Trainer& t, const Batch& b, const LossFn& f, const StepOptions& o);
  ~StepContext();
  StepContext(const StepContext&) = delete;
  StepContext& operator=(const StepContext&) = delete;

  /// The whole step: set-up, the method's run, the restores and the update.
  StepResult Run();

  const AttackConfig& attack() const { return tr.attack_; }
  const std::vector<Target>& targets(size_t g) const { return tr.targets_[g]; }

  void RestoreAll() { RestoreTo(0); }
  // Restores the entries above `mark` on the undo stack, newest first.
  void RestoreTo(size_t mark);
  // Pushes a copy-back entry: `target` gets `original` back on restore.
  void SaveCopy(const at::Tensor& target, const at::Tensor& original) {
    undo.push_back(Undo{target, ops::PerturbState{}, original});
  }

  at::Tensor& Tensor(const Target& t) { return t.param_index < 0 ? x : tr.params_[t.param_index].second; }
  // The target's current gradient (zeros when it has none), dense.
  at::Tensor Grad(const Target& t);
  // The same, but a sparse gradient (an embedding's with sparse=True) stays sparse: the
  // directions of dropattack and fgm, which Perturb() takes row-wise from its rows.
  at::Tensor RawGrad(const Target& t);

  // Forward at the current parameters; backward of loss * weight unless `backward` is
  // false. Returns the loss, or NaN (and sets failed) when it is not finite.
  double Pass(double weight, bool backward = true, at::Tensor* keep = nullptr);
  // The step's last pass (a forward and backward of loss * weight, as Pass): in distributed
  // training the gradients' all-reduce starts bucket by bucket during its backward
  // (GradientReducer). A method calls it for its last backward and leaves the gradients
  // as they are after it. A method that never calls it is still correct: then every
  // bucket starts after its last pass.
  double LastPass(double weight);

  // Applies perturb() to target t with direction d (dense, or a sparse COO gradient);
  // returns false when skipped.
  bool Perturb(const Target& t, const at::Tensor& d, double radius, double p, size_t g, size_t j);

  // Zeroes the parameters' gradients (back to the earlier micro-batches' when accumulating)
  // and the input's.
  void ZeroGrads();

  double Radius(const AttackGroup& group, const at::Tensor& w) const;

  // Restores everything, drops the gradients and marks the step as not applied.
  StepResult Fail(const std::string& reason);

  // The part of each target's current gradient that belongs to this step's clean pass
  // and this group's own passes: current gradient minus `offset`.
  std::vector<at::Tensor> Offsets(const std::vector<Target>& targets, const std::vector<at::Tensor>& clean_end,
                                  bool first_group);

  // The clean pass, then copies of the clean gradients of the targets of every group
  // after the first (the first group reads them straight from .grad). False when the
  // clean loss is not finite.
  bool CleanPass(std::vector<std::vector<at::Tensor>>* clean_end);

  // AWP, SAM and ASAM: the clean pass, one move of every target from its clean gradient
  // (`plan` sets each move's direction and radius, and returns false to skip them all),
  // then the update uses the gradient at the moved point only.
  bool WeightAscent(const std::function<bool(std::vector<Move>&)>& plan);

  StepResult Update();

  /// Distributed training in the "allreduced" direction mode: averages the directions of
  /// the parameter targets across ranks (in place; each entry becomes a tensor of its
  /// own). The input's direction stays local: each rank's input is its own batch.
  void SyncDirections(std::vector<at::Tensor>& directions, const std::vector<const Target*>& targets);
  void SyncDirections(std::vector<at::Tensor>& directions, const std::vector<Target>& targets);
  bool distributed() const { return tr.dist_.comm != nullptr; }
  // Averages the update's gradients across ranks; false (after Fail) when this rank's
  // `reason` or another rank's says the step cannot be applied.
  bool AverageGradients(const std::string& reason);

  Trainer& tr;
  const Batch& batch;
  const LossFn& loss_fn;
  const StepOptions& opt;
  StepResult result;
  at::Tensor x;  // the input fed to the model
  std::vector<Undo> undo;
  at::Tensor rows;  // unique token ids for the row-sparse path
  std::vector<at::Tensor> pending_grads;  // gradients of earlier micro-batches (accumulate)
  bool failed = false;
  // Distributed: why this rank's step cannot be applied (a non-finite loss). The methods
  // run on, so that every rank takes part in the same collectives, and Update() lets all
  // ranks agree to skip the update.
  std::string local_failure;
  // The reducer is armed or has buckets running: the destructor resets it when the step
  // ends with an exception before Update().
  bool reducer_busy = false;

 private:
  ops::PerturbOptions PerturbOpts(double radius, double p, size_t g, size_t j) const;
};

// w <- w0 + Proj_r(delta); returns delta's new value.
// Computed on the tensor's device (no host read): factor = radius / ||delta|| when the
// norm exceeds the radius, else 1 (a zero or non-finite norm leaves delta as it is).
at::Tensor Project(const at::Tensor& delta, double radius);

// delta += alpha * g / ||g||; false (delta unchanged) when ||g|| is 0 or not finite.
bool GradientStep(const at::Tensor& g, double alpha, at::Tensor* delta);

}  // namespace engine
}  // namespace dropattack
