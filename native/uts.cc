// UTS namespaces: the host names of many of them, read on one short-lived thread that joins each
// in turn, so the event-loop thread never moves. setns(CLONE_NEWUTS) is cheap (no RCU grace
// period, unlike a network namespace): reading a thousand names this way takes milliseconds.
#include "common.h"
#include "exports.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/utsname.h>

#include <string>
#include <vector>

namespace ontap {

namespace {

struct UtsRead {
  std::vector<int> fds;
  // Per fd: the nodename, or an errno (setns/uname failed: not a UTS namespace, ...).
  std::vector<std::string> names;
  std::vector<int> errs;
};

void* UtsReadThread(void* arg) {
  auto* r = static_cast<UtsRead*>(arg);
  r->names.resize(r->fds.size());
  r->errs.assign(r->fds.size(), 0);
  for (size_t i = 0; i < r->fds.size(); i++) {
    if (setns(r->fds[i], CLONE_NEWUTS) < 0) {
      r->errs[i] = errno;
      continue;
    }
    struct utsname u;
    if (uname(&u) < 0) {
      r->errs[i] = errno;
      continue;
    }
    // nodename is at most 64 bytes plus a NUL (__NEW_UTS_LEN); strnlen guards a full buffer.
    r->names[i].assign(u.nodename, strnlen(u.nodename, sizeof u.nodename));
  }
  return nullptr;
}

}  // namespace

// utsHostnames(fds): [Buffer | errno number] per UTS namespace descriptor, in order.
Napi::Value UtsHostnames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    ThrowArg(env, "utsHostnames", "fds must be an array of descriptors");
    return env.Undefined();
  }
  Napi::Array in = info[0].As<Napi::Array>();
  UtsRead r;
  for (uint32_t i = 0; i < in.Length(); i++) {
    Napi::Value v = in.Get(i);
    if (!v.IsNumber()) {
      ThrowArg(env, "utsHostnames", "fds must be an array of descriptors");
      return env.Undefined();
    }
    int64_t fd = v.As<Napi::Number>().Int64Value();
    if (fd < 0 || fd > INT32_MAX) {
      ThrowArg(env, "utsHostnames", "fds must be an array of descriptors");
      return env.Undefined();
    }
    r.fds.push_back(static_cast<int>(fd));
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  int e = pthread_create(&thread, nullptr, UtsReadThread, &r);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (e != 0) {
    Throw(env, "pthread_create", e);
    return env.Undefined();
  }
  pthread_join(thread, nullptr);
  Napi::Array out = Napi::Array::New(env, r.fds.size());
  for (size_t i = 0; i < r.fds.size(); i++) {
    if (r.errs[i] != 0)
      out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, r.errs[i]));
    else
      out.Set(static_cast<uint32_t>(i), Napi::Buffer<char>::Copy(env, r.names[i].data(), r.names[i].size()));
  }
  return out;
}

}  // namespace ontap
