import { describe, expect, it } from 'vitest';
import { CARD, cardSize, edgePath, fitScale, layoutLab, textWidth, type GraphInput, type LabLayout } from './graph';

const node = (name: string, parent: string | null, dependsOn: string[] = [], detail = 'vm · off'): GraphInput => ({
  name,
  parent,
  dependsOn,
  lines: [name, detail],
});

// The demo lab, smaller: two machines, a VM that runs containers, a NAS.
const lab = [
  node('machine1', null, [], 'physical · on'),
  node('vm-docker', 'machine1'),
  node('postgres', 'vm-docker'),
  node('paperless', 'vm-docker', ['postgres']),
  node('machine2', null, [], 'physical · on'),
  { ...node('machine2-guest', 'machine2'), lines: ['machine2-guest', 'lxc · off', '1 to configure'] },
  node('lxc-jellyfin', 'machine2', ['nas']),
  node('nas', null, [], 'physical · off'),
  node('ghost-child', 'not-visible', ['not-visible']),
];

const card = (l: LabLayout, name: string) => l.nodes.find((n) => n.name === name)!;
const cluster = (l: LabLayout, host: string) => l.clusters.find((c) => c.host === host)!;
const inside = (l: LabLayout, name: string, host: string) => {
  const n = card(l, name);
  const c = cluster(l, host);
  return n.x - n.width / 2 >= c.x && n.x + n.width / 2 <= c.x + c.width && n.y - n.height / 2 >= c.y && n.y + n.height / 2 <= c.y + c.height;
};

describe('layoutLab', () => {
  const layout = layoutLab(lab);

  it('draws a box per host that holds its card and its guests, nested', () => {
    expect(layout.clusters.map((c) => [c.host, c.depth])).toEqual([
      ['machine1', 0],
      ['machine2', 0],
      ['vm-docker', 1],
    ]);
    for (const name of ['machine1', 'vm-docker', 'postgres', 'paperless']) expect(inside(layout, name, 'machine1')).toBe(true);
    for (const name of ['vm-docker', 'postgres', 'paperless']) expect(inside(layout, name, 'vm-docker')).toBe(true);
    for (const name of ['machine2', 'machine2-guest', 'lxc-jellyfin']) expect(inside(layout, name, 'machine2')).toBe(true);
    for (const name of ['nas', 'lxc-jellyfin', 'machine2']) expect(inside(layout, name, 'machine1')).toBe(false);
    expect(inside(layout, 'machine1', 'vm-docker')).toBe(false);
  });

  it('puts hosts left of their guests and what is needed left of its users', () => {
    const x = (name: string) => card(layout, name).x;
    expect(x('machine2')).toBeLessThan(x('lxc-jellyfin'));
    expect(x('machine1')).toBeLessThan(x('vm-docker'));
    expect(x('vm-docker')).toBeLessThan(x('postgres'));
    expect(x('nas')).toBeLessThan(x('lxc-jellyfin'));
  });

  it('never overlaps two cards, nor the boxes of two machines', () => {
    const overlap = (a: { x: number; y: number; width: number; height: number }, b: typeof a) =>
      Math.abs(a.x - b.x) * 2 < a.width + b.width && Math.abs(a.y - b.y) * 2 < a.height + b.height;
    for (const a of layout.nodes) for (const b of layout.nodes) if (a !== b) expect(overlap(a, b), `${a.name} / ${b.name}`).toBe(false);
    const centre = (c: LabLayout['clusters'][number]) => ({ ...c, x: c.x + c.width / 2, y: c.y + c.height / 2 });
    expect(overlap(centre(cluster(layout, 'machine1')), centre(cluster(layout, 'machine2')))).toBe(false);
  });

  it('keeps everything within the drawing', () => {
    for (const n of layout.nodes) {
      expect(n.x - n.width / 2).toBeGreaterThanOrEqual(0);
      expect(n.x + n.width / 2).toBeLessThanOrEqual(layout.width);
      expect(n.y + n.height / 2).toBeLessThanOrEqual(layout.height);
    }
    for (const c of layout.clusters) expect(c.x + c.width).toBeLessThanOrEqual(layout.width);
  });

  it('keeps hosting and dependency edges apart, with their direction', () => {
    expect(layout.edges.map(({ from, to, kind }) => `${kind} ${from} → ${to}`)).toEqual([
      'hosts machine1 → vm-docker',
      'hosts vm-docker → postgres',
      'hosts vm-docker → paperless',
      'depends paperless → postgres',
      'hosts machine2 → machine2-guest',
      'hosts machine2 → lxc-jellyfin',
      'depends lxc-jellyfin → nas',
    ]);
    for (const edge of layout.edges) expect(edge.points.length).toBeGreaterThanOrEqual(2);
  });

  it('ignores links to nodes the caller cannot see', () => {
    expect(layout.nodes).toHaveLength(lab.length);
    expect(layout.edges.some((e) => e.from === 'not-visible' || e.to === 'not-visible')).toBe(false);
  });
});

describe('cards', () => {
  it('are wide enough for their longest line and tall enough for every line', () => {
    const lines = ['machine2', 'physical · on · 1 to configure'];
    const size = cardSize(lines);
    expect(size.width).toBeGreaterThanOrEqual(CARD.padLeft + textWidth(lines[1], CARD.detailSize) + CARD.padRight);
    expect(size.width).toBeGreaterThan(cardSize(['machine2', 'physical · on']).width);
    expect(cardSize(['a', 'b', 'c']).height - cardSize(['a', 'b']).height).toBe(CARD.lineStep);
  });

  it('never shrink below the minimum', () => {
    expect(cardSize(['nas', 'physical · on']).width).toBe(CARD.minWidth);
  });

  it('are laid out at their size', () => {
    const l = layoutLab([{ name: 'vm-homeassistant', parent: null, dependsOn: [], lines: ['vm-homeassistant', 'vm · on · 12 to configure'] }]);
    expect(l.nodes[0].width).toBe(cardSize(['vm-homeassistant', 'vm · on · 12 to configure']).width);
  });
});

describe('fitScale', () => {
  it('shrinks a wide drawing to the width, never enlarges a narrow one', () => {
    expect(fitScale(2000, 1000)).toBe(0.5);
    expect(fitScale(500, 1000)).toBe(1);
    expect(fitScale(500, 0)).toBe(1);
  });
});

describe('edgePath', () => {
  it('draws a line through the points', () => {
    expect(edgePath([{ x: 0, y: 0 }, { x: 10, y: 20 }])).toBe('M0,0 L10,20');
    expect(edgePath([{ x: 0, y: 0 }, { x: 10, y: 10 }, { x: 20, y: 0 }])).toBe('M0,0 Q10,10 15,5 L20,0');
  });
});
