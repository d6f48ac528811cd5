/**
 * The project as a user installs it: `npm pack` of this checkout, then `npm install -g --prefix P`
 * of the tarball (which builds the addon from the packed sources). Tests that run ontap as another
 * uid, or under a service manager whose sandbox hides the checkout (PrivateTmp=, ProtectHome=),
 * run these installed commands: the checkout may sit under a directory only root can enter
 * (mktemp -d under /tmp, /root), or under /tmp or /var/tmp.
 *
 * `npm test` (scripts/test.mjs) installs once into a prefix of its own and names it in
 * ONTAP_TEST_PREFIX for every test process and for the VM guest; a test file run on its own
 * installs into a temporary prefix on first use and removes it when its process exits.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './ontapd.js';

export const PACKAGE_NAME = 'ontapd';
export const COMMANDS = ['ontapd', 'ontap', 'ontap-zone', 'runvm'] as const;
export type Command = (typeof COMMANDS)[number];

export interface Installation {
  prefix: string;
  /** PREFIX/bin/NAME: what a user's PATH finds. */
  bin(command: Command): string;
  /** The installed package's own directory (PREFIX/lib/node_modules/ontapd). */
  packageDir: string;
  /** PREFIX/share/man, for man -M. */
  manDir: string;
}

export function installationAt(prefix: string): Installation {
  return {
    prefix,
    bin: (command) => join(prefix, 'bin', command),
    packageDir: join(prefix, 'lib/node_modules', PACKAGE_NAME),
    manDir: join(prefix, 'share/man'),
  };
}

export class InstallError extends Error {}

function run(argv: string[], cwd: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8', timeout: 300000, env: { ...process.env, npm_config_loglevel: 'warn' } });
  if (r.status !== 0) throw new InstallError(`${argv.join(' ')} exited with ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `npm pack` of the checkout (already built: prepare is not run again) into `dir`; the tarball's path. */
export function pack(dir: string, root: string = ROOT): string {
  run(['npm', 'pack', '--ignore-scripts', '--pack-destination', dir], root);
  const tarball = readdirSync(dir).find((f) => f.startsWith(`${PACKAGE_NAME}-`) && f.endsWith('.tgz'));
  if (tarball === undefined) throw new InstallError(`npm pack left no ${PACKAGE_NAME}-*.tgz in ${dir}`);
  return join(dir, tarball);
}

/**
 * Packs the checkout and installs the tarball into a new directory, readable by every uid.
 * Dependencies come from npm's cache when it has them (the checkout's own npm install filled it).
 */
export function installFresh(): Installation {
  const prefix = mkdtempSync(join(tmpdir(), 'ontap-prefix-'));
  try {
    chmodSync(prefix, 0o755);
    const work = mkdtempSync(join(tmpdir(), 'ontap-pack-'));
    try {
      const tarball = pack(work);
      run(['npm', 'install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], work);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const inst = installationAt(prefix);
    for (const c of COMMANDS) if (!existsSync(inst.bin(c))) throw new InstallError(`the install has no ${inst.bin(c)}`);
    return inst;
  } catch (e) {
    rmSync(prefix, { recursive: true, force: true });
    throw e;
  }
}

let shared: Installation | undefined;

/** The installation the tests use: ONTAP_TEST_PREFIX's, or one made now for this process. */
export function installed(): Installation {
  if (shared !== undefined) return shared;
  const given = process.env.ONTAP_TEST_PREFIX;
  if (given !== undefined && given !== '') {
    const inst = installationAt(given);
    if (!existsSync(inst.bin('ontapd'))) throw new InstallError(`ONTAP_TEST_PREFIX=${given} has no bin/ontapd`);
    shared = inst;
    return inst;
  }
  const inst = installFresh();
  process.on('exit', () => rmSync(inst.prefix, { recursive: true, force: true }));
  shared = inst;
  return inst;
}
