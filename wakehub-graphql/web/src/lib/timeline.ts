// The geometry of a cascade's Gantt chart: one bar per step from its start to its end
// (a running step's bar ends at `now`), the wait between a step's last prerequisite and its
// own start, and the critical path — the chain through `after` whose durations add up to
// the longest, i.e. what made the cascade take as long as it did.
import type { StepStatus } from './types';

export interface TimelineStep {
  index: number;
  after: number[];
  status: StepStatus;
  startedAt: string | null;
  completedAt: string | null;
}

export interface Bar {
  index: number;
  /** Offsets in ms from the cascade's first start; null for a step that never began. */
  start: number | null;
  end: number | null;
  duration: number;
  running: boolean;
  /** When its last prerequisite ended (ms offset), if it waited for any. */
  readyAt: number | null;
  critical: boolean;
}

export interface Timeline {
  /** The moment every offset is measured from (ms since the epoch), null if nothing began. */
  origin: number | null;
  /** The span the chart must show, in ms (at least 1). */
  span: number;
  bars: Bar[];
  /** Step indices of the critical path, first to last. */
  criticalPath: number[];
}

const time = (iso: string | null): number | null => {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
};

export function layoutTimeline(steps: TimelineStep[], now: number): Timeline {
  const starts = steps.map((s) => time(s.startedAt)).filter((t): t is number => t !== null);
  const origin = starts.length ? Math.min(...starts) : null;
  const byIndex = new Map(steps.map((s) => [s.index, s]));

  const raw = steps.map((step) => {
    const started = time(step.startedAt);
    const completed = time(step.completedAt);
    const running = started !== null && completed === null && step.status === 'RUNNING';
    const endTime = completed ?? (running ? Math.max(now, started ?? now) : started);
    const start = origin !== null && started !== null ? started - origin : null;
    const end = origin !== null && endTime !== null ? endTime - origin : null;
    return { step, start, end, running, duration: start !== null && end !== null ? end - start : 0 };
  });
  const rawByIndex = new Map(raw.map((r) => [r.step.index, r]));

  const criticalPath = findCriticalPath(steps, (i) => rawByIndex.get(i)?.duration ?? 0);
  const critical = new Set(criticalPath);

  const bars: Bar[] = raw.map((r) => {
    const ends = r.step.after
      .filter((i) => byIndex.has(i))
      .map((i) => rawByIndex.get(i)!.end)
      .filter((e): e is number => e !== null);
    return {
      index: r.step.index,
      start: r.start,
      end: r.end,
      duration: r.duration,
      running: r.running,
      readyAt: ends.length ? Math.max(...ends) : null,
      critical: critical.has(r.step.index),
    };
  });

  const span = Math.max(1, ...bars.map((b) => b.end ?? 0));
  return { origin, span, bars, criticalPath };
}

/**
 * The longest chain through `after` by summed duration. Ties go to the lower step index so
 * the answer is stable. Prerequisites that are not in `steps` are ignored; the plan is a DAG,
 * and a cycle (which the server never sends) is cut rather than looped on.
 */
export function findCriticalPath(steps: Pick<TimelineStep, 'index' | 'after'>[], duration: (index: number) => number): number[] {
  const byIndex = new Map(steps.map((s) => [s.index, s]));
  const best = new Map<number, { total: number; previous: number | null }>();
  const visiting = new Set<number>();

  const visit = (index: number): number => {
    const known = best.get(index);
    if (known) return known.total;
    if (visiting.has(index)) return 0;
    visiting.add(index);
    let previous: number | null = null;
    let longest = 0;
    for (const before of [...(byIndex.get(index)?.after ?? [])].sort((a, b) => a - b)) {
      if (!byIndex.has(before)) continue;
      const total = visit(before);
      if (previous === null || total > longest) {
        longest = total;
        previous = before;
      }
    }
    visiting.delete(index);
    const total = longest + duration(index);
    best.set(index, { total, previous });
    return total;
  };

  let last: number | null = null;
  let longestTotal = -1;
  for (const step of [...steps].sort((a, b) => a.index - b.index)) {
    const total = visit(step.index);
    if (total > longestTotal) {
      longestTotal = total;
      last = step.index;
    }
  }
  const path: number[] = [];
  for (let i = last; i !== null && !path.includes(i); i = best.get(i)?.previous ?? null) path.unshift(i);
  return path;
}

/** Evenly spaced tick offsets (ms) for an axis over `span`, at a round step. */
export function ticks(span: number, maxTicks = 6): number[] {
  const candidates = [100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000];
  const step = candidates.find((c) => span / c <= maxTicks) ?? Math.ceil(span / maxTicks);
  const out: number[] = [];
  for (let t = 0; t <= span; t += step) out.push(t);
  return out;
}
