/**
 * Uids refused for a while after they tampered with a leased device. A hardware address taken
 * from someone else is put back within milliseconds (link-watch.ts), but only after the kernel
 * has told ontapd, so each lease buys its holder one such window; refusing the uid for a while
 * keeps a loop of lease, take, lose from turning those windows into a share of the victim's
 * traffic (and from holding rtnl_lock: each change of a macvlan's address waits for an RCU grace
 * period under it).
 */
export const TAMPER_COOLDOWN_MS = 10_000;

export class Cooldown {
  private readonly until = new Map<number, number>();

  constructor(private readonly ms = TAMPER_COOLDOWN_MS) {}

  impose(uid: number, now = Date.now()): void {
    this.until.set(uid, now + this.ms);
  }

  /** Milliseconds the uid is still refused for; 0 when it is not. */
  remaining(uid: number, now = Date.now()): number {
    const until = this.until.get(uid);
    if (until === undefined) return 0;
    if (until <= now) {
      this.until.delete(uid);
      return 0;
    }
    return until - now;
  }
}
