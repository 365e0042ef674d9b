import { describe, expect, it } from 'vitest';
import { findCriticalPath, layoutTimeline, ticks, type TimelineStep } from './timeline';

const at = (s: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + s * 1000).toISOString();

// The README's `start sandbox`: nas and the two machines in parallel, then the guests.
const sandbox: TimelineStep[] = [
  { index: 0, after: [], status: 'DONE', startedAt: at(0), completedAt: at(2.5) }, // nas
  { index: 1, after: [], status: 'DONE', startedAt: at(0), completedAt: at(3) }, // machine2
  { index: 2, after: [0, 1], status: 'DONE', startedAt: at(3), completedAt: at(3.8) }, // lxc-jellyfin
  { index: 3, after: [], status: 'DONE', startedAt: at(0), completedAt: at(3) }, // machine1
  { index: 4, after: [3], status: 'DONE', startedAt: at(3), completedAt: at(4.5) }, // vm-docker
  { index: 5, after: [2, 4], status: 'DONE', startedAt: at(4.5), completedAt: at(4.9) }, // sandbox
];

describe('layoutTimeline', () => {
  it('places bars from the first start and shows parallel steps side by side', () => {
    const t = layoutTimeline(sandbox, Date.parse(at(10)));
    expect(t.span).toBe(4900);
    const bar = (i: number) => t.bars.find((b) => b.index === i)!;
    expect([bar(0).start, bar(1).start, bar(3).start]).toEqual([0, 0, 0]);
    expect(bar(2)).toMatchObject({ start: 3000, end: 3800, duration: 800, readyAt: 3000 });
    expect(bar(5).readyAt).toBe(4500);
  });

  it('finds the critical path: the chain whose durations add up the longest', () => {
    const t = layoutTimeline(sandbox, Date.parse(at(10)));
    // machine1 (3s) → vm-docker (1.5s) → sandbox (0.4s) = 4.9s beats nas/machine2 → jellyfin.
    expect(t.criticalPath).toEqual([3, 4, 5]);
    expect(t.bars.filter((b) => b.critical).map((b) => b.index)).toEqual([3, 4, 5]);
  });

  it('grows a running bar up to now and leaves steps not begun without a bar', () => {
    const steps: TimelineStep[] = [
      { index: 0, after: [], status: 'RUNNING', startedAt: at(0), completedAt: null },
      { index: 1, after: [0], status: 'PENDING', startedAt: null, completedAt: null },
    ];
    const t = layoutTimeline(steps, Date.parse(at(2)));
    expect(t.bars[0]).toMatchObject({ start: 0, end: 2000, running: true });
    expect(t.bars[1]).toMatchObject({ start: null, end: null, duration: 0 });
    expect(layoutTimeline(steps, Date.parse(at(5))).bars[0].end).toBe(5000);
  });

  it('has no origin before any step began', () => {
    const t = layoutTimeline([{ index: 0, after: [], status: 'PENDING', startedAt: null, completedAt: null }], 0);
    expect(t.origin).toBeNull();
    expect(t.span).toBe(1);
  });
});

describe('findCriticalPath', () => {
  it('breaks ties toward the lower index and ignores unknown prerequisites', () => {
    const steps = [
      { index: 0, after: [] },
      { index: 1, after: [] },
      { index: 2, after: [1, 0, 99] },
    ];
    expect(findCriticalPath(steps, () => 1)).toEqual([0, 2]);
  });

  it('does not loop on a cycle', () => {
    expect(findCriticalPath([{ index: 0, after: [1] }, { index: 1, after: [0] }], () => 1).length).toBeGreaterThan(0);
  });
});

describe('ticks', () => {
  it('picks a round step', () => {
    expect(ticks(4900)).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(ticks(300_000).length).toBeLessThanOrEqual(7);
  });
});
