// Errors and argument helpers (declared in common.h).
#include "common.h"

#include <limits.h>
#include <string.h>

#include <cmath>

namespace ontap {

namespace {

const char* ErrnoCode(int err) {
  const char* name = strerrorname_np(err);  // glibc >= 2.32: "EAGAIN", thread-safe
  return name != nullptr ? name : "EUNKNOWN";
}

}  // namespace

Napi::Value MakeError(Napi::Env env, const char* syscall, int err, const std::string& detail) {
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

void Throw(Napi::Env env, const char* syscall, int err, const std::string& detail) {
  napi_throw(env, MakeError(env, syscall, err, detail));
}

void ThrowArg(Napi::Env env, const char* fn, const std::string& what) { Throw(env, fn, EINVAL, what); }

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

bool GetOptionalPort(const Napi::CallbackInfo& info, size_t i, const char* fn, bool* present, uint32_t* port) {
  *present = false;
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return true;
  int64_t v;
  if (!GetInt(info, i, fn, "netlinkPortId", 0, UINT32_MAX, &v)) return false;
  *present = true;
  *port = static_cast<uint32_t>(v);
  return true;
}

}  // namespace ontap
