#include "distributed.h"

#include "common.h"
#include "tensor.h"

namespace dropattack {
namespace binding {

namespace {
using Info = const Napi::CallbackInfo&;

// distributedInfo() -> {available, backends}
Napi::Value DistributedInfo(Info info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", engine::DistributedAvailable());
  const auto backends = engine::DistributedBackends();
  Napi::Array a = Napi::Array::New(env, backends.size());
  for (size_t k = 0; k < backends.size(); ++k) a.Set(static_cast<uint32_t>(k), backends[k]);
  o.Set("backends", a);
  return o;
}

// processGroupNew({masterAddr, masterPort, rank, worldSize, timeoutMs, backend}) ->
// Promise<NativeProcessGroup>: the rendezvous waits for the other ranks, off the JS thread.
Napi::Value CreateGroup(Info info) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, 0);
  if (!v.IsObject() || v.IsArray()) ThrowType(env, "ProcessGroup", "options", "an object", v);
  Napi::Object o = v.As<Napi::Object>();
  engine::DistributedOptions d;
  const std::string w = "ProcessGroup";
  // Every field that says where to connect is required: an object that merely lacks them
  // must not open a port with defaults.
  for (const char* key : {"masterAddr", "masterPort", "rank", "worldSize"}) {
    if (o.Get(key).IsUndefined()) {
      throw Napi::TypeError::New(env, std::string("ProcessGroup: options.") + key + " is required");
    }
  }
  d.master_addr = StringField(env, o, w, "masterAddr", d.master_addr);
  d.master_port = static_cast<int>(IntField(env, o, w, "masterPort", d.master_port));
  d.rank = static_cast<int>(IntField(env, o, w, "rank", 0));
  d.world_size = static_cast<int>(IntField(env, o, w, "worldSize", 1));
  d.timeout = std::chrono::milliseconds(IntField(env, o, w, "timeoutMs", d.timeout.count()));
  d.backend = StringField(env, o, w, "backend", d.backend);
  d.agent_store = BoolField(env, o, w, "agentStore", false);
  auto out = std::make_shared<std::shared_ptr<engine::Communicator>>();
  return PromiseWorker::Start(
      env, "dropattack.processGroupNew", [d, out] { *out = engine::Communicator::Create(d); },
      [out](Napi::Env env) -> Napi::Value {
        auto state = std::make_shared<ProcessGroupState>();
        state->comm = *out;
        return Data(env).process_group_class.New({Napi::External<std::shared_ptr<ProcessGroupState>>::New(env, &state)});
      });
}

// Runs a collective on the thread pool with the group marked busy.
Napi::Value Collective(Napi::Env env, const std::shared_ptr<ProcessGroupState>& state, const char* what,
                       std::function<void()> work) {
  state->busy = true;
  state->busy_with = what;
  return PromiseWorker::Start(
      env, "dropattack.processGroupCollective", std::move(work),
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, [state] { state->busy = false; });
}

// processGroupAllReduce(group, tensor, op) -> Promise<void>: in place.
Napi::Value AllReduce(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgProcessGroup(info, 0, "ProcessGroup.allReduce");
  at::Tensor t = ArgTensor(info, 1, "ProcessGroup.allReduce", "tensor");
  const std::string op = ArgString(info, 2, "ProcessGroup.allReduce", "op");
  if (op != "sum" && op != "mean" && op != "max" && op != "min") {
    ThrowRange(env, "ProcessGroup.allReduce: op must be 'sum', 'mean', 'max' or 'min', got '" + op + "'");
  }
  if (!t.is_contiguous()) throw TorchError(env, "ProcessGroup.allReduce: the tensor must be contiguous");
  return Collective(env, state, "an all-reduce", [state, t, op]() mutable {
    if (op == "mean") state->comm->AllReduceMean({t}, INT64_MAX);
    else state->comm->AllReduce(t, op);
  });
}

// processGroupBroadcast(group, tensors[], root) -> Promise<void>: in place.
Napi::Value Broadcast(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgProcessGroup(info, 0, "ProcessGroup.broadcast");
  Napi::Value v = Arg(info, 1);
  if (!v.IsArray()) ThrowType(env, "ProcessGroup.broadcast", "tensors", "an array of Tensors", v);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> tensors;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value e = a.Get(k);
    Tensor* t = UnwrapAs<Tensor>(env, e, Data(env).tensor_class);
    if (t == nullptr || t->disposed()) ThrowType(env, "ProcessGroup.broadcast", "tensors", "an array of live Tensors", e);
    tensors.push_back(t->value());
  }
  const int64_t root = ArgInt(info, 2, "ProcessGroup.broadcast", "root");
  if (root < 0 || root >= state->comm->world_size()) {
    ThrowRange(env, "ProcessGroup.broadcast: root must be in [0, " + std::to_string(state->comm->world_size()) +
                        "), got " + std::to_string(root));
  }
  return Collective(env, state, "a broadcast", [state, tensors, root] { state->comm->Broadcast(tensors, static_cast<int>(root)); });
}

Napi::Value Barrier(Info info) {
  auto state = ArgProcessGroup(info, 0, "ProcessGroup.barrier");
  return Collective(info.Env(), state, "a barrier", [state] { state->comm->Barrier(); });
}

Napi::Value Close(Info info) {
  Napi::Value v = Arg(info, 0);
  ProcessGroup* g = UnwrapAs<ProcessGroup>(info.Env(), v, Data(info.Env()).process_group_class);
  if (g == nullptr) ThrowType(info.Env(), "ProcessGroup.close", "group", "a ProcessGroup", v);
  if (!g->state) return info.Env().Undefined();
  if (g->state->busy) throw TorchError(info.Env(), "ProcessGroup.close: " + g->state->busy_with + " is running; await it first");
  g->state->comm->Close();
  g->state.reset();
  return info.Env().Undefined();
}

// processGroupInfo(group) -> {rank, worldSize, backend, masterAddr, masterPort, timeoutMs}
Napi::Value InfoOf(Info info) {
  Napi::Env env = info.Env();
  auto state = ArgProcessGroup(info, 0, "ProcessGroup.info", /*allow_busy=*/true);
  const auto& d = state->comm->options();
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", d.rank);
  o.Set("worldSize", d.world_size);
  o.Set("backend", d.backend);
  o.Set("masterAddr", d.master_addr);
  o.Set("masterPort", d.master_port);
  o.Set("timeoutMs", static_cast<double>(d.timeout.count()));
  return o;
}

}  // namespace

std::shared_ptr<ProcessGroupState> ArgProcessGroup(Info info, size_t i, const char* fn, bool allow_busy) {
  Napi::Env env = info.Env();
  Napi::Value v = Arg(info, i);
  ProcessGroup* g = UnwrapAs<ProcessGroup>(env, v, Data(env).process_group_class);
  if (g == nullptr) ThrowType(env, fn, "group", "a ProcessGroup", v);
  if (!g->state) throw TorchError(env, std::string(fn) + ": the process group is closed");
  if (!allow_busy && g->state->busy) {
    throw TorchError(env, std::string(fn) + ": the process group is busy (" + g->state->busy_with +
                              " is running); await it before starting another collective");
  }
  return g->state;
}

void ProcessGroup::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeProcessGroup", {});
  Data(env).process_group_class = Napi::Persistent(cls);
  exports.Set("distributedInfo", Napi::Function::New(env, &Guard<DistributedInfo>, "distributedInfo"));
  exports.Set("processGroupNew", Napi::Function::New(env, &Guard<CreateGroup>, "processGroupNew"));
  exports.Set("processGroupAllReduce", Napi::Function::New(env, &Guard<AllReduce>, "processGroupAllReduce"));
  exports.Set("processGroupBroadcast", Napi::Function::New(env, &Guard<Broadcast>, "processGroupBroadcast"));
  exports.Set("processGroupBarrier", Napi::Function::New(env, &Guard<Barrier>, "processGroupBarrier"));
  exports.Set("processGroupClose", Napi::Function::New(env, &Guard<Close>, "processGroupClose"));
  exports.Set("processGroupInfo", Napi::Function::New(env, &Guard<InfoOf>, "processGroupInfo"));
}

ProcessGroup::ProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroup>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeProcessGroup cannot be constructed from JavaScript; use ProcessGroup.init()");
  }
  state = *info[0].As<Napi::External<std::shared_ptr<ProcessGroupState>>>().Data();
}

}  // namespace binding
}  // namespace dropattack
