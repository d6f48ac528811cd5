// ontap_native: the few syscalls Node lacks (contract: src/native/binding.ts). Syscalls and a
// uv_poll_t wrapper only; every protocol decision stays in TypeScript.
//
// C++ exceptions are off: failures throw JS errors (NativeError when index.ts registered the
// class) and return undefined. errno is always captured before any Node-API call, which may
// clobber it.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <vector>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif
#ifndef SCM_MAX_FD
#define SCM_MAX_FD 253  // include/net/scm.h; the kernel refuses more per message
#endif

namespace {

constexpr int kAbiVersion = 1;
// recvmsg reuses one buffer up to this size; larger requests get a temporary one, so a single
// huge read never pins memory for the life of the process.
constexpr size_t kScratchBytes = 64 * 1024;

struct AddonData {
  Napi::FunctionReference errorCtor;   // NativeError, registered by index.ts
  Napi::FunctionReference pollerCtor;  // the Poller class, never exported
  std::unique_ptr<char[]> scratch;     // allocated on first recvmsg, not at load
};

AddonData* Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// ---- errors -------------------------------------------------------------------------------

const char* ErrnoCode(int err) {
  const char* name = strerrorname_np(err);  // glibc >= 2.32: "EAGAIN", thread-safe
  return name != nullptr ? name : "EUNKNOWN";
}

Napi::Value MakeError(Napi::Env env, const char* syscall, int err, const std::string& detail = "") {
  const char* code = ErrnoCode(err);
  const char* desc = strerrordesc_np(err);
  std::string message = std::string(syscall) + ": " +
                        (!detail.empty() ? detail : desc != nullptr ? desc : "Unknown error") + " (" +
                        code + ")";
  AddonData* data = Data(env);
  if (data != nullptr && !data->errorCtor.IsEmpty()) {
    Napi::Value e = data->errorCtor.New({Napi::String::New(env, message), Napi::Number::New(env, err),
                                         Napi::String::New(env, code), Napi::String::New(env, syscall)});
    if (!env.IsExceptionPending()) return e;
    env.GetAndClearPendingException();  // a broken constructor must not hide the real error
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e.Value();
}

void Throw(Napi::Env env, const char* syscall, int err, const std::string& detail = "") {
  napi_throw(env, MakeError(env, syscall, err, detail));
}

// Argument mistakes are reported like the EINVAL the kernel would give, so callers only ever
// see one error shape.
void ThrowArg(Napi::Env env, const char* fn, const std::string& what) { Throw(env, fn, EINVAL, what); }

#define THROW_ERRNO(env, syscall)       \
  do {                                  \
    int err_ = errno;                   \
    Throw(env, syscall, err_);          \
    return (env).Undefined();           \
  } while (0)

// ---- argument helpers -----------------------------------------------------------------------

bool GetInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t min,
            int64_t max, int64_t* out) {
  if (info.Length() > i && info[i].IsNumber()) {
    double v = info[i].As<Napi::Number>().DoubleValue();
    // Range first: casting NaN or a huge double to an integer is undefined.
    if (v >= static_cast<double>(min) && v <= static_cast<double>(max) && v == std::trunc(v)) {
      *out = static_cast<int64_t>(v);
      return true;
    }
  }
  ThrowArg(info.Env(), fn,
           std::string(name) + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return false;
}

bool GetFd(const Napi::CallbackInfo& info, size_t i, const char* fn, int* fd) {
  int64_t v;
  if (!GetInt(info, i, fn, "fd", 0, INT_MAX, &v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

bool GetString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, std::string* out) {
  if (info.Length() > i && info[i].IsString()) {
    *out = info[i].As<Napi::String>().Utf8Value();
    if (out->find('\0') == std::string::npos) return true;
  }
  ThrowArg(info.Env(), fn, std::string(name) + " must be a string without NUL");
  return false;
}

bool GetStringArray(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                    std::vector<std::string>* out) {
  if (info.Length() > i && info[i].IsArray()) {
    Napi::Array a = info[i].As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length(); k++) {
      Napi::Value v = a.Get(k);
      if (!v.IsString()) break;
      out->push_back(v.As<Napi::String>().Utf8Value());
      if (out->back().find('\0') != std::string::npos) break;
    }
    if (out->size() == a.Length()) return true;
  }
  ThrowArg(info.Env(), fn, std::string(name) + " must be an array of strings without NUL");
  return false;
}

bool GetBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const uint8_t** data, size_t* len) {
  if (info.Length() > i && info[i].IsTypedArray()) {
    Napi::TypedArray t = info[i].As<Napi::TypedArray>();
    *data = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    *len = t.ByteLength();
    return true;
  }
  ThrowArg(info.Env(), fn, "data must be a Uint8Array");
  return false;
}

bool GetFdArray(const Napi::CallbackInfo& info, size_t i, const char* fn, std::vector<int>* out) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return true;
  if (info[i].IsArray()) {
    Napi::Array a = info[i].As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length(); k++) {
      Napi::Value v = a.Get(k);
      if (!v.IsNumber()) break;
      double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= 0 && d <= INT_MAX && d == std::trunc(d))) break;
      out->push_back(static_cast<int>(d));
    }
    if (out->size() == a.Length()) {
      if (out->size() <= SCM_MAX_FD) return true;
      ThrowArg(info.Env(), fn, "at most 253 descriptors per message (SCM_MAX_FD)");
      return false;
    }
  }
  ThrowArg(info.Env(), fn, "fds must be an array of descriptors");
  return false;
}

// undefined/null: no address. Otherwise a netlink port id.
bool GetOptionalPort(const Napi::CallbackInfo& info, size_t i, const char* fn, bool* present, uint32_t* port) {
  *present = false;
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return true;
  int64_t v;
  if (!GetInt(info, i, fn, "netlinkPortId", 0, UINT32_MAX, &v)) return false;
  *present = true;
  *port = static_cast<uint32_t>(v);
  return true;
}

bool UnixAddress(Napi::Env env, const char* syscall, const std::string& path, sockaddr_un* sa, socklen_t* len) {
  if (path.empty()) {
    Throw(env, syscall, EINVAL, "empty unix socket path");
    return false;
  }
  if (path.size() >= sizeof(sa->sun_path)) {
    Throw(env, syscall, ENAMETOOLONG, "unix socket path longer than 107 bytes: " + path);
    return false;
  }
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

// ---- sockets --------------------------------------------------------------------------------

Napi::Value Socket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t domain, type, protocol;
  if (!GetInt(info, 0, "socket", "domain", 0, INT_MAX, &domain) ||
      !GetInt(info, 1, "socket", "type", 0, INT_MAX, &type) ||
      !GetInt(info, 2, "socket", "protocol", 0, INT_MAX, &protocol))
    return env.Undefined();
  bool nonblocking = info.Length() > 3 && info[3].ToBoolean().Value();
  int fd = socket(static_cast<int>(domain), static_cast<int>(type) | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0),
                  static_cast<int>(protocol));
  if (fd < 0) THROW_ERRNO(env, "socket");
  return Napi::Number::New(env, fd);
}

Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t type;
  if (!GetInt(info, 0, "socketpair", "type", 0, INT_MAX, &type)) return env.Undefined();
  int sv[2];
  if (socketpair(AF_UNIX, static_cast<int>(type) | SOCK_CLOEXEC, 0, sv) < 0) THROW_ERRNO(env, "socketpair");
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, sv[0]));
  result.Set(1u, Napi::Number::New(env, sv[1]));
  return result;
}

Napi::Value BindNetlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t groups;
  if (!GetFd(info, 0, "bindNetlink", &fd) || !GetInt(info, 1, "bindNetlink", "groups", 0, UINT32_MAX, &groups))
    return env.Undefined();
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = static_cast<uint32_t>(groups);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) THROW_ERRNO(env, "bind");
  socklen_t len = sizeof(sa);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) THROW_ERRNO(env, "getsockname");
  return Napi::Number::New(env, sa.nl_pid);
}

Napi::Value BindUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  std::string path;
  sockaddr_un sa;
  socklen_t len;
  if (!GetFd(info, 0, "bind", &fd) || !GetString(info, 1, "bind", "path", &path) ||
      !UnixAddress(env, "bind", path, &sa, &len))
    return env.Undefined();
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) THROW_ERRNO(env, "bind");
  return env.Undefined();
}

Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  std::string path;
  sockaddr_un sa;
  socklen_t len;
  if (!GetFd(info, 0, "connect", &fd) || !GetString(info, 1, "connect", "path", &path) ||
      !UnixAddress(env, "connect", path, &sa, &len))
    return env.Undefined();
  // No EINTR retry: a restarted connect() reports EALREADY/EISCONN, not the outcome.
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) THROW_ERRNO(env, "connect");
  return env.Undefined();
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t backlog;
  if (!GetFd(info, 0, "listen", &fd) || !GetInt(info, 1, "listen", "backlog", 0, INT_MAX, &backlog))
    return env.Undefined();
  if (listen(fd, static_cast<int>(backlog)) < 0) THROW_ERRNO(env, "listen");
  return env.Undefined();
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "accept", &fd)) return env.Undefined();
  int conn;
  do conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  while (conn < 0 && errno == EINTR);
  if (conn < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    THROW_ERRNO(env, "accept4");
  }
  return Napi::Number::New(env, conn);
}

Napi::Value SetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t level, name, value;
  if (!GetFd(info, 0, "setsockopt", &fd) || !GetInt(info, 1, "setsockopt", "level", 0, INT_MAX, &level) ||
      !GetInt(info, 2, "setsockopt", "name", 0, INT_MAX, &name) ||
      !GetInt(info, 3, "setsockopt", "value", INT_MIN, INT_MAX, &value))
    return env.Undefined();
  int v = static_cast<int>(value);
  if (setsockopt(fd, static_cast<int>(level), static_cast<int>(name), &v, sizeof(v)) < 0)
    THROW_ERRNO(env, "setsockopt");
  return env.Undefined();
}

Napi::Value GetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t level, name;
  if (!GetFd(info, 0, "getsockopt", &fd) || !GetInt(info, 1, "getsockopt", "level", 0, INT_MAX, &level) ||
      !GetInt(info, 2, "getsockopt", "name", 0, INT_MAX, &name))
    return env.Undefined();
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, static_cast<int>(level), static_cast<int>(name), &v, &len) < 0) THROW_ERRNO(env, "getsockopt");
  return Napi::Number::New(env, v);
}

Napi::Value SetTimeouts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t ms[2];
  // Upper bound keeps tv_sec far from overflow; a day is plenty for a socket timeout.
  if (!GetFd(info, 0, "setTimeouts", &fd) || !GetInt(info, 1, "setTimeouts", "recvMs", 0, 86400000, &ms[0]) ||
      !GetInt(info, 2, "setTimeouts", "sendMs", 0, 86400000, &ms[1]))
    return env.Undefined();
  const int names[2] = {SO_RCVTIMEO, SO_SNDTIMEO};
  for (int k = 0; k < 2; k++) {
    timeval tv{};
    tv.tv_sec = ms[k] / 1000;
    tv.tv_usec = (ms[k] % 1000) * 1000;
    if (setsockopt(fd, SOL_SOCKET, names[k], &tv, sizeof(tv)) < 0) THROW_ERRNO(env, "setsockopt");
  }
  return env.Undefined();
}

Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "peerCred", &fd)) return env.Undefined();
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) THROW_ERRNO(env, "getsockopt");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, cred.pid));
  o.Set("uid", Napi::Number::New(env, cred.uid));
  o.Set("gid", Napi::Number::New(env, cred.gid));
  return o;
}

Napi::Value SocketInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "socketInfo", &fd)) return env.Undefined();
  int domain = 0, type = 0, listening = 0;
  socklen_t len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) THROW_ERRNO(env, "getsockopt");
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) THROW_ERRNO(env, "getsockopt");
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) THROW_ERRNO(env, "getsockopt");
  Napi::Value path = env.Undefined();
  if (domain == AF_UNIX) {
    sockaddr_un sa{};
    socklen_t salen = sizeof(sa);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &salen) < 0) THROW_ERRNO(env, "getsockname");
    size_t max = salen > offsetof(sockaddr_un, sun_path) ? salen - offsetof(sockaddr_un, sun_path) : 0;
    // Unnamed (max == 0) and abstract (leading NUL) sockets have no filesystem path.
    if (max > 0 && sa.sun_path[0] != '\0')
      path = Napi::String::New(env, sa.sun_path, strnlen(sa.sun_path, std::min(max, sizeof(sa.sun_path))));
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("domain", Napi::Number::New(env, domain));
  o.Set("type", Napi::Number::New(env, type));
  o.Set("listening", Napi::Boolean::New(env, listening != 0));
  o.Set("path", path);
  return o;
}

// Shared by sendmsg and the thread-pool worker: no Node-API here. Returns bytes or -errno.
ssize_t DoSendmsg(int fd, const uint8_t* data, size_t len, const std::vector<int>& fds, bool addressed,
                  uint32_t portId) {
  iovec iov{const_cast<uint8_t*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  sockaddr_nl sa{};
  if (addressed) {
    sa.nl_family = AF_NETLINK;
    sa.nl_pid = portId;
    msg.msg_name = &sa;
    msg.msg_namelen = sizeof(sa);
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * SCM_MAX_FD)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    memset(control, 0, msg.msg_controllen);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  // MSG_NOSIGNAL: a vanished peer must be an EPIPE error, never a signal.
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

Napi::Value Sendmsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  const uint8_t* data;
  size_t len;
  std::vector<int> fds;
  bool addressed;
  uint32_t port = 0;
  if (!GetFd(info, 0, "sendmsg", &fd) || !GetBytes(info, 1, "sendmsg", &data, &len) ||
      !GetFdArray(info, 2, "sendmsg", &fds) || !GetOptionalPort(info, 3, "sendmsg", &addressed, &port))
    return env.Undefined();
  ssize_t n = DoSendmsg(fd, data, len, fds, addressed, port);
  if (n == -EAGAIN || n == -EWOULDBLOCK) return Napi::Number::New(env, -1);
  if (n < 0) {
    Throw(env, "sendmsg", static_cast<int>(-n));
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

class SendWorker : public Napi::AsyncWorker {
 public:
  SendWorker(Napi::Function callback, int fd, std::vector<uint8_t> data, bool addressed, uint32_t port)
      : Napi::AsyncWorker(callback, "ontap.sendmsgAsync"),
        fd_(fd), data_(std::move(data)), addressed_(addressed), port_(port) {}

  void Execute() override { result_ = DoSendmsg(fd_, data_.data(), data_.size(), {}, addressed_, port_); }

  // Errors are delivered from OnOK so that they carry errno/code/syscall like every other one.
  void OnOK() override {
    Napi::Env env = Env();
    if (result_ >= 0) {
      Callback().Call({env.Null(), Napi::Number::New(env, static_cast<double>(result_))});
    } else if (result_ == -EAGAIN || result_ == -EWOULDBLOCK) {
      Callback().Call({env.Null(), Napi::Number::New(env, -1)});
    } else {
      Callback().Call({MakeError(env, "sendmsg", static_cast<int>(-result_)), Napi::Number::New(env, -1)});
    }
  }

 private:
  int fd_;
  std::vector<uint8_t> data_;
  bool addressed_;
  uint32_t port_;
  ssize_t result_ = 0;
};

Napi::Value SendmsgAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  const uint8_t* data;
  size_t len;
  bool addressed;
  uint32_t port = 0;
  if (!GetFd(info, 0, "sendmsgAsync", &fd) || !GetBytes(info, 1, "sendmsgAsync", &data, &len) ||
      !GetOptionalPort(info, 2, "sendmsgAsync", &addressed, &port))
    return env.Undefined();
  if (info.Length() < 4 || !info[3].IsFunction()) {
    ThrowArg(env, "sendmsgAsync", "callback must be a function");
    return env.Undefined();
  }
  // The caller may reuse its buffer as soon as we return: the worker sends a copy.
  auto* worker = new SendWorker(info[3].As<Napi::Function>(), fd, std::vector<uint8_t>(data, data + len), addressed,
                                port);
  worker->Queue();
  return env.Undefined();
}

Napi::Value Recvmsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t maxBytes, maxFds;
  if (!GetFd(info, 0, "recvmsg", &fd) || !GetInt(info, 1, "recvmsg", "maxBytes", 0, INT_MAX, &maxBytes) ||
      !GetInt(info, 2, "recvmsg", "maxFds", 0, SCM_MAX_FD, &maxFds))
    return env.Undefined();
  bool peek = info.Length() > 3 && info[3].ToBoolean().Value();

  AddonData* d = Data(env);
  std::unique_ptr<char[]> temporary;
  char* buf;
  if (static_cast<size_t>(maxBytes) <= kScratchBytes) {
    if (!d->scratch) d->scratch.reset(new char[kScratchBytes]);
    buf = d->scratch.get();
  } else {
    temporary.reset(new (std::nothrow) char[maxBytes]);
    if (!temporary) {
      Throw(env, "recvmsg", ENOMEM);
      return env.Undefined();
    }
    buf = temporary.get();
  }

  // Room for maxFds descriptors plus slack for the other control messages a unix socket may
  // carry (SCM_CREDENTIALS, SCM_PIDFD, ...) and the netlink nsid. Descriptors that land in the
  // slack beyond maxFds are closed here and reported as controlTruncated.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * SCM_MAX_FD) + 128];
  const size_t controlLen = CMSG_SPACE(sizeof(int) * maxFds) + 128;
  sockaddr_storage from;
  iovec iov{buf, static_cast<size_t>(maxBytes)};
  msghdr msg{};
  ssize_t n;
  do {
    msg = msghdr{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = controlLen;
    from.ss_family = AF_UNSPEC;
    // MSG_TRUNC: return the record's full length, not the copied length.
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_TRUNC | (peek ? MSG_PEEK : 0));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    THROW_ERRNO(env, "recvmsg");
  }

  std::vector<int> fds;
  bool hasNsid = false;
  int nsid = 0;
  bool dropped = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_len < CMSG_LEN(0)) break;
    const size_t payload = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_level == SOL_SOCKET && (c->cmsg_type == SCM_RIGHTS || c->cmsg_type == SCM_PIDFD)) {
      for (size_t k = 0; k + sizeof(int) <= payload; k += sizeof(int)) {
        int received;
        memcpy(&received, CMSG_DATA(c) + k, sizeof(int));
        if (c->cmsg_type == SCM_RIGHTS && fds.size() < static_cast<size_t>(maxFds)) {
          fds.push_back(received);
        } else {
          close(received);  // nobody asked for it: leaking it would be worse than dropping it
          dropped = dropped || c->cmsg_type == SCM_RIGHTS;
        }
      }
    } else if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID && payload >= sizeof(int)) {
      memcpy(&nsid, CMSG_DATA(c), sizeof(int));
      hasNsid = true;
    }
  }

  const size_t copied = std::min(static_cast<size_t>(n), static_cast<size_t>(maxBytes));
  Napi::Object r = Napi::Object::New(env);
  r.Set("data", Napi::Buffer<char>::Copy(env, buf, copied));
  Napi::Array fdArray = Napi::Array::New(env, fds.size());
  for (size_t k = 0; k < fds.size(); k++) fdArray.Set(static_cast<uint32_t>(k), Napi::Number::New(env, fds[k]));
  r.Set("fds", fdArray);
  r.Set("nsid", hasNsid ? Napi::Number::New(env, nsid) : env.Undefined());
  r.Set("senderPortId", msg.msg_namelen >= sizeof(sockaddr_nl) && from.ss_family == AF_NETLINK
                            ? Napi::Number::New(env, reinterpret_cast<sockaddr_nl*>(&from)->nl_pid)
                            : env.Undefined());
  r.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & MSG_TRUNC) != 0));
  r.Set("controlTruncated", Napi::Boolean::New(env, (msg.msg_flags & MSG_CTRUNC) != 0 || dropped));
  r.Set("length", Napi::Number::New(env, static_cast<double>(n)));
  return r;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "close", &fd)) return env.Undefined();
  // Linux releases the descriptor even when close() reports EINTR: retrying could close a
  // descriptor another thread just received.
  if (close(fd) < 0 && errno != EINTR) THROW_ERRNO(env, "close");
  return env.Undefined();
}

Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "setCloexec", &fd)) return env.Undefined();
  bool on = info.Length() > 1 && info[1].ToBoolean().Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) THROW_ERRNO(env, "fcntl");
  if (fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0) THROW_ERRNO(env, "fcntl");
  return env.Undefined();
}

// ---- poller ---------------------------------------------------------------------------------

// The uv_poll_t lives in its own allocation because uv_close() finishes on a later loop turn,
// possibly after the JS wrapper has been collected.
struct PollHandle {
  uv_poll_t poll;
  class Poller* owner;
};

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod("start", &Poller::Start), InstanceMethod("stop", &Poller::Stop),
                        InstanceMethod("close", &Poller::Close)});
  }

  // new Poller(fd, callback): only reachable through poll().
  explicit Poller(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Poller>(info), context_(info.Env(), "ontap.poll") {
    Napi::Env env = info.Env();
    int fd;
    if (!GetFd(info, 0, "poll", &fd)) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      ThrowArg(env, "poll", "callback must be a function");
      return;
    }
    // The callback is a property of the wrapper rather than a strong reference: a strong
    // reference would be a GC root, and a callback that closes over its own poller would then
    // keep both alive forever.
    info.This().As<Napi::Object>().DefineProperty(
        Napi::PropertyDescriptor::Value("_callback", info[1], napi_default));
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    auto* h = new PollHandle{};
    int r = uv_poll_init(loop, &h->poll, fd);  // note: libuv sets O_NONBLOCK on fd
    if (r < 0) {
      delete h;
      Throw(env, "uv_poll_init", -r);
      return;
    }
    h->poll.data = h;
    h->owner = this;
    handle_ = h;
  }

  ~Poller() override { Release(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handle_ == nullptr) {
      Throw(env, "uv_poll_start", EBADF, "poller is closed");
      return env.Undefined();
    }
    int events = (info.Length() > 0 && info[0].ToBoolean().Value() ? UV_READABLE : 0) |
                 (info.Length() > 1 && info[1].ToBoolean().Value() ? UV_WRITABLE : 0);
    if (events == 0) return Stop(info);
    int r = uv_poll_start(&handle_->poll, events, OnPoll);
    if (r < 0) {
      Throw(env, "uv_poll_start", -r);
      return env.Undefined();
    }
    // While watching, the wrapper must survive even if JS drops it: the loop may call back.
    if (!active_) {
      active_ = true;
      Ref();
    }
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_poll_stop(&handle_->poll);
    Deactivate();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop(info);
    Release();
    return info.Env().Undefined();
  }

  void Deactivate() {
    if (active_) {
      active_ = false;
      Unref();
    }
  }

  // Safe from a finalizer: no JS, only libuv.
  void Release() {
    if (handle_ == nullptr) return;
    handle_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll),
             [](uv_handle_t* h) { delete static_cast<PollHandle*>(h->data); });
    handle_ = nullptr;
  }

  static void OnPoll(uv_poll_t* p, int status, int events) {
    Poller* self = static_cast<PollHandle*>(p->data)->owner;
    if (self != nullptr) self->Dispatch(status, events);
  }

  void Dispatch(int status, int events) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object self = Value();  // kept alive by this scope even if Deactivate drops the ref
    Napi::Value err = env.Null();
    if (status < 0) {
      // libuv stops the watcher on error. It also reports any POLLERR as EBADF; for a socket
      // the real cause (ENOBUFS after a netlink overrun, ECONNRESET, ...) is in SO_ERROR.
      Deactivate();
      int code = -status;
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      int fd = -1;
      if (status == UV_EBADF && uv_fileno(reinterpret_cast<uv_handle_t*>(&handle_->poll), &fd) == 0 &&
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0)
        code = soerr;
      err = MakeError(env, "poll", code);
    }
    Napi::Value cb = self.Get("_callback");
    if (!cb.IsFunction()) return;
    cb.As<Napi::Function>().MakeCallback(
        self,
        {err, Napi::Boolean::New(env, (events & UV_READABLE) != 0), Napi::Boolean::New(env, (events & UV_WRITABLE) != 0)},
        context_);
    // Nothing up the stack can catch it: report it like any uncaught exception.
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }

  Napi::AsyncContext context_;
  PollHandle* handle_ = nullptr;
  bool active_ = false;
};

Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Data(env)->pollerCtor.New({info.Length() > 0 ? info[0] : env.Undefined(),
                                    info.Length() > 1 ? info[1] : env.Undefined()});
}

// ---- namespaces, processes, devices ----------------------------------------------------------

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

// mknod(2) of a character device. /dev/tapN is named by ifindex, which is only unique within a
// namespace: when devtmpfs already has a node of that name for another namespace's tap, ontapd
// makes a private node with the right major:minor (from sysfs) and opens that instead.
Napi::Value MknodChar(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int64_t mode, major_, minor_;
  if (!GetString(info, 0, "mknodChar", "path", &path) ||
      !GetInt(info, 1, "mknodChar", "mode", 0, 07777, &mode) ||
      !GetInt(info, 2, "mknodChar", "major", 0, 0xfff, &major_) ||
      !GetInt(info, 3, "mknodChar", "minor", 0, 0xfffff, &minor_))
    return env.Undefined();
  if (mknod(path.c_str(), S_IFCHR | static_cast<mode_t>(mode),
            makedev(static_cast<unsigned>(major_), static_cast<unsigned>(minor_))) < 0)
    THROW_ERRNO(env, "mknod");
  return env.Undefined();
}

// execve() keeps ignored signals ignored and keeps the signal mask, and Node ignores SIGPIPE
// (and may block others on this thread), so the new program would inherit Node's signal state:
// e.g. `yes | head` pipelines inside it would spin on EPIPE instead of dying. Handled signals
// are reset by the kernel anyway, so only SIG_IGN needs resetting; the mask is emptied.
// stdio needs the same care: Node calls uv_disable_stdio_inheritance() at startup, so fds 0..2
// are FD_CLOEXEC and a plain execve would start the program with no stdin/stdout/stderr; and
// libuv makes stdio pipes O_NONBLOCK on the shared file description, which most programs treat
// as fatal (EAGAIN on stdout). So 0..2 lose FD_CLOEXEC and O_NONBLOCK.
// All of it is restored if execve fails. The window between the reset and execve is a few
// syscalls; a SIGPIPE hitting another thread inside it would kill the process, which is what
// execve is about to do to those threads anyway.
Napi::Value Execve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  std::vector<std::string> argv, envp;
  if (!GetString(info, 0, "execve", "path", &path) || !GetStringArray(info, 1, "execve", "argv", &argv) ||
      !GetStringArray(info, 2, "execve", "env", &envp))
    return env.Undefined();
  std::vector<char*> cargv, cenvp;
  for (auto& s : argv) cargv.push_back(&s[0]);
  cargv.push_back(nullptr);
  for (auto& s : envp) cenvp.push_back(&s[0]);
  cenvp.push_back(nullptr);

  struct sigaction saved[NSIG];
  bool reset[NSIG] = {};
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    // glibc refuses its internal real-time signals with EINVAL: nothing to reset there.
    if (sigaction(sig, nullptr, &saved[sig]) == 0 && !(saved[sig].sa_flags & SA_SIGINFO) &&
        saved[sig].sa_handler == SIG_IGN) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      reset[sig] = sigaction(sig, &dfl, nullptr) == 0;
    }
  }
  sigset_t empty, savedMask;
  sigemptyset(&empty);
  pthread_sigmask(SIG_SETMASK, &empty, &savedMask);
  int savedFl[3], savedFd[3];
  for (int fd = 0; fd < 3; fd++) {
    savedFl[fd] = fcntl(fd, F_GETFL);
    if (savedFl[fd] >= 0 && (savedFl[fd] & O_NONBLOCK)) fcntl(fd, F_SETFL, savedFl[fd] & ~O_NONBLOCK);
    savedFd[fd] = fcntl(fd, F_GETFD);
    if (savedFd[fd] >= 0 && (savedFd[fd] & FD_CLOEXEC)) fcntl(fd, F_SETFD, savedFd[fd] & ~FD_CLOEXEC);
  }

  execve(path.c_str(), cargv.data(), cenvp.data());
  int err = errno;

  for (int fd = 0; fd < 3; fd++) {
    if (savedFl[fd] >= 0 && (savedFl[fd] & O_NONBLOCK)) fcntl(fd, F_SETFL, savedFl[fd]);
    if (savedFd[fd] >= 0 && (savedFd[fd] & FD_CLOEXEC)) fcntl(fd, F_SETFD, savedFd[fd]);
  }
  pthread_sigmask(SIG_SETMASK, &savedMask, nullptr);
  for (int sig = 1; sig < NSIG; sig++)
    if (reset[sig]) sigaction(sig, &saved[sig], nullptr);
  Throw(env, "execve", err, std::string(strerrordesc_np(err) ? strerrordesc_np(err) : "failed") + ": " + path);
  return env.Undefined();
}

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

// Brings an interface of the calling thread's namespace up (SIOCGIFFLAGS/SIOCSIFFLAGS), for the
// client's loopback: two ioctls instead of loading the whole rtnetlink codec before every exec.
// Returns true when it changed the flags, false when the interface was already up.
Napi::Value InterfaceUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!GetString(info, 0, "interfaceUp", "name", &name)) return env.Undefined();
  if (name.size() >= IFNAMSIZ) {
    ThrowArg(env, "interfaceUp", "name is longer than IFNAMSIZ-1");
    return env.Undefined();
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) THROW_ERRNO(env, "socket");
  ifreq ifr{};
  memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
    int err = errno;
    close(fd);
    Throw(env, "ioctl", err);
    return env.Undefined();
  }
  if (ifr.ifr_flags & IFF_UP) {
    close(fd);
    return Napi::Boolean::New(env, false);
  }
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
    int err = errno;
    close(fd);
    Throw(env, "ioctl", err);
    return env.Undefined();
  }
  close(fd);
  return Napi::Boolean::New(env, true);
}

Napi::Value TapSetIff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t flags;
  if (!GetFd(info, 0, "tapSetIff", &fd) || !GetInt(info, 1, "tapSetIff", "flags", 0, 0xffff, &flags))
    return env.Undefined();
  ifreq ifr{};
  ifr.ifr_flags = static_cast<short>(flags);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) THROW_ERRNO(env, "ioctl");
  return env.Undefined();
}

Napi::Value TapGetIff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "tapGetIff", &fd)) return env.Undefined();
  ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) THROW_ERRNO(env, "ioctl");
  return Napi::Number::New(env, static_cast<unsigned short>(ifr.ifr_flags));
}

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
  data->pollerCtor = Napi::Persistent(Poller::Define(env));
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
      {"sendmsg", Sendmsg},
      {"recvmsg", Recvmsg},
      {"sendmsgAsync", SendmsgAsync},
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
      {"interfaceUp", InterfaceUp},
  };
  for (const auto& f : functions) exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  return exports;
}

}  // namespace

NODE_API_MODULE(ontap_native, Init)
