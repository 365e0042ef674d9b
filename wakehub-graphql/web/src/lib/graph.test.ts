import { describe, expect, it } from 'vitest';
import { edgePath, layoutLab } from './graph';

const lab = [
  { name: 'machine2', parent: null, dependsOn: [] },
  { name: 'nas', parent: null, dependsOn: [] },
  { name: 'lxc-jellyfin', parent: 'machine2', dependsOn: ['nas'] },
  { name: 'ghost-child', parent: 'not-visible', dependsOn: ['not-visible'] },
];

describe('layoutLab', () => {
  it('puts hosts above their guests and what is needed above its users', () => {
    const layout = layoutLab(lab);
    const y = (name: string) => layout.nodes.find((n) => n.name === name)!.y;
    expect(y('machine2')).toBeLessThan(y('lxc-jellyfin'));
    expect(y('nas')).toBeLessThan(y('lxc-jellyfin'));
  });

  it('keeps hosting and dependency edges apart, with their direction', () => {
    const { edges } = layoutLab(lab);
    expect(edges.map(({ from, to, kind }) => ({ from, to, kind }))).toEqual([
      { from: 'machine2', to: 'lxc-jellyfin', kind: 'hosts' },
      { from: 'lxc-jellyfin', to: 'nas', kind: 'depends' },
    ]);
    for (const edge of edges) expect(edge.points.length).toBeGreaterThanOrEqual(2);
  });

  it('ignores links to nodes the caller cannot see', () => {
    const layout = layoutLab(lab);
    expect(layout.nodes).toHaveLength(4);
    expect(layout.edges.some((e) => e.from === 'not-visible' || e.to === 'not-visible')).toBe(false);
    expect(layout.width).toBeGreaterThan(0);
  });
});

describe('edgePath', () => {
  it('draws a line through the points', () => {
    expect(edgePath([{ x: 0, y: 0 }, { x: 10, y: 20 }])).toBe('M0,0 L10,20');
    expect(edgePath([{ x: 0, y: 0 }, { x: 10, y: 10 }, { x: 20, y: 0 }])).toBe('M0,0 Q10,10 15,5 L20,0');
  });
});
