/**
 * For test files that run in the VM guest (*.vmtest.ts, see docs/testing.md).
 *
 * The harness sets ONTAP_IN_VM=1 for the guest's command. A *.vmtest.ts file is only started by the
 * harness (scripts/test.mjs runs *.test.js on the host), but a developer may point node --test at one
 * by hand: `{ skip: vmOnly }` turns that into a skip with the reason instead of confusing failures.
 * Files that probe the kernel for what they need (test/helpers/requirements.ts) do not need it.
 */

/** True in the VM guest started by test/integration/vm/run.js. */
export const inVmGuest: boolean = process.env.ONTAP_IN_VM === '1';

/** For node:test's `skip` option: false in the guest, else the reason. */
export const vmOnly: false | string = inVmGuest ? false : 'runs only in the VM guest: npm run test:vm (or npm run vm -- FILE)';
