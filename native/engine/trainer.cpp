// The Trainer: its checks of the attack configuration and the resolution of targets; the
// step itself is step.cpp and the methods' runs are methods/*.cpp.
#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <regex>
#include <sstream>

#include "engine.h"
#include "fused_adam.h"
#include "methods/registry.h"
#include "reducer.h"
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

std::vector<NamedParameter> FromOrderedDict(const torch::OrderedDict<std::string, at::Tensor>& d) {
  std::vector<NamedParameter> out;
  for (const auto& item : d) out.emplace_back(item.key(), item.value());
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::ostringstream list;
  for (size_t i = 0; i < names.size(); ++i) list << (i ? ", " : "") << names[i];
  return list.str();
}

// The frozen parameters a pattern matches (for the error when it matches nothing else).
std::vector<std::string> FrozenMatches(const std::string& pattern, const std::vector<std::string>& frozen) {
  std::vector<std::string> out;
  for (const auto& n : frozen) {
    if (MatchesTarget(pattern, n)) out.push_back(n);
  }
  return out;
}

}  // namespace

bool IsInputTarget(const std::string& p) {
  if (p == "input") return true;
  if (p.size() > 6 && p.compare(0, 6, "input:") == 0) return true;
  if (p.size() > 7 && p.compare(0, 6, "input[") == 0 && p.back() == ']') {
    return p.find_first_not_of("0123456789", 6) == p.size() - 1;
  }
  return false;
}

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

Trainer::Trainer(const torch::OrderedDict<std::string, at::Tensor>& parameters, AttackConfig attack,
                 std::unique_ptr<torch::optim::Optimizer> optimizer)
    : Trainer(FromOrderedDict(parameters), std::move(attack), std::move(optimizer)) {}

Trainer::Trainer(std::vector<NamedParameter> parameters, AttackConfig attack,
                 std::unique_ptr<torch::optim::Optimizer> optimizer)
    : attack_(std::move(attack)), optimizer_(std::move(optimizer)) {
  TORCH_CHECK(optimizer_ != nullptr, "Trainer: an optimizer is required");
  for (auto& p : parameters) {
    TORCH_CHECK(p.second.defined(), "Trainer: parameter ", p.first, " is undefined");
    if (!p.second.requires_grad()) {
      frozen_.push_back(p.first);  // not trained; named in errors about targets
      continue;
    }
    TORCH_CHECK(p.second.is_leaf(), "Trainer: parameter ", p.first, " must be a leaf tensor");
    params_.push_back(std::move(p));
  }
  TORCH_CHECK(!params_.empty(), "Trainer: no trainable parameters (every parameter is frozen: ", JoinNames(frozen_), ")");
  for (const auto& group : optimizer_->param_groups()) base_lrs_.push_back(group.options().get_lr());
  AttackConfig& a = attack_;
  TORCH_CHECK(a.k >= 1 && a.k <= kMaxAttackSteps, "attack.k must be in [1, ", kMaxAttackSteps, "], got ", a.k);
  TORCH_CHECK(!a.alpha || (std::isfinite(*a.alpha) && *a.alpha > 0), "attack.alpha must be a finite number > 0, got ",
              *a.alpha);
  TORCH_CHECK(std::isfinite(a.rho) && a.rho >= 0, "attack.rho must be a finite number >= 0, got ", a.rho);
  TORCH_CHECK(std::isfinite(a.eta) && a.eta >= 0, "attack.eta must be a finite number >= 0, got ", a.eta);
  TORCH_CHECK(a.groups.size() <= kMaxGroups, "attack: at most ", kMaxGroups, " groups");
  const methods::Strategy& method = methods::Of(a.method);
  methods::Validate(method, a);
  TORCH_CHECK(!method.needs_alpha || a.alpha, "attack.alpha (the step size) is required for ", method.name);
  std::vector<std::string> names;
  for (const auto& p : params_) names.push_back(p.first);
  for (size_t g = 0; g < a.groups.size(); ++g) {
    AttackGroup& group = a.groups[g];
    TORCH_CHECK(group.epsilon || !method.needs_epsilon, "attack.groups[", g, "].epsilon is required for method ",
                method.name);
    TORCH_CHECK(!group.epsilon || (std::isfinite(*group.epsilon) && *group.epsilon >= 0), "attack.groups[", g,
                "].epsilon must be a finite number >= 0, got ", *group.epsilon);
    TORCH_CHECK(group.p >= 0 && group.p <= 1, "attack.groups[", g, "].p must be in [0, 1], got ", group.p);
    TORCH_CHECK(group.sparse == "auto" || group.sparse == "on" || group.sparse == "off", "attack.groups[", g,
                "].sparse must be auto, on or off, got '", group.sparse, "'");
    TORCH_CHECK(!group.targets.empty(), "attack.groups[", g, "].targets must not be empty");
    if (method.full_p) group.p = 1.0;
    std::vector<Target> resolved;
    bool input = false;
    std::vector<bool> taken(params_.size(), false);
    for (const std::string& pattern : group.targets) {
      if (IsInputTarget(pattern)) {
        TORCH_CHECK(attacked_input_.empty() || attacked_input_ == pattern, "attack.groups[", g, "]: target '", pattern,
                    "' is another input than '", attacked_input_, "'; every group must attack the same input");
        attacked_input_ = pattern;
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
        const std::vector<std::string> frozen = FrozenMatches(pattern, frozen_);
        TORCH_CHECK(frozen.empty(), "attack.groups[", g, "]: target '", pattern, "' names frozen parameter(s) ",
                    JoinNames(frozen), " (requires_grad is false, so they are not trained or attacked); unfreeze them "
                    "before making the trainer, or drop them from the targets");
        TORCH_CHECK(false, "attack.groups[", g, "]: target '", pattern, "' matches no parameter; the parameters are: ",
                    JoinNames(names), frozen_.empty() ? "" : "; frozen: ", JoinNames(frozen_),
                    " (or 'input', 'input[k]', 'input:name' for a float input)");
      }
    }
    // The input first (it comes before every parameter in the model), then parameters in
    // model order.
    if (input) {
      resolved.push_back(Target{attacked_input_, -1, false});
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
    TORCH_CHECK(resolved.size() <= kMaxTargetsPerGroup, "attack.groups[", g, "]: at most ", kMaxTargetsPerGroup,
                " targets per group");
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

void Trainer::set_distributed(DistributedConfig config) {
  TORCH_CHECK(config.comm != nullptr, "Trainer: distributed training needs a process group");
  TORCH_CHECK(config.direction == "local" || config.direction == "allreduced",
              "distributed.direction must be 'local' or 'allreduced', got '", config.direction, "'");
  TORCH_CHECK(config.bucket_bytes >= 1, "distributed.bucketBytes must be >= 1, got ", config.bucket_bytes);
  TORCH_CHECK(!has_pending_micro_batch_, "Trainer: cannot start distributed training between micro-batches");
  std::vector<at::Tensor> tensors;
  for (const auto& p : params_) tensors.push_back(p.second.detach());
  config.comm->Broadcast(tensors, 0);
  std::vector<at::Tensor> trained;
  for (const auto& p : params_) trained.push_back(p.second);
  reducer_ = std::make_unique<GradientReducer>(config.comm, std::move(trained), config.bucket_bytes);
  dist_ = std::move(config);
}

Trainer::~Trainer() = default;

StepResult Trainer::step(const Batch& batch, const LossFn& loss, const StepOptions& options) {
  StepContext context(*this, batch, loss, options);
  return context.Run();
}

double DefaultWeightDecay(const std::string& type) { return type == "adamw" ? 0.01 : 0.0; }

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<at::Tensor>& params, const OptimizerSpec& spec) {
  OptimizerSpec s = spec;
  if (!s.weight_decay) s.weight_decay = DefaultWeightDecay(s.type);
  const double weight_decay = *s.weight_decay;
  TORCH_CHECK(std::isfinite(s.lr) && s.lr >= 0, "optimizer.lr must be a finite number >= 0, got ", s.lr);
  TORCH_CHECK(std::isfinite(weight_decay) && weight_decay >= 0, "optimizer.weightDecay must be >= 0, got ",
              weight_decay);
  if (s.type == "sgd") {
    TORCH_CHECK(s.momentum >= 0, "optimizer.momentum must be >= 0, got ", s.momentum);
    TORCH_CHECK(!s.nesterov || (s.momentum > 0 && s.dampening == 0),
                "optimizer.nesterov needs momentum > 0 and dampening 0");
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(s.lr).momentum(s.momentum).nesterov(s.nesterov).dampening(s.dampening).weight_decay(
                    weight_decay));
  }
  TORCH_CHECK(s.beta1 >= 0 && s.beta1 < 1 && s.beta2 >= 0 && s.beta2 < 1, "optimizer.betas must be in [0, 1), got [",
              s.beta1, ", ", s.beta2, "]");
  TORCH_CHECK(s.eps > 0, "optimizer.eps must be > 0, got ", s.eps);
  if (s.type == "adam") {
    // torch::optim::Adam's options, state and checkpoints, one pass per CPU parameter.
    return std::make_unique<FusedAdam>(params, torch::optim::AdamOptions(s.lr)
                                                            .betas({s.beta1, s.beta2})
                                                            .eps(s.eps)
                                                            .weight_decay(weight_decay)
                                                            .amsgrad(s.amsgrad));
  }
  if (s.type == "adamw") {
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(s.lr)
                                                             .betas({s.beta1, s.beta2})
                                                             .eps(s.eps)
                                                             .weight_decay(weight_decay)
                                                             .amsgrad(s.amsgrad));
  }
  TORCH_CHECK(false, "optimizer.type must be sgd, adam or adamw, got '", s.type, "'");
}

namespace {

std::unique_ptr<torch::optim::OptimizerOptions> GroupOptions(const OptimizerSpec& s, const OptimizerGroupSpec& g,
                                                             size_t k) {
  const std::string where = "optimizer.groups[" + std::to_string(k) + "]";
  const double lr = g.lr >= 0 ? g.lr : s.lr;
  const double wd = g.weight_decay >= 0 ? g.weight_decay : s.weight_decay.value_or(DefaultWeightDecay(s.type));
  TORCH_CHECK(std::isfinite(lr) && std::isfinite(wd), where, ": lr and weightDecay must be finite");
  if (s.type == "sgd") {
    TORCH_CHECK(g.momentum < 0 || std::isfinite(g.momentum), where, ".momentum must be finite");
    const double momentum = g.momentum >= 0 ? g.momentum : s.momentum;
    TORCH_CHECK(!s.nesterov || (momentum > 0 && s.dampening == 0), where, ": nesterov needs momentum > 0");
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(lr).momentum(momentum).nesterov(s.nesterov).dampening(s.dampening).weight_decay(wd));
  }
  TORCH_CHECK(g.momentum < 0, where, ".momentum is for SGD only");
  if (s.type == "adam") {
    return std::make_unique<torch::optim::AdamOptions>(
        torch::optim::AdamOptions(lr).betas({s.beta1, s.beta2}).eps(s.eps).weight_decay(wd).amsgrad(s.amsgrad));
  }
  return std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(lr).betas({s.beta1, s.beta2}).eps(s.eps).weight_decay(wd).amsgrad(s.amsgrad));
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<NamedParameter>& params, const OptimizerSpec& s) {
  std::vector<at::Tensor> trainable;
  std::vector<std::string> names, frozen;
  for (const auto& p : params) {
    if (p.second.requires_grad()) {
      trainable.push_back(p.second);
      names.push_back(p.first);
    } else {
      frozen.push_back(p.first);
    }
  }
  OptimizerSpec plain = s;
  plain.groups.clear();
  std::unique_ptr<torch::optim::Optimizer> base = MakeOptimizer(trainable, plain);  // checks the shared settings
  if (s.groups.empty()) return base;
  std::vector<std::vector<at::Tensor>> members(s.groups.size() + 1);
  std::vector<bool> any(s.groups.size(), false);
  for (size_t i = 0; i < trainable.size(); ++i) {
    size_t into = 0;
    for (size_t k = 0; k < s.groups.size() && into == 0; ++k) {
      for (const auto& pattern : s.groups[k].params) {
        if (MatchesTarget(pattern, names[i])) {
          into = k + 1;
          break;
        }
      }
    }
    members[into].push_back(trainable[i]);
    if (into > 0) any[into - 1] = true;
  }
  for (size_t k = 0; k < s.groups.size(); ++k) {
    TORCH_CHECK(!s.groups[k].params.empty(), "optimizer.groups[", k, "].params must not be empty");
    if (any[k]) continue;
    std::vector<std::string> hit;
    for (const auto& pattern : s.groups[k].params) {
      for (const auto& n : FrozenMatches(pattern, frozen)) hit.push_back(n);
    }
    TORCH_CHECK(hit.empty(), "optimizer.groups[", k, "] names only frozen parameter(s) ", JoinNames(hit),
                " (requires_grad is false, so they are not trained)");
    TORCH_CHECK(false, "optimizer.groups[", k, "]: no trainable parameter matches ", JoinNames(s.groups[k].params),
                " (an earlier group may have taken them); the trainable parameters are: ", JoinNames(names));
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(members[0], GroupOptions(s, OptimizerGroupSpec{}, 0));
  for (size_t k = 0; k < s.groups.size(); ++k) groups.emplace_back(members[k + 1], GroupOptions(s, s.groups[k], k));
  if (s.type == "sgd") {
    return std::make_unique<torch::optim::SGD>(groups, static_cast<const torch::optim::SGDOptions&>(base->defaults()));
  }
  if (s.type == "adam") {
    // The fused step (and the row-wise update of sparse gradients) with groups too.
    return std::make_unique<FusedAdam>(groups, static_cast<const torch::optim::AdamOptions&>(base->defaults()));
  }
  return std::make_unique<torch::optim::AdamW>(groups, static_cast<const torch::optim::AdamWOptions&>(base->defaults()));
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const torch::OrderedDict<std::string, at::Tensor>& params,
                                                       const OptimizerSpec& spec) {
  return MakeOptimizer(FromOrderedDict(params), spec);
}

std::pair<int64_t, int64_t> TargetRange(const at::Tensor& target, int64_t ignore_index) {
  if (target.numel() == 0) return {0, -1};
  // Ignored entries become a value inside the range of the others (their minimum), so
  // one read gives both ends: on a GPU, one host sync.
  const at::Tensor keep = target != ignore_index;
  const at::Tensor big = at::full({}, std::numeric_limits<int64_t>::max(), target.options());
  const at::Tensor small = at::full({}, std::numeric_limits<int64_t>::min(), target.options());
  const at::Tensor ends = at::stack({at::where(keep, target, big).min(), at::where(keep, target, small).max()}).to(at::kCPU);
  const int64_t lo = ends[0].item<int64_t>(), hi = ends[1].item<int64_t>();
  if (lo == std::numeric_limits<int64_t>::max()) return {0, -1};  // every entry ignored
  return {lo, hi};
}

namespace {
// Cross-entropy's layout: true when the classes are the last dimension of the output
// (output [B, ..., C] with target [B, ...]), false for PyTorch's class-second layout.
bool ClassLast(const at::Tensor& output, const at::Tensor& target) {
  if (output.dim() != target.dim() + 1) return false;
  return output.sizes().slice(0, output.dim() - 1) == target.sizes() && output.dim() > 2;
}
}  // namespace

int64_t ClassCount(const at::Tensor& output, const at::Tensor& target) {
  if (output.dim() < 2) return 0;
  return ClassLast(output, target) ? output.size(-1) : output.size(1);
}

void CheckTargetRange(int64_t lo, int64_t hi, int64_t classes) {
  if (hi < lo) return;  // empty target
  TORCH_CHECK(lo >= 0 && hi < classes, "cross_entropy: label ", lo < 0 ? lo : hi, " is out of range for ", classes,
              " classes");
}

at::Tensor ComputeLoss(const LossSpec& spec, const at::Tensor& output, const at::Tensor& target, bool check_targets) {
  if (spec.type == "cross_entropy") {
    TORCH_CHECK(output.dim() >= 2, "cross_entropy: the model output must be [batch, classes] (or [batch, tokens, classes]), got shape ",
                output.sizes());
    TORCH_CHECK(target.scalar_type() == at::kLong, "cross_entropy: the target must be int64 class indices, got ",
                target.scalar_type());
    const bool class_last = ClassLast(output, target);
    TORCH_CHECK(class_last || (output.dim() == target.dim() + 1 && output.size(0) == target.size(0) &&
                               output.sizes().slice(2) == target.sizes().slice(1)),
                "cross_entropy: the output's shape ", output.sizes(), " does not fit the target's ", target.sizes(),
                " (expected [B, C] with [B], [B, T, C] with [B, T], or [B, C, d1, ...] with [B, d1, ...])");
    if (check_targets) {
      const auto range = TargetRange(target, spec.ignore_index);
      CheckTargetRange(range.first, range.second, ClassCount(output, target));
    }
    c10::optional<at::Tensor> weights;
    if (spec.class_weights.defined()) weights = spec.class_weights.to(output.device(), output.scalar_type());
    // Token level: [B, T, C] logits as B*T rows of C classes (the same mean over the
    // non-ignored tokens as PyTorch's [B, C, T] layout).
    const at::Tensor logits = class_last ? output.reshape({-1, output.size(-1)}) : output;
    const at::Tensor labels = class_last ? target.reshape({-1}) : target;
    return at::cross_entropy_loss(logits, labels, weights, at::Reduction::Mean, spec.ignore_index, spec.label_smoothing);
  }
  if (spec.type == "bce_with_logits") {
    return at::binary_cross_entropy_with_logits(output, target.to(output.scalar_type()), {}, {}, at::Reduction::Mean);
  }
  if (spec.type == "mse") return at::mse_loss(output, target.to(output.scalar_type()));
  TORCH_CHECK(spec.type != "model", "loss.type 'model' takes the loss from the model's forward (LossFromModule), "
              "not from ComputeLoss");
  TORCH_CHECK(false, "loss.type must be cross_entropy, bce_with_logits, mse or model, got '", spec.type, "'");
}

}  // namespace engine
}  // namespace dropattack
