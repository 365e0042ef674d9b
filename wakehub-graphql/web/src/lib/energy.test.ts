import { describe, expect, it } from 'vitest';
import { barChart, kwh } from './energy';

describe('energy', () => {
  it('says kWh for people', () => {
    expect(kwh(12.345)).toBe('12.3 kWh');
    expect(kwh(0.85)).toBe('850 Wh');
  });

  it('scales the bars to the tallest, the saving visible as the gap', () => {
    const { bars, height } = barChart([
      { name: 'pve', alwaysOnKwh: 30, usedKwh: 12 },
      { name: 'nas', alwaysOnKwh: 15, usedKwh: 15 },
    ]);
    expect(bars[0].alwaysH).toBeCloseTo(height - 28);
    expect(bars[0].usedH).toBeCloseTo(((height - 28) * 12) / 30);
    expect(bars[1].usedH).toBeCloseTo(bars[1].alwaysH);
    expect(bars[0].alwaysY + bars[0].alwaysH).toBe(height - 20);
    expect(bars[1].x).toBeGreaterThan(bars[0].x);
  });
});
