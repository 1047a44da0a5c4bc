// The Trainer: its checks of the attack configuration and the resolution of targets; the
// step itself is step.cpp and the methods' runs are methods/*.cpp.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <sstream>

#include "engine.h"
#include "fused_adam.h"
#include "methods/registry.h"
#include "step.h"

namespace dropattack {
namespace engine {

namespace {

bool GlobMatch(const char* p, const char* s) {
  // Iterative matcher for '*' and '?' with backtracking to the last star.
  const char* star = nullptr;
  const char* resume = nullptr;
  while (*s) {
    if (*p == '?' || *p == *s) {
      ++p;
      ++s;
    } else if (*p == '*') {
      star = p++;
      resume = s;
    } else if (star) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (*p == '*') ++p;
  return *p == '\0';
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool LooksLikeEmbedding(const std::string& name, const at::Tensor& t) {
  const std::string n = Lower(name);
  return t.dim() == 2 && n.find("embed") != std::string::npos && n.size() >= 6 &&
         n.compare(n.size() - 6, 6, "weight") == 0;
}

}  // namespace

bool MatchesTarget(const std::string& pattern, const std::string& name) {
  if (pattern.size() >= 2 && pattern.front() == '/' && pattern.back() == '/') {
    try {
      return std::regex_search(name, std::regex(pattern.substr(1, pattern.size() - 2)));
    } catch (const std::regex_error& e) {
      TORCH_CHECK(false, "attack target ", pattern, " is not a valid regular expression: ", e.what());
    }
  }
  if (pattern.find_first_of("*?") != std::string::npos) return GlobMatch(pattern.c_str(), name.c_str());
  return pattern == name;
}

Trainer::Trainer(std::vector<NamedParameter> parameters, AttackConfig attack,
                 std::unique_ptr<torch::optim::Optimizer> optimizer)
    : params_(std::move(parameters)), attack_(std::move(attack)), optimizer_(std::move(optimizer)) {
  TORCH_CHECK(optimizer_ != nullptr, "Trainer: an optimizer is required");
  for (const auto& p : params_) {
    TORCH_CHECK(p.second.defined(), "Trainer: parameter ", p.first, " is undefined");
    TORCH_CHECK(p.second.is_leaf() && p.second.requires_grad(), "Trainer: parameter ", p.first,
                " must be a leaf tensor that requires grad");
  }
  AttackConfig& a = attack_;
  TORCH_CHECK(a.k >= 1 && a.k <= 1000, "attack.k must be in [1, 1000], got ", a.k);
  TORCH_CHECK(std::isfinite(a.alpha) && a.alpha > 0, "attack.alpha must be a finite number > 0, got ", a.alpha);
  TORCH_CHECK(std::isfinite(a.rho) && a.rho >= 0, "attack.rho must be a finite number >= 0, got ", a.rho);
  TORCH_CHECK(std::isfinite(a.eta) && a.eta >= 0, "attack.eta must be a finite number >= 0, got ", a.eta);
  TORCH_CHECK(a.groups.size() < 256, "attack: at most 255 groups");
  const methods::Strategy& method = methods::Of(a.method);
  methods::Validate(method, a);
  std::vector<std::string> names;
  for (const auto& p : params_) names.push_back(p.first);
  for (size_t g = 0; g < a.groups.size(); ++g) {
    AttackGroup& group = a.groups[g];
    TORCH_CHECK(std::isfinite(group.epsilon) && group.epsilon >= 0, "attack.groups[", g,
                "].epsilon must be a finite number >= 0, got ", group.epsilon);
    TORCH_CHECK(group.p >= 0 && group.p <= 1, "attack.groups[", g, "].p must be in [0, 1], got ", group.p);
    TORCH_CHECK(group.sparse == "auto" || group.sparse == "on" || group.sparse == "off", "attack.groups[", g,
                "].sparse must be auto, on or off, got '", group.sparse, "'");
    TORCH_CHECK(!group.targets.empty(), "attack.groups[", g, "].targets must not be empty");
    if (method.full_p) group.p = 1.0;
    std::vector<Target> resolved;
    bool input = false;
    std::vector<bool> taken(params_.size(), false);
    for (const std::string& pattern : group.targets) {
      if (pattern == "input") {
        input = true;
        continue;
      }
      bool any = false;
      for (size_t i = 0; i < params_.size(); ++i) {
        if (MatchesTarget(pattern, params_[i].first)) {
          taken[i] = true;
          any = true;
        }
      }
      if (!any) {
        std::ostringstream list;
        for (size_t i = 0; i < names.size(); ++i) list << (i ? ", " : "") << names[i];
        TORCH_CHECK(false, "attack.groups[", g, "]: target '", pattern, "' matches no parameter; the parameters are: ",
                    list.str(), " (or 'input' for the batch's float input)");
      }
    }
    // The input first (it comes before every parameter in the model), then parameters in
    // model order.
    if (input) {
      resolved.push_back(Target{"input", -1, false});
      targets_input_ = true;
    }
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!taken[i]) continue;
      Target t{params_[i].first, static_cast<int>(i), false};
      const at::Tensor& w = params_[i].second;
      if (group.sparse == "on") {
        TORCH_CHECK(w.dim() >= 1, "attack.groups[", g, "]: sparse 'on' needs tensors with rows; ", t.name, " is 0-d");
        t.sparse = true;
      } else if (group.sparse == "auto") {
        t.sparse = LooksLikeEmbedding(t.name, w);
      }
      if (!method.sparse) t.sparse = false;
      resolved.push_back(t);
    }
    TORCH_CHECK(resolved.size() < 256, "attack.groups[", g, "]: at most 255 targets per group");
    // These methods move all groups at once, so a tensor may belong to one group only.
    if (method.one_group_per_tensor) {
      for (const auto& t : resolved) {
        for (size_t h = 0; h < target_names_.size(); ++h) {
          for (const auto& other : target_names_[h]) {
            TORCH_CHECK(other != t.name, "attack.groups[", g, "]: target ", t.name, " is already in group ", h,
                        "; ", method.name, " moves all groups at once, so a tensor may be in one group only");
          }
        }
      }
    }
    std::vector<std::string> resolved_names;
    for (const auto& t : resolved) resolved_names.push_back(t.name);
    targets_.push_back(std::move(resolved));
    target_names_.push_back(std::move(resolved_names));
  }
}

StepResult Trainer::step(const Batch& batch, const LossFn& loss, const StepOptions& options) {
  StepContext context(*this, batch, loss, options);
  return context.Run();
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<at::Tensor>& params, const OptimizerSpec& s) {
  TORCH_CHECK(std::isfinite(s.lr) && s.lr >= 0, "optimizer.lr must be a finite number >= 0, got ", s.lr);
  TORCH_CHECK(std::isfinite(s.weight_decay) && s.weight_decay >= 0, "optimizer.weightDecay must be >= 0, got ",
              s.weight_decay);
  if (s.type == "sgd") {
    TORCH_CHECK(s.momentum >= 0, "optimizer.momentum must be >= 0, got ", s.momentum);
    TORCH_CHECK(!s.nesterov || (s.momentum > 0 && s.dampening == 0),
                "optimizer.nesterov needs momentum > 0 and dampening 0");
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(s.lr).momentum(s.momentum).nesterov(s.nesterov).dampening(s.dampening).weight_decay(
                    s.weight_decay));
  }
  TORCH_CHECK(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1, "optimizer.betas must be in [0, 1), got [",
              s.beta1, ", ", s.beta2, "]");
  TORCH_CHECK(s.eps > 0, "optimizer.eps must be > 0, got ", s.eps);
  if (s.type == "adam") {
    // torch::optim::Adam's options, state and checkpoints, one pass per CPU parameter.
    return std::make_unique<FusedAdam>(params, torch::optim::AdamOptions(s.lr)
                                                            .betas({s.beta1, s.beta2})
                                                            .eps(s.eps)
                                                            .weight_decay(s.weight_decay)
                                                            .amsgrad(s.amsgrad));
  }
  if (s.type == "adamw") {
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(s.lr)
                                                             .betas({s.beta1, s.beta2})
                                                             .eps(s.eps)
                                                             .weight_decay(s.weight_decay)
                                                             .amsgrad(s.amsgrad));
  }
  TORCH_CHECK(false, "optimizer.type must be sgd, adam or adamw, got '", s.type, "'");
}

std::pair<int64_t, int64_t> TargetRange(const at::Tensor& target) {
  if (target.numel() == 0) return {0, -1};
  // One read for both ends: on a GPU, one host sync.
  const at::Tensor ends = at::stack({target.min(), target.max()}).to(at::kCPU);
  return {ends[0].item<int64_t>(), ends[1].item<int64_t>()};
}

void CheckTargetRange(int64_t lo, int64_t hi, int64_t classes) {
  if (hi < lo) return;  // empty target
  TORCH_CHECK(lo >= 0 && hi < classes, "cross_entropy: label ", lo < 0 ? lo : hi, " is out of range for ", classes,
              " classes");
}

at::Tensor ComputeLoss(const LossSpec& spec, const at::Tensor& output, const at::Tensor& target, bool check_targets) {
  if (spec.type == "cross_entropy") {
    TORCH_CHECK(output.dim() >= 2, "cross_entropy: the model output must be [batch, classes], got shape ", output.sizes());
    TORCH_CHECK(target.scalar_type() == at::kLong, "cross_entropy: the target must be int64 class indices, got ",
                target.scalar_type());
    if (check_targets) {
      const auto range = TargetRange(target);
      CheckTargetRange(range.first, range.second, output.size(1));
    }
    c10::optional<at::Tensor> weights;
    if (spec.class_weights.defined()) weights = spec.class_weights.to(output.device(), output.scalar_type());
    return at::cross_entropy_loss(output, target, weights, at::Reduction::Mean, -100, spec.label_smoothing);
  }
  if (spec.type == "bce_with_logits") {
    return at::binary_cross_entropy_with_logits(output, target.to(output.scalar_type()), {}, {}, at::Reduction::Mean);
  }
  if (spec.type == "mse") return at::mse_loss(output, target.to(output.scalar_type()));
  TORCH_CHECK(false, "loss.type must be cross_entropy, bce_with_logits or mse, got '", spec.type, "'");
}

}  // namespace engine
}  // namespace dropattack
