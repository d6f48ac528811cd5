// ontap_native: the few syscalls Node lacks (contract: src/native/binding.ts). Syscalls and a
// uv_poll_t wrapper only; every protocol decision stays in TypeScript.
//
// One file per concern (see exports.h); this one creates the per-instance data and registers
// every entry point under its binding.ts name.
#include "common.h"
#include "exports.h"

namespace ontap {

namespace {

constexpr int kAbiVersion = 5;

// index.ts hands over the NativeError class once, right after loading.
Napi::Value SetErrorConstructor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    ThrowArg(env, "setErrorConstructor", "argument must be a constructor");
    return env.Undefined();
  }
  Data(env)->errorCtor = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->pollerCtor = Napi::Persistent(DefinePoller(env));
  env.SetInstanceData(data);

  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } const functions[] = {
      {"setErrorConstructor", SetErrorConstructor},
      {"socket", Socket},
      {"socketpair", Socketpair},
      {"bindNetlink", BindNetlink},
      {"bindUnix", BindUnix},
      {"listen", Listen},
      {"accept", Accept},
      {"connectUnix", ConnectUnix},
      {"setsockoptInt", SetsockoptInt},
      {"getsockoptInt", GetsockoptInt},
      {"setTimeouts", SetTimeouts},
      {"peerCred", PeerCred},
      {"socketInfo", SocketInfo},
      {"socketNetns", SocketNetns},
      {"sendmsg", Sendmsg},
      {"recvmsg", Recvmsg},
      {"sendmsgAsync", SendmsgAsync},
      {"bindInet", BindInet},
      {"setsockoptBytes", SetsockoptBytes},
      {"recvInet", RecvInet},
      {"sendInet", SendInet},
      {"close", Close},
      {"poll", Poll},
      {"setCloexec", SetCloexec},
      {"unshare", Unshare},
      {"sethostname", Sethostname},
      {"execve", Execve},
      {"writeFileInNetns", WriteFileInNetns},
      {"tapSetIff", TapSetIff},
      {"tapGetIff", TapGetIff},
      {"mknodChar", MknodChar},
      {"socketInNetns", SocketInNetns},
      {"nsOwnerUserns", NsOwnerUserns},
      {"interfaceUp", InterfaceUp},
      {"utsHostnames", UtsHostnames},
      {"closeInBackground", CloseInBackground},
      {"backgroundCloses", BackgroundCloses},
      {"closerStats", CloserStats},
      {"closeIfNothingInFlight", CloseIfNothingInFlight},
  };
  for (const auto& f : functions) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  return exports;
}

}  // namespace

}  // namespace ontap

using ontap::Init;
NODE_API_MODULE(ontap_native, Init)
