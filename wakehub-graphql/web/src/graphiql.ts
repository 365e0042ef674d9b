// The GraphiQL page, bundled here so it loads nothing from elsewhere: queries over POST
// /graphql and subscriptions over graphql-ws on the same origin, both with the dashboard's
// session token.
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { createClient } from 'graphql-ws';
import 'graphiql/graphiql.css';
import { socketUrl } from './lib/api';
import { readSession } from './lib/session';

const root = document.getElementById('graphiql')!;
const session = readSession(localStorage, Date.now());

if (!session) {
  root.innerHTML =
    '<div class="no-session"><h1>WakeHub GraphiQL</h1><p>You are not signed in. <a href="/#/login">Log in</a>, then come back to this page.</p></div>';
} else {
  const headers = { Authorization: `Bearer ${session.token}` };
  const fetcher = createGraphiQLFetcher({
    url: '/graphql',
    headers,
    wsClient: createClient({ url: socketUrl(location), connectionParams: { token: session.token }, lazy: true }),
  });
  createRoot(root).render(
    createElement(GraphiQL, {
      fetcher,
      defaultQuery: '# Signed in as ' + session.name + ' (' + session.role + ')\n{\n  nodes { name kind status }\n}\n',
    }),
  );
}
