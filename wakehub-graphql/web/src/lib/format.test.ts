import { describe, expect, it } from 'vitest';
import { formatDuration, plural, relativeTime } from './format';

describe('formatDuration', () => {
  it('uses the unit a person would', () => {
    expect(formatDuration(802)).toBe('802ms');
    expect(formatDuration(2500)).toBe('2.5s');
    expect(formatDuration(3000)).toBe('3s');
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(200_000)).toBe('3m 20s');
    expect(formatDuration(540_000)).toBe('9m');
    expect(formatDuration(3_900_000)).toBe('1h 5m');
    expect(formatDuration(7_200_000)).toBe('2h');
  });

  it('shows a dash for what is not a duration', () => {
    expect(formatDuration(-1)).toBe('—');
    expect(formatDuration(Number.NaN)).toBe('—');
  });
});

describe('relativeTime', () => {
  const now = Date.parse('2026-06-01T12:00:00Z');
  it('describes the past and the future', () => {
    expect(relativeTime('2026-06-01T11:59:58Z', now)).toBe('just now');
    expect(relativeTime('2026-06-01T11:59:30Z', now)).toBe('30s ago');
    expect(relativeTime('2026-06-01T11:55:00Z', now)).toBe('5 min ago');
    expect(relativeTime('2026-06-01T09:00:00Z', now)).toBe('3 h ago');
    expect(relativeTime('2026-05-31T12:00:00Z', now)).toBe('1 day ago');
    expect(relativeTime('2026-05-29T12:00:00Z', now)).toBe('3 days ago');
    expect(relativeTime('2026-06-01T12:05:00Z', now)).toBe('in 5 min');
    expect(relativeTime('not a date', now)).toBe('—');
  });

  it('pluralizes', () => {
    expect(plural(1, 'node')).toBe('1 node');
    expect(plural(3, 'node')).toBe('3 nodes');
  });
});
