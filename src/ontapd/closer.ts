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

/** Closes ontapd's own descriptors in the background. */
export function closeOwn(fds: number[]): void {
  if (fds.length > 0) native().closeInBackground(OWN_LANE, fds);
}
