//! Errors at the GraphQL edge: every error carries a stable `extensions.code` and a human
//! message; internal details are logged, never returned.
//!
//! | code | meaning |
//! | --- | --- |
//! | `NOT_FOUND` | no such node, cascade, proposal or link |
//! | `VALIDATION` | the input breaks a rule (hosting, names, connector keys…); `extensions.fields` lists each problem |
//! | `CYCLE` | the link would close a cycle; the message names it |
//! | `CONFLICT` | the change conflicts with what exists or with a cascade in flight |
//! | `CASCADE_IN_PROGRESS` | a cascade on this node is still running |
//! | `UNAUTHENTICATED` | no valid API token |
//! | `FORBIDDEN` | the caller's role or scope does not allow it |
//! | `RATE_LIMITED` | too many messages on one WebSocket |
//! | `SHUTTING_DOWN` | the server is stopping |
//! | `NOT_LEADER` | this server follows another on a shared database and runs no work (see `crate::leader`) |
//! | `SECRET_UNAVAILABLE` | a referenced secret cannot be read |
//! | `INTERNAL` | a server fault (details in the server log only) |

use async_graphql::ErrorExtensions;
use wakehub_core::engine::EngineError;
use wakehub_core::model::{ErrorCode, ModelError};
use wakehub_core::store::StoreError;
use wakehub_core::topology_file::ParseError;

/// Builds an error with a stable code.
pub fn api_error(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

fn internal(e: &dyn std::fmt::Display) -> async_graphql::Error {
    tracing::error!("internal error: {e}");
    api_error(ErrorCode::Internal, "internal error (see the server log)")
}

/// Converts a core error; `INTERNAL` ones are logged and replaced by a generic message.
pub trait IntoApi {
    /// The GraphQL error.
    fn into_api(self) -> async_graphql::Error;
}

impl IntoApi for ModelError {
    fn into_api(self) -> async_graphql::Error {
        match self.field() {
            Some(field) => field_error(self.code(), self.node(), field, self.to_string()),
            None => api_error(self.code(), self.to_string()),
        }
    }
}

/// An error about one field of the input (`extensions.fields` holds it, as for a topology
/// file's problems), so a form can show it beside that field.
pub fn field_error(
    code: ErrorCode,
    node: Option<&str>,
    field: &str,
    message: impl Into<String>,
) -> async_graphql::Error {
    let message = message.into();
    let mut m = async_graphql::indexmap::IndexMap::new();
    m.insert(async_graphql::Name::new("node"), node.map_or(async_graphql::Value::Null, Into::into));
    m.insert(async_graphql::Name::new("field"), field.into());
    m.insert(async_graphql::Name::new("message"), message.clone().into());
    let fields = async_graphql::Value::List(vec![async_graphql::Value::Object(m)]);
    async_graphql::Error::new(message).extend_with(move |_, ext| {
        ext.set("code", code.as_str());
        ext.set("fields", fields.clone());
    })
}

impl IntoApi for ParseError {
    fn into_api(self) -> async_graphql::Error {
        let summary = self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        let code =
            self.errors.iter().map(|e| e.code).find(|c| *c != ErrorCode::Validation).unwrap_or(ErrorCode::Validation);
        let fields: Vec<async_graphql::Value> = self
            .errors
            .iter()
            .map(|e| {
                let mut m = async_graphql::indexmap::IndexMap::new();
                m.insert(
                    async_graphql::Name::new("node"),
                    e.node.clone().map_or(async_graphql::Value::Null, Into::into),
                );
                m.insert(
                    async_graphql::Name::new("field"),
                    e.field.clone().map_or(async_graphql::Value::Null, Into::into),
                );
                m.insert(async_graphql::Name::new("message"), e.message.clone().into());
                async_graphql::Value::Object(m)
            })
            .collect();
        async_graphql::Error::new(summary).extend_with(move |_, ext| {
            ext.set("code", code.as_str());
            ext.set("fields", async_graphql::Value::List(fields.clone()));
        })
    }
}

impl IntoApi for StoreError {
    fn into_api(self) -> async_graphql::Error {
        match self {
            StoreError::Model(e) => e.into_api(),
            e => match e.code() {
                ErrorCode::Internal | ErrorCode::Secret | ErrorCode::StoreTooNew => internal(&e),
                code => api_error(code, e.to_string()),
            },
        }
    }
}

impl IntoApi for EngineError {
    fn into_api(self) -> async_graphql::Error {
        match self {
            EngineError::Store(e) => e.into_api(),
            e => api_error(e.code(), e.to_string()),
        }
    }
}

/// `?` for core errors in resolvers.
pub trait ApiResultExt<T> {
    /// Maps the error through [`IntoApi`].
    fn api(self) -> async_graphql::Result<T>;
}

impl<T, E: IntoApi> ApiResultExt<T> for Result<T, E> {
    fn api(self) -> async_graphql::Result<T> {
        self.map_err(IntoApi::into_api)
    }
}
