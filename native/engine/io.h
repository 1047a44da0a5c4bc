// Files written by the engine and the binding: serialized in memory first, then written
// with checked write/fsync/close, so a full disk, a read-only file system or a denied
// permission is an exception naming the path and the cause. (LibTorch's own file writer
// reports a failed write from its destructor, which terminates the process.)
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <torch/serialize/output-archive.h>

#include <string>

namespace dropattack {
namespace engine {

/// "ENOSPC", "EACCES", "EROFS", ... for an errno value ("errno N" for others).
std::string ErrnoName(int err);

/// Writes `bytes` to `path` (created or truncated) and flushes it to the device.
/// Throws std::runtime_error "<what>: cannot write '<path>': <reason> (<ERRNO>)".
void WriteFile(const std::string& path, const std::string& bytes, const std::string& what);

/// A TorchScript module as `torch.jit.load` reads it, through WriteFile.
void SaveModule(const torch::jit::Module& module, const std::string& path, const std::string& what);

/// A serialized archive (optimizer state, tensors) through WriteFile.
void SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path, const std::string& what);

}  // namespace engine
}  // namespace dropattack
