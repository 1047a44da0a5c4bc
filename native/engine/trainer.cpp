// The training step of every method in docs/methods.md, over the perturbation op.
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <regex>
#include <sstream>

#include "engine.h"
#include "ops/perturb.h"

namespace dropattack {
namespace engine {

Method ParseMethod(const std::string& name) {
  if (name == "none") return Method::kNone;
  if (name == "dropattack") return Method::kDropAttack;
  if (name == "fgm") return Method::kFGM;
  if (name == "pgd") return Method::kPGD;
  if (name == "freelb") return Method::kFreeLB;
  if (name == "awp") return Method::kAWP;
  if (name == "sam") return Method::kSAM;
  if (name == "asam") return Method::kASAM;
  TORCH_CHECK(false, "attack.method must be one of none, dropattack, fgm, pgd, freelb, awp, sam, asam; got '", name, "'");
}

std::string MethodName(Method m) {
  switch (m) {
    case Method::kNone: return "none";
    case Method::kDropAttack: return "dropattack";
    case Method::kFGM: return "fgm";
    case Method::kPGD: return "pgd";
    case Method::kFreeLB: return "freelb";
    case Method::kAWP: return "awp";
    case Method::kSAM: return "sam";
    case Method::kASAM: return "asam";
  }
  return "?";
}

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

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
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
  if (a.method == Method::kNone) {
    TORCH_CHECK(a.groups.empty(), "attack.groups must be empty when attack.method is 'none'");
  } else if (a.method == Method::kSAM || a.method == Method::kASAM) {
    if (a.groups.empty()) a.groups.push_back(AttackGroup{{"*"}, 0.0, 1.0, false, "off"});
  } else {
    TORCH_CHECK(!a.groups.empty(), "attack.groups must name at least one group for method ", MethodName(a.method));
  }
  if (a.method == Method::kFGM) {
    TORCH_CHECK(a.k == 1, "attack.k must be 1 for fgm (use pgd or dropattack for several steps)");
  }
  if (a.method == Method::kAWP) TORCH_CHECK(a.k == 1, "attack.k must be 1 for awp");

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
    if (a.method == Method::kFGM) group.p = 1.0;
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
      if (a.method == Method::kPGD || a.method == Method::kFreeLB) t.sparse = false;
      resolved.push_back(t);
    }
    TORCH_CHECK(resolved.size() < 256, "attack.groups[", g, "]: at most 255 targets per group");
    // These methods move all groups at once, so a tensor may belong to one group only.
    if (a.method == Method::kFreeLB || a.method == Method::kAWP || a.method == Method::kSAM ||
        a.method == Method::kASAM) {
      for (const auto& t : resolved) {
        for (size_t h = 0; h < target_names_.size(); ++h) {
          for (const auto& other : target_names_[h]) {
            TORCH_CHECK(other != t.name, "attack.groups[", g, "]: target ", t.name, " is already in group ", h,
                        "; ", MethodName(a.method), " moves all groups at once, so a tensor may be in one group only");
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

// State of one step: the (possibly perturbed) input, every perturbation not yet undone,
// and the phase clocks. Its destructor restores whatever is still applied, so an
// exception from the loss closure cannot leave a parameter perturbed.
struct StepRun {
  using Clock = std::chrono::steady_clock;
  Trainer& tr;
  const Batch& batch;
  const LossFn& loss_fn;
  const StepOptions& opt;
  StepResult result;
  at::Tensor x;  // the input fed to the model
  // Undo stack: a perturbation state, or a copy to write back (PGD/FreeLB).
  struct Undo {
    at::Tensor target;
    ops::PerturbState state;
    at::Tensor original;  // when set: target.copy_(original)
  };
  std::vector<Undo> undo;
  at::Tensor rows;  // unique token ids for the row-sparse path
  std::vector<at::Tensor> pending_grads;  // gradients of earlier micro-batches (accumulate)
  bool failed = false;

  StepRun(Trainer& t, const Batch& b, const LossFn& f, const StepOptions& o) : tr(t), batch(b), loss_fn(f), opt(o) {}

  ~StepRun() {
    try {
      RestoreAll();
    } catch (...) {
      // Restores are copies into tensors we hold; nothing sensible is left to do.
    }
  }

  void RestoreAll() { RestoreTo(0); }

  // Restores the entries above `mark` on the undo stack, newest first.
  void RestoreTo(size_t mark) {
    at::NoGradGuard no_grad;
    while (undo.size() > mark) {
      Undo& u = undo.back();
      const auto t0 = Clock::now();
      if (u.original.defined()) u.target.copy_(u.original);
      else ops::restore(u.target, u.state);
      result.times.perturb += Seconds(t0, Clock::now());
      undo.pop_back();
    }
  }

  at::Tensor& Tensor(const Trainer::Target& t) { return t.param_index < 0 ? x : tr.params_[t.param_index].second; }

  at::Tensor Grad(const Trainer::Target& t) {
    at::Tensor g = Tensor(t).grad();
    return g.defined() ? g : at::zeros_like(Tensor(t));
  }

  // Forward at the current parameters; backward of loss * weight unless `backward` is
  // false. Returns the loss, or NaN (and sets failed) when it is not finite.
  double Pass(double weight, bool backward = true, at::Tensor* keep = nullptr) {
    const auto t0 = Clock::now();
    at::Tensor loss = loss_fn(x);
    const auto t1 = Clock::now();
    result.times.forward += Seconds(t0, t1);
    TORCH_CHECK(loss.defined() && loss.numel() == 1, "the loss must be a single number, got shape ",
                loss.defined() ? loss.sizes() : at::IntArrayRef{});
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      failed = true;
      return value;
    }
    if (keep != nullptr) *keep = loss;
    if (backward) {
      (loss * (weight * opt.loss_scale)).backward();
      result.times.backward += Seconds(t1, Clock::now());
    }
    return value;
  }

  ops::PerturbOptions PerturbOpts(double radius, double p, size_t g, size_t j) const {
    ops::PerturbOptions o;
    o.epsilon = radius;
    o.p = p;
    o.seed = tr.attack_.seed;
    o.counter = (static_cast<uint64_t>(tr.global_step_) << 16) | (static_cast<uint64_t>(g) << 8) | j;
    return o;
  }

  // Applies perturb() to target t with direction d; returns false when skipped.
  bool Perturb(const Trainer::Target& t, const at::Tensor& d, double radius, double p, size_t g, size_t j) {
    const auto t0 = Clock::now();
    at::Tensor& w = Tensor(t);
    Undo u;
    u.target = w;
    if (t.sparse && rows.defined() && !t.sparse_verified) {
      // "auto" guessed an embedding table from its name. Check once that its gradient
      // vanishes outside the batch's token rows (a positional table or tied weights would
      // not): if not, this target takes the dense path from now on.
      const auto& cfg = tr.attack_.groups[g];
      if (cfg.sparse == "auto") {
        at::NoGradGuard no_grad;
        const bool rows_in_range = rows.numel() > 0 && rows.min().item<int64_t>() >= 0 &&
                                   rows.max().item<int64_t>() < d.size(0);
        const bool ok = rows_in_range && d.index_fill(0, rows, 0).abs().max().item<double>() == 0.0;
        if (!ok) t.sparse = false;
      }
      t.sparse_verified = true;
    }
    if (t.sparse && rows.defined()) {
      u.state = ops::perturb_rows(w, d, rows, PerturbOpts(radius, p, g, j));
      if (std::find(result.sparse_targets.begin(), result.sparse_targets.end(), t.name) == result.sparse_targets.end()) {
        result.sparse_targets.push_back(t.name);
      }
    } else {
      u.state = ops::perturb(w, d, PerturbOpts(radius, p, g, j));
    }
    const bool skipped = u.state.skipped;
    undo.push_back(std::move(u));
    result.times.perturb += Seconds(t0, Clock::now());
    return !skipped;
  }

  void ZeroGrads() {
    for (size_t i = 0; i < tr.params_.size(); ++i) {
      at::Tensor& g = tr.params_[i].second.mutable_grad();
      if (!g.defined()) continue;
      if (!pending_grads.empty() && pending_grads[i].defined()) {
        g.copy_(pending_grads[i]);
      } else {
        g.zero_();
      }
    }
    if (x.defined() && x.grad().defined()) x.mutable_grad().zero_();
  }

  double Radius(const AttackGroup& group, const at::Tensor& w) const {
    if (!group.relative) return group.epsilon;
    return group.epsilon * std::sqrt(ops::squared_norm(w.detach()));
  }

  StepResult Fail(const std::string& reason) {
    RestoreAll();
    for (auto& p : tr.params_) {
      at::Tensor& g = p.second.mutable_grad();
      if (g.defined()) g.zero_();
    }
    tr.has_pending_micro_batch_ = false;
    result.applied = false;
    result.reason = reason;
    return result;
  }

  StepResult Run() {
    const AttackConfig& a = tr.attack_;
    result.group_losses.assign(a.groups.size(), 0.0);
    result.skipped.assign(a.groups.size(), 0);
    x = batch.input;
    if (tr.targets_input_) {
      TORCH_CHECK(batch.input.defined() && at::isFloatingType(batch.input.scalar_type()),
                  "an attack targets 'input', but the batch's first input is not a float tensor");
      x = batch.input.detach().clone().set_requires_grad(true);
    }
    if (batch.token_ids.defined()) rows = batch.token_ids.reshape({-1}).to(at::kLong);
    for (size_t g = 0; g < a.groups.size(); ++g) {
      if (a.groups[g].sparse != "on") continue;
      TORCH_CHECK(rows.defined(), "attack.groups[", g, "].sparse is 'on' but the batch gives no token ids");
    }
    if (tr.has_pending_micro_batch_) {
      for (auto& p : tr.params_) {
        const at::Tensor& g = p.second.grad();
        pending_grads.push_back(g.defined() ? g.clone() : at::Tensor());
      }
    } else {
      for (auto& p : tr.params_) {
        at::Tensor& g = p.second.mutable_grad();
        if (g.defined()) g.zero_();
      }
    }

    switch (a.method) {
      case Method::kNone: {
        result.clean_loss = Pass(1.0);
        if (failed) return Fail("the clean loss is not finite");
        break;
      }
      case Method::kDropAttack:
      case Method::kFGM: {
        if (!RunDropAttack()) return result;
        break;
      }
      case Method::kPGD: {
        if (!RunPGD()) return result;
        break;
      }
      case Method::kFreeLB: {
        if (!RunFreeLB()) return result;
        break;
      }
      case Method::kAWP:
      case Method::kSAM:
      case Method::kASAM: {
        if (!RunWeightAscent()) return result;
        break;
      }
    }
    RestoreAll();
    return Update();
  }

  // The part of each target's current gradient that belongs to this step's clean pass
  // and this group's own passes: current gradient minus `offset`.
  std::vector<at::Tensor> Offsets(const std::vector<Trainer::Target>& targets, const std::vector<at::Tensor>& clean_end,
                                  bool first_group) {
    std::vector<at::Tensor> out(targets.size());
    for (size_t j = 0; j < targets.size(); ++j) {
      const auto& t = targets[j];
      at::Tensor pre = (t.param_index >= 0 && !pending_grads.empty()) ? pending_grads[t.param_index] : at::Tensor();
      if (first_group) {
        out[j] = pre;  // undefined when there is nothing to subtract
      } else {
        // offset = grad at group start - (clean_end - pre)
        at::Tensor o = Grad(t) - clean_end[j];
        if (pre.defined()) o = o + pre;
        out[j] = o;
      }
    }
    return out;
  }

  // The clean pass, then copies of the clean gradients of the targets of every group
  // after the first (the first group reads them straight from .grad). False when the
  // clean loss is not finite.
  bool CleanPass(std::vector<std::vector<at::Tensor>>* clean_end) {
    result.clean_loss = Pass(1.0);
    if (failed) {
      Fail("the clean loss is not finite");
      return false;
    }
    clean_end->assign(tr.attack_.groups.size(), {});
    for (size_t g = 1; g < tr.attack_.groups.size(); ++g) {
      for (const auto& t : tr.targets_[g]) (*clean_end)[g].push_back(Grad(t).clone());
    }
    return true;
  }

  bool RunDropAttack() {
    const AttackConfig& a = tr.attack_;
    std::vector<std::vector<at::Tensor>> clean_end;
    if (!CleanPass(&clean_end)) return false;
    const double k = static_cast<double>(a.k);
    for (size_t g = 0; g < a.groups.size(); ++g) {
      const AttackGroup& group = a.groups[g];
      const auto& targets = tr.targets_[g];
      const std::vector<at::Tensor> offsets = Offsets(targets, clean_end[g], g == 0);
      std::vector<double> radius(targets.size());
      for (size_t j = 0; j < targets.size(); ++j) radius[j] = Radius(group, Tensor(targets[j]));
      const size_t mark = undo.size();
      double total = 0;
      for (int t = 0; t < a.k; ++t) {
        for (size_t j = 0; j < targets.size(); ++j) {
          at::Tensor d = Grad(targets[j]);
          if (offsets[j].defined()) d = d - offsets[j];
          if (!Perturb(targets[j], d, radius[j], group.p, g, j)) result.skipped[g]++;
        }
        const double loss = Pass(1.0 / k);
        if (failed) {
          Fail("an adversarial loss of group " + std::to_string(g) + " is not finite");
          return false;
        }
        total += loss / k;
      }
      RestoreTo(mark);
      result.group_losses[g] = total;
    }
    return true;
  }

  // w <- w0 + Proj_r(delta); returns delta's new value.
  // Computed on the tensor's device (no host read): factor = radius / ||delta|| when the
  // norm exceeds the radius, else 1 (a zero or non-finite norm leaves delta as it is).
  static at::Tensor Project(const at::Tensor& delta, double radius) {
    const at::Tensor n = delta.norm().to(at::kDouble);
    const at::Tensor factor = at::where(n > radius, radius / n, at::ones_like(n));
    // A 0-dim factor does not change the result's dtype; float (or double) as a scalar would be.
    return delta * factor.to(delta.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  }

  static bool Step(const at::Tensor& g, double alpha, at::Tensor* delta) {
    const double n = std::sqrt(ops::squared_norm(g.contiguous()));
    if (!(n > 0) || !std::isfinite(n)) return false;
    *delta = *delta + g * (alpha / n);
    return true;
  }

  bool RunPGD() {
    const AttackConfig& a = tr.attack_;
    std::vector<std::vector<at::Tensor>> clean_end;
    if (!CleanPass(&clean_end)) return false;
    for (size_t g = 0; g < a.groups.size(); ++g) {
      const AttackGroup& group = a.groups[g];
      const auto& targets = tr.targets_[g];
      const std::vector<at::Tensor> offsets = Offsets(targets, clean_end[g], g == 0);
      const size_t mark = undo.size();
      std::vector<at::Tensor> w0(targets.size()), delta(targets.size()), steer(targets.size());
      std::vector<double> radius(targets.size());
      for (size_t j = 0; j < targets.size(); ++j) {
        at::Tensor& w = Tensor(targets[j]);
        radius[j] = Radius(group, w);
        w0[j] = w.detach().clone();
        delta[j] = at::zeros_like(w0[j]);
        steer[j] = Grad(targets[j]);
        if (offsets[j].defined()) steer[j] = steer[j] - offsets[j];
        undo.push_back(Undo{w, ops::PerturbState{}, w0[j]});
      }
      double last = 0;
      for (int t = 0; t < a.k; ++t) {
        {
          at::NoGradGuard no_grad;
          const auto t0 = Clock::now();
          for (size_t j = 0; j < targets.size(); ++j) {
            if (!Step(steer[j], a.alpha, &delta[j])) {
              result.skipped[g]++;
              continue;
            }
            delta[j] = Project(delta[j], radius[j]);
            Tensor(targets[j]).copy_(w0[j] + delta[j]);
          }
          result.times.perturb += Seconds(t0, Clock::now());
        }
        const bool final_step = t == a.k - 1;
        if (final_step) {
          last = Pass(1.0);
        } else {
          at::Tensor loss;
          last = Pass(1.0, /*backward=*/false, &loss);
          if (!failed) {
            std::vector<at::Tensor> inputs;
            for (const auto& target : targets) inputs.push_back(Tensor(target));
            const auto t0 = Clock::now();
            auto grads = torch::autograd::grad({loss}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                               /*allow_unused=*/true);
            result.times.backward += Seconds(t0, Clock::now());
            for (size_t j = 0; j < targets.size(); ++j) {
              steer[j] = grads[j].defined() ? grads[j] : at::zeros_like(w0[j]);
            }
          }
        }
        if (failed) {
          Fail("an adversarial loss of group " + std::to_string(g) + " is not finite");
          return false;
        }
      }
      RestoreTo(mark);
      result.group_losses[g] = last;
    }
    return true;
  }

  bool RunFreeLB() {
    const AttackConfig& a = tr.attack_;
    std::vector<const Trainer::Target*> all;
    std::vector<double> radius;
    for (size_t g = 0; g < a.groups.size(); ++g) {
      for (const auto& t : tr.targets_[g]) {
        all.push_back(&t);
        radius.push_back(Radius(a.groups[g], Tensor(t)));
      }
    }
    std::vector<at::Tensor> w0(all.size()), delta(all.size());
    for (size_t j = 0; j < all.size(); ++j) {
      at::Tensor& w = Tensor(*all[j]);
      w0[j] = w.detach().clone();
      delta[j] = at::zeros_like(w0[j]);
      undo.push_back(Undo{w, ops::PerturbState{}, w0[j]});
    }
    const double k = static_cast<double>(a.k);
    double total = 0;
    for (int t = 0; t < a.k; ++t) {
      std::vector<at::Tensor> before(all.size());
      for (size_t j = 0; j < all.size(); ++j) before[j] = Grad(*all[j]).clone();
      const double loss = Pass(1.0 / k);
      if (failed) {
        Fail(t == 0 ? "the clean loss is not finite" : "an adversarial loss is not finite");
        return false;
      }
      if (t == 0) result.clean_loss = loss;
      total += loss / k;
      if (t == a.k - 1) break;  // the last δ update would not be used
      at::NoGradGuard no_grad;
      const auto t0 = Clock::now();
      size_t j = 0;
      for (size_t g = 0; g < a.groups.size(); ++g) {
        for (size_t i = 0; i < tr.targets_[g].size(); ++i, ++j) {
          const at::Tensor gw = Grad(*all[j]) - before[j];
          if (!Step(gw, a.alpha, &delta[j])) {
            result.skipped[g]++;
            continue;
          }
          delta[j] = Project(delta[j], radius[j]);
          Tensor(*all[j]).copy_(w0[j] + delta[j]);
        }
      }
      result.times.perturb += Seconds(t0, Clock::now());
    }
    for (auto& v : result.group_losses) v = total;
    return true;
  }

  // AWP, SAM and ASAM: one move of every target from the clean gradient, then the update
  // uses the gradient at the moved point only.
  bool RunWeightAscent() {
    const AttackConfig& a = tr.attack_;
    result.clean_loss = Pass(1.0);
    if (failed) {
      Fail("the clean loss is not finite");
      return false;
    }
    struct Move {
      const Trainer::Target* target;
      at::Tensor direction;
      double radius;
      size_t g, j;
    };
    std::vector<Move> moves;
    double joint = 0;
    for (size_t g = 0; g < a.groups.size(); ++g) {
      const std::vector<at::Tensor> offsets = Offsets(tr.targets_[g], {}, true);
      for (size_t j = 0; j < tr.targets_[g].size(); ++j) {
        const Trainer::Target& t = tr.targets_[g][j];
        at::Tensor grad = Grad(t);
        if (offsets[j].defined()) grad = grad - offsets[j];
        Move m{&t, grad, 0.0, g, j};
        if (a.method == Method::kAWP) {
          m.radius = a.groups[g].epsilon * std::sqrt(ops::squared_norm(Tensor(t).detach().contiguous()));
        } else if (a.method == Method::kSAM) {
          joint += ops::squared_norm(grad.contiguous());
        } else {
          const at::Tensor scale = Tensor(t).detach().abs() + a.eta;
          joint += ops::squared_norm((scale * grad).contiguous());
          m.direction = scale * scale * grad;
        }
        moves.push_back(std::move(m));
      }
    }
    const bool joint_ok = a.method == Method::kAWP || (joint > 0 && std::isfinite(joint));
    joint = std::sqrt(joint);
    if (joint_ok) {
      for (Move& m : moves) {
        if (a.method != Method::kAWP) {
          m.radius = a.rho * std::sqrt(ops::squared_norm(m.direction.contiguous())) / joint;
        }
        if (!Perturb(*m.target, m.direction.contiguous(), m.radius, 1.0, m.g, m.j)) result.skipped[m.g]++;
      }
    } else {
      for (const Move& m : moves) result.skipped[m.g]++;
    }
    ZeroGrads();
    const double adv = Pass(1.0);
    if (failed) {
      Fail("the adversarial loss is not finite");
      return false;
    }
    for (auto& v : result.group_losses) v = adv;
    return true;
  }

  StepResult Update() {
    result.lr = tr.optimizer_->param_groups().empty() ? 0 : tr.optimizer_->param_groups()[0].options().get_lr();
    if (opt.accumulate) {
      tr.has_pending_micro_batch_ = true;
      result.accumulated = true;
      result.applied = false;
      return result;
    }
    const auto t0 = Clock::now();
    std::vector<at::Tensor> grads;
    for (auto& p : tr.params_) {
      if (p.second.grad().defined()) grads.push_back(p.second.grad());
    }
    double sq = 0;
    // The fused squared-norm kernel of the op (double accumulation, no temporaries): a
    // float64 copy of a 300 MB embedding gradient per step cost more than Adam itself.
    for (const auto& g : grads) {
      sq += at::isFloatingType(g.scalar_type()) ? ops::squared_norm(g.detach())
                                                : g.detach().to(at::kDouble).pow(2).sum().item<double>();
    }
    result.grad_norm = std::sqrt(sq);
    if (!std::isfinite(result.grad_norm)) {
      result.times.optimizer += Seconds(t0, Clock::now());
      return Fail("the gradient is not finite");
    }
    if (opt.clip_grad_norm > 0) {
      // As torch.nn.utils.clip_grad_norm_ does.
      const double factor = opt.clip_grad_norm / (result.grad_norm + 1e-6);
      if (factor < 1) {
        at::NoGradGuard no_grad;
        for (auto& g : grads) g.mul_(factor);
      }
    }
    if (opt.lr >= 0) {
      for (auto& group : tr.optimizer_->param_groups()) group.options().set_lr(opt.lr);
      result.lr = opt.lr;
    }
    tr.optimizer_->step();
    for (auto& p : tr.params_) {
      at::Tensor& g = p.second.mutable_grad();
      if (g.defined()) g.zero_();
    }
    tr.has_pending_micro_batch_ = false;
    tr.global_step_++;
    result.applied = true;
    result.times.optimizer += Seconds(t0, Clock::now());
    return result;
  }
};

StepResult Trainer::step(const Batch& batch, const LossFn& loss, const StepOptions& options) {
  StepRun run(*this, batch, loss, options);
  return run.Run();
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
    return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(s.lr)
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
