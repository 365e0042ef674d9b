// The lab as a drawing: every host is a box that holds its own card and what runs on it
// (nested: a VM that runs containers is a box inside its machine's box), laid out left to
// right so a machine, its VMs and their containers read as columns; dependencies are drawn
// between the cards. dagre (a compound graph) places the cards and the boxes and routes the
// edges; the view only draws what this returns.
import { Graph, layout } from '@dagrejs/dagre';

export interface GraphInput {
  name: string;
  parent: string | null;
  dependsOn: string[];
  /** The card's text, one entry a line: the name first (bold), then details. */
  lines: string[];
}

export type EdgeKind = 'hosts' | 'depends';

export interface PlacedNode {
  name: string;
  /** Centre of the card. */
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The box of a host: its card and everything that runs on it, nested hosts included. */
export interface PlacedCluster {
  host: string;
  /** Top-left corner. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** How many hosts hold this one (0 for a machine of its own). */
  depth: number;
}

export interface PlacedEdge {
  /** For `hosts`, the host then the guest; for `depends`, the dependent then what it needs. */
  from: string;
  to: string;
  kind: EdgeKind;
  points: { x: number; y: number }[];
}

export interface LabLayout {
  nodes: PlacedNode[];
  clusters: PlacedCluster[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

/** Card geometry, shared with the view that draws the text. */
export const CARD = {
  minWidth: 140,
  /** Left of the text: the status dot. */
  padLeft: 24,
  padRight: 12,
  nameSize: 13,
  detailSize: 11,
  /** Baseline of the first line from the card's top, then the step between lines. */
  firstLine: 20,
  lineStep: 16,
  padBottom: 10,
} as const;

/**
 * How wide a line may render, erring wide: an em fraction per character that covers the
 * broad sans-serif faces (DejaVu Sans averages about 0.6 em; bold more).
 */
export function textWidth(text: string, size: number, bold = false): number {
  return Math.ceil([...text].length * size * (bold ? 0.7 : 0.62));
}

/** The card for `lines`: wide enough for the longest, tall enough for all. */
export function cardSize(lines: string[]): { width: number; height: number } {
  const widest = Math.max(0, ...lines.map((line, i) => (i === 0 ? textWidth(line, CARD.nameSize, true) : textWidth(line, CARD.detailSize))));
  return {
    width: Math.max(CARD.minWidth, CARD.padLeft + widest + CARD.padRight),
    height: CARD.firstLine + (Math.max(1, lines.length) - 1) * CARD.lineStep + CARD.padBottom,
  };
}

const clusterId = (host: string) => `cluster:${host}`;

export function layoutLab(nodes: GraphInput[]): LabLayout {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const visibleParent = (n: GraphInput) => (n.parent && byName.has(n.parent) && n.parent !== n.name ? n.parent : null);
  const hosts = new Set(nodes.map(visibleParent).filter((p): p is string => p !== null));

  const g = new Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 48, edgesep: 10, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) g.setNode(node.name, cardSize(node.lines));
  for (const host of hosts) {
    g.setNode(clusterId(host), {});
    g.setParent(host, clusterId(host));
  }
  for (const node of nodes) {
    const parent = visibleParent(node);
    if (parent) g.setParent(hosts.has(node.name) ? clusterId(node.name) : node.name, clusterId(parent));
  }

  const edges: Omit<PlacedEdge, 'points'>[] = [];
  for (const node of nodes) {
    const parent = visibleParent(node);
    if (parent) edges.push({ from: parent, to: node.name, kind: 'hosts' });
    for (const needed of node.dependsOn) if (byName.has(needed) && needed !== node.name) edges.push({ from: node.name, to: needed, kind: 'depends' });
  }
  for (const [i, edge] of edges.entries()) {
    // Hosting sets the columns (a host left of its guests). A dependency runs from what is
    // needed to its user, so a service sits right of its NAS, and weighs less.
    if (edge.kind === 'hosts') g.setEdge(edge.from, edge.to, { weight: 3, minlen: 1 }, `e${i}`);
    else g.setEdge(edge.to, edge.from, { weight: 1, minlen: 1 }, `e${i}`);
  }

  layout(g);

  const placed: PlacedNode[] = nodes.map((n) => {
    const box = g.node(n.name);
    return { name: n.name, x: box.x, y: box.y, width: box.width, height: box.height };
  });
  const depth = (host: string): number => {
    let d = 0;
    for (let p = visibleParent(byName.get(host)!); p && d < nodes.length; p = visibleParent(byName.get(p)!)) d++;
    return d;
  };
  const clusters: PlacedCluster[] = [...hosts].map((host) => {
    const box = g.node(clusterId(host));
    return { host, x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, depth: depth(host) };
  });
  // Outer boxes first, so inner ones are drawn over them.
  clusters.sort((a, b) => a.depth - b.depth || a.host.localeCompare(b.host));
  const placedEdges: PlacedEdge[] = edges.map((edge, i) => {
    const [v, w] = edge.kind === 'hosts' ? [edge.from, edge.to] : [edge.to, edge.from];
    const points = (g.edge({ v, w, name: `e${i}` })?.points ?? []).map((p: { x: number; y: number }) => ({ x: p.x, y: p.y }));
    return { ...edge, points };
  });
  const label = g.graph();
  return { nodes: placed, clusters, edges: placedEdges, width: label.width ?? 0, height: label.height ?? 0 };
}

/** An SVG path through the points: straight segments, smoothed at the bends. */
export function edgePath(points: { x: number; y: number }[]): string {
  if (points.length === 0) return '';
  const [first, ...rest] = points;
  if (rest.length === 0) return `M${first.x},${first.y}`;
  let d = `M${round(first.x)},${round(first.y)}`;
  for (let i = 0; i < rest.length - 1; i++) {
    const p = rest[i];
    const next = rest[i + 1];
    d += ` Q${round(p.x)},${round(p.y)} ${round((p.x + next.x) / 2)},${round((p.y + next.y) / 2)}`;
  }
  const last = rest[rest.length - 1];
  return d + ` L${round(last.x)},${round(last.y)}`;
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The scale of the first view: the whole drawing in `available` pixels of width, never
 * enlarged beyond its natural size.
 */
export function fitScale(layoutWidth: number, available: number): number {
  if (layoutWidth <= 0 || available <= 0) return 1;
  return Math.min(1, available / layoutWidth);
}
