//! TCP wakes (`tcp = [{ listen, to }]` in a node's proxy table): WakeHub listens on
//! `listen`; a connection counts as the node's activity, starts the node if it is not on and
//! is held while the cascade runs (no byte is lost: the client's first bytes wait in the
//! socket), then spliced to `to`. A failed start closes it. The listeners follow the
//! topology: [`TcpWakes::reconcile`] opens new ones and closes those no longer configured.

use std::collections::HashMap;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use wakehub_core::engine::Engine;
use wakehub_core::events::CascadeStatus;
use wakehub_core::model::{Action, NodeId, PowerState};

use super::forward::TOUCH_EVERY;

/// The TCP wake listeners open now, by `listen` address.
#[derive(Default)]
pub struct TcpWakes {
    open: HashMap<String, (NodeId, String, CancellationToken)>,
}

impl TcpWakes {
    /// Opens the listeners the topology asks for and closes the others; returns the problems
    /// (an address that cannot be bound is said, and tried again next time).
    pub async fn reconcile(&mut self, engine: &Engine) -> Vec<String> {
        let Ok(topology) = engine.store().topology_shared() else { return Vec::new() };
        let mut wanted: HashMap<String, (NodeId, String, String)> = HashMap::new();
        for n in topology.nodes() {
            for t in n.spec.proxy.iter().flat_map(|p| &p.tcp) {
                wanted.insert(t.listen.clone(), (n.id, n.spec.name.clone(), t.to.clone()));
            }
        }
        self.open.retain(|listen, (node, to, stop)| {
            let keep = wanted.get(listen).is_some_and(|(n, _, t)| n == node && t == to);
            if !keep {
                stop.cancel();
            }
            keep
        });
        let mut problems = Vec::new();
        for (listen, (node, name, to)) in wanted {
            if self.open.contains_key(&listen) {
                continue;
            }
            match TcpListener::bind(&listen).await {
                Ok(listener) => {
                    tracing::info!(node = %name, %listen, %to, "TCP wake listening");
                    let stop = CancellationToken::new();
                    tokio::spawn(serve(listener, engine.clone(), node, name, to.clone(), stop.clone()));
                    self.open.insert(listen, (node, to, stop));
                }
                Err(e) => problems.push(format!("TCP wake of `{name}` cannot listen on {listen}: {e}")),
            }
        }
        problems
    }

    /// Closes every listener.
    pub fn close(&mut self) {
        for (_, (_, _, stop)) in self.open.drain() {
            stop.cancel();
        }
    }
}

async fn serve(listener: TcpListener, engine: Engine, node: NodeId, name: String, to: String, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, _)) => {
                tokio::spawn(connection(client, engine.clone(), node, name.clone(), to.clone()));
            }
            Err(e) => {
                tracing::warn!(node = %name, "TCP wake: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One client: the node started if need be, then spliced to the service.
async fn connection(mut client: TcpStream, engine: Engine, node: NodeId, name: String, to: String) {
    engine.touch(node, "a connection through a TCP wake");
    if engine.seen(node) != Some(PowerState::On) {
        let cascade = match engine.request_by(node, Action::Start, "tcp-wake").await {
            Ok(record) => record.id,
            Err(wakehub_core::engine::EngineError::CascadeInProgress { cascade }) => cascade,
            Err(e) => return tracing::warn!(node = %name, "TCP wake: cannot start it: {e}"),
        };
        match engine.wait(cascade).await {
            Ok(record) if record.status == CascadeStatus::Completed => {}
            Ok(record) => {
                return tracing::warn!(node = %name, "TCP wake: the start ended {}", record.status.as_str());
            }
            Err(e) => return tracing::warn!(node = %name, "TCP wake: {e}"),
        }
    }
    let mut upstream = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&to)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::warn!(node = %name, "TCP wake: {to}: {e}"),
        Err(_) => return tracing::warn!(node = %name, "TCP wake: {to}: no answer"),
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let splice = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(splice);
    let mut every = tokio::time::interval(TOUCH_EVERY);
    loop {
        tokio::select! {
            _ = &mut splice => break,
            _ = every.tick() => engine.touch(node, "an open connection through a TCP wake"),
        }
    }
}
