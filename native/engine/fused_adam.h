// Adam with one fused pass over each parameter on the CPU.
#pragma once

#include <torch/optim/adam.h>

namespace dropattack {
namespace engine {

/// torch::optim::Adam with the same options, state and checkpoint format, whose step()
/// updates each float32 CPU parameter in one pass over (parameter, gradient, first and
/// second moment). LibTorch's step makes five passes and two temporaries of the
/// parameter's size (the denominator), which for a 250k x 300 embedding table is 600 MB
/// of fresh memory and about 5 GB of memory traffic per step. The arithmetic is Adam's,
/// in the same order per element (float32, bias corrections in double as LibTorch does);
/// results match LibTorch's to float rounding (its vectorized kernels may contract a
/// multiply and an add). Parameters it cannot take (another device or dtype, a
/// non-contiguous gradient, amsgrad) go through torch::optim::Adam::step().
///
/// A parameter whose gradient is sparse (an embedding with a sparse gradient) is updated
/// row-wise as torch.optim.SparseAdam does (lazy Adam): the gradient is coalesced
/// (duplicate rows summed), and only its rows update their moments and values; the bias
/// corrections use the parameter's step count, which counts every optimizer step in
/// which it had a gradient (as SparseAdam's state['step']). Its state is Adam's (step,
/// exp_avg, exp_avg_sq, dense), so checkpoints are those of a dense parameter. SparseAdam
/// has no weight decay and no amsgrad: the parameter's group must have weight_decay 0
/// and amsgrad off, or the step fails naming them.
class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  torch::optim::AdamParamState& State(const at::Tensor& p);
  void SparseStep(at::Tensor& p, const torch::optim::AdamOptions& o);
};

/// Fails with a clear message when `optimizer` cannot update parameter `name`, whose
/// gradient is sparse: FusedAdam takes it (weight decay 0, no amsgrad), torch::optim::SGD
/// without momentum and weight decay too; torch::optim::Adam and AdamW cannot.
void CheckSparseGradient(torch::optim::Optimizer& optimizer, const at::Tensor& p, const std::string& name);

}  // namespace engine
}  // namespace dropattack
