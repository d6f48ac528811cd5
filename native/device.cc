// Network devices: tap ioctls (TUNSETIFF/TUNGETIFF), private device nodes, IFF_UP.
#include "common.h"
#include "exports.h"

#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/if_tun.h>

namespace ontap {

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

}  // namespace ontap
