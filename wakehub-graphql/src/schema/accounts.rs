//! Who uses the API: the `me` query (the caller itself), and for admins of every node the
//! users (people who log in) and API tokens (programs), created and revoked through the
//! API as the command line does.
//!
//! Managing accounts needs the admin role with the `*` scope: an admin limited to some
//! nodes could otherwise mint a token for every node.

use async_graphql::{Context, ID, Object, SimpleObject};
use wakehub_core::engine::Engine;
use wakehub_core::model::{ErrorCode, Role, Scope, validate_name};
use wakehub_core::store::{MIN_PASSWORD_CHARS, TokenRecord, UserRecord};

use super::access::caller;
use super::error::{ApiResultExt, api_error, field_error};
use super::shared::time;

/// The caller: a logged-in user, or an API token.
#[derive(SimpleObject)]
pub struct Me {
    /// The user's or the token's name.
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// The nodes it may see and act on: `*`, or `tag:media,jellyfin`.
    pub scope: String,
}

/// A person who logs in (`POST /login`).
#[derive(SimpleObject)]
pub struct User {
    /// Login name.
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// `*`, or `tag:media,jellyfin`.
    pub scope: String,
    /// Created at (RFC 3339).
    pub created_at: String,
}

impl From<UserRecord> for User {
    fn from(u: UserRecord) -> Self {
        User { name: u.name, role: u.role.to_string(), scope: u.scope.to_string(), created_at: time(u.created_at_ms) }
    }
}

/// An API token (its secret is shown once, when it is created, and never stored).
#[derive(SimpleObject)]
pub struct ApiToken {
    /// Its id.
    pub id: ID,
    /// Its name (journaled with what it does).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// `*`, or `tag:media,jellyfin`.
    pub scope: String,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// When it stops working, if ever.
    pub expires_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

impl From<TokenRecord> for ApiToken {
    fn from(t: TokenRecord) -> Self {
        ApiToken {
            id: ID(t.id.to_string()),
            name: t.name,
            role: t.role.to_string(),
            scope: t.scope.to_string(),
            created_at: time(t.created_at_ms),
            expires_at: t.expires_at_ms.map(time),
            revoked_at: t.revoked_at_ms.map(time),
        }
    }
}

/// A token just created, with its secret.
#[derive(SimpleObject)]
pub struct NewToken {
    /// The token.
    pub token: ApiToken,
    /// The secret to send as `Authorization: Bearer …`: shown this once only.
    pub secret: String,
}

/// Refuses anyone but an admin of every node (`FORBIDDEN`).
fn require_account_admin(ctx: &Context<'_>) -> async_graphql::Result<()> {
    let c = caller(ctx);
    if c.role.allows(Role::Admin) && c.scope.is_all() {
        Ok(())
    } else {
        Err(api_error(
            ErrorCode::Forbidden,
            format!("`{}` may not manage accounts: that needs the admin role with the `*` scope", c.name),
        ))
    }
}

fn role_and_scope(role: &str, scope: &str) -> async_graphql::Result<(Role, Scope)> {
    let invalid = |field: &str, e: String| field_error(ErrorCode::Validation, None, field, e);
    let role = role.parse::<Role>().map_err(|e| invalid("role", e))?;
    let scope = scope.parse::<Scope>().map_err(|e| invalid("scope", e))?;
    Ok((role, scope))
}

/// The server answering a request ([`AccountsQuery::instance`]).
#[derive(SimpleObject)]
pub struct Instance {
    /// Whether this server runs the work (cascades, actions, stack commands, schedules):
    /// always on a SQLite file; on a shared PostgreSQL database, while it holds the lease.
    leads: bool,
    /// Whether the database is shared by several servers (PostgreSQL).
    shared_database: bool,
    /// On a shared database, the address of the server leading it now, as it advertised
    /// (admins only; null when none leads).
    leader: Option<String>,
}

/// Part of [`Query`](super::Query): `me`, `instance`, `users`, `tokens`.
#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The caller: its name, role and scope.
    async fn me(&self, ctx: &Context<'_>) -> Me {
        let c = caller(ctx);
        Me { name: c.name, role: c.role.to_string(), scope: c.scope.to_string() }
    }

    /// The server answering: whether it leads its database (runs the work) or follows
    /// another instance on a shared PostgreSQL database.
    async fn instance(&self, ctx: &Context<'_>) -> async_graphql::Result<Instance> {
        let engine = ctx.data::<Engine>()?;
        let shared = engine.store().is_shared();
        // Where the leader answers is the operators' business: admins only.
        let leader = if shared && caller(ctx).role == Role::Admin {
            engine.store().run(|s| s.leader()).await.api()?.map(|l| l.url)
        } else {
            None
        };
        Ok(Instance { leads: engine.is_leader(), shared_database: shared, leader })
    }

    /// The users, oldest first (admins of every node only).
    async fn users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        require_account_admin(ctx)?;
        let users = ctx.data::<Engine>()?.store().run(|s| s.users()).await.api()?;
        Ok(users.into_iter().map(User::from).collect())
    }

    /// The API tokens, active and revoked, oldest first (admins of every node only).
    async fn tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiToken>> {
        require_account_admin(ctx)?;
        let tokens = ctx.data::<Engine>()?.store().run(|s| s.tokens()).await.api()?;
        Ok(tokens.into_iter().map(ApiToken::from).collect())
    }
}

/// Part of [`Mutation`](super::Mutation): `createUser`, `removeUser`, `createToken`,
/// `revokeToken`.
#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Creates a user who logs in with `password` (at least 10 characters); `scope` is `*`
    /// or `tag:media,jellyfin`.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        name: String,
        password: String,
        role: String,
        #[graphql(default = "*")] scope: String,
    ) -> async_graphql::Result<User> {
        require_account_admin(ctx)?;
        validate_name(&name)
            .map_err(|e| field_error(ErrorCode::Validation, None, "name", format!("user name: {e}")))?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            let message = format!("a password has at least {MIN_PASSWORD_CHARS} characters");
            return Err(field_error(ErrorCode::Validation, None, "password", message));
        }
        let (role, scope) = role_and_scope(&role, &scope)?;
        let engine = ctx.data::<Engine>()?;
        let user = engine.store().run(move |s| s.create_user(&name, &password, role, &scope)).await.api()?;
        tracing::info!(user = %user.name, by = %caller(ctx).name, "user created");
        Ok(user.into())
    }

    /// Removes a user and ends its sessions (not the caller's own). Returns its name.
    async fn remove_user(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<String> {
        require_account_admin(ctx)?;
        if caller(ctx).name == name {
            return Err(api_error(ErrorCode::Conflict, "you cannot remove yourself: ask another admin"));
        }
        let engine = ctx.data::<Engine>()?;
        let removed = name.clone();
        engine.store().run(move |s| s.remove_user(&removed)).await.api()?;
        tracing::info!(user = %name, by = %caller(ctx).name, "user removed");
        Ok(name)
    }

    /// Creates an API token; `expiresIn` is a duration (`"30days"`), none for ever. The
    /// secret is in the answer and nowhere else.
    async fn create_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        role: String,
        #[graphql(default = "*")] scope: String,
        expires_in: Option<String>,
    ) -> async_graphql::Result<NewToken> {
        require_account_admin(ctx)?;
        let (role, scope) = role_and_scope(&role, &scope)?;
        let expires_at = match expires_in {
            None => None,
            Some(d) => {
                let d = humantime::parse_duration(&d).map_err(|e| {
                    field_error(ErrorCode::Validation, None, "expiresIn", format!("`{d}` is not a duration ({e})"))
                })?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                Some(i64::try_from((now + d).as_millis()).unwrap_or(i64::MAX))
            }
        };
        let engine = ctx.data::<Engine>()?;
        let (token, secret) =
            engine.store().run(move |s| s.create_token(&name, role, &scope, expires_at)).await.api()?;
        tracing::info!(token = %token.name, by = %caller(ctx).name, "API token created");
        Ok(NewToken { token: token.into(), secret: secret.expose().to_owned() })
    }

    /// Revokes an active token (by id or name): its WebSockets are closed at the next check.
    async fn revoke_token(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiToken> {
        require_account_admin(ctx)?;
        let engine = ctx.data::<Engine>()?;
        let token = engine.store().run(move |s| s.revoke_token(&id)).await.api()?;
        tracing::info!(token = %token.name, by = %caller(ctx).name, "API token revoked");
        Ok(token.into())
    }
}
