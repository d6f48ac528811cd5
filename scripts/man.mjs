#!/usr/bin/env node
// Builds the installed manual pages: docs/NAME.N (roff, man(7)) -> dist/man/manN/NAME.N, a man
// hierarchy (`man -M dist/man ontapd`, MANPATH=dist/man) that package.json's "man" points into.
// The sources' `.TH NAME N` line gets its date and the package's version here, so neither is
// written, or forgotten, by hand.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const docs = join(root, 'docs');
const out = join(root, 'dist/man');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const manuals = { 1: 'General Commands Manual', 8: "System Manager's Manual" };

/** The page's last commit date; outside a git checkout, SOURCE_DATE_EPOCH or the file's mtime. */
function pageDate(path) {
  const git = spawnSync('git', ['log', '-1', '--format=%cs', '--', path], { cwd: root, encoding: 'utf8' });
  const committed = git.status === 0 ? git.stdout.trim() : '';
  if (/^\d{4}-\d{2}-\d{2}$/.test(committed)) return committed;
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  const when = Number.isInteger(epoch) && epoch > 0 ? new Date(epoch * 1000) : statSync(path).mtime;
  return when.toISOString().slice(0, 10);
}

const pages = readdirSync(docs).filter((f) => /^[a-z][a-z0-9-]*\.[18]$/.test(f)).sort();
if (pages.length === 0) throw new Error(`no manual pages in ${docs}`);
rmSync(out, { recursive: true, force: true }); // a page removed from docs/ goes from here too
for (const page of pages) {
  const source = join(docs, page);
  const [name, section] = [page.slice(0, -2), page.slice(-1)];
  const text = readFileSync(source, 'utf8');
  const th = new RegExp(`^\\.TH ${name} ${section}$`, 'm');
  if (!th.test(text)) throw new Error(`${source}: needs a line ".TH ${name} ${section}" for the build to complete`);
  const header = `.TH ${name} ${section} ${pageDate(source)} "ontap ${version}" "${manuals[section]}"`;
  mkdirSync(join(out, `man${section}`), { recursive: true });
  writeFileSync(join(out, `man${section}`, page), text.replace(th, header));
}
