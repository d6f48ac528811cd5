// sendmsg/recvmsg: records with descriptors (SCM_RIGHTS), netlink port ids and the nsid of
// NETLINK_LISTEN_ALL_NSID; sendmsgAsync runs on the libuv thread pool.
#include "common.h"
#include "exports.h"

#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>

#include <algorithm>
#include <new>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

namespace ontap {

namespace {

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

}  // namespace

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

}  // namespace ontap
