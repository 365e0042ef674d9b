import { describe, expect, it } from 'vitest';
import { cascadeFor, displayStatus, formField, groupByTag, idleLine, idleSignals, nodeToInput, parseList, toConfigure } from './nodes';
import { parseRoute, cascadeHref } from './router';
import type { LabNode } from './types';

const jellyfin: LabNode = {
  id: 'node:9',
  name: 'lxc-jellyfin',
  kind: 'lxc',
  state: 'CONFIGURED',
  status: 'OFF',
  pinned: true,
  confirmAutoShutdown: false,
  stopWhenEmpty: false,
  startTimeout: '5m',
  stopTimeout: '2m',
  readiness: { kind: 'http', target: 'http://10.0.0.9:8096/health', status: 200 },
  offers: [],
  connector: { type: 'sim', settings: { initially: 'off', start_delay_ms: 800 } },
  tags: ['media'],
  parent: { id: 'node:7', name: 'machine2' },
  children: [],
  dependsOn: [{ id: 'node:11', name: 'nas' }],
  observedAt: '2026-01-01T00:00:00Z',
  stale: false,
  url: 'http://jellyfin.lab.home:8096',
  canPower: true,
  canEdit: true,
  isMachine: false,
  machine: null,
  idle: {
    after: '30m', tcpPorts: [], sshSessions: false, cpuPercent: 5, netKbps: null, reported: false, wattsAbove: null,
    probe: { url: 'http://10.0.0.9:8096/Sessions', pointer: null }, vetoUrl: null, vetoCommand: 'pgrep -x ffmpeg',
  },
  idleStatus: null,
  watts: { on: 12, off: 0, meter: null },
  wattsNow: null,
  proxy: { hosts: ['jellyfin.home.example'], path: '/', upstream: null, tcp: [] },
};

describe('groupByTag', () => {
  it('puts a node in each of its groups and the untagged under Other, last', () => {
    const groups = groupByTag([
      { name: 'plex', tags: ['media', 'video'] },
      { name: 'nas', tags: [] },
      { name: 'audiobooks', tags: ['media'] },
    ]);
    expect(groups.map((g) => [g.tag, g.nodes.map((n) => n.name)])).toEqual([
      ['media', ['audiobooks', 'plex']],
      ['video', ['plex']],
      ['Other', ['nas']],
    ]);
  });
});

describe('displayStatus', () => {
  it('never claims a state that was not observed', () => {
    expect(displayStatus({ status: 'UNKNOWN' })).toBe('unknown');
    expect(displayStatus({ status: 'ON', observedAt: null })).toBe('unknown');
    expect(displayStatus({ status: 'ON', observedAt: '2026-01-01T00:00:00Z', stale: true })).toBe('stale');
    expect(displayStatus({ status: 'ON', observedAt: '2026-01-01T00:00:00Z', stale: false })).toBe('on');
    expect(displayStatus({ status: 'STARTING' })).toBe('starting');
  });
});

describe('nodeToInput', () => {
  it('rebuilds the whole configuration so an update changes only what is asked', () => {
    expect({ ...nodeToInput(jellyfin), pinned: false }).toEqual({
      name: 'lxc-jellyfin',
      kind: 'lxc',
      parent: 'machine2',
      dependsOn: ['nas'],
      pinned: false,
      confirmAutoShutdown: false,
      stopWhenEmpty: false,
      startTimeout: '5m',
      stopTimeout: '2m',
      readiness: { http: 'http://10.0.0.9:8096/health', status: 200 },
      offers: [],
      tags: ['media'],
      connector: { type: 'sim', initially: 'off', start_delay_ms: 800 },
      url: 'http://jellyfin.lab.home:8096',
      // The operator's veto command goes back unchanged (the API refuses any other).
      idle: { after: '30m', cpuPercent: 5, probe: { url: 'http://10.0.0.9:8096/Sessions' }, vetoCommand: 'pgrep -x ffmpeg' },
      watts: { on: 12, off: 0 },
      proxy: { hosts: ['jellyfin.home.example'], path: '/', upstream: null, tcp: [] },
    });
    expect(nodeToInput({ ...jellyfin, idle: null }).idle).toBeNull();
    // A metered draw keeps its meter; a rule's power and reported signals go back too.
    const metered = nodeToInput({
      ...jellyfin,
      watts: { on: 0, off: 0, meter: 'media-plug' },
      idle: { ...jellyfin.idle!, reported: true, wattsAbove: 25 },
    });
    expect(metered.watts).toEqual({ on: 0, off: 0, meter: 'media-plug' });
    expect(metered.idle).toMatchObject({ reported: true, wattsAbove: 25 });
  });

  it('sends no url when the node has none (the server then clears it)', () => {
    expect(nodeToInput({ ...jellyfin, url: null }).url).toBeNull();
  });

  it('writes a tcp probe as tcp', () => {
    expect(nodeToInput({ ...jellyfin, readiness: { kind: 'tcp', target: 'nas:22', status: null } }).readiness).toEqual({ tcp: 'nas:22' });
  });
});

describe('small helpers', () => {
  it('parses comma lists', () => {
    expect(parseList(' media, lab ,, media')).toEqual(['media', 'lab']);
  });

  it('counts discovered guests', () => {
    expect(toConfigure({ children: [{ state: 'DISCOVERED' }, { state: 'CONFIGURED' }, { state: 'DISCOVERED' }] })).toBe(2);
  });
});

describe('parseRoute', () => {
  it('reads every route', () => {
    expect(parseRoute('')).toEqual({ name: 'dashboard' });
    expect(parseRoute('#/')).toEqual({ name: 'dashboard' });
    expect(parseRoute('#/lab')).toEqual({ name: 'lab' });
    expect(parseRoute('#/node/lxc-jellyfin')).toEqual({ name: 'node', node: 'lxc-jellyfin' });
    expect(parseRoute(cascadeHref('cascade:12'))).toEqual({ name: 'cascade', id: 'cascade:12' });
    expect(parseRoute('#/new-node')).toEqual({ name: 'new-node' });
    expect(parseRoute('#/login')).toEqual({ name: 'login' });
    expect(parseRoute('#/node/')).toEqual({ name: 'not-found', path: '/node/' });
    expect(parseRoute('#/nope')).toEqual({ name: 'not-found', path: '/nope' });
  });
});

describe('cascadeFor', () => {
  const step = (nodeName: string, status: string) => ({ index: 0, nodeName, action: 'START', role: 'REQUIRED', after: [], status, reason: null, errorCode: null, errorMessage: null, startedAt: null, completedAt: null });
  const cascade = (id: string, status: string, createdAt: string, steps: ReturnType<typeof step>[]) =>
    ({ id, nodeName: 'lxc-jellyfin', action: 'START', status, currentStep: 0, totalSteps: steps.length, failedStep: null, errorCode: null, errorMessage: null, rerunOf: null, createdAt, startedAt: null, completedAt: null, requestedBy: null, steps }) as unknown as import('./types').Cascade;

  it('shows a running cascade to every node it touches, else the latest failure', () => {
    const failedOld = cascade('cascade:1', 'FAILED', '2026-01-01T00:00:00Z', [step('nas', 'FAILED')]);
    const failedNew = cascade('cascade:2', 'FAILED', '2026-01-02T00:00:00Z', [step('nas', 'FAILED')]);
    const running = cascade('cascade:3', 'IN_PROGRESS', '2026-01-03T00:00:00Z', [step('nas', 'RUNNING'), step('lxc-jellyfin', 'PENDING')]);
    expect(cascadeFor({ a: failedOld, b: failedNew }, 'nas')?.id).toBe('cascade:2');
    expect(cascadeFor({ a: failedOld, c: running }, 'nas')?.id).toBe('cascade:3');
    expect(cascadeFor({ a: failedOld }, 'paperless')).toBeNull();
  });
});

describe('formField', () => {
  it('maps the server names of fields to the form', () => {
    expect(formField('name')).toBe('name');
    expect(formField('start_timeout')).toBe('startTimeout');
    expect(formField('depends_on')).toBe('dependsOn');
    expect(formField('readiness.tcp')).toBe('readiness');
    expect(formField('connector.proxmox_host')).toBe('connector');
    expect(formField('something_else')).toBeNull();
  });
});

describe('idle rules', () => {
  const status = { lastActivity: 'seen on', lastActivityAt: '2026-01-01T00:00:00Z', idleAt: '2026-01-01T00:30:00Z',
    secondsLeft: 0, kept: null, stopRequested: null, measuredAt: null, readings: [] };
  const at = (iso: string) => Date.parse(iso);

  it('counts down from the time it becomes idle, not from when the page loaded', () => {
    expect(idleLine(status, at('2026-01-01T00:00:00Z'))).toBe('Idle in 30 min');
    expect(idleLine(status, at('2026-01-01T00:29:30Z'))).toBe('Idle in 30 s');
    expect(idleLine({ ...status, idleAt: '2026-01-01T02:30:00Z' }, at('2026-01-01T00:00:00Z'))).toBe('Idle in 2 h 30 min');
    expect(idleLine(status, at('2026-01-01T00:31:00Z'))).toBe('Idle: stops at the next check');
  });

  it('says why an idle node is kept, and when its stop is under way', () => {
    const kept = { ...status, kept: 'schedule `evening` keeps `tv` on for 2h' };
    expect(idleLine(kept, at('2026-01-01T00:31:00Z'))).toBe('Idle, kept on: schedule `evening` keeps `tv` on for 2h');
    expect(idleLine({ ...status, stopRequested: 'cascade:4' }, at('2026-01-01T00:31:00Z'))).toBe('Idle: stopping');
  });

  it('names what a rule watches', () => {
    expect(idleSignals({ ...jellyfin.idle!, reported: true, wattsAbove: 25 })).toBe(
      'CPU > 5 %, power > 25 W, in use, as its connector reports, a probe, requests through the proxy',
    );
    expect(idleSignals(jellyfin.idle!)).toBe('CPU > 5 %, a probe, requests through the proxy');
  });
});
