#include "engine/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace dropattack {
namespace engine {

std::string ErrnoName(int err) {
  switch (err) {
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EIO: return "EIO";
    case EFBIG: return "EFBIG";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case EINVAL: return "EINVAL";
    default: return "errno " + std::to_string(err);
  }
}

namespace {
[[noreturn]] void Fail(const std::string& what, const std::string& path, const char* step, int err) {
  throw std::runtime_error(what + ": cannot write '" + path + "': " + step + ": " + std::strerror(err) + " (" +
                           ErrnoName(err) + ")");
}
}  // namespace

void WriteFile(const std::string& path, const std::string& bytes, const std::string& what) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Fail(what, path, "open", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      Fail(what, path, "write", err);
    }
    if (n == 0) {  // no progress and no error: treat as a full device rather than spin
      ::close(fd);
      Fail(what, path, "write", ENOSPC);
    }
    done += static_cast<size_t>(n);
  }
  // Flush to the device for regular files only (fsync of a pipe or device is EINVAL).
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    Fail(what, path, "fsync", err);
  }
  if (::close(fd) != 0 && errno != EINTR) Fail(what, path, "close", errno);
}

void SaveModule(const torch::jit::Module& module, const std::string& path, const std::string& what) {
  // Serialized to memory: LibTorch's zip writer finishes inside its destructor, where a
  // failure of a file stream would terminate the process; a string stream cannot fail.
  std::ostringstream out;
  module.save(out);
  WriteFile(path, out.str(), what);
}

void SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path, const std::string& what) {
  std::ostringstream out;
  archive.save_to(out);
  WriteFile(path, out.str(), what);
}

}  // namespace engine
}  // namespace dropattack
