import { describe, expect, it } from 'vitest';
import { describeEvent, matches, mergeEvents, toRfc3339 } from './journal';
import type { WakeEvent } from './types';

const event = (over: Partial<WakeEvent>): WakeEvent => ({
  id: 'event:1',
  at: '2026-03-01T10:00:00Z',
  kind: 'status-change',
  cascade: null,
  node: 'node:3',
  payload: { __typename: 'StatusChange', name: 'nas', kind: 'physical', state: 'ON' },
  ...over,
});

describe('describeEvent', () => {
  it('names the node and what happened', () => {
    expect(describeEvent(event({}))).toBe('nas is on');
    expect(
      describeEvent(event({ kind: 'cascade-error', payload: { __typename: 'CascadeError', action: 'START', status: 'FAILED', failedStep: 2, code: 'UNREACHABLE', message: 'no route to host' } })),
    ).toBe('start failed: UNREACHABLE — no route to host');
    expect(describeEvent(event({ kind: 'host-discovered', payload: { __typename: 'HostDiscovered', name: 'pve', added: ['lxc-101'], disappeared: [] } }))).toBe(
      'pve: 1 new guest(s) (lxc-101), 0 gone',
    );
  });

  it('tells machine refreshes, actions and maintenance steps', () => {
    const refreshed = { __typename: 'MachineRefreshed', name: 'pve', outcome: 'ok', updates: 4, securityUpdates: 1, rebootRequired: true, refreshCode: null, summary: '4 updates (1 security), reboot required', actor: 'alice' } as const;
    expect(describeEvent(event({ kind: 'machine-refreshed', payload: refreshed }))).toBe('pve refreshed: 4 updates (1 security), reboot required');
    expect(describeEvent(event({ kind: 'machine-refreshed', payload: { ...refreshed, outcome: 'failed', refreshCode: 'AUTH_FAILED' } }))).toBe('pve: refresh failed (AUTH_FAILED)');
    expect(
      describeEvent(event({ kind: 'machine-execution', payload: { __typename: 'MachineExecution', name: 'pve', execution: 'execution:3', machineAction: 'upgrade', executionStatus: 'failed', errorKind: 'apt_locked', actor: 'bob' } })),
    ).toBe('upgrade on pve: failed (apt_locked)');
    expect(
      describeEvent(event({ kind: 'maintenance', payload: { __typename: 'MaintenanceProgress', run: 'maintenance-run:2', window: 'sunday', phase: 'reboot', machine: 'pve', runStatus: 'done', message: 'pve rebooted and back' } })),
    ).toBe('maintenance-run:2: reboot pve done — pve rebooted and back');
  });
});

describe('matches', () => {
  const none = { node: '', kinds: [], since: '', until: '' };
  it('filters by node, kind and time', () => {
    expect(matches(event({}), none, null)).toBe(true);
    expect(matches(event({}), { ...none, node: 'nas' }, 'node:3')).toBe(true);
    expect(matches(event({}), { ...none, node: 'plex' }, 'node:9')).toBe(false);
    expect(matches(event({}), { ...none, kinds: ['cascade-error'] }, null)).toBe(false);
    expect(matches(event({}), { ...none, since: '2026-03-01T11:00:00Z' }, null)).toBe(false);
    expect(matches(event({}), { ...none, until: '2026-03-01T11:00:00Z' }, null)).toBe(true);
  });

  it('sends local times as RFC 3339', () => {
    expect(toRfc3339('')).toBeUndefined();
    expect(toRfc3339('2026-03-01T10:00')).toBe(new Date('2026-03-01T10:00').toISOString());
  });
});

describe('mergeEvents', () => {
  const e = (n: number) => event({ id: `event:${n}` });
  it('shows each event once, in the list order', () => {
    expect(mergeEvents([e(9), e(8)], [e(10), e(9), e(7)], true).map((x) => x.id)).toEqual(['event:10', 'event:9', 'event:8', 'event:7']);
    expect(mergeEvents([e(1), e(2)], [e(2), e(11)], false).map((x) => x.id)).toEqual(['event:1', 'event:2', 'event:11']);
  });
});
