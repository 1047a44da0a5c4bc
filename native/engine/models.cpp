// The built-in models: torch::jit::Modules assembled from registered parameters and
// define()-d TorchScript source. See models.h for the conventions.
#include "models.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>
#include <torch/csrc/jit/api/compilation_unit.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace dropattack {
namespace engine {
namespace {

using torch::jit::Module;

// A float literal TorchScript reads back as the same double.
std::string Float(double v) {
  std::ostringstream s;
  s << std::setprecision(17) << v;
  std::string r = s.str();
  if (r.find_first_of(".eE") == std::string::npos) r += ".0";
  return r;
}

std::string Int(int64_t v) { return std::to_string(v); }

std::string Bool(bool v) { return v ? "True" : "False"; }

std::string Vec(const std::vector<int64_t>& v) {
  std::string r = "{";
  for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + Int(v[i]);
  return r + "}";
}

// Builds modules into one compilation unit (class names mangled when repeated) and draws
// every initial value from one local generator, in registration order.
class Builder {
 public:
  explicit Builder(uint64_t seed)
      : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)),
        cu_(std::make_shared<torch::jit::CompilationUnit>()) {}

  Module NewModule(const std::string& cls) {
    Module m(c10::QualifiedName("__torch__.dropattack." + cls), cu_, /*shouldMangle=*/true);
    m.register_attribute("training", c10::BoolType::get(), true);
    return m;
  }

  at::Tensor Uniform(at::IntArrayRef shape, double bound) {
    at::Tensor t = at::empty(shape, at::kFloat);
    t.uniform_(-bound, bound, gen_);
    return t;
  }

  at::Tensor Normal(at::IntArrayRef shape) {
    at::Tensor t = at::empty(shape, at::kFloat);
    t.normal_(0.0, 1.0, gen_);
    return t;
  }

  static void Param(Module& m, const std::string& name, at::Tensor t, bool trainable = true) {
    t.set_requires_grad(trainable);
    m.register_parameter(name, t, /*is_buffer=*/false);
  }

  // torch.nn.Linear: weight [out, in], bias [out].
  Module Linear(int64_t in, int64_t out) {
    Module m = NewModule("Linear");
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    Param(m, "weight", Uniform({out, in}, bound));
    Param(m, "bias", Uniform({out}, bound));
    m.define(R"JIT(
def forward(self, x: Tensor) -> Tensor:
    return torch.linear(x, self.weight, self.bias)
)JIT");
    return m;
  }

  // torch.nn.Conv1d(in, out, k), stride 1, no padding.
  Module Conv1d(int64_t in, int64_t out, int64_t k) {
    Module m = NewModule("Conv1d");
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * k));
    Param(m, "weight", Uniform({out, in, k}, bound));
    Param(m, "bias", Uniform({out}, bound));
    m.define(R"JIT(
def forward(self, x: Tensor) -> Tensor:
    return torch.conv1d(x, self.weight, self.bias, [1], [0], [1], 1)
)JIT");
    return m;
  }

  // torch.nn.Conv2d(in, out, k, stride, padding, bias).
  Module Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias) {
    Module m = NewModule("Conv2d");
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * k * k));
    Param(m, "weight", Uniform({out, in, k, k}, bound));
    if (bias) Param(m, "bias", Uniform({out}, bound));
    const std::string s = "[" + Int(stride) + ", " + Int(stride) + "]";
    const std::string p = "[" + Int(pad) + ", " + Int(pad) + "]";
    m.define("\ndef forward(self, x: Tensor) -> Tensor:\n    return torch.conv2d(x, self.weight, " +
             std::string(bias ? "self.bias" : "None") + ", " + s + ", " + p + ", [1, 1], 1)\n");
    return m;
  }

  // torch.nn.BatchNorm2d(c): momentum 0.1, eps 1e-5, affine, tracking running stats.
  Module BatchNorm2d(int64_t c) {
    Module m = NewModule("BatchNorm2d");
    Param(m, "weight", at::ones({c}, at::kFloat));
    Param(m, "bias", at::zeros({c}, at::kFloat));
    m.register_buffer("running_mean", at::zeros({c}, at::kFloat));
    m.register_buffer("running_var", at::ones({c}, at::kFloat));
    m.register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
    m.define(R"JIT(
def forward(self, x: Tensor) -> Tensor:
    if self.training:
        self.num_batches_tracked.add_(1)
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            self.training, 0.1, 1e-05, True)
)JIT");
    return m;
  }

  // torch.nn.Embedding(vocab, dim, padding_idx, sparse=sparse_embedding): forward(tokens int64) -> [..., dim].
  Module Embedding(const ModelSpec& s, int64_t vocab, int64_t dim) {
    Module m = NewModule("Embedding");
    at::Tensor w;
    if (s.pretrained_embedding.defined()) {
      w = s.pretrained_embedding.detach().to(at::kCPU, at::kFloat).contiguous().clone();
    } else {
      w = Normal({vocab, dim});
      if (s.padding_idx >= 0) w[s.padding_idx].zero_();
    }
    Param(m, "weight", w, /*trainable=*/!s.freeze_embedding);
    m.define("\ndef forward(self, tokens: Tensor) -> Tensor:\n"
             "    return torch.embedding(self.weight, tokens, " +
             Int(s.padding_idx) + ", False, " + (s.sparse_embedding ? "True" : "False") + ")\n");
    return m;
  }

 private:
  at::Generator gen_;
  std::shared_ptr<torch::jit::CompilationUnit> cu_;
};

void CheckDropout(const std::string& kind, const char* name, double p) {
  TORCH_CHECK(std::isfinite(p) && p >= 0.0 && p < 1.0, "build_model(", kind, "): ", name,
              " must be in [0, 1), got ", p);
}

void CheckPositive(const std::string& kind, const char* name, int64_t v) {
  TORCH_CHECK(v > 0, "build_model(", kind, "): ", name, " must be > 0, got ", v);
}

// Checks the embedding options and returns {vocab_size, embed_dim}.
std::pair<int64_t, int64_t> TextDims(const ModelSpec& s) {
  int64_t vocab = s.vocab_size, dim = s.embed_dim;
  if (s.pretrained_embedding.defined()) {
    const at::Tensor& p = s.pretrained_embedding;
    TORCH_CHECK(p.dim() == 2, "build_model(", s.kind,
                "): pretrained_embedding must be 2-D [vocab_size, embed_dim], got shape ",
                p.sizes());
    TORCH_CHECK(p.is_floating_point(), "build_model(", s.kind,
                "): pretrained_embedding must be a floating-point tensor, got ", p.scalar_type());
    TORCH_CHECK(vocab == 0 || vocab == p.size(0), "build_model(", s.kind, "): vocab_size ", vocab,
                " does not match pretrained_embedding shape ", p.sizes());
    TORCH_CHECK(dim == 0 || dim == p.size(1), "build_model(", s.kind, "): embed_dim ", dim,
                " does not match pretrained_embedding shape ", p.sizes());
    TORCH_CHECK(at::isfinite(p).all().item<bool>(), "build_model(", s.kind,
                "): pretrained_embedding has non-finite values");
    vocab = p.size(0);
    dim = p.size(1);
  }
  CheckPositive(s.kind, "vocab_size", vocab);
  CheckPositive(s.kind, "embed_dim", dim);
  TORCH_CHECK(s.padding_idx >= -1 && s.padding_idx < vocab, "build_model(", s.kind,
              "): padding_idx must be -1 (none) or in [0, vocab_size = ", vocab, "), got ",
              s.padding_idx);
  return {vocab, dim};
}

// The classifier input dropout line, or nothing when p == 0.
std::string DropoutLine(const std::string& var, double p) {
  if (p == 0.0) return "";
  return "    " + var + " = torch.dropout(" + var + ", " + Float(p) + ", self.training)\n";
}

Module BuildTextRNN(const ModelSpec& s, Builder& b) {
  const auto dims = TextDims(s);
  CheckPositive(s.kind, "hidden_size", s.hidden_size);
  TORCH_CHECK(s.num_layers >= 1, "build_model(textrnn): num_layers must be >= 1, got ",
              s.num_layers);
  TORCH_CHECK(s.cell == "lstm" || s.cell == "gru",
              "build_model(textrnn): cell must be \"lstm\" or \"gru\", got \"", s.cell, "\"");
  CheckPositive(s.kind, "num_classes", s.num_classes);
  CheckDropout(s.kind, "dropout", s.dropout);
  CheckDropout(s.kind, "output_dropout", s.output_dropout);

  const bool lstm = s.cell == "lstm";
  const int64_t H = s.hidden_size, L = s.num_layers, D = s.bidirectional ? 2 : 1;
  const int64_t gates = lstm ? 4 : 3;

  Module m = b.NewModule("TextRNN");
  m.register_module("embed", b.Embedding(s, dims.first, dims.second));

  // The RNN: torch.nn.LSTM / GRU parameter names and the flat weight order torch.lstm takes.
  Module rnn = b.NewModule(lstm ? "LSTM" : "GRU");
  const double bound = 1.0 / std::sqrt(static_cast<double>(H));
  std::string params;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t in = l == 0 ? dims.second : H * D;
    for (int64_t d = 0; d < D; ++d) {
      const std::string sfx = "_l" + Int(l) + (d ? "_reverse" : "");
      Builder::Param(rnn, "weight_ih" + sfx, b.Uniform({gates * H, in}, bound));
      Builder::Param(rnn, "weight_hh" + sfx, b.Uniform({gates * H, H}, bound));
      Builder::Param(rnn, "bias_ih" + sfx, b.Uniform({gates * H}, bound));
      Builder::Param(rnn, "bias_hh" + sfx, b.Uniform({gates * H}, bound));
      for (const char* w : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
        params += std::string(params.empty() ? "" : ", ") + "self." + w + sfx;
    }
  }
  // forward(packed data, batch sizes, batch) -> h_n [num_layers * directions, batch, hidden].
  std::string src =
      "\ndef forward(self, data: Tensor, batch_sizes: Tensor, batch: int) -> Tensor:\n"
      "    h0 = torch.zeros([" + Int(L * D) + ", batch, " + Int(H) +
      "], dtype=data.dtype, device=data.device)\n";
  const std::string tail = ", [" + params + "], True, " + Int(L) + ", " + Float(s.dropout) +
                           ", self.training, " + Bool(s.bidirectional) + ")\n";
  if (lstm) {
    src += "    out, hn, cn = torch.lstm(data, batch_sizes, [h0, h0]" + tail;
  } else {
    src += "    out, hn = torch.gru(data, batch_sizes, h0" + tail;
  }
  src += "    return hn\n";
  rnn.define(src);
  m.register_module("rnn", rnn);

  m.register_module("fc", b.Linear(H * D, s.num_classes));

  // Sorting by length inside forward gives enforce_sorted=False semantics.
  std::string fwd = R"JIT(
def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
    assert tokens.dim() == 2, "TextRNN: tokens must be 2-D [batch, time]"
    assert lengths.dim() == 1 and lengths.size(0) == tokens.size(0), "TextRNN: lengths must be 1-D [batch]"
    lengths_cpu = lengths.to(torch.device("cpu"), 4)  # 4: torch.int64
    sorted_lengths, order = torch.sort(lengths_cpu, 0, True)
    unorder = torch.argsort(order).to(tokens.device)
    emb = self.embed.forward(tokens.index_select(0, order.to(tokens.device)))
    data, batch_sizes = torch._pack_padded_sequence(emb, sorted_lengths, True)
    hn = self.rnn.forward(data, batch_sizes, tokens.size(0))
)JIT";
  if (D == 2) {
    fwd += "    h = torch.cat([hn[" + Int(2 * L - 2) + "], hn[" + Int(2 * L - 1) + "]], 1)\n";
  } else {
    fwd += "    h = hn[" + Int(L - 1) + "]\n";
  }
  fwd += "    h = h.index_select(0, unorder)\n";
  fwd += DropoutLine("h", s.output_dropout);
  fwd += "    return self.fc.forward(h)\n";
  m.define(fwd);
  return m;
}

Module BuildTextCNN(const ModelSpec& s, Builder& b) {
  const auto dims = TextDims(s);
  CheckPositive(s.kind, "num_filters", s.num_filters);
  TORCH_CHECK(!s.kernel_sizes.empty(), "build_model(textcnn): kernel_sizes must not be empty");
  int64_t kmax = 0;
  for (int64_t k : s.kernel_sizes) {
    TORCH_CHECK(k > 0, "build_model(textcnn): kernel_sizes must all be > 0, got ",
                Vec(s.kernel_sizes));
    kmax = std::max(kmax, k);
  }
  CheckPositive(s.kind, "num_classes", s.num_classes);
  CheckDropout(s.kind, "dropout", s.dropout);

  Module m = b.NewModule("TextCNN");
  m.register_module("embed", b.Embedding(s, dims.first, dims.second));
  Module convs = b.NewModule("ModuleList");
  for (size_t i = 0; i < s.kernel_sizes.size(); ++i)
    convs.register_module(std::to_string(i),
                          b.Conv1d(dims.second, s.num_filters, s.kernel_sizes[i]));
  m.register_module("convs", convs);
  const int64_t nk = static_cast<int64_t>(s.kernel_sizes.size());
  m.register_module("fc", b.Linear(s.num_filters * nk, s.num_classes));

  // Sequences shorter than the widest kernel are zero-padded (as a zero embedding row would).
  std::string fwd = R"JIT(
def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
    assert tokens.dim() == 2, "TextCNN: tokens must be 2-D [batch, time]"
    x = self.embed.forward(tokens).transpose(1, 2)
)JIT";
  fwd += "    if x.size(2) < " + Int(kmax) + ":\n";
  fwd += "        x = torch.constant_pad_nd(x, [0, " + Int(kmax) + " - x.size(2)], 0.0)\n";
  std::string feats;
  for (int64_t i = 0; i < nk; ++i) {
    fwd += "    c" + Int(i) + " = getattr(self.convs, \"" + Int(i) + "\")\n";
    fwd += "    f" + Int(i) + " = torch.amax(torch.relu(c" + Int(i) + ".forward(x)), [2])\n";
    feats += (i ? ", f" : "f") + Int(i);
  }
  fwd += "    h = torch.cat([" + feats + "], 1)\n";
  fwd += DropoutLine("h", s.dropout);
  fwd += "    return self.fc.forward(h)\n";
  m.define(fwd);
  return m;
}

Module BuildMLP(const ModelSpec& s, Builder& b) {
  CheckPositive(s.kind, "input_dim", s.input_dim);
  for (int64_t h : s.hidden_sizes)
    TORCH_CHECK(h > 0, "build_model(mlp): hidden_sizes must all be > 0, got ",
                Vec(s.hidden_sizes));
  CheckPositive(s.kind, "num_classes", s.num_classes);
  CheckDropout(s.kind, "dropout", s.dropout);

  Module m = b.NewModule("MLP");
  std::string fwd =
      "\ndef forward(self, x: Tensor) -> Tensor:\n"
      "    assert x.dim() == 2 and x.size(1) == " + Int(s.input_dim) +
      ", \"MLP: x must be [batch, " + Int(s.input_dim) + "]\"\n";
  int64_t in = s.input_dim;
  for (size_t i = 0; i < s.hidden_sizes.size(); ++i) {
    const std::string name = "fc" + std::to_string(i + 1);
    m.register_module(name, b.Linear(in, s.hidden_sizes[i]));
    fwd += "    x = torch.relu(self." + name + ".forward(x))\n";
    fwd += DropoutLine("x", s.dropout);
    in = s.hidden_sizes[i];
  }
  m.register_module("out", b.Linear(in, s.num_classes));
  fwd += "    return self.out.forward(x)\n";
  m.define(fwd);
  return m;
}

Module BuildCNN28(const ModelSpec& s, Builder& b) {
  TORCH_CHECK(s.channels.size() == 2, "build_model(cnn28): channels must have 2 entries, got ",
              Vec(s.channels));
  for (int64_t c : s.channels)
    TORCH_CHECK(c > 0, "build_model(cnn28): channels must all be > 0, got ", Vec(s.channels));
  CheckPositive(s.kind, "num_classes", s.num_classes);
  CheckDropout(s.kind, "dropout", s.dropout);

  Module m = b.NewModule("CNN28");
  m.register_module("conv1", b.Conv2d(1, s.channels[0], 3, 1, 1, true));
  m.register_module("conv2", b.Conv2d(s.channels[0], s.channels[1], 3, 1, 1, true));
  m.register_module("fc", b.Linear(s.channels[1] * 7 * 7, s.num_classes));
  std::string fwd = R"JIT(
def forward(self, x: Tensor) -> Tensor:
    assert x.dim() == 4 and x.size(1) == 1 and x.size(2) == 28 and x.size(3) == 28, "CNN28: x must be [batch, 1, 28, 28]"
    x = torch.max_pool2d(torch.relu(self.conv1.forward(x)), [2, 2], [2, 2], [0, 0], [1, 1], False)
    x = torch.max_pool2d(torch.relu(self.conv2.forward(x)), [2, 2], [2, 2], [0, 0], [1, 1], False)
    x = torch.flatten(x, 1)
)JIT";
  fwd += DropoutLine("x", s.dropout);
  fwd += "    return self.fc.forward(x)\n";
  m.define(fwd);
  return m;
}

// A basic residual block (two 3x3 convs with BatchNorm); a 1x1 conv + BatchNorm shortcut
// ("downsample", torchvision's names) when the shape changes.
Module BasicBlock(Builder& b, int64_t in, int64_t out, int64_t stride) {
  Module m = b.NewModule("BasicBlock");
  m.register_module("conv1", b.Conv2d(in, out, 3, stride, 1, false));
  m.register_module("bn1", b.BatchNorm2d(out));
  m.register_module("conv2", b.Conv2d(out, out, 3, 1, 1, false));
  m.register_module("bn2", b.BatchNorm2d(out));
  const bool down = stride != 1 || in != out;
  if (down) {
    Module ds = b.NewModule("Sequential");
    ds.register_module("0", b.Conv2d(in, out, 1, stride, 0, false));
    ds.register_module("1", b.BatchNorm2d(out));
    ds.define(R"JIT(
def forward(self, x: Tensor) -> Tensor:
    c = getattr(self, "0")
    n = getattr(self, "1")
    return n.forward(c.forward(x))
)JIT");
    m.register_module("downsample", ds);
  }
  m.define(std::string(R"JIT(
def forward(self, x: Tensor) -> Tensor:
    out = torch.relu(self.bn1.forward(self.conv1.forward(x)))
    out = self.bn2.forward(self.conv2.forward(out))
)JIT") + (down ? "    return torch.relu(out + self.downsample.forward(x))\n"
               : "    return torch.relu(out + x)\n"));
  return m;
}

Module BuildResNet32(const ModelSpec& s, Builder& b) {
  CheckPositive(s.kind, "width", s.width);
  TORCH_CHECK(s.blocks_per_stage >= 1, "build_model(resnet32): blocks_per_stage must be >= 1, got ",
              s.blocks_per_stage);
  CheckPositive(s.kind, "num_classes", s.num_classes);
  CheckDropout(s.kind, "dropout", s.dropout);

  const int64_t w = s.width;
  Module m = b.NewModule("ResNet32");
  m.register_module("conv1", b.Conv2d(3, w, 3, 1, 1, false));
  m.register_module("bn1", b.BatchNorm2d(w));
  int64_t in = w;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t out = w << stage;
    Module layer = b.NewModule("Sequential");
    std::string fwd = "\ndef forward(self, x: Tensor) -> Tensor:\n";
    for (int64_t i = 0; i < s.blocks_per_stage; ++i) {
      const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      layer.register_module(Int(i), BasicBlock(b, in, out, stride));
      fwd += "    b" + Int(i) + " = getattr(self, \"" + Int(i) + "\")\n";
      fwd += "    x = b" + Int(i) + ".forward(x)\n";
      in = out;
    }
    fwd += "    return x\n";
    layer.define(fwd);
    m.register_module("layer" + std::to_string(stage + 1), layer);
  }
  m.register_module("fc", b.Linear(4 * w, s.num_classes));
  std::string fwd = R"JIT(
def forward(self, x: Tensor) -> Tensor:
    assert x.dim() == 4 and x.size(1) == 3, "ResNet32: x must be [batch, 3, height, width] (32x32 images)"
    x = torch.relu(self.bn1.forward(self.conv1.forward(x)))
    x = self.layer3.forward(self.layer2.forward(self.layer1.forward(x)))
    x = torch.mean(x, [2, 3])
)JIT";
  fwd += DropoutLine("x", s.dropout);
  fwd += "    return self.fc.forward(x)\n";
  m.define(fwd);
  return m;
}

}  // namespace

std::vector<std::string> model_kinds() { return {"textrnn", "textcnn", "mlp", "cnn28", "resnet32"}; }

torch::jit::Module build_model(const ModelSpec& spec, uint64_t seed) {
  Builder b(seed);
  if (spec.kind == "textrnn") return BuildTextRNN(spec, b);
  if (spec.kind == "textcnn") return BuildTextCNN(spec, b);
  if (spec.kind == "mlp") return BuildMLP(spec, b);
  if (spec.kind == "cnn28") return BuildCNN28(spec, b);
  if (spec.kind == "resnet32") return BuildResNet32(spec, b);
  std::string kinds;
  for (const auto& k : model_kinds()) kinds += (kinds.empty() ? "" : ", ") + k;
  TORCH_CHECK(false, "build_model: unknown kind \"", spec.kind, "\"; the kinds are: ", kinds);
}

}  // namespace engine
}  // namespace dropattack
