//! The engine's side of the connector floor's delegate: [`NodeContext`] over the store
//! (secrets, learned host keys) and the journal (a connector's notices become events).

use crate::connector::{NodeContext, Notice};
use crate::events::EventKind;
use crate::model::{NodeId, SecretRef};
use crate::secrets::{SecretError, SecretString};
use crate::store::StoreError;

use super::Engine;

/// What a connector call driven by the engine sees as its context.
pub(super) struct EngineContext(pub(super) Engine);

impl NodeContext for EngineContext {
    fn secret(&self, owner: NodeId, key: &str, secret: &SecretRef) -> Result<SecretString, SecretError> {
        self.0.inner.store.resolve_secret(owner, key, secret).map_err(|e| match e {
            StoreError::Secret(e) => e,
            other => SecretError::Unavailable {
                reference: secret.to_reference().unwrap_or_else(|| "<inline>".into()),
                message: other.to_string(),
            },
        })
    }

    fn host_key(&self, node: NodeId, endpoint: &str) -> Option<String> {
        self.0.inner.store.host_key(node, endpoint)
    }

    fn remember_host_key(&self, node: NodeId, endpoint: &str, key: &str) -> Result<(), SecretError> {
        self.0.inner.store.remember_host_key(node, endpoint, key).map_err(|e| SecretError::Unavailable {
            reference: format!("host key of {endpoint}"),
            message: e.to_string(),
        })
    }

    #[cfg(feature = "docker")]
    fn stack(&self, node: NodeId) -> Result<Option<crate::connector::StackToApply>, String> {
        self.0.stack_to_apply(node).map_err(|e| e.to_string())
    }

    fn notify(&self, notice: Notice) {
        let event = match notice {
            Notice::CapabilityDenied { node, name, plugin, what } => {
                // A misconfigured node is probed again and again: its denial is journaled
                // once per change, and counted every time.
                if !self.0.denial_is_news(node, &what) {
                    return;
                }
                EventKind::CapabilityDenied { node, name, plugin, what }
            }
            #[cfg(feature = "docker")]
            Notice::StackApplied { node, version, images } => {
                self.0.stack_applied(node, version, &images);
                return;
            }
            #[cfg(feature = "docker")]
            Notice::StackLog { node, line } => {
                self.0.stack_connector_line(node, line);
                return;
            }
            #[cfg(not(feature = "docker"))]
            Notice::StackApplied { .. } | Notice::StackLog { .. } => return,
        };
        self.0.emit_detached(vec![event], "a connector's notice");
    }
}
