//! On an instance that follows another on a shared PostgreSQL database, mutations are the
//! leader's work: the server's executor ([`Api`]) sends each one — over HTTP or a
//! WebSocket alike — to the leader as it came (with the caller's token, checked again
//! there) and answers with the leader's response. Queries and subscriptions are answered
//! here, from the store and the journal.

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Data, ErrorExtensionValues, Executor, Request, Response, ServerError, Value};
use futures::StreamExt;
use futures::stream::BoxStream;
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

/// The schema as the server executes it: on an instance that follows another, a mutation
/// goes to the leader (HTTP and WebSocket alike); everything else is executed here. (Not a
/// schema extension: with one registered, async-graphql calls it around every field
/// resolved, which made a 1,000-node listing several times slower.)
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) schema: crate::schema::WakehubSchema,
    engine: Engine,
}

impl Api {
    pub(crate) fn new(schema: crate::schema::WakehubSchema, engine: Engine) -> Api {
        Api { schema, engine }
    }

    /// The body to send to the leader when this instance follows and `request` runs a mutation.
    fn to_forward(&self, request: &Request) -> Option<serde_json::Value> {
        if self.engine.is_leader() || !runs_mutation(&request.query, request.operation_name.as_deref()) {
            return None;
        }
        Some(serde_json::json!({
            "query": request.query,
            "operationName": request.operation_name,
            "variables": request.variables,
        }))
    }
}

/// `T` from the request's data, else from the connection's (a WebSocket's `connection_init`).
fn datum<T: Clone + Send + Sync + 'static>(request: &Request, session: Option<&Data>) -> Option<T> {
    let id = std::any::TypeId::of::<T>();
    let get = |d: &Data| d.get(&id).and_then(|v| v.downcast_ref::<T>()).cloned();
    get(&request.data).or_else(|| session.and_then(get))
}

impl Executor for Api {
    async fn execute(&self, request: Request) -> Response {
        match self.to_forward(&request) {
            None => self.schema.execute(request).await,
            Some(body) => {
                let (bearer, again) = (datum::<Bearer>(&request, None), datum::<Forwarded>(&request, None).is_some());
                forward(&self.engine, bearer, again, body).await
            }
        }
    }

    fn execute_stream(&self, request: Request, session: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        match self.to_forward(&request) {
            None => self.schema.execute_stream_with_session_data(request, session.unwrap_or_default()).boxed(),
            Some(body) => {
                let bearer = datum::<Bearer>(&request, session.as_deref());
                let again = datum::<Forwarded>(&request, session.as_deref()).is_some();
                let engine = self.engine.clone();
                futures::stream::once(async move { forward(&engine, bearer, again, body).await }).boxed()
            }
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
async fn forward(engine: &Engine, bearer: Option<Bearer>, again: bool, body: serde_json::Value) -> Response {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if again {
        return refused("this instance does not lead the database either: try again shortly".into());
    }
    let Some(Bearer(token)) = bearer else {
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
    // Bounded like a request to this server (30 s), over a WebSocket too.
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(30)).build().unwrap_or_default()
    });
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
