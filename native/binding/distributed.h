// ProcessGroup: the JS handle of an engine::Communicator (native/engine/distributed.h).
// Its collectives run on the thread pool, one at a time: a second collective while one
// is running (a training step of a Trainer on the group included) is refused, since ranks
// that start collectives in different orders would wait on each other for ever.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "engine/distributed.h"

namespace dropattack {
namespace binding {

struct ProcessGroupState {
  std::shared_ptr<engine::Communicator> comm;
  bool busy = false;      // read and written on the JS thread only
  std::string busy_with;  // what holds it, for the error message
};

class ProcessGroup : public Napi::ObjectWrap<ProcessGroup> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit ProcessGroup(const Napi::CallbackInfo& info);
  std::shared_ptr<ProcessGroupState> state;
};

/// The group behind argument i (a live, idle one unless allow_busy); `fn` names the call.
std::shared_ptr<ProcessGroupState> ArgProcessGroup(const Napi::CallbackInfo& info, size_t i, const char* fn,
                                                   bool allow_busy = false);

}  // namespace binding
}  // namespace dropattack
