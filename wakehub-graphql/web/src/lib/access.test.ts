import { describe, expect, it } from 'vitest';
import { canAdminister, canOperate, canPowerNode, navigation, powerActions } from './access';

describe('roles', () => {
  it('orders viewer < operator < admin', () => {
    expect([canOperate('viewer'), canOperate('operator'), canOperate('admin')]).toEqual([false, true, true]);
    expect([canAdminister('viewer'), canAdminister('operator'), canAdminister('admin')]).toEqual([false, false, true]);
  });

  it('lets the server decide per node (it accounts for the scope)', () => {
    expect(canPowerNode({ canPower: false, state: 'CONFIGURED' })).toBe(false);
    expect(canPowerNode({ canPower: true, state: 'CONFIGURED' })).toBe(true);
  });

  it('never offers power on a discovered node', () => {
    expect(canPowerNode({ canPower: true, state: 'DISCOVERED' })).toBe(false);
  });

  it('offers Start and Stop as the observed state allows', () => {
    const node = (status: string, canPower = true) => ({ canPower, state: 'CONFIGURED', status });
    expect(powerActions(node('OFF'))).toEqual(['START']);
    expect(powerActions(node('ON'))).toEqual(['STOP']);
    expect(powerActions(node('STARTING'))).toEqual(['STOP']);
    expect(powerActions(node('STOPPING'))).toEqual(['START', 'STOP']);
    expect(powerActions(node('UNKNOWN'))).toEqual(['START', 'STOP']);
    expect(powerActions(node('OFF', false))).toEqual([]);
  });

  it('shows the admin section to admins only', () => {
    expect(navigation('operator').some((i) => i.href === '#/admin')).toBe(false);
    expect(navigation('admin').some((i) => i.href === '#/admin')).toBe(true);
  });
});
