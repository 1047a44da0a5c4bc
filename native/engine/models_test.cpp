// Checks the built-in models (models.h): names and shapes, forward and backward, seeding,
// train/eval, packing, option validation, save + reload in C++, and (when /usr/bin/python3
// exists) torch.jit.load + forward + backward in Python on the same LibTorch.
//
// Prints one line per check and a final line "N passed, M failed"; exits non-zero on any
// failure. Set MODELS_TEST_KEEP=1 to keep the temporary directory.
#include "models.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace de = dropattack::engine;
namespace fs = std::filesystem;
using torch::jit::Module;

namespace {

int g_passed = 0, g_failed = 0;

void Report(bool ok, const std::string& what, const std::string& detail = "") {
  if (ok) {
    ++g_passed;
    std::printf("PASS %s\n", what.c_str());
  } else {
    ++g_failed;
    std::printf("FAIL %s%s%s\n", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  }
  std::fflush(stdout);
}

// Runs a check body; an exception counts as a failure of that check.
void Check(const std::string& what, const std::function<std::string()>& body) {
  try {
    const std::string err = body();  // empty: passed
    Report(err.empty(), what, err);
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const c10::Error*>(&e);
    std::string msg = ce ? ce->what_without_backtrace() : e.what();
    Report(false, what, "threw: " + msg.substr(0, 1500));
  }
}

std::string Shape(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

using Named = std::vector<std::pair<std::string, at::Tensor>>;

Named Params(const Module& m) {
  Named v;
  for (const auto& p : m.named_parameters(true)) v.emplace_back(p.name, p.value);
  return v;
}

Named Buffers(const Module& m) {
  Named v;
  for (const auto& b : m.named_buffers(true)) v.emplace_back(b.name, b.value);
  return v;
}

Named State(const Module& m) {
  Named v = Params(m), b = Buffers(m);
  v.insert(v.end(), b.begin(), b.end());
  return v;
}

std::string Join(const std::vector<std::string>& v) {
  std::string r;
  for (const auto& s : v) r += (r.empty() ? "" : ",") + s;
  return r;
}

std::vector<std::string> Names(const Named& v) {
  std::vector<std::string> r;
  for (const auto& p : v) r.push_back(p.first);
  return r;
}

at::Tensor Forward(Module& m, const std::vector<at::Tensor>& in) {
  std::vector<c10::IValue> args(in.begin(), in.end());
  return m.forward(args).toTensor();
}

double MaxDiff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

struct Case {
  std::string name;
  de::ModelSpec spec;
  std::vector<at::Tensor> inputs;
  std::vector<std::pair<std::string, std::vector<int64_t>>> params;  // expected, in order; empty: see count
  size_t param_count = 0;
  std::vector<std::pair<std::string, std::vector<int64_t>>> some_params;  // must be present
  int64_t classes = 0;
  bool dropout_active = false;  // train() and eval() outputs must differ
  bool batchnorm = false;
  std::vector<std::string> frozen;
};

// Text inputs: tokens int64 [B, T] in [1, vocab), 0 (padding) after each length.
std::vector<at::Tensor> TextInputs(int64_t vocab, std::vector<int64_t> lengths, int64_t T,
                                   uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t B = static_cast<int64_t>(lengths.size());
  at::Tensor tokens = at::randint(1, vocab, {B, T}, gen, at::kLong);
  for (int64_t i = 0; i < B; ++i) tokens[i].narrow(0, lengths[i], T - lengths[i]).zero_();
  return {tokens, at::tensor(lengths, at::kLong)};
}

at::Tensor FloatInput(at::IntArrayRef shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::kFloat);
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  const std::vector<int64_t> lengths{3, 7, 1, 5, 7};  // unsorted, with ties
  {
    Case c;
    c.name = "textrnn-lstm-bi-2layer";
    c.spec.kind = "textrnn";
    c.spec.vocab_size = 50;
    c.spec.embed_dim = 8;
    c.spec.hidden_size = 6;
    c.spec.num_layers = 2;
    c.spec.bidirectional = true;
    c.spec.cell = "lstm";
    c.spec.num_classes = 3;
    c.spec.dropout = 0.5;
    c.inputs = TextInputs(50, lengths, 7, 11);
    c.params = {{"embed.weight", {50, 8}}};
    for (int l = 0; l < 2; ++l)
      for (std::string sfx : {"", "_reverse"}) {
        const std::string s = "_l" + std::to_string(l) + sfx;
        c.params.push_back({"rnn.weight_ih" + s, {24, l == 0 ? 8 : 12}});
        c.params.push_back({"rnn.weight_hh" + s, {24, 6}});
        c.params.push_back({"rnn.bias_ih" + s, {24}});
        c.params.push_back({"rnn.bias_hh" + s, {24}});
      }
    c.params.push_back({"fc.weight", {3, 12}});
    c.params.push_back({"fc.bias", {3}});
    c.classes = 3;
    c.dropout_active = true;
    cases.push_back(c);
  }
  {
    Case c;
    c.name = "textrnn-gru-1layer";
    c.spec.kind = "textrnn";
    c.spec.vocab_size = 50;
    c.spec.embed_dim = 8;
    c.spec.hidden_size = 6;
    c.spec.num_layers = 1;
    c.spec.cell = "gru";
    c.spec.num_classes = 4;
    c.spec.dropout = 0.5;  // between layers: no effect with one layer
    c.inputs = TextInputs(50, lengths, 7, 12);
    c.params = {{"embed.weight", {50, 8}},     {"rnn.weight_ih_l0", {18, 8}},
                {"rnn.weight_hh_l0", {18, 6}}, {"rnn.bias_ih_l0", {18}},
                {"rnn.bias_hh_l0", {18}},      {"fc.weight", {4, 6}},
                {"fc.bias", {4}}};
    c.classes = 4;
    c.dropout_active = false;
    cases.push_back(c);
  }
  {
    Case c;
    c.name = "textrnn-gru-bi-3layer-frozen-pretrained";
    c.spec.kind = "textrnn";
    c.spec.pretrained_embedding = FloatInput({30, 5}, 99).to(at::kDouble);
    c.spec.freeze_embedding = true;
    c.spec.hidden_size = 4;
    c.spec.num_layers = 3;
    c.spec.bidirectional = true;
    c.spec.cell = "gru";
    c.spec.num_classes = 2;
    c.spec.output_dropout = 0.3;
    c.inputs = TextInputs(30, lengths, 9, 13);
    c.param_count = 1 + 3 * 2 * 4 + 2;
    c.some_params = {{"embed.weight", {30, 5}},
                     {"rnn.weight_ih_l0", {12, 5}},
                     {"rnn.weight_ih_l2_reverse", {12, 8}},
                     {"rnn.bias_hh_l2_reverse", {12}},
                     {"fc.weight", {2, 8}}};
    c.classes = 2;
    c.dropout_active = true;
    c.frozen = {"embed.weight"};
    cases.push_back(c);
  }
  {
    Case c;
    c.name = "textcnn";
    c.spec.kind = "textcnn";
    c.spec.vocab_size = 50;
    c.spec.embed_dim = 8;
    c.spec.num_filters = 4;
    c.spec.kernel_sizes = {2, 3, 5};
    c.spec.num_classes = 3;
    c.spec.dropout = 0.5;
    c.inputs = TextInputs(50, lengths, 7, 14);
    c.params = {{"embed.weight", {50, 8}}, {"convs.0.weight", {4, 8, 2}},
                {"convs.0.bias", {4}},     {"convs.1.weight", {4, 8, 3}},
                {"convs.1.bias", {4}},     {"convs.2.weight", {4, 8, 5}},
                {"convs.2.bias", {4}},     {"fc.weight", {3, 12}},
                {"fc.bias", {3}}};
    c.classes = 3;
    c.dropout_active = true;
    cases.push_back(c);
  }
  {
    Case c;
    c.name = "mlp";
    c.spec.kind = "mlp";
    c.spec.input_dim = 6;
    c.spec.hidden_sizes = {16, 8};
    c.spec.num_classes = 3;
    c.spec.dropout = 0.5;
    c.inputs = {FloatInput({5, 6}, 15)};
    c.params = {{"fc1.weight", {16, 6}}, {"fc1.bias", {16}}, {"fc2.weight", {8, 16}},
                {"fc2.bias", {8}},       {"out.weight", {3, 8}}, {"out.bias", {3}}};
    c.classes = 3;
    c.dropout_active = true;
    cases.push_back(c);
  }
  {
    Case c;
    c.name = "mlp-no-dropout";
    c.spec.kind = "mlp";
    c.spec.input_dim = 6;
    c.spec.hidden_sizes = {16};
    c.spec.num_classes = 3;
    c.inputs = {FloatInput({5, 6}, 16)};
    c.params = {{"fc1.weight", {16, 6}}, {"fc1.bias", {16}}, {"out.weight", {3, 16}},
                {"out.bias", {3}}};
    c.classes = 3;
    cases.push_back(c);
  }
  {
    Case c;
    c.name = "cnn28";
    c.spec.kind = "cnn28";
    c.spec.channels = {4, 8};
    c.spec.num_classes = 10;
    c.spec.dropout = 0.25;
    c.inputs = {FloatInput({3, 1, 28, 28}, 17)};
    c.params = {{"conv1.weight", {4, 1, 3, 3}}, {"conv1.bias", {4}},
                {"conv2.weight", {8, 4, 3, 3}}, {"conv2.bias", {8}},
                {"fc.weight", {10, 392}},       {"fc.bias", {10}}};
    c.classes = 10;
    c.dropout_active = true;
    cases.push_back(c);
  }
  {
    Case c;
    c.name = "resnet32";
    c.spec.kind = "resnet32";
    c.spec.width = 4;  // blocks_per_stage = 5 (the default): the 32-layer network
    c.spec.num_classes = 10;
    c.inputs = {FloatInput({3, 3, 32, 32}, 18)};
    c.param_count = 33 * 3 + 2;  // 31 3x3 convs + 2 shortcut convs, each with a BatchNorm; fc
    c.some_params = {{"conv1.weight", {4, 3, 3, 3}},
                     {"bn1.weight", {4}},
                     {"layer1.0.conv1.weight", {4, 4, 3, 3}},
                     {"layer2.0.conv1.weight", {8, 4, 3, 3}},
                     {"layer2.0.downsample.0.weight", {8, 4, 1, 1}},
                     {"layer2.0.downsample.1.bias", {8}},
                     {"layer3.4.bn2.bias", {16}},
                     {"fc.weight", {10, 16}}};
    c.classes = 10;
    c.batchnorm = true;
    cases.push_back(c);
  }
  return cases;
}

// The Python half: loads each saved model, compares its eval output to the C++ one, checks
// the parameter and buffer names, and back-propagates in training mode.
const char* kPython = R"PY(
import sys, torch
d = sys.argv[1]
for name in sys.argv[2:]:
    def report(ok, what, detail=""):
        print(("PASS" if ok else "FAIL") + " python " + name + ": " + what + (": " + detail if detail and not ok else ""), flush=True)
    try:
        m = torch.jit.load(d + "/" + name + ".pt")
        data = torch.jit.load(d + "/" + name + "_data.pt")
        inputs = list(data.inputs)
        names = [n for n, _ in m.named_parameters()]
        report(names == data.param_names.split(","), "torch.jit.load, parameter names as in C++", str(names))
        bufs = [n for n, _ in m.named_buffers()]
        report(bufs == [b for b in data.buffer_names.split(",") if b], "buffer names as in C++", str(bufs))
        m.eval()
        with torch.no_grad():
            out = m(*inputs)
        diff = (out - data.expected).abs().max().item()
        report(out.shape == data.expected.shape and diff <= 1e-5, "eval output equals C++ (max diff %.3g)" % diff, str(out.shape))
        sd = {k: v.detach() for k, v in m.state_dict().items()}
        if "rnn.weight_ih_l0" in sd:
            # The same weights in torch.nn modules, packed with enforce_sorted=False.
            H = sd["rnn.weight_hh_l0"].shape[1]
            gates = sd["rnn.weight_hh_l0"].shape[0] // H
            L = 1 + max(int(k[len("rnn.weight_ih_l"):].split("_")[0]) for k in sd if k.startswith("rnn.weight_ih_l"))
            bi = "rnn.weight_ih_l0_reverse" in sd
            cls = torch.nn.LSTM if gates == 4 else torch.nn.GRU
            rnn = cls(sd["embed.weight"].shape[1], H, L, batch_first=True, bidirectional=bi)
            rnn.load_state_dict({k[4:]: v for k, v in sd.items() if k.startswith("rnn.")})
            rnn.eval()
            with torch.no_grad():
                emb = torch.nn.functional.embedding(inputs[0], sd["embed.weight"])
                packed = torch.nn.utils.rnn.pack_padded_sequence(emb, inputs[1], batch_first=True, enforce_sorted=False)
                h = rnn(packed)[1]
                h = h[0] if gates == 4 else h
                feat = torch.cat([h[-2], h[-1]], 1) if bi else h[-1]
                ref = torch.nn.functional.linear(feat, sd["fc.weight"], sd["fc.bias"])
            diff = (ref - out).abs().max().item()
            report(diff <= 1e-5, "equals torch.nn.%s over pack_padded_sequence(enforce_sorted=False) (max diff %.3g)" % (cls.__name__, diff))
        m.train()
        out = m(*inputs)
        out.mean().backward()
        frozen = [f for f in data.frozen_names.split(",") if f]
        params = dict(m.named_parameters())
        missing = [n for n, p in params.items() if n not in frozen and (not p.requires_grad or p.grad is None or not torch.isfinite(p.grad).all())]
        bad_frozen = [n for n in frozen if params[n].requires_grad or params[n].grad is not None]
        report(not missing and not bad_frozen, "backward: every trainable parameter has a finite gradient" + (", frozen ones none" if frozen else ""), "missing " + str(missing) + " frozen-with-grad " + str(bad_frozen))
    except Exception as e:
        report(False, "load/run", repr(e)[:400])
)PY";

void RunCase(Case& c, const fs::path& dir) {
  const std::string n = c.name + ": ";
  Module m;
  bool built = false;
  Check(n + "build", [&]() -> std::string {
    m = de::build_model(c.spec, 1);
    built = true;
    return m.is_training() ? "" : "not in training mode after build";
  });
  if (!built) return;

  Check(n + "parameter names and shapes", [&]() -> std::string {
    const Named ps = Params(m);
    if (!c.params.empty()) {
      if (ps.size() != c.params.size())
        return "got " + std::to_string(ps.size()) + " parameters: " + Join(Names(ps));
      for (size_t i = 0; i < ps.size(); ++i) {
        if (ps[i].first != c.params[i].first || ps[i].second.sizes() != c.params[i].second)
          return "parameter " + std::to_string(i) + " is " + ps[i].first + " " +
                 Shape(ps[i].second.sizes()) + ", expected " + c.params[i].first + " " +
                 Shape(c.params[i].second);
      }
    } else {
      if (ps.size() != c.param_count)
        return "got " + std::to_string(ps.size()) + " parameters, expected " +
               std::to_string(c.param_count) + ": " + Join(Names(ps));
      std::map<std::string, at::Tensor> byname(ps.begin(), ps.end());
      for (const auto& e : c.some_params) {
        auto it = byname.find(e.first);
        if (it == byname.end()) return "no parameter " + e.first + " in " + Join(Names(ps));
        if (it->second.sizes() != e.second)
          return e.first + " has shape " + Shape(it->second.sizes()) + ", expected " + Shape(e.second);
      }
    }
    for (const auto& p : ps) {
      const bool frozen = std::find(c.frozen.begin(), c.frozen.end(), p.first) != c.frozen.end();
      if (p.second.requires_grad() == frozen) return p.first + " requires_grad is wrong";
      if (p.second.scalar_type() != at::kFloat) return p.first + " is not float32";
      if (!at::isfinite(p.second).all().item<bool>()) return p.first + " has non-finite values";
    }
    if (c.spec.pretrained_embedding.defined()) {
      const at::Tensor want = c.spec.pretrained_embedding.to(at::kFloat);
      for (const auto& p : ps)
        if (p.first == "embed.weight" && !at::equal(p.second, want))
          return "embed.weight is not the pretrained table";
    } else if (c.spec.kind == "textrnn" || c.spec.kind == "textcnn") {
      if (!at::equal(Params(m)[0].second[0], at::zeros({Params(m)[0].second.size(1)})))
        return "embed.weight padding row is not zero";
    }
    if (c.batchnorm) {
      const Named bs = Buffers(m);
      std::map<std::string, at::Tensor> byname(bs.begin(), bs.end());
      for (const char* b : {"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                            "layer2.0.downsample.1.running_var", "layer3.4.bn2.running_mean"})
        if (!byname.count(b)) return std::string("no buffer ") + b + " in " + Join(Names(bs));
      if (bs.size() != 33 * 3) return "got " + std::to_string(bs.size()) + " buffers";
    } else if (!Buffers(m).empty()) {
      return "unexpected buffers: " + Join(Names(Buffers(m)));
    }
    return "";
  });

  at::Tensor train_out;
  Check(n + "forward (train) shape and finite values", [&]() -> std::string {
    at::manual_seed(0);
    train_out = Forward(m, c.inputs);
    const std::vector<int64_t> want{c.inputs[0].size(0), c.classes};
    if (train_out.sizes() != want) return "output shape " + Shape(train_out.sizes());
    if (!at::isfinite(train_out).all().item<bool>()) return "non-finite output";
    return "";
  });
  if (!train_out.defined()) return;

  Check(n + "backward: every trainable parameter has a gradient" +
            (c.frozen.empty() ? "" : ", the frozen embedding none"),
        [&]() -> std::string {
          train_out.mean().backward();
          for (const auto& p : Params(m)) {
            const bool frozen =
                std::find(c.frozen.begin(), c.frozen.end(), p.first) != c.frozen.end();
            const at::Tensor g = p.second.grad();
            if (frozen) {
              if (g.defined()) return p.first + " (frozen) got a gradient";
              continue;
            }
            if (!g.defined()) return p.first + " got no gradient";
            if (!at::isfinite(g).all().item<bool>()) return p.first + " has a non-finite gradient";
            if (g.abs().sum().item<double>() == 0.0) return p.first + " has an all-zero gradient";
            if (p.first == "embed.weight" && c.spec.padding_idx == 0 &&
                g[0].abs().sum().item<double>() != 0.0)
              return "embed.weight padding row got a gradient";
          }
          return "";
        });

  Check(n + "same seed gives bitwise equal parameters and buffers, another seed differs",
        [&]() -> std::string {
          const Named a = State(de::build_model(c.spec, 7)), b = State(de::build_model(c.spec, 7)),
                      d = State(de::build_model(c.spec, 8));
          if (a.size() != b.size() || a.size() != d.size()) return "different tensor counts";
          size_t differing = 0, random = 0;
          for (size_t i = 0; i < a.size(); ++i) {
            if (a[i].first != b[i].first || !at::equal(a[i].second, b[i].second))
              return a[i].first + " differs between two builds with seed 7";
            const bool constant = a[i].second.numel() > 1 &&
                                  at::equal(a[i].second, a[i].second.flatten()[0].expand_as(a[i].second));
            const bool frozen = std::find(c.frozen.begin(), c.frozen.end(), a[i].first) != c.frozen.end();
            if (constant || frozen || a[i].second.numel() <= 1) continue;  // BatchNorm init, pretrained
            ++random;
            if (at::equal(a[i].second, d[i].second)) return a[i].first + " is equal for seeds 7 and 8";
            ++differing;
          }
          return random > 0 && differing == random ? "" : "no random parameters";
        });

  Check(n + (c.batchnorm ? "eval() is deterministic and keeps BatchNorm statistics; train() updates them"
                         : c.dropout_active ? "train() output differs from eval() (dropout), eval() is deterministic"
                                            : "train() output equals eval() (no dropout), eval() is deterministic"),
        [&]() -> std::string {
          at::NoGradGuard no_grad;
          m.eval();
          const Named before = Buffers(m);
          std::vector<at::Tensor> saved;
          for (const auto& b : before) saved.push_back(b.second.clone());
          const at::Tensor e1 = Forward(m, c.inputs), e2 = Forward(m, c.inputs);
          if (!at::equal(e1, e2)) return "two eval() forwards differ";
          for (size_t i = 0; i < before.size(); ++i)
            if (!at::equal(saved[i], before[i].second)) return before[i].first + " changed in eval()";
          m.train();
          at::manual_seed(1);
          const at::Tensor t = Forward(m, c.inputs);
          if (c.batchnorm) {
            const Named after = Buffers(m);
            for (size_t i = 0; i < after.size(); ++i) {
              const std::string& bn = after[i].first;
              if (bn.size() > 19 && bn.substr(bn.size() - 19) == "num_batches_tracked") {
                if (after[i].second.item<int64_t>() != saved[i].item<int64_t>() + 1)
                  return bn + " was not incremented";
              } else if (at::equal(after[i].second, saved[i])) {
                return bn + " did not change in train()";
              }
            }
            return MaxDiff(t, e1) > 0 ? "" : "train() output equals eval() with BatchNorm";
          }
          const bool same = at::equal(t, e1);
          if (c.dropout_active && same) return "train() output equals eval() output";
          if (!c.dropout_active && !same)
            return "train() output differs from eval() by " + std::to_string(MaxDiff(t, e1));
          return "";
        });

  if (c.spec.kind == "textrnn") {
    Check(n + "padded batch equals each sequence alone, extra padding changes nothing (eval)",
          [&]() -> std::string {
            at::NoGradGuard no_grad;
            m.eval();
            const at::Tensor tokens = c.inputs[0], lengths = c.inputs[1];
            const at::Tensor batch = Forward(m, c.inputs);
            double worst = 0;
            for (int64_t i = 0; i < tokens.size(0); ++i) {
              const int64_t len = lengths[i].item<int64_t>();
              const at::Tensor one = Forward(
                  m, {tokens.narrow(0, i, 1).narrow(1, 0, len).contiguous(), lengths.narrow(0, i, 1)});
              worst = std::max(worst, MaxDiff(one[0], batch[i]));
            }
            // Garbage after each length, and a longer time axis.
            auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
            at::Tensor longer = at::randint(1, m.attr("embed").toModule().attr("weight").toTensor().size(0),
                                            {tokens.size(0), tokens.size(1) + 3}, gen, at::kLong);
            longer.narrow(1, 0, tokens.size(1)).copy_(tokens);
            for (int64_t i = 0; i < tokens.size(0); ++i) {
              const int64_t len = lengths[i].item<int64_t>();
              longer[i].narrow(0, len, tokens.size(1) - len).fill_(7);
            }
            worst = std::max(worst, MaxDiff(Forward(m, {longer, lengths}), batch));
            m.train();
            return worst <= 1e-5 ? "" : "max difference " + std::to_string(worst);
          });
  }
  if (c.spec.kind == "textcnn") {
    Check(n + "sequences shorter than the widest kernel are accepted", [&]() -> std::string {
      at::NoGradGuard no_grad;
      const at::Tensor out = Forward(m, {c.inputs[0].narrow(1, 0, 2).contiguous(), at::full({5}, 2, at::kLong)});
      return out.sizes() == at::IntArrayRef({5, c.classes}) && at::isfinite(out).all().item<bool>()
                 ? "" : "bad output " + Shape(out.sizes());
    });
  }

  Check(n + "save, torch::jit::load in C++ gives the same eval output", [&]() -> std::string {
    at::NoGradGuard no_grad;
    m.eval();
    const at::Tensor expected = Forward(m, c.inputs);
    const std::string path = (dir / (c.name + ".pt")).string();
    m.save(path);
    Module data(c10::QualifiedName("__torch__.dropattack_test.Data"));
    data.register_attribute("training", c10::BoolType::get(), false);
    c10::List<at::Tensor> inputs;
    for (const auto& t : c.inputs) inputs.push_back(t);
    data.register_attribute("inputs", c10::ListType::ofTensors(), inputs);
    data.register_attribute("expected", c10::TensorType::get(), expected);
    data.register_attribute("param_names", c10::StringType::get(), Join(Names(Params(m))));
    data.register_attribute("buffer_names", c10::StringType::get(), Join(Names(Buffers(m))));
    data.register_attribute("frozen_names", c10::StringType::get(), Join(c.frozen));
    data.save((dir / (c.name + "_data.pt")).string());
    Module back = torch::jit::load(path);
    if (back.is_training()) return "reloaded module is in training mode";
    const at::Tensor out = Forward(back, c.inputs);
    if (!at::equal(out, expected)) return "output differs by " + std::to_string(MaxDiff(out, expected));
    if (Names(State(back)) != Names(State(m))) return "names differ after reload";
    for (const auto& p : Params(back)) {
      const bool frozen = std::find(c.frozen.begin(), c.frozen.end(), p.first) != c.frozen.end();
      if (p.second.requires_grad() == frozen) return p.first + " requires_grad lost in save/load";
    }
    return "";
  });
}

void CheckValidation() {
  struct Bad {
    std::string what;
    std::function<void(de::ModelSpec&)> edit;
    std::string kind;
    std::vector<std::string> expect;  // substrings of the message
  };
  const std::vector<Bad> bads = {
      {"unknown kind", [](de::ModelSpec&) {}, "lstm", {"unknown kind \"lstm\"", "textrnn, textcnn"}},
      {"num_layers 0", [](de::ModelSpec& s) { s.num_layers = 0; }, "textrnn", {"num_layers", "got 0"}},
      {"cell rnn", [](de::ModelSpec& s) { s.cell = "rnn"; }, "textrnn", {"cell", "\"rnn\""}},
      {"hidden_size -1", [](de::ModelSpec& s) { s.hidden_size = -1; }, "textrnn", {"hidden_size", "got -1"}},
      {"vocab_size 0", [](de::ModelSpec& s) { s.vocab_size = 0; }, "textrnn", {"vocab_size", "got 0"}},
      {"padding_idx 50", [](de::ModelSpec& s) { s.padding_idx = 50; }, "textcnn", {"padding_idx", "got 50"}},
      {"dropout 1", [](de::ModelSpec& s) { s.dropout = 1.0; }, "mlp", {"dropout", "got 1"}},
      {"output_dropout -0.5", [](de::ModelSpec& s) { s.output_dropout = -0.5; }, "textrnn", {"output_dropout", "got -0.5"}},
      {"kernel_sizes {3, 0}", [](de::ModelSpec& s) { s.kernel_sizes = {3, 0}; }, "textcnn", {"kernel_sizes", "{3, 0}"}},
      {"kernel_sizes {}", [](de::ModelSpec& s) { s.kernel_sizes = {}; }, "textcnn", {"kernel_sizes"}},
      {"num_filters 0", [](de::ModelSpec& s) { s.num_filters = 0; }, "textcnn", {"num_filters", "got 0"}},
      {"hidden_sizes {8, 0}", [](de::ModelSpec& s) { s.hidden_sizes = {8, 0}; }, "mlp", {"hidden_sizes", "{8, 0}"}},
      {"input_dim 0", [](de::ModelSpec& s) { s.input_dim = 0; }, "mlp", {"input_dim", "got 0"}},
      {"num_classes 0", [](de::ModelSpec& s) { s.num_classes = 0; }, "mlp", {"num_classes", "got 0"}},
      {"channels {4}", [](de::ModelSpec& s) { s.channels = {4}; }, "cnn28", {"channels", "{4}"}},
      {"width 0", [](de::ModelSpec& s) { s.width = 0; }, "resnet32", {"width", "got 0"}},
      {"blocks_per_stage 0", [](de::ModelSpec& s) { s.blocks_per_stage = 0; }, "resnet32", {"blocks_per_stage", "got 0"}},
      {"pretrained shape vs vocab_size", [](de::ModelSpec& s) { s.pretrained_embedding = at::zeros({7, 8}); }, "textrnn", {"vocab_size 50", "[7, 8]"}},
      {"pretrained 1-D", [](de::ModelSpec& s) { s.vocab_size = 0; s.pretrained_embedding = at::zeros({7}); }, "textcnn", {"pretrained_embedding", "2-D"}},
  };
  for (const auto& b : bads) {
    Check("validation: " + b.kind + " " + b.what + " is refused with a message naming it",
          [&]() -> std::string {
            de::ModelSpec s;
            s.kind = b.kind;
            s.vocab_size = 50;
            s.embed_dim = 8;
            s.input_dim = 6;
            b.edit(s);
            try {
              de::build_model(s, 0);
            } catch (const c10::Error& e) {
              const std::string msg = e.what_without_backtrace();
              for (const auto& want : b.expect)
                if (msg.find(want) == std::string::npos) return "message lacks '" + want + "': " + msg;
              return "";
            }
            return "no error";
          });
  }
  Check("validation: pretrained_embedding gives vocab_size and embed_dim", [&]() -> std::string {
    de::ModelSpec s;
    s.kind = "textcnn";
    s.pretrained_embedding = at::ones({7, 3});
    const Named ps = Params(de::build_model(s, 0));
    return ps[0].first == "embed.weight" && ps[0].second.sizes() == at::IntArrayRef({7, 3})
               ? "" : "embed.weight is " + Shape(ps[0].second.sizes());
  });
}

void RunPython(const std::vector<Case>& cases, const fs::path& dir) {
  const char* py = "/usr/bin/python3";
  if (!fs::exists(py)) {
    std::printf("SKIP python checks: %s not found\n", py);
    return;
  }
  const fs::path script = dir / "check.py";
  std::ofstream(script) << kPython;
  std::string cmd = std::string(py) + " '" + script.string() + "' '" + dir.string() + "'";
  for (const auto& c : cases) cmd += " '" + c.name + "'";
  cmd += " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) {
    Report(false, "python: run " + cmd);
    return;
  }
  char line[4096];
  int lines = 0;
  std::string other;
  while (std::fgets(line, sizeof line, pipe)) {
    std::string l(line);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (l.rfind("PASS ", 0) == 0) {
      ++lines;
      Report(true, l.substr(5));
    } else if (l.rfind("FAIL ", 0) == 0) {
      ++lines;
      Report(false, l.substr(5));
    } else {
      other += l + "\n";
    }
  }
  const int rc = pclose(pipe);
  int expected = 0;
  for (const auto& c : cases) expected += c.spec.kind == "textrnn" ? 5 : 4;
  if (rc != 0 || lines != expected)
    Report(false, "python: exit status and check count", "status " + std::to_string(rc) + ", " +
                                                          std::to_string(lines) + " checks\n" + other);
}

}  // namespace

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  at::set_num_threads(1);
  std::string tmpl = (fs::temp_directory_path() / "models_test.XXXXXX").string();
  if (!mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 2;
  }
  const fs::path dir(tmpl);

  std::vector<Case> cases = Cases();
  for (auto& c : cases) {
    const auto s = std::chrono::steady_clock::now();
    RunCase(c, dir);
    std::printf("     (%s: %.2f s)\n", c.name.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  CheckValidation();
  const auto tp = std::chrono::steady_clock::now();
  RunPython(cases, dir);
  const auto t1 = std::chrono::steady_clock::now();
  std::printf("     (python: %.2f s, total %.2f s)\n", std::chrono::duration<double>(t1 - tp).count(),
              std::chrono::duration<double>(t1 - t0).count());

  const char* keep = std::getenv("MODELS_TEST_KEEP");
  if (g_failed == 0 && !(keep && *keep && std::string(keep) != "0")) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  } else {
    std::printf("     (files kept in %s)\n", dir.c_str());
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
