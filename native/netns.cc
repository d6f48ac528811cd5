// Network namespaces: unshare/sethostname for the calling thread, and the short-lived threads that
// setns() into another namespace so the event-loop thread never moves.
#include "common.h"
#include "exports.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ontap {

namespace {

// Runs fn(arg) on a short-lived thread and waits for it. The thread starts with every signal
// blocked so process signals never land on it; it may setns() freely because it dies afterwards.
bool RunOnThread(Napi::Env env, void* (*fn)(void*), void* arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  int r = pthread_create(&thread, nullptr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (r != 0) {
    Throw(env, "pthread_create", r);
    return false;
  }
  pthread_join(thread, nullptr);
  return true;
}

struct NetnsWrite {
  int nsFd;
  const char* path;
  const std::string* value;
  const char* failedSyscall = nullptr;
  int err = 0;
};

// Runs on its own short-lived thread: setns() moves only the calling thread, so the event-loop
// thread keeps its namespace whatever happens here. /proc/sys/net (and /proc/thread-self/net)
// resolve against the opening task's namespace, the thread's, which is what makes this work.
// /proc/self/net and /proc/net would not (they are the thread-group leader's), nor /sys/class/net
// (sysfs keeps the namespace it was mounted in).
void* NetnsWriteThread(void* arg) {
  auto* w = static_cast<NetnsWrite*>(arg);
  if (setns(w->nsFd, CLONE_NEWNET) < 0) {
    w->failedSyscall = "setns";
    w->err = errno;
    return nullptr;
  }
  int fd;
  do fd = open(w->path, O_WRONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    w->failedSyscall = "open";
    w->err = errno;
    return nullptr;
  }
  const char* p = w->value->data();
  size_t left = w->value->size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      w->failedSyscall = "write";
      w->err = n < 0 ? errno : EIO;
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  close(fd);
  return nullptr;
}

struct NetnsSocket {
  int nsFd;
  int domain, type, protocol;
  int fd = -1;
  const char* failedSyscall = nullptr;
  int err = 0;
};

// A socket belongs to the namespace of the task that creates it, so a short-lived thread joins
// the namespace and creates it there; the event-loop thread never moves (see NetnsWriteThread).
void* NetnsSocketThread(void* arg) {
  auto* s = static_cast<NetnsSocket*>(arg);
  if (setns(s->nsFd, CLONE_NEWNET) < 0) {
    s->failedSyscall = "setns";
    s->err = errno;
    return nullptr;
  }
  s->fd = socket(s->domain, s->type, s->protocol);
  if (s->fd < 0) {
    s->failedSyscall = "socket";
    s->err = errno;
  }
  return nullptr;
}

}  // namespace

Napi::Value Unshare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t flags;
  if (!GetInt(info, 0, "unshare", "flags", 0, INT_MAX, &flags)) return env.Undefined();
  if (unshare(static_cast<int>(flags)) < 0) THROW_ERRNO(env, "unshare");
  return env.Undefined();
}

Napi::Value Sethostname(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!GetString(info, 0, "sethostname", "name", &name)) return env.Undefined();
  if (sethostname(name.data(), name.size()) < 0) THROW_ERRNO(env, "sethostname");
  return env.Undefined();
}

Napi::Value WriteFileInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int nsFd;
  std::string path, value;
  if (!GetFd(info, 0, "writeFileInNetns", &nsFd) || !GetString(info, 1, "writeFileInNetns", "path", &path) ||
      !GetString(info, 2, "writeFileInNetns", "value", &value))
    return env.Undefined();
  NetnsWrite w{nsFd, path.c_str(), &value};
  if (!RunOnThread(env, NetnsWriteThread, &w)) return env.Undefined();
  if (w.failedSyscall != nullptr) {
    Throw(env, w.failedSyscall, w.err,
          std::string(strerrordesc_np(w.err) ? strerrordesc_np(w.err) : "failed") + ": " + path);
    return env.Undefined();
  }
  return env.Undefined();
}

Napi::Value SocketInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int nsFd;
  int64_t domain, type, protocol;
  if (!GetFd(info, 0, "socketInNetns", &nsFd) || !GetInt(info, 1, "socketInNetns", "domain", 0, INT_MAX, &domain) ||
      !GetInt(info, 2, "socketInNetns", "type", 0, INT_MAX, &type) ||
      !GetInt(info, 3, "socketInNetns", "protocol", 0, INT_MAX, &protocol))
    return env.Undefined();
  bool nonblocking = info.Length() > 4 && info[4].ToBoolean().Value();
  NetnsSocket s{nsFd, static_cast<int>(domain),
                static_cast<int>(type) | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), static_cast<int>(protocol)};
  if (!RunOnThread(env, NetnsSocketThread, &s)) return env.Undefined();
  if (s.failedSyscall != nullptr) {
    Throw(env, s.failedSyscall, s.err);
    return env.Undefined();
  }
  return Napi::Number::New(env, s.fd);
}

// ioctl(NS_GET_USERNS): a new descriptor (O_CLOEXEC, as the kernel makes it) of the user namespace
// that owns the namespace of nsFd.
Napi::Value NsOwnerUserns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int nsFd;
  if (!GetFd(info, 0, "nsOwnerUserns", &nsFd)) return env.Undefined();
  int fd = ioctl(nsFd, NS_GET_USERNS);
  if (fd < 0) THROW_ERRNO(env, "ioctl");
  return Napi::Number::New(env, fd);
}

}  // namespace ontap
