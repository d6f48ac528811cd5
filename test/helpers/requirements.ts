import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';

function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether this kernel can create links of `kind` (tried in a scratch namespace). */
export function kernelHasKind(kind: string): boolean {
  const ns = `ontap-probe-${process.pid}`;
  if (!works('ip', ['netns', 'add', ns])) return false;
  try {
    execFileSync('ip', ['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'], { stdio: 'ignore' });
    return works('ip', ['-n', ns, 'link', 'add', 'link', 'p0', 'name', 'k0', 'type', kind]);
  } catch {
    return false;
  } finally {
    works('ip', ['netns', 'del', ns]);
  }
}

/** The first unmet requirement, or undefined. */
export function missing(requirements: Array<[boolean | (() => boolean), string]>): string | undefined {
  for (const [ok, reason] of requirements) {
    if (!(typeof ok === 'function' ? ok() : ok)) return reason;
  }
  return undefined;
}

export const isRoot = process.getuid?.() === 0;
export const hasCommand = (cmd: string): boolean => works('sh', ['-c', `command -v ${cmd}`]);

/**
 * describe() that is skipped with a one-line reason when a requirement is missing, except
 * under CI=true, where the missing requirement is a failing test instead.
 */
export function describeWhen(name: string, reason: string | undefined, body: () => void): void {
  if (reason === undefined) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    test(name, () => {
      throw new Error(`required under CI=true: ${reason}`);
    });
  } else {
    describe(name, { skip: reason }, body);
  }
}
