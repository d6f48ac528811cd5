// IPv4/IPv6 datagram sockets for link-local responders (mDNS, DHCP): bind, byte-valued socket
// options, and recvmsg/sendmsg with the packet information Node's dgram cannot give (the
// receiving ifindex and destination, the received TTL / hop limit) and without turning a scope id
// into an interface name of our own namespace. No protocol policy here.
#include "common.h"
#include "exports.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>

namespace ontap {

namespace {

// A UDP payload is at most 65535 - 8 bytes; the scratch buffer (64 KiB) always holds it.
constexpr size_t kMaxDatagram = 65535;
static_assert(kMaxDatagram <= kScratchBytes, "the scratch buffer must hold a whole datagram");

union InetAddress {
  sockaddr sa;
  sockaddr_in in4;
  sockaddr_in6 in6;
};

// inet_pton into a sockaddr of `family` (4 or 6); a bad text is EINVAL naming the text.
bool ParseInet(Napi::Env env, const char* fn, int64_t family, const std::string& text, int64_t port,
               uint32_t scopeId, InetAddress* out, socklen_t* len) {
  memset(out, 0, sizeof(*out));
  if (family == 4) {
    out->in4.sin_family = AF_INET;
    out->in4.sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(out->in4);
    if (inet_pton(AF_INET, text.c_str(), &out->in4.sin_addr) == 1) return true;
  } else {
    out->in6.sin6_family = AF_INET6;
    out->in6.sin6_port = htons(static_cast<uint16_t>(port));
    out->in6.sin6_scope_id = scopeId;
    *len = sizeof(out->in6);
    // inet_pton refuses "%scope" suffixes: the scope is the ifindex argument, never a name.
    if (inet_pton(AF_INET6, text.c_str(), &out->in6.sin6_addr) == 1) return true;
  }
  ThrowArg(env, fn, "address is not an IPv" + std::to_string(family) + " address: " + text);
  return false;
}

bool GetFamily(const Napi::CallbackInfo& info, size_t i, const char* fn, int64_t* family) {
  if (!GetInt(info, i, fn, "family", 4, 6, family)) return false;
  if (*family == 4 || *family == 6) return true;
  ThrowArg(info.Env(), fn, "family must be 4 or 6");
  return false;
}

Napi::String AddressText(Napi::Env env, int af, const void* addr) {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(af, addr, text, sizeof(text));
  return Napi::String::New(env, text);
}

}  // namespace

Napi::Value BindInet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t family, port;
  std::string address;
  InetAddress sa;
  socklen_t len;
  if (!GetFd(info, 0, "bindInet", &fd) || !GetFamily(info, 1, "bindInet", &family) ||
      !GetString(info, 2, "bindInet", "address", &address) || !GetInt(info, 3, "bindInet", "port", 0, 65535, &port) ||
      !ParseInet(env, "bindInet", family, address, port, 0, &sa, &len))
    return env.Undefined();
  if (bind(fd, &sa.sa, len) < 0) THROW_ERRNO(env, "bind");
  return env.Undefined();
}

Napi::Value SetsockoptBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t level, name;
  const uint8_t* value;
  size_t len;
  if (!GetFd(info, 0, "setsockopt", &fd) || !GetInt(info, 1, "setsockopt", "level", 0, INT_MAX, &level) ||
      !GetInt(info, 2, "setsockopt", "name", 0, INT_MAX, &name) || !GetBytes(info, 3, "setsockopt", &value, &len))
    return env.Undefined();
  if (setsockopt(fd, static_cast<int>(level), static_cast<int>(name), value, static_cast<socklen_t>(len)) < 0)
    THROW_ERRNO(env, "setsockopt");
  return env.Undefined();
}

Napi::Value RecvInet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t maxBytes;
  if (!GetFd(info, 0, "recvInet", &fd) ||
      !GetInt(info, 1, "recvInet", "maxBytes", 0, static_cast<int64_t>(kMaxDatagram), &maxBytes))
    return env.Undefined();
  AddonData* d = Data(env);
  if (!d->scratch) d->scratch.reset(new char[kScratchBytes]);
  char* buf = d->scratch.get();

  // Room for IP_PKTINFO/IPV6_PKTINFO and IP_TTL/IPV6_HOPLIMIT, and whatever else an option set
  // elsewhere adds (it is ignored).
  alignas(cmsghdr) char control[256];
  InetAddress from;
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
    msg.msg_controllen = sizeof(control);
    from.sa.sa_family = AF_UNSPEC;
    n = recvmsg(fd, &msg, MSG_TRUNC | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    THROW_ERRNO(env, "recvmsg");
  }
  if (from.sa.sa_family != AF_INET && from.sa.sa_family != AF_INET6) {
    Throw(env, "recvmsg", EAFNOSUPPORT, "not an IPv4/IPv6 datagram socket");
    return env.Undefined();
  }

  int ifindex = 0;
  Napi::Value destination = env.Undefined();
  int hopLimit = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_len < CMSG_LEN(0)) break;
    const size_t payload = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && payload >= sizeof(in_pktinfo)) {
      in_pktinfo p;
      memcpy(&p, CMSG_DATA(c), sizeof(p));
      ifindex = p.ipi_ifindex;
      destination = AddressText(env, AF_INET, &p.ipi_addr);  // the header's destination, not ipi_spec_dst
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && payload >= sizeof(in6_pktinfo)) {
      in6_pktinfo p;
      memcpy(&p, CMSG_DATA(c), sizeof(p));
      ifindex = static_cast<int>(p.ipi6_ifindex);
      destination = AddressText(env, AF_INET6, &p.ipi6_addr);
    } else if (((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
               payload >= sizeof(int)) {
      memcpy(&hopLimit, CMSG_DATA(c), sizeof(int));
    }
  }

  const bool v4 = from.sa.sa_family == AF_INET;
  const size_t copied = std::min(static_cast<size_t>(n), static_cast<size_t>(maxBytes));
  Napi::Object r = Napi::Object::New(env);
  r.Set("data", Napi::Buffer<char>::Copy(env, buf, copied));
  r.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & MSG_TRUNC) != 0));
  r.Set("family", Napi::Number::New(env, v4 ? 4 : 6));
  // The scope id is dropped on purpose: it is an ifindex of the socket's namespace, and `ifindex`
  // (from the packet information) already says where the datagram came in.
  r.Set("source", v4 ? AddressText(env, AF_INET, &from.in4.sin_addr) : AddressText(env, AF_INET6, &from.in6.sin6_addr));
  r.Set("sourcePort", Napi::Number::New(env, ntohs(v4 ? from.in4.sin_port : from.in6.sin6_port)));
  r.Set("ifindex", Napi::Number::New(env, ifindex));
  r.Set("destination", destination.IsUndefined() ? Napi::String::New(env, "") : destination);
  r.Set("hopLimit", Napi::Number::New(env, hopLimit));
  return r;
}

Napi::Value SendInet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  const uint8_t* data;
  size_t len;
  int64_t family, port, ifindex;
  std::string address;
  InetAddress to;
  socklen_t toLen;
  if (!GetFd(info, 0, "sendInet", &fd) || !GetBytes(info, 1, "sendInet", &data, &len) ||
      !GetFamily(info, 2, "sendInet", &family) || !GetString(info, 3, "sendInet", "address", &address) ||
      !GetInt(info, 4, "sendInet", "port", 0, 65535, &port) ||
      !GetInt(info, 5, "sendInet", "ifindex", 0, INT_MAX, &ifindex) ||
      !ParseInet(env, "sendInet", family, address, port, family == 6 ? static_cast<uint32_t>(ifindex) : 0, &to,
                 &toLen))
    return env.Undefined();

  iovec iov{const_cast<uint8_t*>(data), len};
  msghdr msg{};
  msg.msg_name = &to;
  msg.msg_namelen = toLen;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // IPv4 has no scope id: the outgoing interface goes in IP_PKTINFO (ipi_ifindex), source left
  // to the kernel (ipi_spec_dst 0).
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
  if (family == 4 && ifindex != 0) {
    memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo p{};
    p.ipi_ifindex = static_cast<int>(ifindex);
    memcpy(CMSG_DATA(c), &p, sizeof(p));
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    THROW_ERRNO(env, "sendmsg");
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace ontap
