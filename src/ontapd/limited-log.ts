import type { Fields, Level, Logger } from '../common/log.js';
import { RateLimiter, type RateLimitConfig } from './rate-limit.js';

/**
 * Lines a caller causes, rate-limited per (uid, kind).
 *
 * Refusals: every caller may be hostile, and one uid refused
 * in a loop wrote tens of thousands of lines a second, which also made journald (10,000 lines
 * per 30 s per service by default) drop ontapd's other messages. Each (uid, kind) writes 5 lines
 * at once, then one per 10 s; the lines held back are counted and reported every 10 s as
 * `event=suppressed uid=N kind=K count=M` (`uid=other` for the uids sharing one key past the
 * table's cap), and on stop. At most 256 uids are tracked apart; so whatever the number of uids,
 * refusals write at most (256 + kinds) lines and as many suppressed lines per 10 s (about 50 a
 * second), after the first burst.
 */
export const refusalRate: RateLimitConfig = { burst: 5, refillMs: 10000, maxKeys: 256 };

/**
 * Leases (the `allocate` line and, when it was written, its `release` line) of uids other than
 * root: the caps bound the devices a uid holds at once, not how fast it cycles them, and one uid
 * cycling leases (each ended at once) wrote 700 lines a second in the combined hostile run. 20
 * at once (a host starting its VMs), then one lease per 2 s; the rest are counted as
 * `event=suppressed kind=lease`. 256 uids cycling at once: about 260 lines a second.
 */
export const leaseRate: RateLimitConfig = { burst: 20, refillMs: 2000, maxKeys: 256 };

/** How often the counts of held-back lines are reported. */
const REPORT_MS = 10000;

export class LimitedLog {
  private readonly limiter: RateLimiter;
  private readonly timer: NodeJS.Timeout;
  /** Each kind's level, for its suppressed lines: a count of errors is reported as an error. */
  private readonly levels = new Map<string, Level>();

  constructor(private readonly log: Logger, config: RateLimitConfig = refusalRate, now: () => number = () => performance.now()) {
    this.limiter = new RateLimiter(config, now);
    this.timer = setInterval(() => this.flush(), REPORT_MS);
    this.timer.unref();
  }

  /**
   * One line, if (uid, kind) has a token left; whether it was written. `kind` comes from ontapd's own fixed set
   * (an event, an error code), never from the request.
   */
  write(level: Level, event: string, uid: number, kind: string, fields: Fields): boolean {
    if (!this.log.enabled(level)) return false;
    this.levels.set(kind, level);
    if (!this.limiter.admit(uid, kind)) return false;
    this.log[level](event, fields);
    return true;
  }

  /** Reports what was held back since the last flush. */
  flush(): void {
    for (const s of this.limiter.drain()) {
      this.log[this.levels.get(s.kind) ?? 'warn']('suppressed', { uid: s.uid ?? 'other', kind: s.kind, count: s.count });
    }
  }

  /** Reports the last counts and stops the timer. */
  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
