// execve(2), with the signal and stdio state Node leaves behind undone first.
#include "common.h"
#include "exports.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

namespace ontap {

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

}  // namespace ontap
