// Pinning is a node update: `updateNode` replaces the whole configuration, so the node's
// current input goes back with only `pinned` flipped.
import type { Api } from './api';
import type { Features } from './features';
import { nodeToInput } from './nodes';
import { updateNodeMutation } from './queries';
import type { LabNode } from './types';

export async function setPinned(api: Api, features: Features, node: LabNode, pinned: boolean): Promise<LabNode> {
  const input = { ...nodeToInput(node, { withUrl: features.nodeFields.has('url') }), pinned };
  const data = await api.gql<{ updateNode: LabNode }>(updateNodeMutation(features), { id: node.id, input });
  return data.updateNode;
}
