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
/// multiply and an add). Parameters it cannot take (another device or dtype, a sparse or
/// non-contiguous gradient, amsgrad) go through torch::optim::Adam::step().
class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace engine
}  // namespace dropattack
