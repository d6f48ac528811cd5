/**
 * Token buckets per (uid, kind), for log lines a caller can cause. Pure: the clock is injected.
 *
 * Each key may spend `burst` tokens at once and gets one back every `refillMs`. What is refused
 * is counted, and drain() hands the counts out (then forgets keys whose bucket is full again,
 * which are the same as keys never seen). The table holds at most `maxKeys` keys of uids other
 * than root; past that, every other uid shares one bucket per kind (uid `undefined`), so memory
 * and the lines written stay bounded whatever number of uids a caller can use (subordinate uids).
 * Root's keys are never shared: root's lines are not lost in another uid's flood.
 */

export interface RateLimitConfig {
  /** Lines a key may write at once. */
  burst: number;
  /** Milliseconds per token given back. */
  refillMs: number;
  /** Keys of non-root uids held at once; further uids share one key per kind. */
  maxKeys: number;
}

export interface Suppressed {
  /** undefined: the shared key of uids past maxKeys. */
  uid: number | undefined;
  kind: string;
  count: number;
}

interface Bucket {
  uid: number | undefined;
  kind: string;
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
  suppressed: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private ownKeys = 0;

  constructor(private readonly config: RateLimitConfig, private readonly now: () => number) {}

  /** Whether a line of this kind for this uid may be written now; if not, it is counted. */
  admit(uid: number, kind: string): boolean {
    const bucket = this.bucketFor(uid, kind);
    this.refill(bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return true;
    }
    bucket.suppressed++;
    return false;
  }

  /** The counts of refused lines since the last drain; keys whose bucket is full again are dropped. */
  drain(): Suppressed[] {
    const out: Suppressed[] = [];
    for (const [key, bucket] of this.buckets) {
      if (bucket.suppressed > 0) {
        out.push({ uid: bucket.uid, kind: bucket.kind, count: bucket.suppressed });
        bucket.suppressed = 0;
      }
      this.refill(bucket);
      if (bucket.tokens >= this.config.burst) {
        this.buckets.delete(key);
        if (bucket.uid !== undefined && bucket.uid !== 0) this.ownKeys--;
      }
    }
    return out;
  }

  /** Keys held now (for tests and bounds). */
  get size(): number {
    return this.buckets.size;
  }

  private bucketFor(uid: number, kind: string): Bucket {
    const own = `${uid}/${kind}`;
    const existing = this.buckets.get(own);
    if (existing !== undefined) return existing;
    const shared = uid !== 0 && this.ownKeys >= this.config.maxKeys;
    const key = shared ? `*/${kind}` : own;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { uid: shared ? undefined : uid, kind, tokens: this.config.burst, at: this.now(), suppressed: 0 };
      this.buckets.set(key, bucket);
      if (!shared && uid !== 0) this.ownKeys++;
    }
    return bucket;
  }

  private refill(bucket: Bucket): void {
    const now = this.now();
    bucket.tokens = Math.min(this.config.burst, bucket.tokens + (now - bucket.at) / this.config.refillMs);
    bucket.at = now;
  }
}
