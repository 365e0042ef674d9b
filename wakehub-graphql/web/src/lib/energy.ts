// The energy page's arithmetic: kWh for people, and the geometry of its bar chart.
import type { NodeEnergy } from './types';

/** `12.3 kWh`, `850 Wh` under one kWh. */
export function kwh(v: number): string {
  if (Math.abs(v) < 1) return `${Math.round(v * 1000)} Wh`;
  return `${v.toFixed(1)} kWh`;
}

export interface Bar {
  name: string;
  x: number;
  w: number;
  always: number;
  used: number;
  alwaysY: number;
  alwaysH: number;
  usedY: number;
  usedH: number;
}

/** Two bars per node (always on, used), scaled to the tallest, with room for the names. */
export function barChart(nodes: Pick<NodeEnergy, 'name' | 'usedKwh' | 'alwaysOnKwh'>[], height = 200): { width: number; height: number; bars: Bar[] } {
  const slot = 80;
  const w = 24;
  const top = 8;
  const bottom = 20;
  const max = Math.max(...nodes.map((n) => Math.max(n.alwaysOnKwh, n.usedKwh)), 1e-9);
  const scale = (v: number) => ((height - top - bottom) * Math.max(v, 0)) / max;
  const bars = nodes.map((n, i) => {
    const alwaysH = scale(n.alwaysOnKwh);
    const usedH = scale(n.usedKwh);
    return {
      name: n.name, x: i * slot + (slot - 2 * w) / 2, w, always: n.alwaysOnKwh, used: n.usedKwh,
      alwaysY: height - bottom - alwaysH, alwaysH, usedY: height - bottom - usedH, usedH,
    };
  });
  return { width: Math.max(nodes.length * slot, slot), height, bars };
}
