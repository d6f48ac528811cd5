import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

export class CommandNotFound extends Error {
  override readonly name = 'CommandNotFound';
}

/** execvp's PATH search, done before execve so the error names the command. */
export function resolveCommand(command: string, path: string | undefined): string {
  const candidates = command.includes('/') ? [command] : (path ?? '/usr/local/bin:/usr/bin:/bin').split(':').map((d) => join(d || '.', command));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new CommandNotFound(`${command}: command not found${command.includes('/') ? '' : ' in PATH'}`);
}
