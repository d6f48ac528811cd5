// poll(): a uv_poll_t behind a JS object, so sockets the addon made can be watched on the event
// loop.
#include "common.h"
#include "exports.h"

#include <uv.h>

#include <sys/socket.h>

namespace ontap {

namespace {

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
                 (info.Length() > 1 && info[1].ToBoolean().Value() ? UV_WRITABLE : 0) |
                 (info.Length() > 2 && info[2].ToBoolean().Value() ? UV_PRIORITIZED : 0);
    if (events == 0) return Stop(info);
    int r = uv_poll_start(&handle_->poll, events, OnPoll);
    events_ = events;
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
    bool priority = (events & UV_PRIORITIZED) != 0;
    int fd = -1;
    uv_fileno(reinterpret_cast<uv_handle_t*>(&handle_->poll), &fd);
    int type = 0;
    socklen_t typeLen = sizeof(type);
    // A file that signals a change with POLLERR|POLLPRI (a sysctl under /proc/sys, e.g.
    // kernel/hostname): libuv reports any POLLERR as EBADF and stops. For a prioritized watch on
    // something that is not a socket, that is the event itself: watch again, report it.
    if (status == UV_EBADF && (events_ & UV_PRIORITIZED) != 0 &&
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLen) < 0 && errno == ENOTSOCK) {
      int r = uv_poll_start(&handle_->poll, events_, OnPoll);
      if (r == 0) {
        status = 0;
        priority = true;
      }
    }
    if (status < 0) {
      // libuv stops the watcher on error. It also reports any POLLERR as EBADF; for a socket
      // the real cause (ENOBUFS after a netlink overrun, ECONNRESET, ...) is in SO_ERROR.
      Deactivate();
      int code = -status;
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      if (status == UV_EBADF && fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0)
        code = soerr;
      err = MakeError(env, "poll", code);
    }
    Napi::Value cb = self.Get("_callback");
    if (!cb.IsFunction()) return;
    cb.As<Napi::Function>().MakeCallback(
        self,
        {err, Napi::Boolean::New(env, (events & UV_READABLE) != 0), Napi::Boolean::New(env, (events & UV_WRITABLE) != 0),
         Napi::Boolean::New(env, priority)},
        context_);
    // Nothing up the stack can catch it: report it like any uncaught exception.
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }

  Napi::AsyncContext context_;
  PollHandle* handle_ = nullptr;
  bool active_ = false;
  int events_ = 0;
};

}  // namespace

Napi::Function DefinePoller(Napi::Env env) { return Poller::Define(env); }

Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Data(env)->pollerCtor.New({info.Length() > 0 ? info[0] : env.Undefined(),
                                    info.Length() > 1 ? info[1] : env.Undefined()});
}

}  // namespace ontap
