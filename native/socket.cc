// Sockets: creation, addresses, options, peer and socket information, and the descriptor calls
// (close, FD_CLOEXEC). Messages are in message.cc.
#include "common.h"
#include "exports.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/sockios.h>

#include <algorithm>

namespace ontap {

namespace {

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

}  // namespace

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

// SIOCGSKNS (Linux 4.9): a descriptor of the network namespace the socket belongs to. An accepted
// unix connection belongs to the namespace of the connecting socket (unix_stream_connect creates
// the server's end with the client's sock_net), which is fixed when the client calls socket():
// unlike a pid, it cannot be reused. The kernel opens it O_CLOEXEC; it needs CAP_NET_ADMIN over
// the namespace's owning user namespace.
Napi::Value SocketNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "socketNetns", &fd)) return env.Undefined();
  int ns = ioctl(fd, SIOCGSKNS);
  if (ns < 0) THROW_ERRNO(env, "ioctl");
  return Napi::Number::New(env, ns);
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

}  // namespace ontap
