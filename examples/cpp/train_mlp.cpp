// A plain LibTorch program training its own torch::nn::Module with DropAttack through the
// engine's C++ API: targets by parameter name, and a closure that computes the loss of
// the current batch. Prints the clean and adversarial losses and the held-out accuracy of
// plain training and of DropAttack-1 on the same data and seed.
//
//   train_mlp [--steps N]
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/engine.h"

namespace de = dropattack::engine;

struct Net : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, out{nullptr};
  Net() {
    fc1 = register_module("fc1", torch::nn::Linear(2, 64));
    fc2 = register_module("fc2", torch::nn::Linear(64, 64));
    out = register_module("out", torch::nn::Linear(64, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return out->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(x)))));
  }
};

// Two noisy interleaved spirals.
static std::pair<torch::Tensor, torch::Tensor> Spirals(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto t = 0.25 + 2.75 * at::rand({n}, gen);
  auto cls = at::arange(n, at::kLong).remainder(2);
  auto angle = t * (2 * M_PI * 0.55) + cls.to(at::kFloat) * M_PI;
  auto r = t / 3;
  auto x = at::stack({r * at::cos(angle), r * at::sin(angle)}, 1) + 0.18 * (at::rand({n, 2}, gen) - 0.5);
  return {x, cls};
}

static double Run(const char* label, bool attack, int steps) {
  torch::manual_seed(1);
  auto net = std::make_shared<Net>();
  std::vector<de::NamedParameter> params;
  std::vector<at::Tensor> tensors;
  for (const auto& p : net->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    tensors.push_back(p.value());
  }
  de::AttackConfig config;
  if (attack) {
    config.method = de::Method::kDropAttack;
    config.k = 1;
    config.seed = 7;
    config.groups = {de::AttackGroup{{"fc1.weight"}, 0.5, 0.5, false, "off"},
                     de::AttackGroup{{"fc2.weight"}, 0.5, 0.5, false, "off"}};
  }
  de::OptimizerSpec opt;
  opt.type = "sgd";
  opt.lr = 0.05;
  opt.momentum = 0.9;
  de::Trainer trainer(params, config, de::MakeOptimizer(tensors, opt));
  auto [x, y] = Spirals(300, 1);
  auto [tx, ty] = Spirals(2000, 2);
  de::LossSpec loss;
  for (int s = 0; s < steps; ++s) {
    for (int64_t b = 0; b < 300; b += 50) {
      de::Batch batch;
      batch.input = x.narrow(0, b, 50);
      const at::Tensor labels = y.narrow(0, b, 50);
      auto r = trainer.step(batch, [&](const at::Tensor& input) { return de::ComputeLoss(loss, net->forward(input), labels); });
      if (!r.applied) {
        std::fprintf(stderr, "%s: step not applied: %s\n", label, r.reason.c_str());
        std::exit(1);
      }
      if (b == 0 && (s % 10 == 0 || s == steps - 1)) {
        std::printf("[%s] epoch %3d  clean loss %.4f", label, s, r.clean_loss);
        for (double l : r.group_losses) std::printf("  adversarial %.4f", l);
        std::printf("\n");
      }
    }
  }
  torch::NoGradGuard no_grad;
  const double acc = net->forward(tx).argmax(1).eq(ty).to(at::kFloat).mean().item<double>();
  std::printf("[%s] held-out accuracy %.2f%%\n", label, 100 * acc);
  return acc;
}

int main(int argc, char** argv) {
  int steps = 80;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0) steps = std::atoi(argv[i + 1]);
  }
  at::set_num_threads(1);
  const double plain = Run("plain", false, steps);
  const double dropattack = Run("DropAttack-1", true, steps);
  // A sanity floor, not a comparison: both must have learned something.
  return plain > 0.6 && dropattack > 0.6 ? 0 : 1;
}
