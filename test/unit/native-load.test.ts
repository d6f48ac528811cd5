import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/native/index.js';

test('the native addon loads and reports its ABI', () => {
  assert.equal(native().abiVersion, 5);
});
