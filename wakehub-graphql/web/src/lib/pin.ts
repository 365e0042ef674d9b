// Pinning: `pinNode` where the server has it; otherwise a node update, and since
// `updateNode` replaces the whole configuration, the node's current input goes back with
// only `pinned` flipped.
import type { Api } from './api';
import type { Features } from './features';
import { nodeToInput } from './nodes';
import { pinNodeMutation, updateNodeMutation } from './queries';
import type { LabNode } from './types';

export async function setPinned(api: Api, features: Features, node: LabNode, pinned: boolean): Promise<LabNode> {
  if (features.pinNode) return (await api.gql<{ pinNode: LabNode }>(pinNodeMutation(features), { id: node.id, pinned })).pinNode;
  const input = { ...nodeToInput(node, { withUrl: features.nodeFields.has('url') }), pinned };
  const data = await api.gql<{ updateNode: LabNode }>(updateNodeMutation(features), { id: node.id, input });
  return data.updateNode;
}
