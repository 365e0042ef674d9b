// What the dashboard offers the person signed in. The server decides (it refuses what a role
// or scope does not allow); the dashboard only hides what would be refused, so nobody is
// shown a button that cannot work. Per node the server says (`canPower`, `canEdit`, which
// account for the scope too); the role decides the sections.
import type { Role } from './types';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function isRole(value: string): value is Role {
  return value in RANK;
}

/** At least `needed`: admins can do what operators can, operators what viewers can. */
export function atLeast(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/** Start, stop, cancel, re-run, confirm and dismiss proposals. */
export const canOperate = (role: Role) => atLeast(role, 'operator');
/** Edit the lab: nodes, links, discovery, adoption, plugins, users, tokens. */
export const canAdminister = (role: Role) => atLeast(role, 'admin');

export function canPowerNode(node: { canPower: boolean; state: string }): boolean {
  // Discovered nodes are never started or stopped on request.
  return node.state !== 'DISCOVERED' && node.canPower;
}

/**
 * The power buttons a node offers: Start unless it is on or coming up, Stop unless it is
 * off (an unknown or failing node offers both), none without the right to power it.
 */
export function powerActions(node: { canPower: boolean; state: string; status: string }): ('START' | 'STOP')[] {
  if (!canPowerNode(node)) return [];
  const actions: ('START' | 'STOP')[] = [];
  if (node.status !== 'ON' && node.status !== 'STARTING') actions.push('START');
  if (node.status !== 'OFF') actions.push('STOP');
  return actions;
}

export interface NavItem {
  href: string;
  label: string;
}

/** The sections of the dashboard a role sees. */
export function navigation(role: Role): NavItem[] {
  const items: NavItem[] = [
    { href: '#/', label: 'Dashboard' },
    { href: '#/lab', label: 'Lab' },
    { href: '#/proposals', label: 'Proposals' },
    { href: '#/discovery', label: 'Discovery' },
    { href: '#/schedules', label: 'Schedules' },
    { href: '#/maintenance', label: 'Maintenance' },
    { href: '#/stacks', label: 'Stacks' },
    { href: '#/energy', label: 'Energy' },
    { href: '#/journal', label: 'Journal' },
  ];
  if (canAdminister(role)) items.push({ href: '#/admin', label: 'Admin' });
  return items;
}
