import assert from 'node:assert/strict';
import { test } from 'node:test';

import { compareEventIds, createResumePoint, isEventId } from '../src/event-id.js';

test('ids compare by milliseconds, then sequence, numerically', () => {
  assert.equal(compareEventIds('1795306000123-0', '1795306000123-0'), 0);
  assert.equal(compareEventIds('1795306000123-0', '1795306000124-0'), -1);
  assert.equal(compareEventIds('1795306000124-0', '1795306000123-9'), 1);
  assert.equal(compareEventIds('9-0', '10-0'), -1); // not as strings
  assert.equal(compareEventIds('5-9', '5-10'), -1);
  assert.equal(compareEventIds('0-0', '1-0'), -1);
});

test('ids beyond 2^53 compare exactly', () => {
  assert.equal(compareEventIds('1-18446744073709551615', '1-18446744073709551614'), 1);
  assert.equal(compareEventIds('9007199254740993-0', '9007199254740992-0'), 1);
});

test('leading zeros do not change the order', () => {
  assert.equal(compareEventIds('010-0', '9-0'), 1);
  assert.equal(compareEventIds('0010-01', '10-1'), 0);
});

test('anything but "<digits>-<digits>" is not an id', () => {
  for (const bad of ['', '12', '12-', '-1', '1-2-3', 'a-1', ' 1-2', null, undefined, 12]) {
    assert.equal(isEventId(bad), false, String(bad));
    assert.ok(Number.isNaN(compareEventIds(bad, '1-0')), String(bad));
  }
  assert.equal(isEventId('1795306000123-0'), true);
});

test('resume point: starts from the given id, or none', () => {
  assert.equal(createResumePoint().id, null);
  assert.equal(createResumePoint('not an id').id, null);
  assert.equal(createResumePoint('5-0').id, '5-0');
});

test('resume point: data events move it forward, repeats are refused', () => {
  const r = createResumePoint('5-0');
  assert.equal(r.accept('5-1'), true);
  assert.equal(r.accept('6-0'), true);
  assert.equal(r.id, '6-0');
  assert.equal(r.accept('6-0'), false); // the same event again
  assert.equal(r.accept('5-1'), false); // an older one
  assert.equal(r.id, '6-0');
});

test('resume point: an event without a usable id is delivered, the place kept', () => {
  const r = createResumePoint('5-0');
  assert.equal(r.accept(null), true);
  assert.equal(r.accept('junk'), true);
  assert.equal(r.id, '5-0');
});

test('resume point: control events only move it forward', () => {
  const r = createResumePoint('5-0');
  r.advance('7-0'); // a ping past events filtered out
  assert.equal(r.id, '7-0');
  r.advance('6-0');
  r.advance(null);
  assert.equal(r.id, '7-0');
  assert.equal(r.accept('7-0'), false);
  assert.equal(r.accept('7-1'), true);
});

test('resume point: reset may move it back (history lost), then later events pass', () => {
  const r = createResumePoint('900-0');
  r.reset('100-0');
  assert.equal(r.id, '100-0');
  assert.equal(r.accept('101-0'), true);
  r.reset(null); // no id: the place stays
  assert.equal(r.id, '101-0');
});
