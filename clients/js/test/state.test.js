import assert from 'node:assert/strict';
import { test } from 'node:test';

import { canMove, TRANSITIONS } from '../src/state.js';

test('the lifecycle a UI sees', () => {
  const path = ['idle', 'connecting', 'open', 'reconnecting', 'connecting', 'open', 'paused', 'connecting', 'stopped'];
  for (let i = 1; i < path.length; i++) assert.ok(canMove(path[i - 1], path[i]), `${path[i - 1]} -> ${path[i]}`);
});

test('EventSource reconnecting by itself goes from reconnecting straight to open', () => {
  assert.ok(canMove('open', 'reconnecting'));
  assert.ok(canMove('reconnecting', 'open'));
  assert.ok(canMove('reconnecting', 'reconnecting')); // the next attempt
});

test('every state can stop, and a stopped client can start again', () => {
  for (const s of Object.keys(TRANSITIONS)) if (s !== 'stopped') assert.ok(canMove(s, 'stopped'), s);
  assert.ok(canMove('stopped', 'connecting'));
  assert.equal(canMove('stopped', 'stopped'), false);
});

test('moves that would be bugs', () => {
  assert.equal(canMove('idle', 'open'), false); // open without connecting
  assert.equal(canMove('paused', 'open'), false);
  assert.equal(canMove('paused', 'reconnecting'), false);
  assert.equal(canMove('open', 'open'), false);
  assert.equal(canMove('open', 'connecting'), false); // reconnecting comes first
  assert.equal(canMove('nonsense', 'open'), false);
  assert.equal(canMove('open', 'idle'), false);
});

test('the table is frozen', () => {
  assert.ok(Object.isFrozen(TRANSITIONS));
});
