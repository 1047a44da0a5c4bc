// The built-in models of the training engine, with no Node in them.
//
// Every built-in model is a torch::jit::Module built here by registering parameters,
// buffers and attributes and define()-ing TorchScript source. So a built-in model takes the
// same path through the engine as a user's TorchScript file, and Module::save() writes a
// file that Python's torch.jit.load opens, runs and back-propagates through.
//
// Conventions shared by every model:
//   - Parameters are named as torch.nn names them (embed.weight, rnn.weight_ih_l0,
//     conv1.weight, layer1.0.bn1.running_mean, fc.weight, ...), through submodules.
//   - Every module and submodule has a bool attribute `training` (true after building), so
//     Module::train() / eval() work and `self.training` resolves in TorchScript.
//   - Parameters are float32 on the CPU. They are initialized from the seed alone with a
//     local generator (at::make_generator<at::CPUGeneratorImpl>(seed)), never the global one,
//     with torch.nn's default formulas:
//       Linear / Conv1d / Conv2d weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). This is
//         exactly what torch.nn's kaiming_uniform_(a=sqrt(5)) reset_parameters() gives
//         (bound = sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in)); fan_in = in * kernel area.
//       Embedding: N(0, 1), the padding_idx row set to zero.
//       LSTM / GRU weights and biases: U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
//       BatchNorm: weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
//     Tensors are drawn in the order the parameters are registered, so a build is bitwise
//     reproducible from (spec, seed). Dropout inside forward() uses the global generator
//     (as torch.nn does): seed it with torch::manual_seed for reproducible training passes.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dropattack {
namespace engine {

/// What to build. Only the options of `kind` are read; the others are ignored.
struct ModelSpec {
  /// "textrnn" | "textcnn" | "mlp" | "cnn28" | "resnet32".
  std::string kind;

  // --- every model ---
  int64_t num_classes = 2;  // >= 1: the width of the output logits
  /// Dropout probability in [0, 1), applied in training mode only:
  ///   textrnn: between stacked RNN layers (torch.nn.LSTM's `dropout`; no effect when
  ///            num_layers == 1); see output_dropout for the classifier input.
  ///   textcnn: on the concatenated pooled features, before fc (Kim 2014).
  ///   mlp:     after each hidden layer's ReLU.
  ///   cnn28, resnet32: on the features before fc.
  double dropout = 0.0;

  // --- text models (textrnn, textcnn): forward(tokens int64 [B, T], lengths int64 [B]) ---
  int64_t vocab_size = 0;  // > 0; may be 0 when pretrained_embedding gives it
  int64_t embed_dim = 0;   // > 0; may be 0 when pretrained_embedding gives it
  /// Row of the embedding that gets no gradient (and is zero-initialized); -1 for none.
  int64_t padding_idx = 0;
  /// Optional float [vocab_size, embed_dim] table copied into embed.weight (converted to
  /// float32; its padding row is kept as given).
  at::Tensor pretrained_embedding;
  /// The embedding stays a parameter named embed.weight (so state dicts and Python see it
  /// where torch.nn puts it) but with requires_grad = false: it gets no gradient and the
  /// engine's trainers skip it, as they skip every parameter that does not require grad.
  bool freeze_embedding = false;
  /// torch.nn.Embedding(sparse=True): the table's gradient is a sparse COO tensor holding
  /// the rows of the batch's tokens only (duplicates not yet summed). The engine's Adam
  /// updates such a parameter row-wise as torch.optim.SparseAdam does (docs/training.md).
  bool sparse_embedding = false;

  // --- textrnn ---
  std::string cell = "lstm";  // "lstm" | "gru"
  int64_t hidden_size = 128;  // > 0
  int64_t num_layers = 1;     // >= 1
  bool bidirectional = false;
  /// Dropout in [0, 1) on the final hidden state before fc (training only). Default 0.
  double output_dropout = 0.0;

  // --- textcnn ---
  int64_t num_filters = 100;                   // > 0, per kernel size
  std::vector<int64_t> kernel_sizes{3, 4, 5};  // non-empty, each > 0

  // --- mlp: forward(x float [B, input_dim]) ---
  int64_t input_dim = 0;                 // > 0
  std::vector<int64_t> hidden_sizes{64};  // each > 0; empty gives a linear classifier

  // --- cnn28: forward(x float [B, 1, 28, 28]) ---
  std::vector<int64_t> channels{32, 64};  // exactly two, each > 0

  // --- resnet32: forward(x float [B, 3, 32, 32]) ---
  int64_t width = 16;            // > 0: channels of the first stage (then 2x, 4x)
  int64_t blocks_per_stage = 5;  // >= 1; 5 gives the 32-layer network of He et al. 2016
};

/// The kinds build_model() accepts.
std::vector<std::string> model_kinds();

/// Builds the model `spec` describes, its parameters initialized deterministically from
/// `seed`, in training mode. Throws c10::Error (TORCH_CHECK) naming the option and the
/// value when an option is invalid.
torch::jit::Module build_model(const ModelSpec& spec, uint64_t seed);

}  // namespace engine
}  // namespace dropattack
