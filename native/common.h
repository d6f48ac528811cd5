// Shared by every file of the addon: per-instance data, the one error shape, argument helpers.
//
// C++ exceptions are off: failures throw JS errors (NativeError when index.ts registered the
// class) and return undefined. errno is always captured before any Node-API call, which may
// clobber it.
#pragma once

#include <napi.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <string>
#include <vector>

#ifndef SCM_MAX_FD
#define SCM_MAX_FD 253  // include/net/scm.h; the kernel refuses more per message
#endif

namespace ontap {

struct AddonData {
  Napi::FunctionReference errorCtor;   // NativeError, registered by index.ts
  Napi::FunctionReference pollerCtor;  // the Poller class, never exported
  std::unique_ptr<char[]> scratch;     // kScratchBytes, allocated on first recvmsg/recvInet, not at load
};

// recvmsg and recvInet reuse one buffer up to this size; larger requests get a temporary one, so
// a single huge read never pins memory for the life of the process.
constexpr size_t kScratchBytes = 64 * 1024;

inline AddonData* Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// ---- errors -------------------------------------------------------------------------------

Napi::Value MakeError(Napi::Env env, const char* syscall, int err, const std::string& detail = "");

void Throw(Napi::Env env, const char* syscall, int err, const std::string& detail = "");

// Argument mistakes are reported like the EINVAL the kernel would give, so callers only ever
// see one error shape.
void ThrowArg(Napi::Env env, const char* fn, const std::string& what);

#define THROW_ERRNO(env, syscall)       \
  do {                                  \
    int err_ = errno;                   \
    Throw(env, syscall, err_);          \
    return (env).Undefined();           \
  } while (0)

// ---- argument helpers -----------------------------------------------------------------------
// Each returns false after throwing an EINVAL error that names the function and the argument.

bool GetInt(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, int64_t min,
            int64_t max, int64_t* out);
bool GetFd(const Napi::CallbackInfo& info, size_t i, const char* fn, int* fd);
bool GetString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, std::string* out);
bool GetStringArray(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name,
                    std::vector<std::string>* out);
bool GetBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const uint8_t** data, size_t* len);
// undefined/null: no descriptors. At most SCM_MAX_FD.
bool GetFdArray(const Napi::CallbackInfo& info, size_t i, const char* fn, std::vector<int>* out);
// undefined/null: no address. Otherwise a netlink port id.
bool GetOptionalPort(const Napi::CallbackInfo& info, size_t i, const char* fn, bool* present, uint32_t* port);

}  // namespace ontap
