import { describe, expect, it } from 'vitest';
import { canAdminister, canEditNode, canOperate, canPowerNode, navigation } from './access';

describe('roles', () => {
  it('orders viewer < operator < admin', () => {
    expect([canOperate('viewer'), canOperate('operator'), canOperate('admin')]).toEqual([false, true, true]);
    expect([canAdminister('viewer'), canAdminister('operator'), canAdminister('admin')]).toEqual([false, false, true]);
  });

  it('lets the server decide per node when it says', () => {
    // An operator whose scope leaves this node out.
    expect(canPowerNode('operator', { canPower: false })).toBe(false);
    expect(canPowerNode('viewer', { canPower: true })).toBe(true);
    expect(canEditNode('admin', { canEdit: false })).toBe(false);
  });

  it('falls back to the role on servers without per-node answers', () => {
    expect(canPowerNode('viewer', {})).toBe(false);
    expect(canPowerNode('operator', {})).toBe(true);
    expect(canEditNode('operator', {})).toBe(false);
    expect(canEditNode('admin', {})).toBe(true);
  });

  it('never offers power on a discovered node', () => {
    expect(canPowerNode('admin', { canPower: true, state: 'DISCOVERED' })).toBe(false);
  });

  it('shows the admin section to admins only', () => {
    expect(navigation('operator').some((i) => i.href === '#/admin')).toBe(false);
    expect(navigation('admin').some((i) => i.href === '#/admin')).toBe(true);
  });
});
