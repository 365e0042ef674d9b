// What the server we talk to offers beyond the committed SDL. The API grows (`me`, a node's
// `observedAt`/`stale`/`url`/`canPower`/`canEdit`, journal filters, users and tokens) while
// older servers still run, so the dashboard asks the schema once after login and selects
// only fields that exist rather than failing every query on an unknown field.

export interface Features {
  me: boolean;
  /** Node fields beyond the SDL's first version that this server has. */
  nodeFields: Set<string>;
  /** `events(kinds:, since:, until:)`. */
  eventFilters: boolean;
  /** `users`, `tokens` and their mutations. */
  accounts: boolean;
  /** `events(newestFirst:, before:)`: the journal can be read newest first. */
  newestFirst: boolean;
  /** `pinNode(id, pinned)`: pinning without sending the whole configuration. */
  pinNode: boolean;
}

export const FEATURES_QUERY = `query Features {
  query: __type(name: "Query") { fields { name args { name } } }
  node: __type(name: "Node") { fields { name } }
  mutation: __type(name: "Mutation") { fields { name } }
}`;

interface IntrospectedType {
  fields: { name: string; args?: { name: string }[] }[] | null;
}

export const OPTIONAL_NODE_FIELDS = ['observedAt', 'stale', 'url', 'canPower', 'canEdit'] as const;

export function readFeatures(data: {
  query: IntrospectedType | null;
  node: IntrospectedType | null;
  mutation?: IntrospectedType | null;
}): Features {
  const queryFields = data.query?.fields ?? [];
  const has = (name: string) => queryFields.some((f) => f.name === name);
  const eventArgs = queryFields.find((f) => f.name === 'events')?.args?.map((a) => a.name) ?? [];
  const nodeFieldNames = new Set((data.node?.fields ?? []).map((f) => f.name));
  return {
    me: has('me'),
    nodeFields: new Set(OPTIONAL_NODE_FIELDS.filter((f) => nodeFieldNames.has(f))),
    eventFilters: eventArgs.includes('kinds'),
    accounts: has('users') && has('tokens'),
    newestFirst: eventArgs.includes('newestFirst') && eventArgs.includes('before'),
    pinNode: (data.mutation?.fields ?? []).some((f) => f.name === 'pinNode'),
  };
}

/** What an older server offers: only the committed SDL. */
export const BASELINE: Features = { me: false, nodeFields: new Set(), eventFilters: false, accounts: false, newestFirst: false, pinNode: false };
