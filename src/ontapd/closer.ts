/**
 * Closing descriptors whose last close may block, off the event loop. Anything a caller sent may
 * be such a descriptor (a TCP socket with SO_LINGER, a full send queue and a peer that never
 * reads waits in tcp_close() for the linger time), and so may any socket whose queue holds the
 * caller's records: closing it drops the descriptors queued in it, in the closing thread. The
 * addon's background closer (native/closer.cc) closes them on threads of its own, one lane per
 * caller, and interrupts a close that waits.
 */
import { native } from '../native/index.js';

/** ontapd's own descriptors: its listening sockets (callers' records may wait in their backlog). */
export const OWN_LANE = -1;
/** A connection whose peer's credentials could not be read. */
export const UNKNOWN_PEER_LANE = -2;

/**
 * Closes a connection of `uid`'s: at once when no record queued in it carries descriptors (the
 * usual case), otherwise on `uid`'s lane of the background closer.
 */
export function closeConnection(uid: number, fd: number): void {
  if (!native().closeIfNothingInFlight(fd)) native().closeInBackground(uid, [fd]);
}

/**
 * Closes ontapd's own descriptors in the background: its copies of tap descriptors (when the
 * caller has closed its copies, the last close waits for an RCU grace period in tap_put_queue)
 * and its listening sockets.
 */
export function closeOwn(fds: number[]): void {
  if (fds.length > 0) native().closeInBackground(OWN_LANE, fds);
}

/** Closes descriptors `uid` sent, on its lane of the background closer. */
export function closeForeign(uid: number, fds: number[]): void {
  if (fds.length > 0) native().closeInBackground(uid, fds);
}

/**
 * Descriptors of one uid queued or being closed in the background above which ontapd reads no
 * more of that uid's records: one record brings up to 253 (SCM_MAX_FD), so a uid holds at most
 * this many + 252 of ontapd's descriptors waiting to be closed.
 */
export const MAX_CLOSES_PER_UID = 512;
const RECHECK_MS = 20;

/**
 * Holds back the reads of connections whose uid has MAX_CLOSES_PER_UID descriptors waiting in the
 * background closer, and resumes them once it has fewer: descriptors a caller sends cannot pile
 * up in ontapd faster than its lane closes them.
 */
export class CloseBacklog {
  private readonly held = new Map<object, { uid: number; resume: () => void }>();
  private timer: NodeJS.Timeout | undefined;

  /** Whether a record (and the descriptors it may carry) of `uid`'s may be read now. */
  mayRead(uid: number): boolean {
    return native().backgroundCloses(uid) < MAX_CLOSES_PER_UID;
  }

  /** Calls `resume` once `uid` may read again; `key` names the waiter for forget(). */
  hold(key: object, uid: number, resume: () => void): void {
    this.held.set(key, { uid, resume });
    this.timer ??= setInterval(() => this.recheck(), RECHECK_MS);
  }

  forget(key: object): void {
    this.held.delete(key);
    if (this.held.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private recheck(): void {
    for (const [key, { uid, resume }] of [...this.held]) {
      if (!this.mayRead(uid)) continue;
      this.forget(key);
      resume();
    }
  }
}
