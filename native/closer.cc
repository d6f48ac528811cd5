// Closing descriptors whose last close may block, never on the event loop and never on libuv's
// thread pool (ontapd's group deletes run there).
//
// A descriptor a caller sent, or a socket whose queue holds records with the caller's
// descriptors, may be anything: the last close of a TCP socket with SO_LINGER and a full send
// queue waits up to the linger time in tcp_close(), and a unix socket's last close drops the
// descriptors queued in it in the closing thread (unix_release_sock purges the queue; the final
// fput runs as task work of that thread before it returns to user space).
//
// closeInBackground() queues descriptors on a lane (ontapd uses the caller's uid, or its own
// lane) whose threads are our own: at most kLaneThreads per lane, so one caller's slow closes hold
// up only that caller's lane. A close still running after kInterruptMs is interrupted by a signal,
// and again every kInterruptMs: waits like tcp_close()'s linger are interruptible, and end; the
// kernel finishes releasing the socket in the background. The threads are never joined, so exit()
// does not wait for them.
//
// closeIfNothingInFlight() closes a unix socket at once when no record in its queue carries
// descriptors, which is the common case and needs no thread.
#include "common.h"
#include "exports.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

namespace ontap {

namespace {

constexpr int kLaneThreads = 2;        // closes of one lane at once
constexpr int kMaxThreads = 64;        // of all lanes but the own one (-1), which always gets its threads
constexpr long kInterruptMs = 100;     // longer than any close of ours takes (a tap's: one RCU grace period)
constexpr int kIdleSeconds = 2;        // a thread with nothing to close for this long exits
constexpr size_t kStackBytes = 128 * 1024;
constexpr int64_t kOwnLane = -1;

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

void OnInterrupt(int) {}

struct Lane {
  std::deque<int> queue;
  int threads = 0;
  int idle = 0;
  int running = 0;
  std::condition_variable wake;
};

struct ThreadStart {
  class Closer* closer;
  int64_t key;
};

class Closer {
 public:
  // Never destroyed: worker threads may still run while exit() runs static destructors.
  static Closer& Get() {
    static Closer* instance = new Closer();
    return *instance;
  }

  void Submit(int64_t key, const std::vector<int>& fds) {
    std::lock_guard<std::mutex> lock(mu_);
    Lane* lane = LaneOf(key);
    for (int fd : fds) lane->queue.push_back(fd);
    // Wake idle threads first; start more while the lane has room and closes are waiting.
    size_t waiting = lane->queue.size();
    size_t idle = static_cast<size_t>(lane->idle);
    if (idle > 0) lane->wake.notify_all();
    while (waiting > idle && Spawn(key, lane)) waiting--;
  }

  int64_t Outstanding(int64_t key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = lanes_.find(key);
    return it == lanes_.end() ? 0 : static_cast<int64_t>(it->second->queue.size()) + it->second->running;
  }

  struct Stats {
    int threads;
    uint64_t waiting, running, closed, interrupted;
    bool interrupts;
  };

  Stats Snapshot() {
    std::lock_guard<std::mutex> lock(mu_);
    Stats s{threads_ + ownThreads_, 0, 0, closed_, interrupted_, signal_ != 0};
    for (auto& [key, lane] : lanes_) {
      s.waiting += lane->queue.size();
      s.running += lane->running;
    }
    return s;
  }

 private:
  Closer() {
    // A real-time signal nothing else in Node uses; a handler that does nothing, without
    // SA_RESTART, so that an interruptible wait in close() returns.
    int sig = SIGRTMIN + 3;
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)) {
      struct sigaction sa {};
      sa.sa_handler = OnInterrupt;
      sigemptyset(&sa.sa_mask);
      if (sigaction(sig, &sa, nullptr) == 0) signal_ = sig;
    }
  }

  Lane* LaneOf(int64_t key) {
    auto it = lanes_.find(key);
    if (it != lanes_.end()) return it->second;
    Lane* lane = new Lane();
    lanes_.emplace(key, lane);
    return lane;
  }

  // With mu_ held. False if the lane or the closer is at its limit, or no thread could start.
  bool Spawn(int64_t key, Lane* lane) {
    if (lane->threads >= kLaneThreads) return false;
    if (key != kOwnLane && threads_ >= kMaxThreads) return false;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kStackBytes);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // The new thread starts with every signal blocked: Node's signals belong to its own threads.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_t thread;
    auto* start = new ThreadStart{this, key};
    int r = pthread_create(&thread, &attr, Main, start);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    pthread_attr_destroy(&attr);
    if (r != 0) {
      delete start;
      return false;
    }
    lane->threads++;
    if (key == kOwnLane) ownThreads_++;
    else threads_++;
    return true;
  }

  static void* Main(void* arg) {
    auto* start = static_cast<ThreadStart*>(arg);
    Closer* self = start->closer;
    int64_t key = start->key;
    delete start;
    self->Run(key);
    return nullptr;
  }

  void Run(int64_t key) {
    timer_t timer{};
    bool timed = false;
    if (signal_ != 0) {
      sigset_t only;
      sigemptyset(&only);
      sigaddset(&only, signal_);
      pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
      struct sigevent sev {};
      sev.sigev_notify = SIGEV_THREAD_ID;
      sev.sigev_signo = signal_;
      sev.sigev_notify_thread_id = gettid();
      timed = timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0;
    }
    const itimerspec armed{{0, kInterruptMs * 1000000}, {0, kInterruptMs * 1000000}};
    const itimerspec disarmed{};

    std::unique_lock<std::mutex> lock(mu_);
    Lane* lane = lanes_.at(key);
    for (;;) {
      if (lane->queue.empty()) {
        lane->idle++;
        bool work = lane->wake.wait_for(lock, std::chrono::seconds(kIdleSeconds), [lane] { return !lane->queue.empty(); });
        lane->idle--;
        if (!work) break;
      }
      int fd = lane->queue.front();
      lane->queue.pop_front();
      lane->running++;
      lock.unlock();
      auto started = std::chrono::steady_clock::now();
      if (timed) timer_settime(timer, 0, &armed, nullptr);
      // Linux frees the descriptor even when close() is interrupted: never retried.
      close(fd);
      if (timed) timer_settime(timer, 0, &disarmed, nullptr);
      bool slow = std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(kInterruptMs);
      lock.lock();
      lane->running--;
      closed_++;
      if (slow) interrupted_++;
    }
    lane->threads--;
    if (key == kOwnLane) ownThreads_--;
    else threads_--;
    if (lane->threads == 0 && lane->queue.empty()) {
      lanes_.erase(key);
      delete lane;
    }
    // A lane that found no room for a thread (kMaxThreads) takes this one's place.
    if (key != kOwnLane) {
      for (auto& [other, waiting] : lanes_) {
        if (waiting->threads == 0 && !waiting->queue.empty() && Spawn(other, waiting)) break;
      }
    }
    lock.unlock();
    if (timed) timer_delete(timer);
  }

  std::mutex mu_;
  std::unordered_map<int64_t, Lane*> lanes_;
  int threads_ = 0;
  int ownThreads_ = 0;
  uint64_t closed_ = 0;
  uint64_t interrupted_ = 0;
  int signal_ = 0;  // 0: no interrupts (the signal was taken)
};

bool GetLane(const Napi::CallbackInfo& info, size_t i, const char* fn, int64_t* lane) {
  return GetInt(info, i, fn, "lane", -2, UINT32_MAX, lane);
}

// scm_fds from /proc/self/fdinfo/FD: descriptors in flight in the socket's receive queue
// (unix_show_fdinfo, Linux 5.6+). -1 when it cannot be read.
long InFlight(int fd) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  int info = open(path, O_RDONLY | O_CLOEXEC);
  if (info < 0) return -1;
  char buf[4096];
  ssize_t n;
  do n = read(info, buf, sizeof(buf) - 1);
  while (n < 0 && errno == EINTR);
  close(info);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* line = strstr(buf, "\nscm_fds:");
  if (line == nullptr) return -1;
  char* end;
  long count = strtol(line + strlen("\nscm_fds:"), &end, 10);
  return end == line + strlen("\nscm_fds:") ? -1 : count;
}

}  // namespace

Napi::Value CloseInBackground(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t lane;
  std::vector<int> fds;
  if (!GetLane(info, 0, "closeInBackground", &lane) || !GetFdArray(info, 1, "closeInBackground", &fds))
    return env.Undefined();
  if (!fds.empty()) Closer::Get().Submit(lane, fds);
  return env.Undefined();
}

Napi::Value BackgroundCloses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t lane;
  if (!GetLane(info, 0, "backgroundCloses", &lane)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(Closer::Get().Outstanding(lane)));
}

Napi::Value CloserStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Closer::Stats s = Closer::Get().Snapshot();
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", Napi::Number::New(env, s.threads));
  o.Set("waiting", Napi::Number::New(env, static_cast<double>(s.waiting)));
  o.Set("running", Napi::Number::New(env, static_cast<double>(s.running)));
  o.Set("closed", Napi::Number::New(env, static_cast<double>(s.closed)));
  o.Set("interrupted", Napi::Number::New(env, static_cast<double>(s.interrupted)));
  o.Set("interrupts", Napi::Boolean::New(env, s.interrupts));
  return o;
}

Napi::Value CloseIfNothingInFlight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, "closeIfNothingInFlight", &fd)) return env.Undefined();
  // After SHUT_RD no record can join the queue: a sender checks the receiver's RCV_SHUTDOWN under
  // the same lock it queues under (unix_dgram_sendmsg, unix_stream_sendmsg) and gets EPIPE.
  if (shutdown(fd, SHUT_RD) < 0) return Napi::Boolean::New(env, false);
  if (InFlight(fd) != 0) return Napi::Boolean::New(env, false);
  close(fd);
  return Napi::Boolean::New(env, true);
}

}  // namespace ontap
