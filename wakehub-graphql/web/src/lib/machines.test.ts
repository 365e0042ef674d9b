import { describe, expect, it } from 'vitest';
import { actionLabel, isOver, machineBadges, needsConfirmation, sortUpgrades, splitList } from './machines';

const state = { summary: '', updates: 0, securityUpdates: 0, rebootRequired: false, asleep: false, refreshedAt: '2026-12-01T00:00:00Z', lastOutcome: 'ok' };

describe('machine badges', () => {
  it('say nothing for a machine never refreshed or up to date', () => {
    expect(machineBadges(null)).toEqual([]);
    expect(machineBadges(state)).toEqual([]);
  });

  it('put security first, then updates and the reboot', () => {
    const b = machineBadges({ ...state, updates: 4, securityUpdates: 1, rebootRequired: true });
    expect(b.map((x) => x.text)).toEqual(['1 security', '4 updates', 'reboot']);
    expect(b[0].tone).toBe('danger');
    expect(b[1].label).toBe('4 updates pending');
  });

  it('say when what is shown is last known, and when the last refresh failed', () => {
    expect(machineBadges({ ...state, asleep: true }).map((x) => x.text)).toEqual(['last known']);
    expect(machineBadges({ ...state, asleep: true, refreshedAt: null })).toEqual([]);
    expect(machineBadges({ ...state, lastOutcome: 'failed' })[0].text).toBe('refresh failed');
  });
});

describe('upgrades', () => {
  it('are listed security first, held last', () => {
    const u = (name: string, security = false, held = false) => ({ name, installed: '1', candidate: '2', security, held });
    expect(sortUpgrades([u('b'), u('held', false, true), u('a'), u('ssl', true)]).map((x) => x.name)).toEqual(['ssl', 'a', 'b', 'held']);
  });
});

describe('actions', () => {
  it('read as words, and ask first unless they are the operator’s own commands', () => {
    expect(['upgrade', 'reboot', 'docker-prune', 'command:backup'].map(actionLabel)).toEqual(['Upgrade', 'Reboot', 'Docker prune', 'Run backup']);
    expect(needsConfirmation('reboot')).toBe(true);
    expect(needsConfirmation('command:backup')).toBe(false);
    expect(isOver('queued') || isOver('running')).toBe(false);
    expect(isOver('attention') && isOver('failed')).toBe(true);
  });

  it('split lists typed by people', () => {
    expect(splitList(' nas, pve  vm1,,nas ')).toEqual(['nas', 'pve', 'vm1']);
    expect(splitList('')).toEqual([]);
  });
});
