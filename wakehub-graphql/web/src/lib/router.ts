// Hash routes: the server serves index.html at `/` only, so every view lives after `#`.

export type Route =
  | { name: 'dashboard' }
  | { name: 'lab' }
  | { name: 'node'; node: string }
  | { name: 'new-node' }
  | { name: 'cascade'; id: string }
  | { name: 'proposals' }
  | { name: 'discovery' }
  | { name: 'journal' }
  | { name: 'maintenance' }
  | { name: 'stacks' }
  | { name: 'schedules' }
  | { name: 'energy' }
  | { name: 'stack'; stack: string }
  | { name: 'admin' }
  | { name: 'login' }
  | { name: 'not-found'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  const [, first = '', ...rest] = path.split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : '';
  switch (first) {
    case '':
      return { name: 'dashboard' };
    case 'lab':
    case 'proposals':
    case 'discovery':
    case 'journal':
    case 'maintenance':
    case 'stacks':
    case 'schedules':
    case 'energy':
    case 'admin':
    case 'login':
      return rest.length ? { name: 'not-found', path } : { name: first };
    case 'new-node':
      return { name: 'new-node' };
    case 'node':
      return arg ? { name: 'node', node: arg } : { name: 'not-found', path };
    case 'cascade':
      return arg ? { name: 'cascade', id: arg } : { name: 'not-found', path };
    case 'stack':
      return arg ? { name: 'stack', stack: arg } : { name: 'not-found', path };
    default:
      return { name: 'not-found', path };
  }
}

export const nodeHref = (name: string) => `#/node/${encodeURIComponent(name)}`;
export const stackHref = (name: string) => `#/stack/${encodeURIComponent(name)}`;
// `cascade:12` stays readable in the address bar.
export const cascadeHref = (id: string) => `#/cascade/${encodeURIComponent(id).replace(/%3A/gi, ':')}`;
