import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { NodeList, type NodeSource } from './live-nodes.svelte';
import type { LabNode, WakeEvent } from './types';

const node = (name: string) => ({ id: name, name }) as unknown as LabNode;
const event = (kind: string) => ({ id: `event:${kind}`, kind }) as unknown as WakeEvent;

function fakeSource(answers: Array<LabNode[] | Error>) {
  const listeners = new Set<(event: WakeEvent) => void>();
  const gql = vi.fn(async () => {
    const answer = answers.shift();
    if (answer instanceof Error) throw answer;
    return { nodes: answer ?? [] };
  });
  const source: NodeSource = {
    api: { gql: gql as NodeSource['api']['gql'] },
    resyncs: 0,
    onEvent: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return { source, gql, emit: (e: WakeEvent) => listeners.forEach((l) => l(e)), listeners };
}

afterEach(() => vi.useRealTimers());

describe('NodeList', () => {
  it('loads the nodes, keeps them through a failure and clears the error on the next success', async () => {
    const fake = fakeSource([[node('nas')], new ApiError('Not for you', 'FORBIDDEN'), [node('nas'), node('media')]]);
    const list = new NodeList(fake.source);
    await list.load();
    expect(list.nodes?.map((n) => n.name)).toEqual(['nas']);
    expect(list.error).toBeNull();
    await list.load();
    expect(list.nodes?.map((n) => n.name)).toEqual(['nas']);
    expect(list.error).toBe('Not for you');
    await list.load();
    expect(list.nodes?.map((n) => n.name)).toEqual(['nas', 'media']);
    expect(list.error).toBeNull();
  });

  it('runs `then` after the nodes, and its failure is the load\'s error', async () => {
    const fake = fakeSource([[node('pve')], [node('pve')]]);
    const then = vi.fn().mockResolvedValueOnce(undefined).mockRejectedValueOnce(new Error('guest gone'));
    const list = new NodeList(fake.source, { then });
    await list.load();
    expect(then).toHaveBeenCalledWith([node('pve')]);
    expect(list.error).toBeNull();
    await list.load();
    expect(list.error).toBe('Error: guest gone');
  });

  it('reloads once after a burst of node events, ignores other events, and stops when told', () => {
    vi.useFakeTimers();
    const fake = fakeSource([]);
    const list = new NodeList(fake.source, { waitMs: 300 });
    const stop = list.follow();
    fake.emit(event('status-change'));
    vi.advanceTimersByTime(200);
    fake.emit(event('cascade-complete'));
    fake.emit(event('shutdown-proposed'));
    vi.advanceTimersByTime(299);
    expect(fake.gql).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fake.gql).toHaveBeenCalledOnce();
    fake.emit(event('proposal-resolved'));
    vi.advanceTimersByTime(1000);
    expect(fake.gql).toHaveBeenCalledOnce();
    fake.emit(event('host-discovered'));
    stop();
    vi.advanceTimersByTime(1000);
    expect(fake.gql).toHaveBeenCalledOnce();
    expect(fake.listeners.size).toBe(0);
  });
});
