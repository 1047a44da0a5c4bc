// The adversarial training engine: a small C++ API over LibTorch with no Node in it.
//
// A LibTorch program builds a Trainer over any set of named parameters (a
// torch::jit::Module's or a torch::nn::Module's), gives it an attack configuration and an
// optimizer, and calls step() with a closure that computes the loss of the current batch
// at the current parameter values. One step runs the clean pass, every attack pass, the
// exact restores and the optimizer step (docs/methods.md defines each method).
#pragma once

#include <ATen/ATen.h>
#include <torch/optim.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dropattack {
namespace engine {

enum class Method { kNone, kDropAttack, kFGM, kPGD, kFreeLB, kAWP, kSAM, kASAM };

/// "none", "dropattack", "fgm", "pgd", "freelb", "awp", "sam", "asam".
Method ParseMethod(const std::string& name);
std::string MethodName(Method m);

/// One attack group: its targets and radius. Targets are patterns resolved against the
/// parameter names: an exact name, a glob (`*` and `?`), a regex written /like this/, or
/// `input` for the batch's float input.
struct AttackGroup {
  std::vector<std::string> targets;
  double epsilon = 1.0;
  double p = 1.0;         // DropAttack keep probability
  bool relative = false;  // radius epsilon * ||w|| instead of epsilon
  // Row-sparse path for embedding tables: "auto" uses it for 2-D targets named like an
  // embedding (…embed….weight) when the batch gives token ids; "on" requires ids; "off".
  std::string sparse = "auto";
};

struct AttackConfig {
  Method method = Method::kNone;
  std::vector<AttackGroup> groups;
  int k = 1;
  double alpha = 0.1;  // PGD / FreeLB step size
  double rho = 0.05;   // SAM / ASAM radius
  double eta = 0.01;   // ASAM
  uint64_t seed = 0;
};

/// A named trainable tensor (a leaf that requires grad).
using NamedParameter = std::pair<std::string, at::Tensor>;

/// The batch as the engine sees it: the loss closure reads it, the engine may replace
/// `input` (the float input) with a perturbed copy, and `token_ids` gives the rows of
/// embedding tables for the row-sparse path.
struct Batch {
  at::Tensor input;      // the first input; perturbed when a group targets `input`
  at::Tensor token_ids;  // int64 ids of the tokens in the batch (optional)
};

/// Computes the loss of the batch at the current parameters. `input` is the (possibly
/// perturbed) first input to feed the model.
using LossFn = std::function<at::Tensor(const at::Tensor& input)>;

struct PhaseTimes {
  double forward = 0, backward = 0, perturb = 0, optimizer = 0;  // seconds
};

struct StepResult {
  double clean_loss = 0;
  std::vector<double> group_losses;    // per group, as docs/methods.md reports them
  std::vector<int64_t> skipped;        // per group: perturbations skipped (zero/non-finite norm)
  double grad_norm = 0;                // L2 norm of the update's gradient, before clipping (NaN: not computed)
  double lr = 0;                       // learning rate used
  bool applied = false;                // the optimizer step ran
  std::string reason;                  // why not, when !applied
  bool accumulated = false;            // gradients were kept for a later micro-batch
  std::vector<std::string> sparse_targets;  // targets that took the row-sparse path
  PhaseTimes times;
};

struct StepOptions {
  double lr = -1;              // < 0: keep the optimizer's
  double clip_grad_norm = 0;   // <= 0: no clipping
  bool accumulate = false;     // keep gradients for the next micro-batch, skip the update
  double loss_scale = 1.0;     // multiplies every backward (e.g. 1 / micro-batches)
  bool time_phases = false;
  bool grad_norm = true;       // compute the norm (and refuse a non-finite gradient); clipping needs it
};

class Trainer {
 public:
  /// `parameters`: every trainable parameter, in model order. Fails with a message listing
  /// the parameter names when a target matches nothing.
  Trainer(std::vector<NamedParameter> parameters, AttackConfig attack,
          std::unique_ptr<torch::optim::Optimizer> optimizer);

  StepResult step(const Batch& batch, const LossFn& loss, const StepOptions& options = {});

  /// Optimizer steps taken so far (the `s` of the mask counters).
  int64_t global_step() const { return global_step_; }
  void set_global_step(int64_t s) { global_step_ = s; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const AttackConfig& attack() const { return attack_; }
  /// The resolved target names of each group ("input" stays "input").
  const std::vector<std::vector<std::string>>& resolved_targets() const { return target_names_; }

 private:
  struct Target {
    std::string name;
    int param_index = -1;  // -1: the input
    mutable bool sparse = false;           // row-sparse path (embedding table)
    mutable bool sparse_verified = false;  // "auto": checked against a real gradient once
  };
  std::vector<NamedParameter> params_;
  AttackConfig attack_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::vector<Target>> targets_;
  std::vector<std::vector<std::string>> target_names_;
  int64_t global_step_ = 0;
  bool has_pending_micro_batch_ = false;
  bool targets_input_ = false;

  friend class StepContext;
};

/// Optimizer options for MakeOptimizer.
struct OptimizerSpec {
  std::string type = "sgd";  // sgd | adam | adamw
  double lr = 0.01;
  double momentum = 0;
  bool nesterov = false;
  double dampening = 0;
  double weight_decay = 0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
};

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<at::Tensor>& params, const OptimizerSpec& spec);

/// Loss specification for MakeLoss.
struct LossSpec {
  std::string type = "cross_entropy";  // cross_entropy | bce_with_logits | mse
  double label_smoothing = 0;
  at::Tensor class_weights;            // optional, cross_entropy
};

/// loss(output, target) as the spec says (mean reduction). With `check_targets`, class
/// indices are checked against the output's classes first (a host sync when the target
/// is on a GPU); a caller that checked them once per batch passes false.
at::Tensor ComputeLoss(const LossSpec& spec, const at::Tensor& output, const at::Tensor& target,
                       bool check_targets = true);

/// The smallest and largest class index of an int64 target (one host read).
std::pair<int64_t, int64_t> TargetRange(const at::Tensor& target);
/// Fails with a clear message when a class index in [lo, hi] is outside [0, classes).
void CheckTargetRange(int64_t lo, int64_t hi, int64_t classes);

/// Whether `name` matches a target pattern (exact, glob, or /regex/).
bool MatchesTarget(const std::string& pattern, const std::string& name);

}  // namespace engine
}  // namespace dropattack
