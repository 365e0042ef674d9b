import { describe, expect, it } from 'vitest';
import { commandOver, describeCommand, diffLines, servicesSummary, stackState, uptime } from './stacks';
import type { StackCommand, StackSummary } from './types';

const stack = (over: Partial<StackSummary> = {}): StackSummary => ({
  node: '1', name: 'media', project: 'media', currentVersion: 2, latestVersion: 2, drift: [], engineError: null,
  services: [{ service: 'db', state: 'running', health: 'healthy' }, { service: 'web', state: 'running', health: null }],
  ...over,
});

describe('stacks', () => {
  it('sum up their services', () => {
    expect(servicesSummary([])).toBe('no containers');
    expect(servicesSummary(stack().services)).toBe('2/2 running');
    expect(
      servicesSummary([
        { service: 'db', state: 'running', health: 'unhealthy' },
        { service: 'web', state: 'missing', health: null },
      ]),
    ).toBe('1/2 running, 1 unhealthy, 1 missing');
  });

  it('say what state a stack is in, the unreachable engine first', () => {
    expect(stackState(stack())).toBe('healthy');
    expect(stackState(stack({ engineError: { code: 'UNREACHABLE', message: 'asleep' } }))).toBe('unreachable');
    expect(stackState(stack({ currentVersion: null }))).toBe('not applied');
    expect(stackState(stack({ drift: ['`web` is exited, not running'] }))).toBe('drift');
    expect(stackState(stack({ services: [{ service: 'db', state: 'exited', health: null }] }))).toBe('down');
    expect(stackState(stack({ services: [{ service: 'db', state: 'running', health: 'starting' }] }))).toBe('degraded');
  });

  it('give an uptime', () => {
    const now = Date.parse('2026-12-07T12:00:00Z');
    expect(uptime(null, now)).toBeNull();
    expect(uptime('2026-12-07T11:59:30Z', now)).toBe('30 s');
    expect(uptime('2026-12-07T09:30:00Z', now)).toBe('2 h 30 min');
    expect(uptime('2026-12-05T10:00:00Z', now)).toBe('2 d 2 h');
  });

  it('split a unified diff into kinds of lines', () => {
    const diff = "--- version 1\n+++ version 2\n@@ -1,2 +1,2 @@\n services:\n-  - '600'\n+  - '601'\n";
    expect(diffLines(diff).map((l) => l.kind)).toEqual(['header', 'header', 'hunk', 'same', 'remove', 'add']);
  });

  it('describe commands, with why a pending one waits', () => {
    const c: StackCommand = {
      id: 'stack-command:3', kind: 'apply', version: 2, status: 'pending', actor: 'ada', reason: 'waiting for `upgrade` (execution 4) on `nas`',
      queuedAt: '', startedAt: null, finishedAt: null, errorCode: null, errorMessage: null, result: null,
    };
    expect(describeCommand(c)).toBe('apply to version 2: pending — waiting for `upgrade` (execution 4) on `nas`');
    expect(describeCommand({ ...c, status: 'failed', errorCode: 'UNHEALTHY' })).toBe('apply to version 2: failed (UNHEALTHY)');
    expect(describeCommand({ ...c, kind: 'stop', version: null, status: 'done' })).toBe('stop: done');
    expect(commandOver('running')).toBe(false);
    expect(commandOver('cancelled')).toBe(true);
  });
});
