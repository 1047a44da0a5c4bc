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
#include <torch/ordered_dict.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "distributed.h"

namespace dropattack {
namespace engine {

enum class Method { kNone, kDropAttack, kFGM, kPGD, kFreeLB, kAWP, kSAM, kASAM };

/// "none", "dropattack", "fgm", "pgd", "freelb", "awp", "sam", "asam".
Method ParseMethod(const std::string& name);
std::string MethodName(Method m);

// The defaults and limits below are the C++ API's contract and the same as the TypeScript
// schema's (lib/core/options.ts): engineDefaults() exposes them to JavaScript and
// test/schema.test.ts asserts that the two agree. docs/config.md lists them.

/// Most attack steps per batch (attack.k), over every method.
constexpr int kMaxAttackSteps = 1000;
/// Most attack groups, and most resolved targets in one group (group and target indices
/// are 8-bit in the mask counters).
constexpr size_t kMaxGroups = 255;
constexpr size_t kMaxTargetsPerGroup = 255;

/// One attack group: its targets and radius. Targets are patterns resolved against the
/// parameter names: an exact name, a glob (`*` and `?`), a regex written /like this/, or
/// the batch's float input: `input` (the model's first forward argument), `input[k]` (its
/// k-th, from 0) or `input:name` (the argument called `name`). All groups of a trainer
/// attack the same input.
struct AttackGroup {
  std::vector<std::string> targets;
  // No default radius: the methods that read it (Strategy::needs_epsilon) require it.
  std::optional<double> epsilon;
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
  // PGD / FreeLB step size. No default: no step size suits every radius, so the methods
  // that read it (Strategy::needs_alpha) require it.
  std::optional<double> alpha;
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
  at::Tensor input;      // the attacked input (see AttackGroup); perturbed when a group targets it
  at::Tensor token_ids;  // int64 ids of the tokens in the batch (optional)
};

/// Whether a target pattern names the batch's input (`input`, `input[k]`, `input:name`).
bool IsInputTarget(const std::string& pattern);

/// Computes the loss of the batch at the current parameters. `input` is the (possibly
/// perturbed) first input to feed the model.
using LossFn = std::function<at::Tensor(const at::Tensor& input)>;

struct PhaseTimes {
  double forward = 0, backward = 0, perturb = 0, optimizer = 0;  // seconds
  double communication = 0;  // seconds in collectives (distributed training), part of no other phase
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
  int64_t buckets = 0;                 // distributed: the gradients' all-reduce buckets (0: none ran)
  int64_t buckets_in_backward = 0;     // of those, started during the last backward pass
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

class GradientReducer;

class Trainer {
 public:
  /// `parameters`: the model's parameters, in model order. Those that do not require grad
  /// are frozen: they are not trained, and a target naming only frozen parameters fails
  /// saying so. Fails with a message listing the parameter names when a target matches
  /// nothing.
  Trainer(std::vector<NamedParameter> parameters, AttackConfig attack,
          std::unique_ptr<torch::optim::Optimizer> optimizer);
  /// The same from a torch::nn::Module's `named_parameters()`.
  Trainer(const torch::OrderedDict<std::string, at::Tensor>& parameters, AttackConfig attack,
          std::unique_ptr<torch::optim::Optimizer> optimizer);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  StepResult step(const Batch& batch, const LossFn& loss, const StepOptions& options = {});

  /// Optimizer steps taken so far (the `s` of the mask counters).
  int64_t global_step() const { return global_step_; }
  void set_global_step(int64_t s) { global_step_ = s; }
  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const AttackConfig& attack() const { return attack_; }
  /// The resolved target names of each group (an input target stays as written).
  const std::vector<std::vector<std::string>>& resolved_targets() const { return target_names_; }
  /// The input target the groups attack (`input`, `input[k]` or `input:name`), or "" when
  /// no group attacks an input.
  const std::string& attacked_input() const { return attacked_input_; }
  /// The frozen parameters' names (they do not require grad).
  const std::vector<std::string>& frozen() const { return frozen_; }

  /// Data-parallel training over `config.comm`: every step averages the update's gradient
  /// across ranks (a bucketed all-reduce that starts during the last backward pass when
  /// config.overlap; reducer.h) and, with direction "allreduced", each attack direction too.
  /// A collective: every rank calls it, and rank 0's parameters are copied to the others so
  /// that the replicas start identical.
  void set_distributed(DistributedConfig config);
  /// The distributed settings, or nullptr in a single process.
  const DistributedConfig* distributed() const { return dist_.comm ? &dist_ : nullptr; }

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
  std::string attacked_input_;
  std::vector<std::string> frozen_;
  // Each optimizer group's learning rate when the trainer was made: a step's `lr` sets
  // group 0's and keeps every other group's ratio to it.
  std::vector<double> base_lrs_;
  DistributedConfig dist_;
  // Averages the update's gradients across ranks, during the last backward pass when
  // dist_.overlap (set with dist_).
  std::unique_ptr<GradientReducer> reducer_;
  // A micro-batch whose loss was not finite on this rank while accumulating; reported when
  // the ranks agree on the update (distributed only).
  std::string dist_pending_failure_;

  friend class StepContext;
};

/// Settings of one optimizer parameter group; a negative value keeps the optimizer's.
struct OptimizerGroupSpec {
  /// Parameter names, globs or /regexes/ (as attack targets). A parameter joins the first
  /// group that matches it; the rest stay in the default group (group 0).
  std::vector<std::string> params;
  double lr = -1;
  double weight_decay = -1;
  double momentum = -1;  // SGD only
};

/// Optimizer options for MakeOptimizer.
struct OptimizerSpec {
  std::string type = "adam";  // sgd | adam | adamw
  double lr = 1e-3;
  double momentum = 0;
  bool nesterov = false;
  double dampening = 0;
  // Unset: DefaultWeightDecay(type).
  std::optional<double> weight_decay;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
  /// Parameter groups by name (MakeOptimizer from named parameters only).
  std::vector<OptimizerGroupSpec> groups;
};

/// The weight decay of an optimizer type when none is given: 0.01 for AdamW (decoupled
/// decay, PyTorch's default), 0 for SGD and Adam (an L2 penalty, off unless asked for).
double DefaultWeightDecay(const std::string& type);

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<at::Tensor>& params, const OptimizerSpec& spec);
/// From named parameters, with parameter groups: group 0 holds every trainable parameter
/// no group names (it may be empty), then one group per spec.groups entry. Parameters that
/// do not require grad are left out. A group pattern matching no trainable parameter fails
/// (naming it frozen when it matches only frozen ones).
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<NamedParameter>& params, const OptimizerSpec& spec);
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const torch::OrderedDict<std::string, at::Tensor>& params,
                                                       const OptimizerSpec& spec);

/// Loss specification for ComputeLoss and LossFromModule.
struct LossSpec {
  /// cross_entropy | bce_with_logits | mse | model (the model's forward returns the loss:
  /// see LossFromModule; ComputeLoss does not take it).
  std::string type = "cross_entropy";
  double label_smoothing = 0;
  at::Tensor class_weights;            // optional, cross_entropy
  int64_t ignore_index = -100;         // cross_entropy: targets equal to it count for nothing
};

/// loss(output, target) as the spec says (mean reduction). Cross-entropy takes logits
/// [B, C] with targets [B], class-last logits [B, T, C] (or [B, T1, T2, C], ...) with
/// targets [B, T] (token level), or PyTorch's class-second layout [B, C, d1, ...] with
/// targets [B, d1, ...]; targets equal to ignore_index count for nothing. With
/// `check_targets`, class indices are checked against the output's classes first (a host
/// sync when the target is on a GPU); a caller that checked them once per batch passes false.
at::Tensor ComputeLoss(const LossSpec& spec, const at::Tensor& output, const at::Tensor& target,
                       bool check_targets = true);

/// The smallest and largest class index of an int64 target, ignoring `ignore_index`
/// (one host read).
std::pair<int64_t, int64_t> TargetRange(const at::Tensor& target, int64_t ignore_index = -100);
/// The number of classes of cross-entropy logits for this target (the size of the class
/// dimension ComputeLoss uses).
int64_t ClassCount(const at::Tensor& output, const at::Tensor& target);
/// Fails with a clear message when a class index in [lo, hi] is outside [0, classes).
void CheckTargetRange(int64_t lo, int64_t hi, int64_t classes);

/// Whether `name` matches a target pattern (exact, glob, or /regex/).
bool MatchesTarget(const std::string& pattern, const std::string& name);

}  // namespace engine
}  // namespace dropattack
