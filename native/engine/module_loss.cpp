// The model-loss policy (module_loss.h).
#include "module_loss.h"

#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/version.h>

#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

namespace dropattack {
namespace engine {

namespace {

std::string Join(const std::vector<std::string>& v) {
  std::ostringstream o;
  for (size_t i = 0; i < v.size(); ++i) o << (i ? ", " : "") << v[i];
  return o.str();
}

const c10::FunctionSchema& ForwardSchema(const torch::jit::Module& module, const std::string& where) {
  auto method = module.find_method("forward");
  TORCH_CHECK(method.has_value(), where, ": the module has no forward method");
  return method->function().getSchema();
}

std::string TypeOf(const c10::IValue& v) {
  if (v.isTensor()) return std::string("Tensor (") + c10::toString(v.toTensor().scalar_type()) + ")";
  return v.type()->annotation_str();
}

// Autocast of one forward pass to bfloat16 on the parameters' device. The region ends
// (and its cache of casted weights is cleared) before the engine perturbs or restores a
// parameter in place, so no pass can see a stale cast.
class AutocastScope {
 public:
  AutocastScope(bool on, at::DeviceType device) : on_(on), device_(device) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    was_enabled_ = at::autocast::is_autocast_enabled(device_);
    was_dtype_ = at::autocast::get_autocast_dtype(device_);
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::set_autocast_enabled(device_, true);
#else
    TORCH_CHECK(device_ == at::kCUDA || device_ == at::kCPU, "autocast: bf16 autocast on this LibTorch is for CPU and CUDA only");
    if (device_ == at::kCUDA) {
      was_enabled_ = at::autocast::is_enabled();
      was_dtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      was_enabled_ = at::autocast::is_cpu_enabled();
      was_dtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(device_, was_enabled_);
    at::autocast::set_autocast_dtype(device_, was_dtype_);
#else
    if (device_ == at::kCUDA) {
      at::autocast::set_enabled(was_enabled_);
      at::autocast::set_autocast_gpu_dtype(was_dtype_);
    } else {
      at::autocast::set_cpu_enabled(was_enabled_);
      at::autocast::set_autocast_cpu_dtype(was_dtype_);
    }
#endif
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_;
  at::DeviceType device_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

// Tensors anywhere in a value (lists, tuples, dicts) moved to `device`.
c10::IValue MoveTo(const c10::IValue& v, const at::Device& device) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    return t.device() == device ? v : c10::IValue(t.to(device, /*non_blocking=*/true));
  }
  if (v.isList()) {
    c10::impl::GenericList list = v.toList();
    c10::impl::GenericList out(list.elementType());
    for (const c10::IValue& e : list) out.push_back(MoveTo(e, device));
    return out;
  }
  if (v.isTuple()) {
    std::vector<c10::IValue> items;
    for (const auto& e : v.toTupleRef().elements()) items.push_back(MoveTo(e, device));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (v.isGenericDict()) {
    c10::impl::GenericDict dict = v.toGenericDict();
    c10::impl::GenericDict out(dict.keyType(), dict.valueType());
    for (const auto& e : dict) out.insert(e.key(), MoveTo(e.value(), device));
    return out;
  }
  return v;
}

// LibTorch's names of dtypes in messages ("Long", "torch.FloatTensor") as ours.
std::string DtypeWord(const std::string& w) {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"Long", "int64"},   {"Int", "int32"},  {"Float", "float32"}, {"Double", "float64"}, {"Half", "float16"},
      {"BFloat16", "bfloat16"}, {"Bool", "bool"}, {"Byte", "uint8"},   {"Char", "int8"},     {"Short", "int16"}};
  for (const auto& n : names) {
    if (w == n.first) return n.second;
  }
  return "";
}

// The dtype of a Tensor from its dtype word ("int64"), or Undefined.
at::ScalarType DtypeOf(const std::string& ours) {
  static const std::vector<std::pair<std::string, at::ScalarType>> names = {
      {"int64", at::kLong},  {"int32", at::kInt},      {"float32", at::kFloat}, {"float64", at::kDouble},
      {"float16", at::kHalf}, {"bfloat16", at::kBFloat16}, {"bool", at::kBool},  {"uint8", at::kByte},
      {"int8", at::kChar},   {"int16", at::kShort}};
  for (const auto& n : names) {
    if (ours == n.first) return n.second;
  }
  return at::ScalarType::Undefined;
}

// The line of a TorchScript failure that says what failed (its last "...Error: " line).
std::string Cause(const std::string& what) {
  std::istringstream in(what);
  std::string line, cause, last;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    last = line;
    const auto p = line.find("Error: ");
    if (p != std::string::npos && line.find_first_of(" \t") > p) cause = line.substr(p + 7);
  }
  return cause.empty() ? last : cause;
}

// For a dtype mismatch inside forward: a first line that names the forward argument(s)
// of the wrong dtype and the dtype the model expects. Empty when the failure is not one.
std::string ExplainDtype(const std::string& cause, const std::vector<BoundArgument>& args, const std::string& where) {
  static const std::regex patterns[] = {
      std::regex("scalar types: (\\w+)[^;]*; but got (?:torch\\.)?(?:CPU|CUDA)?(\\w+?)(?:Tensor|Type) instead"),
      std::regex("[Ee]xpected (?:object of )?scalar type (\\w+) but (?:got|found) (?:scalar type )?(\\w+)"),
  };
  std::smatch m;
  std::string expected, found;
  for (const auto& re : patterns) {
    if (std::regex_search(cause, m, re)) {
      expected = DtypeWord(m[1]);
      found = DtypeWord(m[2]);
      break;
    }
  }
  if (expected.empty()) return "";
  const at::ScalarType found_t = DtypeOf(found);
  const bool want_int = at::isIntegralType(DtypeOf(expected), /*includeBool=*/false);
  std::vector<std::string> culprits;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].value.isTensor()) continue;
    const at::ScalarType t = args[i].value.toTensor().scalar_type();
    const bool suspect = found_t != at::ScalarType::Undefined ? t == found_t : (want_int && at::isFloatingType(t));
    if (suspect) {
      const std::string word = DtypeWord(c10::toString(t));
      culprits.push_back("'" + args[i].name + "' (argument " + std::to_string(i) + ") is " + (word.empty() ? c10::toString(t) : word));
    }
  }
  std::ostringstream o;
  o << where << ": the model expects " << expected;
  if (!found.empty()) o << " where it got " << found;
  if (!culprits.empty()) o << ": forward argument " << Join(culprits);
  o << "; give it as " << expected;
  if (want_int) o << " (tensor() makes arrays of integers int64; .to('int64') converts)";
  return o.str();
}

bool PreferredIdName(const std::string& n) { return n == "input_ids" || n == "token_ids" || n == "tokens" || n == "ids"; }

// A tensor in float32 when autocast gave it in a reduced precision.
at::Tensor Full(const at::Tensor& t) {
  if (t.defined() && (t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf)) return t.to(at::kFloat);
  return t;
}

// Which bound argument an input target names.
int64_t AttackedIndex(const std::string& target, const std::vector<BoundArgument>& args, const std::string& where) {
  if (target.empty()) return -1;
  std::vector<std::string> names;
  for (const auto& a : args) names.push_back(a.name);
  int64_t index = 0;
  if (target.compare(0, 6, "input[") == 0) {
    index = std::stoll(target.substr(6, target.size() - 7));
    TORCH_CHECK(index < static_cast<int64_t>(args.size()), where, ": the attack targets '", target, "' but forward takes ",
                args.size(), " argument(s): ", Join(names));
  } else if (target.compare(0, 6, "input:") == 0) {
    const std::string name = target.substr(6);
    index = -1;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i].name == name) index = static_cast<int64_t>(i);
    }
    TORCH_CHECK(index >= 0, where, ": the attack targets '", target, "' but forward has no argument '", name,
                "'; its arguments are: ", Join(names));
  }
  TORCH_CHECK(!args.empty(), where, ": the attack targets '", target, "' but forward takes no argument");
  const c10::IValue& v = args[index].value;
  TORCH_CHECK(v.isTensor() && at::isFloatingType(v.toTensor().scalar_type()), where, ": the attack targets '", target,
              "', forward argument '", args[index].name, "', which is ", TypeOf(v),
              "; only a float tensor can be attacked (name another with 'input[k]' or 'input:name')");
  return index;
}

}  // namespace

std::vector<BoundArgument> BindArguments(const torch::jit::Module& module, const ModelInputs& inputs, const std::string& where) {
  const c10::FunctionSchema& schema = ForwardSchema(module, where);
  const auto& params = schema.arguments();
  const size_t n = params.empty() ? 0 : params.size() - 1;  // without self
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back(params[i + 1].name());
  const std::string signature = "forward(" + Join(names) + ")";
  TORCH_CHECK(inputs.args.size() <= n, where, ": ", signature, " takes ", n, " argument(s), got ", inputs.args.size());
  std::vector<c10::optional<c10::IValue>> slots(n);
  for (size_t i = 0; i < inputs.args.size(); ++i) {
    TORCH_CHECK(!params[i + 1].kwarg_only(), where, ": argument '", names[i], "' of ", signature,
                " is keyword-only; pass it by name");
    slots[i] = inputs.args[i];
  }
  for (const auto& kw : inputs.kwargs) {
    size_t i = 0;
    while (i < n && names[i] != kw.first) ++i;
    TORCH_CHECK(i < n, where, ": ", signature, " has no argument '", kw.first, "'");
    TORCH_CHECK(!slots[i].has_value(), where, ": argument '", kw.first, "' is given twice (by position and by name)");
    slots[i] = kw.second;
  }
  std::vector<BoundArgument> out;
  for (size_t i = 0; i < n; ++i) {
    const c10::Argument& p = params[i + 1];
    if (!slots[i].has_value()) {
      TORCH_CHECK(p.default_value().has_value(), where, ": missing argument '", p.name(), "' (", p.type()->annotation_str(),
                  ") of ", signature);
      slots[i] = *p.default_value();
    }
    const c10::IValue& v = *slots[i];
    TORCH_CHECK(v.type()->isSubtypeOf(*p.type()), where, ": argument '", p.name(), "' must be ",
                p.type()->annotation_str(), ", got ", TypeOf(v));
    out.push_back(BoundArgument{p.name(), v});
  }
  return out;
}

c10::IValue RunForward(torch::jit::Module& module, const std::vector<BoundArgument>& args, const std::string& where) {
  std::vector<c10::IValue> stack;
  stack.reserve(args.size());
  for (const auto& a : args) stack.push_back(a.value);
  std::string what;
  try {
    return module.forward(std::move(stack));
  } catch (const c10::Error& e) {
    what = e.what_without_backtrace();
  } catch (const std::exception& e) {
    what = e.what();
  }
  const std::string first = ExplainDtype(Cause(what), args, where);
  if (first.empty()) throw std::runtime_error(what);
  throw std::runtime_error(first + "\n" + what);
}

at::Tensor TokenIds(const std::vector<BoundArgument>& args, std::vector<std::string>* ambiguous) {
  std::vector<size_t> ints, preferred;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].value.isTensor() || args[i].value.toTensor().scalar_type() != at::kLong) continue;
    ints.push_back(i);
    if (PreferredIdName(args[i].name)) preferred.push_back(i);
  }
  if (preferred.size() == 1) return args[preferred[0]].value.toTensor();
  if (ints.size() == 1 && preferred.empty()) return args[ints[0]].value.toTensor();
  if (ambiguous != nullptr) {
    ambiguous->clear();
    for (size_t i : ints) ambiguous->push_back(args[i].name);
  }
  return {};
}

ModelOutput UnwrapOutput(const c10::IValue& out, bool model_loss, const std::string& where) {
  ModelOutput r;
  auto tensor_at = [](const std::vector<c10::IValue>& items, size_t k) {
    return k < items.size() && items[k].isTensor() ? items[k].toTensor() : at::Tensor();
  };
  std::vector<c10::IValue> items;
  if (out.isTuple()) {
    for (const auto& e : out.toTupleRef().elements()) items.push_back(e);
  } else if (out.isList()) {
    for (const auto& e : out.toListRef()) items.push_back(e);
  }
  if (out.isGenericDict()) {
    std::vector<std::string> keys;
    for (const auto& e : out.toGenericDict()) {
      if (!e.key().isString()) continue;
      const std::string k = e.key().toStringRef();
      keys.push_back(k);
      if (k == "loss" && e.value().isTensor()) r.loss = e.value().toTensor();
      if (k == "logits" && e.value().isTensor()) r.logits = e.value().toTensor();
    }
    TORCH_CHECK(!model_loss || r.loss.defined(), where, ": loss type 'model' needs a 'loss' entry in the dict forward "
                "returns (pass the labels as forward arguments); its keys are: ", Join(keys));
    TORCH_CHECK(model_loss || r.logits.defined(), where, ": the model returns a dict without a 'logits' entry (keys: ",
                Join(keys), "); use loss type 'model' if it computes its own loss");
  } else if (model_loss) {
    r.loss = out.isTensor() ? out.toTensor() : tensor_at(items, 0);
    if (!out.isTensor()) r.logits = tensor_at(items, 1);
    TORCH_CHECK(r.loss.defined(), where, ": loss type 'model' needs forward to return the loss: a scalar tensor, a "
                "tuple whose first item is one, or a dict with a 'loss' entry; got ", out.tagKind());
  } else {
    r.logits = out.isTensor() ? out.toTensor() : tensor_at(items, 0);
    TORCH_CHECK(r.logits.defined(), where, ": the model must return a Tensor, a tuple whose first item is one, or a "
                "dict with a 'logits' entry; got ", out.tagKind());
  }
  if (model_loss) {
    TORCH_CHECK(r.loss.numel() == 1, where, ": loss type 'model': the model's loss must be a single number, got shape ",
                r.loss.sizes());
  }
  r.loss = Full(r.loss);
  r.logits = Full(r.logits);
  return r;
}

ModeGuard::ModeGuard(torch::jit::Module& module, bool training) {
  for (const torch::jit::Module& m : module.modules()) {
    const auto slot = m._ivalue()->type()->findAttributeSlot("training");
    if (!slot) continue;
    saved_.emplace_back(m, m._ivalue()->getSlot(*slot).toBool());
    m._ivalue()->setSlot(*slot, training);
  }
}

ModeGuard::~ModeGuard() {
  for (auto& s : saved_) {
    const auto slot = s.first._ivalue()->type()->findAttributeSlot("training");
    if (slot) s.first._ivalue()->setSlot(*slot, s.second);
  }
}

LossFromModule::LossFromModule(torch::jit::Module module, LossFromModuleOptions options)
    : module_(std::move(module)), options_(std::move(options)) {
  const std::string& t = options_.loss.type;
  TORCH_CHECK(t == "cross_entropy" || t == "bce_with_logits" || t == "mse" || t == "model",
              "loss.type must be cross_entropy, bce_with_logits, mse or model, got '", t, "'");
}

at::Device LossFromModule::device() const {
  for (const auto& p : module_.parameters(/*recurse=*/true)) return p.device();
  return at::kCPU;
}

StepResult LossFromModule::Step(Trainer& trainer, const ModelInputs& inputs, const at::Tensor& target_in,
                                const StepOptions& options, const at::Tensor& token_ids) {
  const std::string where = "Trainer.step";
  const LossSpec& spec = options_.loss;
  const bool model_loss = spec.type == "model";
  TORCH_CHECK(model_loss || target_in.defined(), where, ": a target is required for loss type '", spec.type,
              "' (only loss type 'model' takes the labels as forward arguments)");
  ModeGuard mode(module_, /*training=*/true);
  std::vector<BoundArgument> args = BindArguments(module_, inputs, where);
  const at::Device device = this->device();
  const bool moves = device != at::Device(at::kCPU);
  // Class indices are read once per batch (before the copy: on the host when the target
  // comes from there), so no pass waits on the device for them.
  std::pair<int64_t, int64_t> range{0, -1};
  const bool check_classes = !model_loss && spec.type == "cross_entropy" && target_in.scalar_type() == at::kLong;
  if (check_classes) range = TargetRange(target_in, spec.ignore_index);
  // The batch goes where the parameters are (a copy per step; nothing when it is there).
  at::Tensor target = moves && target_in.defined() ? target_in.to(device, /*non_blocking=*/true) : target_in;
  if (moves) {
    for (auto& a : args) a.value = MoveTo(a.value, device);
  }
  // Class weights follow the parameters once (kept moved), not a copy on every step.
  if (options_.loss.class_weights.defined() && options_.loss.class_weights.device() != device) {
    options_.loss.class_weights = options_.loss.class_weights.to(device);
  }
  const LossSpec& loss = options_.loss;

  Batch batch;
  const int64_t attacked = AttackedIndex(trainer.attacked_input(), args, where);
  if (attacked >= 0) batch.input = args[attacked].value.toTensor();
  std::vector<std::string> ambiguous;
  if (token_ids.defined()) {
    batch.token_ids = moves ? token_ids.to(device, /*non_blocking=*/true) : token_ids;
  } else {
    batch.token_ids = TokenIds(args, &ambiguous);
    if (!batch.token_ids.defined() && !args.empty() && args[0].value.isTensor() &&
        args[0].value.toTensor().scalar_type() == at::kLong) {
      // "auto" checks the rows against the gradient before it trusts them; "on" may not
      // guess (below).
      batch.token_ids = args[0].value.toTensor();
      for (size_t g = 0; g < trainer.attack().groups.size(); ++g) {
        TORCH_CHECK(trainer.attack().groups[g].sparse != "on", where, ": attack.groups[", g,
                    "].sparse is 'on' but the token ids are ambiguous: forward arguments ", Join(ambiguous),
                    " are all int64; pass the ids of the attacked table as the step's tokenIds");
      }
    }
  }
  for (size_t g = 0; g < trainer.attack().groups.size(); ++g) {
    TORCH_CHECK(trainer.attack().groups[g].sparse != "on" || batch.token_ids.defined(), where, ": attack.groups[", g,
                "].sparse is 'on' but no forward argument holds int64 token ids; pass them as the step's tokenIds");
  }

  // Buffers as the clean pass left them, for the attack passes (freeze_buffers_in_attack).
  // They are put back before each attack pass, not after it: BatchNorm's backward reads the
  // running statistics, so they may not change between a forward and its backward.
  std::vector<at::Tensor> buffers, snapshot;
  struct PutBack {
    std::vector<at::Tensor>& buffers;
    std::vector<at::Tensor>& snapshot;
    ~PutBack() {
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < snapshot.size(); ++i) buffers[i].copy_(snapshot[i]);
    }
  } put_back{buffers, snapshot};
  size_t pass = 0;
  bool first = true;
  const bool autocast = options_.autocast_bf16;
  LossFn fn = [&](const at::Tensor& input) -> at::Tensor {
    if (options_.freeze_buffers_in_attack && pass > 0) {
      at::NoGradGuard no_grad;
      if (snapshot.empty()) {
        for (const at::Tensor& b : module_.buffers(/*recurse=*/true)) {
          buffers.push_back(b);
          snapshot.push_back(b.clone());
        }
      } else {
        for (size_t i = 0; i < snapshot.size(); ++i) buffers[i].copy_(snapshot[i]);
      }
    }
    ++pass;
    std::vector<BoundArgument> call = args;
    if (attacked >= 0) call[attacked].value = input;
    c10::IValue out;
    {
      AutocastScope scope(autocast, device.type());
      out = RunForward(module_, call, where);
    }
    ModelOutput o = UnwrapOutput(out, model_loss, where);
    if (model_loss) return o.loss.reshape({});
    if (first) {
      first = false;
      if (check_classes) CheckTargetRange(range.first, range.second, ClassCount(o.logits, target));
    }
    return ComputeLoss(loss, o.logits, target, /*check_targets=*/false);
  };
  return trainer.step(batch, fn, options);
}

EvalResult LossFromModule::Evaluate(const ModelInputs& inputs, const at::Tensor& target_in) {
  const std::string where = "evaluate";
  const LossSpec& spec = options_.loss;
  const bool model_loss = spec.type == "model";
  ModeGuard mode(module_, /*training=*/false);
  at::NoGradGuard no_grad;
  std::vector<BoundArgument> args = BindArguments(module_, inputs, where);
  const at::Device device = this->device();
  if (device != at::Device(at::kCPU)) {
    for (auto& a : args) a.value = MoveTo(a.value, device);
  }
  c10::IValue out;
  {
    AutocastScope scope(options_.autocast_bf16, device.type());
    out = RunForward(module_, args, where);
  }
  const ModelOutput o = UnwrapOutput(out, model_loss, where);
  EvalResult r;
  r.logits = o.logits.defined() ? o.logits.detach().to(at::kCPU) : at::Tensor();
  at::Tensor target = target_in.defined() ? target_in.to(at::kCPU) : at::Tensor();
  if (model_loss) {
    r.loss = o.loss.item<double>();
    // The mean runs over the non-ignored labels when the model takes them as "labels".
    at::Tensor labels;
    for (const auto& a : args) {
      if (a.name == "labels" && a.value.isTensor()) labels = a.value.toTensor();
    }
    if (!labels.defined()) labels = target;
    if (labels.defined() && labels.scalar_type() == at::kLong) {
      r.count = (labels != spec.ignore_index).sum().item<int64_t>();
    } else if (labels.defined()) {
      r.count = labels.dim() > 0 ? labels.size(0) : 1;
    } else {
      r.count = 1;
    }
    return r;
  }
  TORCH_CHECK(target.defined(), where, ": a target is required for loss type '", spec.type, "'");
  LossSpec loss = spec;
  const at::Tensor logits = r.logits;
  r.loss = ComputeLoss(loss, logits, target, /*check_targets=*/true).item<double>();
  if (spec.type == "cross_entropy") {
    r.count = (target != spec.ignore_index).sum().item<int64_t>();
  } else {
    r.count = target.dim() > 0 ? target.size(0) : 1;
  }
  return r;
}

}  // namespace engine
}  // namespace dropattack
