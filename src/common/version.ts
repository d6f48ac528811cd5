import { readFileSync } from 'node:fs';

/**
 * The package's version, from its package.json (dist/src/common/version.js -> ../../../package.json),
 * read only when asked: every command prints it for --version, none pays for it otherwise.
 */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
