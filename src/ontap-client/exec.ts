import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

export class CommandNotFound extends Error {
  override readonly name = 'CommandNotFound';
}

/** Found, but not an executable file: exit 126 like sh and env. */
export class CommandNotExecutable extends Error {
  override readonly name = 'CommandNotExecutable';
}

/** execvp's PATH search, done before execve so the error names the command. */
export function resolveCommand(command: string, path: string | undefined): string {
  const candidates = command.includes('/') ? [command] : (path ?? '/usr/local/bin:/usr/bin:/bin').split(':').map((d) => join(d || '.', command));
  let unusable: string | undefined;
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) {
        unusable ??= candidate;
        continue;
      }
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') unusable ??= candidate;
    }
  }
  if (unusable !== undefined) throw new CommandNotExecutable(`${unusable}: not an executable file`);
  throw new CommandNotFound(`${command}: command not found${command.includes('/') ? '' : ' in PATH'}`);
}
