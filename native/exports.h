// The addon's entry points, one group per file. module.cc registers them under the names that
// src/native/binding.ts (the contract) declares.
#pragma once

#include <napi.h>

namespace ontap {

// socket.cc: creation, addresses, options, peer and socket information, descriptors
Napi::Value Socket(const Napi::CallbackInfo& info);
Napi::Value Socketpair(const Napi::CallbackInfo& info);
Napi::Value BindNetlink(const Napi::CallbackInfo& info);
Napi::Value BindUnix(const Napi::CallbackInfo& info);
Napi::Value ConnectUnix(const Napi::CallbackInfo& info);
Napi::Value Listen(const Napi::CallbackInfo& info);
Napi::Value Accept(const Napi::CallbackInfo& info);
Napi::Value SetsockoptInt(const Napi::CallbackInfo& info);
Napi::Value GetsockoptInt(const Napi::CallbackInfo& info);
Napi::Value SetTimeouts(const Napi::CallbackInfo& info);
Napi::Value PeerCred(const Napi::CallbackInfo& info);
Napi::Value SocketInfo(const Napi::CallbackInfo& info);
Napi::Value SocketNetns(const Napi::CallbackInfo& info);
Napi::Value Close(const Napi::CallbackInfo& info);
Napi::Value SetCloexec(const Napi::CallbackInfo& info);

// message.cc: sendmsg/recvmsg with descriptors (SCM_RIGHTS), netlink port ids and nsids
Napi::Value Sendmsg(const Napi::CallbackInfo& info);
Napi::Value SendmsgAsync(const Napi::CallbackInfo& info);
Napi::Value Recvmsg(const Napi::CallbackInfo& info);

// inet.cc: IPv4/IPv6 datagram sockets with packet information (link-local responders)
Napi::Value BindInet(const Napi::CallbackInfo& info);
Napi::Value SetsockoptBytes(const Napi::CallbackInfo& info);
Napi::Value RecvInet(const Napi::CallbackInfo& info);
Napi::Value SendInet(const Napi::CallbackInfo& info);

// poller.cc: uv_poll_t behind a JS object
Napi::Function DefinePoller(Napi::Env env);
Napi::Value Poll(const Napi::CallbackInfo& info);

// netns.cc: namespaces of the calling thread, and short-lived threads inside another one
Napi::Value Unshare(const Napi::CallbackInfo& info);
Napi::Value Sethostname(const Napi::CallbackInfo& info);
Napi::Value WriteFileInNetns(const Napi::CallbackInfo& info);
Napi::Value SocketInNetns(const Napi::CallbackInfo& info);
Napi::Value NsOwnerUserns(const Napi::CallbackInfo& info);

// uts.cc: host names of UTS namespaces, read on a thread of our own
Napi::Value UtsHostnames(const Napi::CallbackInfo& info);

// closer.cc: closes that may block, on threads of our own; a unix socket closed at once when nothing is in flight
Napi::Value CloseInBackground(const Napi::CallbackInfo& info);
Napi::Value BackgroundCloses(const Napi::CallbackInfo& info);
Napi::Value CloserStats(const Napi::CallbackInfo& info);
Napi::Value CloseIfNothingInFlight(const Napi::CallbackInfo& info);

// process.cc: execve with Node's signal and stdio state undone
Napi::Value Execve(const Napi::CallbackInfo& info);

// device.cc: tap ioctls, device nodes, interface flags
Napi::Value TapSetIff(const Napi::CallbackInfo& info);
Napi::Value TapGetIff(const Napi::CallbackInfo& info);
Napi::Value MknodChar(const Napi::CallbackInfo& info);
Napi::Value InterfaceUp(const Napi::CallbackInfo& info);

}  // namespace ontap
