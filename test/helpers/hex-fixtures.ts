/**
 * Byte fixtures captured from real tools, kept in the source tree as test/fixtures/FOLDER/NAME.hex:
 * hex digits with any whitespace, and # lines saying what made them (each folder's capture.sh).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** Compiled to dist/test/helpers; the .hex files stay in the source tree. */
const ROOT = here.includes(join('dist', 'test')) ? resolve(here, '../../..') : resolve(here, '../..');

export class HexFixtures {
  readonly dir: string;

  constructor(folder: string) {
    this.dir = join(ROOT, 'test/fixtures', folder);
  }

  /** The file as it is, comments and all. */
  text(name: string): string {
    return readFileSync(join(this.dir, `${name}.hex`), 'utf8');
  }

  /** Its bytes: the # lines left out, the hex digits joined. */
  load(name: string): Buffer {
    return Buffer.from(this.text(name).split('\n').filter((l) => !l.startsWith('#')).join('').replace(/\s+/g, ''), 'hex');
  }

  /** Every fixture's name, sorted. */
  names(): string[] {
    return readdirSync(this.dir).filter((f) => f.endsWith('.hex')).map((f) => f.slice(0, -4)).sort();
  }
}
