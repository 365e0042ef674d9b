"""A third-party GraphQL client (Python `gql`) against a running `wakehub serve`.

Usage: client.py URL TOKEN VIEWER_TOKEN (an admin's, and a viewer's). Prints one JSON object with what it saw; the Rust test
(`tests/it/gql_client.rs`) asserts on it. Every step uses gql's own transports:
aiohttp for queries and mutations, websockets for subscriptions in both protocols.
"""

import asyncio
import json
import sys

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError, TransportServerError
from gql.transport.websockets import WebsocketsTransport

URL, TOKEN, VIEWER = sys.argv[1], sys.argv[2], sys.argv[3]
WS_URL = URL.replace("http://", "ws://", 1)
AUTH = {"Authorization": f"Bearer {TOKEN}"}

PROGRESS = """
subscription($c: ID!) {
  cascadeProgress(cascade: $c) {
    id kind
    payload {
      ... on CascadeProgress { step totalSteps current { name stepStatus } }
      ... on CascadeComplete { cascade }
    }
  }
}
"""


async def http(query, variables=None, headers=AUTH):
    transport = AIOHTTPTransport(url=URL, headers=headers)
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        return await session.execute(GraphQLRequest(query, variable_values=variables))


async def follow(protocol, cascade):
    transport = WebsocketsTransport(url=WS_URL, init_payload=AUTH, subprotocols=[protocol])
    seen = []
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        async for result in session.subscribe(GraphQLRequest(PROGRESS, variable_values={"c": cascade})):
            event = result["cascadeProgress"]
            payload = event["payload"]
            if event["kind"] == "cascade-progress":
                seen.append([payload["current"]["name"], payload["current"]["stepStatus"], payload["step"]])
            else:
                seen.append([event["kind"]])
    return seen


async def main():
    out = {}
    data = await http("{ nodes { name status } }")
    out["nodes"] = len(data["nodes"])

    started = await http('mutation { startNode(id: "lxc-jellyfin") { id status } }')
    out["start_status"] = started["startNode"]["status"]
    out["modern"] = await follow(WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, started["startNode"]["id"])

    stopped = await http('mutation { stopNode(id: "lxc-jellyfin") { id status } }')
    out["legacy"] = await follow(WebsocketsTransport.APOLLO_SUBPROTOCOL, stopped["stopNode"]["id"])

    try:
        await http("{ nodes { name } }", headers={})
        out["no_token"] = "accepted"
    except TransportServerError as e:
        out["no_token"] = e.code
    except TransportQueryError as e:
        # gql reads the 401's GraphQL error body: the code is what a client acts on.
        out["no_token"] = e.errors[0]["extensions"]["code"]
    try:
        await http('mutation { addDependency(from: "nas", to: "sandbox") { name } }')
        out["cycle"] = "accepted"
    except TransportQueryError as e:
        out["cycle"] = e.errors[0]["extensions"]["code"]
    # A viewer reads, and is refused power with a stable code.
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    data = await http("{ nodes { name } }", headers=viewer)
    out["viewer_nodes"] = len(data["nodes"])
    try:
        await http('mutation { startNode(id: "nas") { id } }', headers=viewer)
        out["viewer_start"] = "accepted"
    except TransportQueryError as e:
        out["viewer_start"] = e.errors[0]["extensions"]["code"]
    print(json.dumps(out))


asyncio.run(main())
