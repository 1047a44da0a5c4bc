// How a TorchScript model's forward becomes the loss of a training step: the policy that
// Node's Trainer uses, so that a C++ program gets exactly the same behaviour.
//
//  - forward arguments given by position and by name, checked against the forward's
//    schema (a wrong type names the argument), defaults filled in;
//  - the attacked input chosen by position or name (Trainer::attacked_input());
//  - the token ids of the row-sparse path: explicit, or the one int64 argument that is
//    unambiguous (see TokenIds);
//  - the output unwrapped: a tensor, the first item of a tuple/list, or a dict's "logits"
//    entry; with loss type "model", the forward's scalar output, the first item of a
//    tuple/list, or a dict's "loss" entry;
//  - training mode during the step and eval mode during evaluation, each module's own
//    mode restored after (as Lightning does);
//  - optionally, buffers (BatchNorm's running statistics) kept to what the clean pass made
//    of them during the attack passes;
//  - bf16 autocast of every forward, and the class-index check once per batch.
#pragma once

#include <torch/script.h>

#include <string>
#include <utility>
#include <vector>

#include "engine.h"

namespace dropattack {
namespace engine {

/// A model's forward arguments as a Python call gives them: positional, then by name.
struct ModelInputs {
  std::vector<c10::IValue> args;
  std::vector<std::pair<std::string, c10::IValue>> kwargs;
};

/// One forward argument after the schema has placed it.
struct BoundArgument {
  std::string name;
  c10::IValue value;
};

/// Places `inputs` on forward's parameters (as Python does: positional first, then by
/// name, then defaults), checking counts, names and types; errors name the argument.
/// `where` starts each message ("Module.forward", "Trainer.step").
std::vector<BoundArgument> BindArguments(const torch::jit::Module& module, const ModelInputs& inputs, const std::string& where);

/// Runs forward on bound arguments. A TorchScript failure becomes a c10::Error whose first
/// line says what went wrong in the caller's terms: for a dtype mismatch, which argument
/// has which dtype and which one the model expects; the TorchScript trace follows.
c10::IValue RunForward(torch::jit::Module& module, const std::vector<BoundArgument>& args, const std::string& where);

/// The token ids for the row-sparse path among the bound arguments: an int64 tensor named
/// input_ids, token_ids, tokens or ids when exactly one is; else the only int64 tensor
/// argument; else none (`*ambiguous` then lists the int64 arguments).
at::Tensor TokenIds(const std::vector<BoundArgument>& args, std::vector<std::string>* ambiguous = nullptr);

/// What a forward returned, split into the loss (loss type "model") and the logits.
struct ModelOutput {
  at::Tensor loss;    // defined for loss type "model"
  at::Tensor logits;  // the prediction, when the output holds one
};
ModelOutput UnwrapOutput(const c10::IValue& out, bool model_loss, const std::string& where);

struct LossFromModuleOptions {
  LossSpec loss;
  /// Every forward under autocast to bfloat16 on the parameters' device.
  bool autocast_bf16 = false;
  /// Keep the module's buffers (BatchNorm's running statistics, its batch counter) as the
  /// clean pass left them during the attack passes, so only the clean pass updates them.
  /// Default false: every pass updates them, as a PyTorch DropAttack loop does.
  bool freeze_buffers_in_attack = false;
};

/// Loss and output of one evaluation batch.
struct EvalResult {
  double loss = 0;      // NaN when the model gives no loss (type "model" without one)
  int64_t count = 0;    // how many items the mean runs over (non-ignored targets, rows, ...)
  at::Tensor logits;    // on the CPU; undefined when the output has none
};

/// The loss of a TorchScript module, for Trainer::step and for evaluation.
class LossFromModule {
 public:
  LossFromModule(torch::jit::Module module, LossFromModuleOptions options);

  /// One training step of `trainer` on a batch: training mode, the inputs moved to the
  /// parameters' device, the attacked input and token ids found, then Trainer::step with
  /// this module's loss. `target` may be undefined for loss type "model"; `token_ids`
  /// overrides the automatic choice.
  StepResult Step(Trainer& trainer, const ModelInputs& inputs, const at::Tensor& target, const StepOptions& options,
                  const at::Tensor& token_ids = {});

  /// Loss and logits of a batch in eval mode, without gradients.
  EvalResult Evaluate(const ModelInputs& inputs, const at::Tensor& target);

  const LossFromModuleOptions& options() const { return options_; }
  torch::jit::Module& module() { return module_; }
  /// Where the module's parameters are (the CPU when it has none).
  at::Device device() const;

 private:
  torch::jit::Module module_;
  LossFromModuleOptions options_;
};

/// Sets the module (and every submodule) to training or eval mode and puts each one's own
/// mode back when it goes out of scope.
class ModeGuard {
 public:
  ModeGuard(torch::jit::Module& module, bool training);
  ~ModeGuard();
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  std::vector<std::pair<torch::jit::Module, bool>> saved_;
};

}  // namespace engine
}  // namespace dropattack
