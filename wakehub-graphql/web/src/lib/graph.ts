// The lab as a layered drawing: hosts above what they host, dependencies drawn too. dagre
// places the boxes and routes the edges; the view only draws what this returns.
import { Graph, layout } from '@dagrejs/dagre';

export interface GraphInput {
  name: string;
  parent: string | null;
  dependsOn: string[];
}

export type EdgeKind = 'hosts' | 'depends';

export interface PlacedNode {
  name: string;
  /** Centre of the box. */
  x: number;
  y: number;
  width: number;
  height: number;
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
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export const BOX_WIDTH = 150;
export const BOX_HEIGHT = 52;

export function layoutLab(nodes: GraphInput[]): LabLayout {
  const names = new Set(nodes.map((n) => n.name));
  const g = new Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 56, edgesep: 12, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) g.setNode(node.name, { width: BOX_WIDTH, height: BOX_HEIGHT });

  const edges: Omit<PlacedEdge, 'points'>[] = [];
  for (const node of nodes) {
    if (node.parent && names.has(node.parent)) edges.push({ from: node.parent, to: node.name, kind: 'hosts' });
    for (const needed of node.dependsOn) if (names.has(needed)) edges.push({ from: node.name, to: needed, kind: 'depends' });
  }
  for (const [i, edge] of edges.entries()) {
    // Hosting sets the layers (host above guest). A dependency is drawn from what is needed
    // to its user, so a service sits below its NAS, and weighs less so hosting shapes the
    // picture.
    if (edge.kind === 'hosts') g.setEdge(edge.from, edge.to, { weight: 2, minlen: 1 }, `e${i}`);
    else g.setEdge(edge.to, edge.from, { weight: 1, minlen: 1 }, `e${i}`);
  }

  layout(g);

  const placed: PlacedNode[] = nodes.map((n) => {
    const box = g.node(n.name);
    return { name: n.name, x: box.x, y: box.y, width: box.width, height: box.height };
  });
  const placedEdges: PlacedEdge[] = edges.map((edge, i) => {
    const [v, w] = edge.kind === 'hosts' ? [edge.from, edge.to] : [edge.to, edge.from];
    const points = (g.edge({ v, w, name: `e${i}` })?.points ?? []).map((p: { x: number; y: number }) => ({ x: p.x, y: p.y }));
    return { ...edge, points };
  });
  const label = g.graph();
  return { nodes: placed, edges: placedEdges, width: label.width ?? 0, height: label.height ?? 0 };
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
