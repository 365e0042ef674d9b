//! On an instance that follows another on a shared PostgreSQL database, mutations are the
//! leader's work: a schema extension ([`Forward`]) sends each one — over HTTP or a
//! WebSocket alike — to the leader as it came (with the caller's token, checked again
//! there) and answers with the leader's response. Queries and subscriptions are answered
//! here, from the store and the journal.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{ErrorExtensionValues, Request, Response, ServerError, ServerResult, Value};
use wakehub_core::engine::Engine;
use wakehub_core::model::ErrorCode;

/// Marks a forwarded request: an instance that receives one does not forward it again
/// (two instances that each believe the other leads answer `NOT_LEADER` instead of looping).
pub(crate) const FORWARDED: &str = "x-wakehub-forwarded";

/// The caller's bearer token, as it authenticated (forwarded with its mutations).
#[derive(Clone)]
pub(crate) struct Bearer(pub String);

/// Whether this request arrived forwarded by another instance.
#[derive(Clone, Copy)]
pub(crate) struct Forwarded;

/// Whether `query` runs a mutation: its only operation, or the one `operation` names. A
/// query that does not parse does not (the parser's error is answered here).
pub(crate) fn runs_mutation(query: &str, operation: Option<&str>) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(query) else { return false };
    match (document.operations, operation) {
        (DocumentOperations::Single(op), _) => op.node.ty == OperationType::Mutation,
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.iter().any(|(n, op)| n.as_str() == name && op.node.ty == OperationType::Mutation)
        }
        // Named operations come as a map, even one alone: that one runs.
        (DocumentOperations::Multiple(ops), None) => {
            ops.len() == 1 && ops.values().all(|op| op.node.ty == OperationType::Mutation)
        }
    }
}

/// The schema extension that sends a follower's mutations to the leader.
pub(crate) struct Forward;

impl ExtensionFactory for Forward {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Forwarding::default())
    }
}

/// One request: what goes to the leader, if it does.
#[derive(Default)]
struct Forwarding {
    body: Mutex<Option<serde_json::Value>>,
}

#[async_trait::async_trait]
impl Extension for Forwarding {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let follows = ctx.data_opt::<Engine>().is_some_and(|e| !e.is_leader());
        if follows && runs_mutation(&request.query, request.operation_name.as_deref()) {
            let body = serde_json::json!({
                "query": request.query,
                "operationName": request.operation_name,
                "variables": request.variables,
            });
            *self.body.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let body = self.body.lock().unwrap_or_else(|e| e.into_inner()).take();
        match body {
            None => next.run(ctx, operation_name).await,
            Some(body) => forward(ctx, body).await,
        }
    }
}

fn refused(message: String) -> Response {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", ErrorCode::NotLeader.as_str());
    error.extensions = Some(extensions);
    Response::from_errors(vec![error])
}

/// Sends `body` to the instance leading the database and returns its answer; when no
/// instance leads (one takes over within the lease time) or it cannot be reached,
/// `NOT_LEADER`: the client tries again.
async fn forward(ctx: &ExtensionContext<'_>, body: serde_json::Value) -> Response {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if ctx.data_opt::<Forwarded>().is_some() {
        return refused("this instance does not lead the database either: try again shortly".into());
    }
    let (Some(engine), Some(Bearer(token))) = (ctx.data_opt::<Engine>(), ctx.data_opt::<Bearer>()) else {
        return refused("this instance follows another one and cannot forward this request".into());
    };
    let leader = match engine.store().run(|s| s.leader()).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return refused(
                "no instance leads this database now (one takes over within the lease time): try again".into(),
            );
        }
        Err(e) => return refused(format!("cannot read which instance leads this database: {e}")),
    };
    // The leader is reached directly, whatever proxy the environment names.
    let client = CLIENT.get_or_init(|| reqwest::Client::builder().no_proxy().build().unwrap_or_default());
    let sent = client
        .post(format!("{}/graphql", leader.url))
        .bearer_auth(token)
        .header(FORWARDED, "1")
        .json(&body)
        .send()
        .await;
    let answer: serde_json::Value = match sent {
        Ok(r) => match r.json().await {
            Ok(v) => v,
            Err(e) => {
                return refused(format!("the instance leading this database ({}) answered badly: {e}", leader.url));
            }
        },
        Err(e) => return refused(format!("cannot reach the instance leading this database ({}): {e}", leader.url)),
    };
    let data = answer.get("data").cloned().and_then(|d| Value::from_json(d).ok()).unwrap_or(Value::Null);
    let errors = answer.get("errors").and_then(|e| e.as_array()).cloned().unwrap_or_default();
    let mut response = Response::new(data);
    response.errors = errors
        .iter()
        .map(|e| {
            let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("the leader refused").to_owned();
            let mut error = ServerError::new(message, None);
            if let Some(map) = e.get("extensions").and_then(|x| x.as_object()) {
                let mut extensions = ErrorExtensionValues::default();
                for (k, v) in map {
                    if let Ok(v) = Value::from_json(v.clone()) {
                        extensions.set(k, v);
                    }
                }
                error.extensions = Some(extensions);
            }
            if let Some(path) = e.get("path").and_then(|p| serde_json::from_value(p.clone()).ok()) {
                error.path = path;
            }
            error
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::runs_mutation;

    #[test]
    fn mutations_are_told_from_queries() {
        assert!(runs_mutation(r#"mutation { startNode(node: "a") { id } }"#, None));
        assert!(runs_mutation("mutation M { a } query Q { b }", Some("M")));
        assert!(!runs_mutation("mutation M { a } query Q { b }", Some("Q")));
        assert!(!runs_mutation("{ nodes { name } }", None));
        assert!(!runs_mutation("subscription { events { id } }", None));
        assert!(!runs_mutation("mutation {", None));
        assert!(runs_mutation("mutation Start($id: ID!) { startNode(id: $id) { id } }", None));
        assert!(!runs_mutation("query Q { a }", None));
        assert!(!runs_mutation("mutation M { a } query Q { b }", None), "which one is not said: refused here");
    }
}
