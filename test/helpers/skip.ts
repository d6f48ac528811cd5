import type { TestContext } from 'node:test';

/**
 * Skips the test with `reason` unless `condition` holds. Under CI=true a missing requirement is a
 * failure instead: CI machines are supposed to have root and every kernel feature.
 * Returns `condition` so callers can `if (!requireOrSkip(...)) return;`.
 */
export function requireOrSkip(t: TestContext, condition: boolean, reason: string): boolean {
  if (condition) return true;
  if (process.env.CI === 'true') throw new Error(`required under CI=true: ${reason}`);
  t.skip(reason);
  return false;
}
