import { native, NativeLoadError } from '../native/index.js';
import { ExitCode } from './sysexits.js';

/**
 * Every command loads the addon before it does anything else, so that a missing or mismatched
 * build is one line naming the command that fixes it, exit 70, and no stack trace.
 */
export function addonOrExit(program: string): void {
  try {
    native();
  } catch (e) {
    if (!(e instanceof NativeLoadError)) throw e;
    process.stderr.write(`${program}: ${e.message}\n`);
    process.exit(ExitCode.software);
  }
}
