// ctest: the engine's C++ API used from a plain LibTorch program, with a torch::nn::Module.
// Prints one line per check and "N passed, M failed".
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "engine/engine.h"
#include "engine/methods/registry.h"

namespace de = dropattack::engine;

static int passed = 0, failed = 0;
static void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  (ok ? passed : failed)++;
}

struct TextNet : torch::nn::Module {
  torch::nn::Embedding embed{nullptr};
  torch::nn::Linear fc{nullptr};
  TextNet() {
    embed = register_module("embed", torch::nn::Embedding(1000, 16));
    fc = register_module("fc", torch::nn::Linear(16, 3));
  }
  torch::Tensor forward(const torch::Tensor& tokens) { return fc->forward(embed->forward(tokens).mean(1)); }
};

// The same with nn.Embedding(sparse=True): the table's gradient is sparse.
struct SparseTextNet : torch::nn::Module {
  torch::nn::Embedding embed{nullptr};
  torch::nn::Linear fc{nullptr};
  explicit SparseTextNet(bool sparse) {
    embed = register_module("embed", torch::nn::Embedding(torch::nn::EmbeddingOptions(1000, 16).sparse(sparse)));
    fc = register_module("fc", torch::nn::Linear(16, 3));
  }
  torch::Tensor forward(const torch::Tensor& tokens) { return fc->forward(embed->forward(tokens).mean(1)); }
};

static de::AttackConfig DropAttack(const std::string& sparse, double p);

// torch.optim.SparseAdam's update (torch/optim/_functional.py, sparse_adam) in ATen ops.
static void ReferenceSparseAdam(at::Tensor p, at::Tensor grad, at::Tensor m, at::Tensor v, int64_t step, double lr) {
  at::NoGradGuard no_grad;
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  grad = grad.coalesce();
  const at::Tensor rows = grad._indices()[0], values = grad._values();
  const at::Tensor m_old = m.index_select(0, rows), v_old = v.index_select(0, rows);
  const at::Tensor m_upd = (values - m_old).mul_(1 - b1);
  m.index_add_(0, rows, m_upd);
  const at::Tensor v_upd = values.pow(2).sub_(v_old).mul_(1 - b2);
  v.index_add_(0, rows, v_upd);
  const at::Tensor numer = m_upd + m_old;
  const at::Tensor denom = (v_upd + v_old).sqrt_().add_(eps);
  const double step_size = lr * std::sqrt(1 - std::pow(b2, step)) / (1 - std::pow(b1, step));
  p.index_add_(0, rows, numer.div(denom).mul(-step_size));
}

static void SparseChecks() {
  auto make = [](bool sparse) {
    torch::manual_seed(9);
    return std::make_shared<SparseTextNet>(sparse);
  };
  auto named = [](const std::shared_ptr<SparseTextNet>& net) {
    std::vector<de::NamedParameter> params;
    for (const auto& p : net->named_parameters()) params.emplace_back(p.key(), p.value());
    return params;
  };
  auto batch_of = [](int s) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + s);
    // Tokens in [0, 60) with repeats; labels in [0, 3).
    return std::make_pair(at::randint(0, 60, {6, 9}, gen, at::kLong), at::randint(0, 3, {6}, gen, at::kLong));
  };
  de::LossSpec loss;
  const double lr = 0.05;
  {
    // Plain training: the engine's Adam against SparseAdam (table) + torch::optim::Adam (fc).
    auto net = make(true), ref = make(true);
    de::OptimizerSpec opt;
    opt.type = "adam";
    opt.lr = lr;
    de::Trainer trainer(named(net), de::AttackConfig{}, de::MakeOptimizer(named(net), opt));
    std::vector<at::Tensor> rest;
    for (const auto& p : ref->named_parameters()) {
      if (p.key() != "embed.weight") rest.push_back(p.value());
    }
    torch::optim::Adam adam(rest, torch::optim::AdamOptions(lr));
    at::Tensor table = ref->embed->weight;
    at::Tensor m = at::zeros_like(table), v = at::zeros_like(table);
    bool sparse_grad = true;
    for (int s = 0; s < 4; ++s) {
      auto b = batch_of(s);
      de::Batch batch;
      batch.input = b.first;
      trainer.step(batch, [&](const at::Tensor& x) { return de::ComputeLoss(loss, net->forward(x), b.second); });
      adam.zero_grad();
      table.mutable_grad() = at::Tensor();
      de::ComputeLoss(loss, ref->forward(b.first), b.second).backward();
      sparse_grad = sparse_grad && table.grad().is_sparse();
      ReferenceSparseAdam(table, table.grad(), m, v, s + 1, lr);
      adam.step();
    }
    double worst = 0;
    auto a = net->named_parameters();
    for (const auto& kv : ref->named_parameters()) worst = std::max(worst, (kv.value() - a[kv.key()]).abs().max().item<double>());
    Check(sparse_grad && worst < 1e-6,
          "a sparse embedding gradient: Adam updates the table as SparseAdam (max diff " + std::to_string(worst) + ")");
    // Rows no batch held are untouched (lazy), bit for bit.
    auto fresh = make(true);
    Check(at::equal(net->embed->weight.narrow(0, 60, 940), fresh->embed->weight.narrow(0, 60, 940)),
          "rows outside every batch keep their values");
  }
  {
    // DropAttack on the sparse-gradient table: the first step's losses equal the dense
    // gradient's; with lr 0 every parameter is restored bit for bit.
    std::vector<de::StepResult> results;
    for (bool sparse : {true, false}) {
      auto net = make(sparse);
      auto fresh = make(sparse);
      de::OptimizerSpec opt;
      opt.type = "adam";
      opt.lr = 0;
      de::Trainer trainer(named(net), DropAttack("auto", 0.5), de::MakeOptimizer(named(net), opt));
      auto b = batch_of(7);
      de::Batch batch;
      batch.input = b.first;
      batch.token_ids = b.first;
      results.push_back(
          trainer.step(batch, [&](const at::Tensor& x) { return de::ComputeLoss(loss, net->forward(x), b.second); }));
      bool same = true;
      auto now = net->named_parameters();
      for (const auto& kv : fresh->named_parameters()) same = same && at::equal(kv.value(), now[kv.key()]);
      Check(same && results.back().sparse_targets.size() == 1,
            std::string("DropAttack on a ") + (sparse ? "sparse" : "dense") + "-gradient table restores exactly");
    }
    const double d0 = std::abs(results[0].group_losses[0] - results[1].group_losses[0]);
    const double d1 = std::abs(results[0].group_losses[1] - results[1].group_losses[1]);
    Check(results[0].clean_loss == results[1].clean_loss && d0 < 1e-6 && d1 < 1e-6,
          "DropAttack with a sparse gradient has the dense gradient's adversarial losses");
  }
  {
    std::string message;
    try {
      auto net = make(true);
      de::OptimizerSpec opt;
      opt.type = "adamw";
      de::Trainer trainer(named(net), de::AttackConfig{}, de::MakeOptimizer(named(net), opt));
      auto b = batch_of(0);
      de::Batch batch;
      batch.input = b.first;
      trainer.step(batch, [&](const at::Tensor& x) { return de::ComputeLoss(loss, net->forward(x), b.second); });
    } catch (const c10::Error& e) {
      message = e.what_without_backtrace();
    }
    Check(message.find("gradient of embed.weight is sparse") != std::string::npos &&
              message.find("'adamw' cannot update a sparse gradient") != std::string::npos,
          "AdamW refuses a sparse gradient, naming it: " + message.substr(0, 120));
  }
}

struct Run {
  std::shared_ptr<TextNet> net;
  std::unique_ptr<de::Trainer> trainer;
  std::vector<de::StepResult> results;
};

static Run Train(de::AttackConfig config, double lr, int steps, bool nan_batch = false) {
  torch::manual_seed(3);
  Run run;
  run.net = std::make_shared<TextNet>();
  std::vector<de::NamedParameter> params;
  std::vector<at::Tensor> tensors;
  for (const auto& p : run.net->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    tensors.push_back(p.value());
  }
  de::OptimizerSpec opt;
  opt.type = "sgd";
  opt.lr = lr;
  run.trainer = std::make_unique<de::Trainer>(params, config, de::MakeOptimizer(tensors, opt));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  de::LossSpec loss;
  for (int s = 0; s < steps; ++s) {
    const at::Tensor tokens = at::randint(0, 200, {8, 12}, gen, at::kLong);
    at::Tensor labels = at::randint(0, 3, {8}, gen, at::kLong);
    de::Batch batch;
    batch.input = tokens;
    batch.token_ids = tokens;
    auto net = run.net;
    run.results.push_back(run.trainer->step(batch, [&, net](const at::Tensor& input) {
      at::Tensor l = de::ComputeLoss(loss, net->forward(input), labels);
      return nan_batch ? l * std::numeric_limits<float>::quiet_NaN() : l;
    }));
  }
  return run;
}

static de::AttackConfig DropAttack(const std::string& sparse, double p) {
  de::AttackConfig c;
  c.method = de::Method::kDropAttack;
  c.k = 2;
  c.seed = 5;
  c.groups = {de::AttackGroup{{"embed.weight"}, 1.0, p, false, sparse}, de::AttackGroup{{"fc.weight"}, 0.3, p, false, "off"}};
  return c;
}

static bool Equal(const Run& a, const Run& b) {
  auto pa = a.net->named_parameters();
  auto pb = b.net->named_parameters();
  for (const auto& kv : pa) {
    if (!at::equal(kv.value(), pb[kv.key()])) return false;
  }
  return true;
}

int main() {
  at::set_num_threads(1);
  {
    Run sparse = Train(DropAttack("on", 0.5), 0.1, 4);
    Run dense = Train(DropAttack("off", 0.5), 0.1, 4);
    Check(Equal(sparse, dense), "row-sparse and dense embedding attacks train to identical parameters");
    Check(!sparse.results[0].sparse_targets.empty() && dense.results[0].sparse_targets.empty(),
          "the sparse run took the row-sparse path and the dense run did not");
    Run autodetect = Train(DropAttack("auto", 0.5), 0.1, 4);
    Check(Equal(autodetect, dense) && autodetect.results[0].sparse_targets.size() == 1,
          "'auto' recognizes embed.weight as an embedding table");
  }
  {
    de::AttackConfig none;
    Run plain = Train(none, 0.3, 3);
    Run p0 = Train(DropAttack("auto", 0.0), 0.1, 3);  // (1 + G) = 3 times the clean gradient
    double worst = 0;
    auto a = plain.net->named_parameters();
    auto b = p0.net->named_parameters();
    for (const auto& kv : a) worst = std::max(worst, (kv.value() - b[kv.key()]).abs().max().item<double>());
    Check(worst < 1e-6, "DropAttack with p = 0 and lr / 3 equals plain training (max diff " + std::to_string(worst) + ")");
  }
  {
    Run bad = Train(DropAttack("auto", 0.5), 0.1, 2, /*nan_batch=*/true);
    torch::manual_seed(3);
    TextNet fresh;
    bool untouched = true;
    auto now = bad.net->named_parameters();
    for (const auto& kv : fresh.named_parameters()) untouched = untouched && at::equal(kv.value(), now[kv.key()]);
    Check(!bad.results[0].applied && bad.results[0].reason.find("not finite") != std::string::npos,
          "a NaN loss is reported as not applied");
    Check(untouched && bad.trainer->global_step() == 0, "a NaN loss leaves every parameter unchanged");
  }
  {
    std::string message;
    try {
      de::AttackConfig c = DropAttack("auto", 0.5);
      c.groups[1].targets = {"fc.wieght"};
      Train(c, 0.1, 1);
    } catch (const c10::Error& e) {
      message = e.what_without_backtrace();
    }
    Check(message.find("target 'fc.wieght' matches no parameter; the parameters are: embed.weight, fc.weight, fc.bias") !=
              std::string::npos,
          "an unknown target lists the parameters: " + message.substr(0, 120));
  }
  {
    Check(de::MatchesTarget("fc.*", "fc.weight") && !de::MatchesTarget("fc.*", "embed.weight"), "glob targets");
    Check(de::MatchesTarget("/^fc\\.w/", "fc.weight") && !de::MatchesTarget("/^fc\\.b$/", "fc.bias"), "regex targets");
  }
  {
    // The registry: every Method has one strategy, its name parses back to it, and the
    // list is the order of docs/methods.md.
    const char* expected[] = {"none", "dropattack", "fgm", "pgd", "freelb", "awp", "sam", "asam"};
    const auto& all = de::methods::All();
    bool ok = all.size() == 8;
    for (size_t m = 0; ok && m < all.size(); ++m) {
      ok = all[m].name == expected[m] && all[m].run != nullptr && de::ParseMethod(expected[m]) == all[m].method &&
           de::MethodName(all[m].method) == expected[m] && &de::methods::Of(all[m].method) == &all[m];
    }
    Check(ok, "the registry lists every method once, in order, and ParseMethod/MethodName map to it");
    std::string message;
    try {
      de::ParseMethod("dropatack");
    } catch (const c10::Error& e) {
      message = e.what_without_backtrace();
    }
    Check(message.find("attack.method must be one of none, dropattack, fgm, pgd, freelb, awp, sam, asam; got 'dropatack'") !=
              std::string::npos,
          "an unknown method lists the methods");
  }
  SparseChecks();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
