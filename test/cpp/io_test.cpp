// ctest: files written by the engine (engine/io.h). A failed write is an exception that
// names the file and the cause, never an abort: LibTorch's own file writer finishes in
// its destructor, where a failure (a full disk) terminates the process.
// Prints one line per check and "N passed, M failed".
#include <sys/mount.h>
#include <unistd.h>

#include <torch/script.h>
#include <torch/serialize.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "engine/io.h"
#include "engine/models.h"

namespace de = dropattack::engine;
namespace fs = std::filesystem;

static int passed = 0, failed = 0;
static void Check(bool ok, const std::string& what, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  (ok ? passed : failed)++;
}

// The message of what `f` throws ("" when it returns).
template <typename F>
static std::string Thrown(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

static bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

int main() {
  const fs::path dir = fs::temp_directory_path() / ("dropattack-io-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  de::ModelSpec spec;
  spec.kind = "mlp";
  spec.input_dim = 4;
  spec.hidden_sizes = {8};
  torch::jit::Module model = de::build_model(spec, 1);

  // A round trip through WriteFile: torch::jit::load reads what SaveModule wrote.
  const std::string good = (dir / "model.pt").string();
  std::string err = Thrown([&] { de::SaveModule(model, good, "save"); });
  Check(err.empty(), "SaveModule writes a file", err);
  if (err.empty()) {
    torch::jit::Module back = torch::jit::load(good);
    const at::Tensor x = torch::ones({2, 4});
    model.eval();
    back.eval();
    Check(at::equal(model.forward({x}).toTensor(), back.forward({x}).toTensor()), "torch::jit::load of it gives the same output");
  }

  // A full device: /dev/full fails every write with ENOSPC.
  const std::string full = (dir / "full.pt").string();
  fs::create_symlink("/dev/full", full);
  err = Thrown([&] { de::SaveModule(model, full, "Module.save"); });
  Check(Contains(err, "Module.save: cannot write '" + full + "'") && Contains(err, "(ENOSPC)"),
        "SaveModule to a full device throws naming the file and ENOSPC", err);
  torch::serialize::OutputArchive archive;
  archive.write("x", torch::ones({1000}));
  err = Thrown([&] { de::SaveArchive(archive, full, "Trainer.saveState"); });
  Check(Contains(err, "Trainer.saveState: cannot write '" + full + "'") && Contains(err, "(ENOSPC)"),
        "SaveArchive to a full device throws naming the file and ENOSPC", err);

  // A missing directory.
  const std::string missing = (dir / "no-such-dir" / "m.pt").string();
  err = Thrown([&] { de::WriteFile(missing, "abc", "write"); });
  Check(Contains(err, "'" + missing + "'") && Contains(err, "(ENOENT)"), "WriteFile into a missing directory: ENOENT", err);

  // A read-only file system (root ignores file modes, so it takes a mount).
  const fs::path ro = dir / "ro";
  fs::create_directories(ro);
  if (::mount("tmpfs", ro.c_str(), "tmpfs", MS_RDONLY, "size=64k") == 0) {
    const std::string file = (ro / "m.pt").string();
    err = Thrown([&] { de::SaveModule(model, file, "Module.save"); });
    Check(Contains(err, "'" + file + "'") && Contains(err, "(EROFS)"), "SaveModule on a read-only file system: EROFS", err);
    ::umount(ro.c_str());
  } else {
    std::printf("SKIP read-only file system: cannot mount a tmpfs here (%s)\n", std::strerror(errno));
  }

  fs::remove_all(dir);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
