/**
 * The VM harness's command line (docs/testing.md, "Commands" and "How it works").
 *
 *   node dist/test/integration/vm/run.js [--suite]    every dist/test/integration/**\/*.vmtest.js, one boot
 *   node dist/test/integration/vm/run.js FILE          node --test FILE in the guest (.ts maps to dist/)
 *   node dist/test/integration/vm/run.js CMD [ARG...]  a command in the guest ("one string" runs via sh -c)
 *
 * npm run test:vm and npm run vm -- ... call this. Exits with the guest command's status, 1 if the guest
 * failed to boot or report, 124 on a timeout. Without qemu, a kernel or busybox it prints one "skip:"
 * line and exits 0 (1 with CI=true).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { installed, type Installation } from '../../helpers/install.js';
import { INSTALL_HINT, findHostTools } from './host.js';
import { cacheDir, ensureInitramfs } from './initramfs.js';
import { guestShares, runGuest, type GuestJob } from './qemu.js';
import { ensureBootImage } from './vmlinux.js';

/** The checkout: this file is <root>/dist/test/integration/vm/run.js. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** Modules loaded in the guest before any command: what the tests create. */
export const GUEST_MODULES = ['veth', 'ipvlan', 'ipvtap', 'macvlan', 'macvtap', 'tun'];

/** Host environment passed to the guest's command (besides ONTAP_* other than the harness's ONTAP_VM_*). */
const PASS_ENV = ['CI', 'NO_COLOR', 'FORCE_COLOR', 'NODE_OPTIONS', 'NODE_DEBUG', 'DEBUG', 'LANG', 'LC_ALL', 'TZ'];

/**
 * The whole suite in one boot: 236 s with seven files on an idle CI machine, 325-410 s with nine (the
 * mDNS conflict and hostile files added 100-115 s and 50-55 s); a loaded host stretches every
 * figure (a file 1.3 times as long beside a second guest): twice the nine files' time.
 */
const DEFAULT_TIMEOUT_S = 15 * 60;

const USAGE = `usage: npm run test:vm                      all *.vmtest.js files in one boot
       npm run vm -- FILE                   node --test FILE in the guest (a .ts path maps to dist/)
       npm run vm -- CMD [ARG...]           a command in the guest; one quoted string runs via sh -c
       npm run vm -- sh                     an interactive shell (from a terminal)
environment: ONTAP_VM_TIMEOUT=seconds (default ${DEFAULT_TIMEOUT_S}; 0 = none), ONTAP_VM_SHELL=1 (shell after the
  command or a failed boot, needs a terminal), ONTAP_VM_CONSOLE=1 (kernel console to stderr),
  ONTAP_VM_MODULES="extra modules", ONTAP_VM_APPEND="kernel parameters", ONTAP_VM_MEMORY=MiB (1024),
  ONTAP_VM_CPUS=n (2), ONTAP_VM_CPU=qemu-cpu-model (max), ONTAP_VM_KERNEL=/boot/vmlinuz-KVER,
  ONTAP_VM_QEMU=path, ONTAP_VM_BUSYBOX=path (static), ONTAP_VM_CACHE=dir (default <checkout>/.vm-cache)`;

/** dist/test/integration/**\/*.vmtest.js, sorted, relative to the checkout. */
export function vmTestFiles(root: string = ROOT): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.vmtest.js')) out.push(relative(root, path));
    }
  };
  walk(join(root, 'dist/test/integration'));
  return out;
}

/** A test file argument as the guest should run it: test/x.vmtest.ts -> dist/test/x.vmtest.js. */
function testFile(arg: string): string | undefined {
  if (!/\.(c|m)?[jt]s$/.test(arg)) return undefined;
  const abs = resolve(arg);
  if (/\.(c|m)?ts$/.test(arg) && !abs.startsWith(join(ROOT, 'dist') + sep)) {
    const compiled = join(ROOT, 'dist', relative(ROOT, abs)).replace(/\.(c|m)?ts$/, (_m, p: string | undefined) => `.${p ?? ''}js`);
    if (existsSync(compiled)) return compiled;
    return undefined;
  }
  return existsSync(abs) && statSync(abs).isFile() ? abs : undefined;
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`;
}

function intEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v}: expected a whole number`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '-h' || argv[0] === '--help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const found = findHostTools();
  if ('missing' in found) {
    const ci = process.env.CI === 'true';
    process.stdout.write(`skip: VM harness needs ${INSTALL_HINT} (missing: ${found.missing.join(', ')})${ci ? ' [CI=true: failing]' : ''}\n`);
    return ci ? 1 : 0;
  }
  const { tools } = found;

  const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const reporter = process.stdout.isTTY ? 'spec' : 'tap';
  let command: string[];
  let what: string;
  // Test runs start in the checkout (visible at the same path in the guest); commands where we are.
  let cwd = ROOT;
  let interactive = false;
  let runsTests = true;
  if (argv.length === 0 || (argv.length === 1 && argv[0] === '--suite')) {
    const files = vmTestFiles();
    if (files.length === 0) {
      process.stderr.write('vm: no dist/test/integration/**/*.vmtest.js: build first (npx tsc -p .)\n');
      return 1;
    }
    // This node, by its path: the guest sees the host's files at the same paths.
    command = [process.execPath, '--test', '--test-concurrency=1', `--test-reporter=${reporter}`, ...files];
    what = `${files.length} test file${files.length === 1 ? '' : 's'}: ${files.join(' ')}`;
  } else {
    const file = argv.length === 1 ? testFile(argv[0]!) : undefined;
    if (file !== undefined) {
      command = [process.execPath, '--test', `--test-reporter=${reporter}`, file];
      what = relative(ROOT, file);
    } else if (argv.length === 1 && /\.(c|m)?[jt]s$/.test(argv[0]!)) {
      process.stderr.write(`vm: ${argv[0]}: no such test file (for a .ts file, build first: npx tsc -p .)\n`);
      return 1;
    } else {
      command = argv.length === 1 && /\s/.test(argv[0]!) ? ['sh', '-c', argv[0]!] : argv;
      cwd = process.cwd();
      runsTests = false;
      what = command.join(' ');
      interactive = terminal;
    }
  }
  const shell = process.env.ONTAP_VM_SHELL === '1';
  if (shell) {
    if (!terminal) {
      process.stderr.write('vm: ONTAP_VM_SHELL=1 needs a terminal (stdin and stdout)\n');
      return 1;
    }
    interactive = true;
  }

  // What the guest needs of the host besides its root, shared at the same paths (the guest's /tmp
  // and /run are its own, and a checkout or prefix may be there): the checkout, the installed
  // project the tests use, and the directory a command runs in.
  let installation: Installation | undefined;
  if (runsTests) {
    try {
      installation = installed();
    } catch (e) {
      process.stderr.write(`vm: installing the packed project failed: ${(e as Error).message}\n`);
      return 1;
    }
  }
  const shares = guestShares([ROOT, cwd, ...(installation ? [installation.prefix] : [])]);
  if (typeof shares === 'string') {
    process.stderr.write(`vm: ${shares}\n`);
    return 1;
  }

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (PASS_ENV.includes(k) || (k.startsWith('ONTAP_') && !k.startsWith('ONTAP_VM_'))) env[k] = v;
  }
  // The guest's stdout is a serial line, a terminal: node would colour its output (and node --test
  // would set FORCE_COLOR for the test files) even when ours goes to a file or a CI log.
  env.TERM = process.stdout.isTTY ? (process.env.TERM ?? 'vt100') : 'dumb';
  env.ONTAP_IN_VM = '1';

  const extra = (process.env.ONTAP_VM_MODULES ?? '').split(/[\s,]+/).filter((m) => m !== '');
  if (installation) env.ONTAP_TEST_PREFIX = installation.prefix;
  const job: GuestJob = {
    argv: command,
    cwd,
    shares,
    env,
    modules: [...new Set([...GUEST_MODULES, ...extra])],
    timeoutSeconds: intEnv('ONTAP_VM_TIMEOUT', interactive ? 0 : DEFAULT_TIMEOUT_S),
    interactive,
    shell,
    showConsole: process.env.ONTAP_VM_CONSOLE === '1',
    append: process.env.ONTAP_VM_APPEND ?? '',
    memoryMiB: intEnv('ONTAP_VM_MEMORY', 1024),
    cpus: intEnv('ONTAP_VM_CPUS', 2),
    cpuModel: process.env.ONTAP_VM_CPU || 'max',
  };

  const t0 = Date.now();
  const initScript = readFileSync(join(ROOT, 'test/integration/vm/guest-init.sh'), 'utf8');
  const cache = cacheDir(ROOT);
  const image = ensureBootImage(tools.kernel, cache);
  const initramfs = ensureInitramfs({ kernel: tools.kernel, busybox: tools.busybox, initScript, cacheDir: cache });
  const prepMs = Date.now() - t0;
  if (image.kind === 'bzimage') {
    process.stderr.write(`vm: booting the compressed ${tools.kernel.image} (about 5 s slower): ${image.note ?? ''}\n`);
  }
  process.stderr.write(
    `vm: kernel ${tools.kernel.version} (${image.kind === 'pvh' ? 'vmlinux, PVH entry' : 'bzImage'}), ` +
      `${image.cached && initramfs.cached ? 'cached' : `prepared in ${seconds(prepMs)}`} in ${cache}; ` +
      `${job.cpus} vCPUs TCG, ${job.memoryMiB} MiB` +
      `${job.timeoutSeconds > 0 ? `, timeout ${job.timeoutSeconds} s` : ''}\n` +
      `vm: running ${what}\n`,
  );
  if (interactive) process.stderr.write('vm: interactive: Ctrl-A x quits qemu, Ctrl-A c toggles the qemu monitor\n');

  let r = await runGuest(tools, { kernel: image.path, initramfs: initramfs.path }, job);
  if (r.lockup && !interactive) {
    // A guest kernel stuck for good under TCG (seen once in several runs, CPUs stuck in nsenter
    // and systemd) says nothing about the tests; boot once more, and only once. Test failures
    // are never retried.
    process.stderr.write(`vm: the guest kernel locked up; console:\n${r.consoleTail.replace(/^/gm, '  | ')}\nvm: booting again, once\n`);
    r = await runGuest(tools, { kernel: image.path, initramfs: initramfs.path }, job);
  }
  const total = Date.now() - t0;
  const runMs = r.bootMs === undefined ? undefined : r.totalMs - r.bootMs;
  const timing = `boot ${seconds(r.bootMs)} (guest uptime ${r.guestUptime ?? '?'} s), run ${seconds(runMs)}, total ${seconds(total)}`;
  if (r.status !== undefined && r.failure === undefined) {
    process.stderr.write(`vm: guest command exited with status ${r.status}; ${timing}\n`);
    return r.status;
  }
  const timedOut = r.failure?.startsWith('timeout') === true;
  process.stderr.write(`vm: FAILED: ${r.failure ?? 'unknown'}; ${timing}\n`);
  process.stderr.write(`vm: guest console (last lines):\n${r.consoleTail === '' ? '  (empty)' : r.consoleTail.replace(/^/gm, '  | ')}\n`);
  if (r.status !== undefined && r.status !== 0) return r.status;
  return timedOut ? 124 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`vm: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
