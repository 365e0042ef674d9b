import { describe, expect, it, vi } from 'vitest';
import { coalesce } from './reload';

describe('coalesce', () => {
  it('runs once at the end of a burst', () => {
    vi.useFakeTimers();
    const run = vi.fn();
    const c = coalesce(run, 200);
    c.trigger();
    vi.advanceTimersByTime(150);
    c.trigger();
    vi.advanceTimersByTime(150);
    expect(run).not.toHaveBeenCalled();
    vi.advanceTimersByTime(60);
    expect(run).toHaveBeenCalledOnce();
    c.trigger();
    c.cancel();
    vi.advanceTimersByTime(500);
    expect(run).toHaveBeenCalledOnce();
    vi.useRealTimers();
  });
});
