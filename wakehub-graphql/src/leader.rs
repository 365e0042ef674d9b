//! On an instance that follows another on a shared PostgreSQL database, mutations are the
//! leader's work: they are forwarded to it as they came (with the caller's token, checked
//! again there), and its answer is returned. Queries are answered here, from the store.

use std::time::Duration;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wakehub_core::model::ErrorCode;
use wakehub_core::store::Store;

/// Marks a forwarded request: an instance that receives one does not forward it again
/// (two instances that each believe the other leads answer `NOT_LEADER` instead of looping).
pub(crate) const FORWARDED: &str = "x-wakehub-forwarded";

/// Whether a GraphQL request body (one request, or a batch) runs a mutation. A body that is
/// not one is not (it is answered here, with the parser's error).
pub(crate) fn is_mutation(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    let one = |r: &serde_json::Value| {
        let Some(query) = r.get("query").and_then(|q| q.as_str()) else { return false };
        let Ok(document) = async_graphql::parser::parse_query(query) else { return false };
        let name = r.get("operationName").and_then(|n| n.as_str());
        match (document.operations, name) {
            (DocumentOperations::Single(op), _) => op.node.ty == OperationType::Mutation,
            (DocumentOperations::Multiple(ops), Some(name)) => {
                ops.iter().any(|(n, op)| n.as_str() == name && op.node.ty == OperationType::Mutation)
            }
            (DocumentOperations::Multiple(_), None) => false,
        }
    };
    match &value {
        serde_json::Value::Array(batch) => batch.iter().any(one),
        request => one(request),
    }
}

fn refused(message: String) -> Response {
    let body = serde_json::json!({"data": null, "errors": [{"message": message,
                                  "extensions": {"code": ErrorCode::NotLeader.as_str()}}]});
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Sends the request to the instance leading the database and returns its answer; when no
/// instance leads (one takes over within the lease time) or it cannot be reached,
/// `NOT_LEADER` (503): the client tries again.
pub(crate) async fn forward(
    client: &reqwest::Client,
    store: &Store,
    headers: &HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Response {
    if headers.contains_key(FORWARDED) {
        return refused("this instance does not lead the database either: try again shortly".into());
    }
    let leader = match store.run(|s| s.leader()).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return refused(
                "no instance leads this database now (one takes over within the lease time): try again".into(),
            );
        }
        Err(e) => return refused(format!("cannot read which instance leads this database: {e}")),
    };
    let mut request = client.post(format!("{}/graphql", leader.url)).timeout(timeout).header(FORWARDED, "1").body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = headers.get(&name) {
            request = request.header(name, v);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let kind = answer.headers().get(header::CONTENT_TYPE).cloned();
            match answer.bytes().await {
                Ok(bytes) => {
                    let mut response = (status, bytes).into_response();
                    if let Some(kind) = kind {
                        response.headers_mut().insert(header::CONTENT_TYPE, kind);
                    }
                    response
                }
                Err(e) => {
                    refused(format!("the instance leading this database ({}) did not answer whole: {e}", leader.url))
                }
            }
        }
        Err(e) => refused(format!("cannot reach the instance leading this database ({}): {e}", leader.url)),
    }
}

#[cfg(test)]
mod tests {
    use super::is_mutation;

    #[test]
    fn mutations_are_told_from_queries() {
        assert!(is_mutation(br#"{"query":"mutation { startNode(node: \"a\") { id } }"}"#));
        assert!(is_mutation(br#"{"query":"mutation M { a } query Q { b }","operationName":"M"}"#));
        assert!(!is_mutation(br#"{"query":"mutation M { a } query Q { b }","operationName":"Q"}"#));
        assert!(!is_mutation(br#"{"query":"{ nodes { name } }"}"#));
        assert!(!is_mutation(br#"{"query":"subscription { events { id } }"}"#));
        assert!(is_mutation(br#"[{"query":"{ a }"},{"query":"mutation { b }"}]"#));
        assert!(!is_mutation(b"not json"));
        assert!(!is_mutation(br#"{"query":"mutation {"}"#));
    }
}
