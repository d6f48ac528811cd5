import type { Poller } from '../native/index.js';
import type { Logger } from '../common/log.js';

/** The first retry after a failed accept, and the cap of the doubling delay. */
export const FIRST_RETRY_MS = 100;
export const MAX_RETRY_MS = 1000;
/** At most one accept-failed line per uplink in this long. */
export const LOG_INTERVAL_MS = 1000;

/**
 * Backs a listening socket off after accept fails. At EMFILE (and ENFILE, ENOMEM) the connection
 * stays in the backlog, and uv_poll is level-triggered: the socket would be reported readable at
 * once, again and again, and ontapd would spin and log at full speed. So its poller stops and
 * accept is tried again after a delay that doubles from FIRST_RETRY_MS up to MAX_RETRY_MS, or at
 * once when ontapd lets go of a connection (a descriptor may be free). Failures are logged at
 * most once per LOG_INTERVAL_MS, each line counting those left out since the last one.
 */
export class AcceptPause {
  private delay = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private unlogged = 0;
  private lastLine = -Infinity;

  constructor(private readonly uplink: string, private readonly poller: () => Poller, private readonly log: Logger) {}

  failed(error: string): void {
    this.poller().stop();
    this.failures++;
    const now = Date.now();
    if (now - this.lastLine >= LOG_INTERVAL_MS) {
      this.log.error('accept-failed', { uplink: this.uplink, error, 'retry-ms': this.delay, suppressed: this.unlogged });
      this.lastLine = now;
      this.unlogged = 0;
    } else {
      this.unlogged++;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.retry(), this.delay);
    this.delay = Math.min(this.delay * 2, MAX_RETRY_MS);
  }

  succeeded(): void {
    if (this.failures === 0) return;
    this.log.info('accept-resumed', { uplink: this.uplink, failures: this.failures });
    this.failures = 0;
    this.unlogged = 0;
    this.delay = FIRST_RETRY_MS;
    this.lastLine = -Infinity;
  }

  /**
   * Something was closed: if paused, try now rather than at the timer, and back off from the
   * start again (the descriptor may be freed a moment later, by the background closer).
   */
  retryNow(): void {
    if (this.timer === undefined) return;
    this.delay = FIRST_RETRY_MS;
    this.retry();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private retry(): void {
    this.stop();
    this.poller().start(true, false);
  }
}
