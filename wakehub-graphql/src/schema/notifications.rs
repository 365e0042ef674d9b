//! Notifications (feature `notify` of the core): rules on events sent to ntfy, a signed
//! webhook or e-mail, and the journal of their deliveries. Admins of every node only: a rule
//! reaches outside the lab and holds a secret (never returned; `hasSecret` says whether one
//! is stored).

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use wakehub_core::engine::Engine;
use wakehub_core::model::{ErrorCode, Role};
use wakehub_core::notify::{Notifier, save_rule};
use wakehub_core::secrets::SecretString;
use wakehub_core::store::{Delivery, NotificationRule, NotifyEvent, SecretChange, SmtpSecurity, Target};

use super::access::caller;
use super::error::{ApiResultExt, api_error};
use super::shared::time;

/// An event a rule may notify.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "NotifyEvent")]
pub enum GqlNotifyEvent {
    /// A cascade failed (or was interrupted).
    CascadeFailed,
    /// A shutdown proposal waits for a decision.
    ProposalWaiting,
    /// A node seen up went off or into error with nothing of WakeHub's working on it.
    NodeDown,
    /// A maintenance run ended.
    MaintenanceReport,
    /// A machine has more updates than its last refresh said.
    UpdateAvailable,
}

const EVENTS: [(GqlNotifyEvent, NotifyEvent); 5] = [
    (GqlNotifyEvent::CascadeFailed, NotifyEvent::CascadeFailed),
    (GqlNotifyEvent::ProposalWaiting, NotifyEvent::ProposalWaiting),
    (GqlNotifyEvent::NodeDown, NotifyEvent::NodeDown),
    (GqlNotifyEvent::MaintenanceReport, NotifyEvent::MaintenanceReport),
    (GqlNotifyEvent::UpdateAvailable, NotifyEvent::UpdateAvailable),
];

fn gql_event(e: NotifyEvent) -> GqlNotifyEvent {
    EVENTS.iter().find(|(_, c)| *c == e).map_or(GqlNotifyEvent::CascadeFailed, |(g, _)| *g)
}

fn core_event(e: GqlNotifyEvent) -> NotifyEvent {
    EVENTS.iter().find(|(g, _)| *g == e).map_or(NotifyEvent::CascadeFailed, |(_, c)| *c)
}

/// Where a rule's notifications go.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TargetKind {
    /// An ntfy topic (`server`, `topic`; the secret is an access token).
    Ntfy,
    /// A webhook (`url`; the secret signs each body with HMAC-SHA256).
    Webhook,
    /// E-mail (`host`, `port`, `security`, `from`, `to`, `user`; the secret is the password).
    Smtp,
}

/// How an e-mail is carried.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "SmtpSecurity")]
pub enum GqlSmtpSecurity {
    /// Plain SMTP.
    None,
    /// STARTTLS (port 587).
    Starttls,
    /// TLS from the start (port 465).
    Tls,
}

/// A rule's target, its fields by kind.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(name = "NotificationTarget", input_name = "NotificationTargetInput")]
pub struct GqlTarget {
    /// What it is.
    pub kind: TargetKind,
    /// ntfy: the server (`https://ntfy.sh`).
    pub server: Option<String>,
    /// ntfy: the topic.
    pub topic: Option<String>,
    /// webhook: the URL.
    pub url: Option<String>,
    /// smtp: the server.
    pub host: Option<String>,
    /// smtp: its port.
    pub port: Option<i32>,
    /// smtp: how the connection is protected (default `STARTTLS`).
    pub security: Option<GqlSmtpSecurity>,
    /// smtp: the sender.
    pub from: Option<String>,
    /// smtp: the recipients.
    pub to: Option<Vec<String>>,
    /// smtp: who logs in.
    pub user: Option<String>,
}

impl From<&Target> for GqlTarget {
    fn from(t: &Target) -> Self {
        let mut g = GqlTarget {
            kind: TargetKind::Ntfy,
            server: None,
            topic: None,
            url: None,
            host: None,
            port: None,
            security: None,
            from: None,
            to: None,
            user: None,
        };
        match t {
            Target::Ntfy { server, topic } => (g.server, g.topic) = (Some(server.clone()), Some(topic.clone())),
            Target::Webhook { url } => (g.kind, g.url) = (TargetKind::Webhook, Some(url.clone())),
            Target::Smtp { host, port, security, from, to, user } => {
                g.kind = TargetKind::Smtp;
                g.host = Some(host.clone());
                g.port = Some(i32::from(*port));
                g.security = Some(match security {
                    SmtpSecurity::None => GqlSmtpSecurity::None,
                    SmtpSecurity::Starttls => GqlSmtpSecurity::Starttls,
                    SmtpSecurity::Tls => GqlSmtpSecurity::Tls,
                });
                g.from = Some(from.clone());
                g.to = Some(to.clone());
                g.user = user.clone();
            }
        }
        g
    }
}

impl GqlTarget {
    fn to_core(&self) -> async_graphql::Result<Target> {
        let need = |v: &Option<String>, what: &str| {
            v.clone().ok_or_else(|| api_error(ErrorCode::Validation, format!("target: `{what}` is required")))
        };
        Ok(match self.kind {
            TargetKind::Ntfy => {
                Target::Ntfy { server: need(&self.server, "server")?, topic: need(&self.topic, "topic")? }
            }
            TargetKind::Webhook => Target::Webhook { url: need(&self.url, "url")? },
            TargetKind::Smtp => Target::Smtp {
                host: need(&self.host, "host")?,
                port: u16::try_from(self.port.unwrap_or(587))
                    .map_err(|_| api_error(ErrorCode::Validation, "target: port: 1 to 65535"))?,
                security: match self.security.unwrap_or(GqlSmtpSecurity::Starttls) {
                    GqlSmtpSecurity::None => SmtpSecurity::None,
                    GqlSmtpSecurity::Starttls => SmtpSecurity::Starttls,
                    GqlSmtpSecurity::Tls => SmtpSecurity::Tls,
                },
                from: need(&self.from, "from")?,
                to: self.to.clone().unwrap_or_default(),
                user: self.user.clone(),
            },
        })
    }
}

/// A notification rule.
pub struct GqlRule(NotificationRule);

#[Object(name = "NotificationRule")]
impl GqlRule {
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The events it notifies.
    async fn events(&self) -> Vec<GqlNotifyEvent> {
        self.0.events.iter().map(|e| gql_event(*e)).collect()
    }
    /// Only about these nodes (with `tags`: either; neither: every node).
    async fn nodes(&self) -> &[String] {
        &self.0.nodes
    }
    /// Only about nodes carrying one of these tags.
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    /// Where it goes.
    async fn target(&self) -> GqlTarget {
        (&self.0.target).into()
    }
    /// Whether it notifies.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Whether a secret is stored for it (never returned).
    async fn has_secret(&self) -> bool {
        self.0.has_secret
    }
    /// Who wrote it last.
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// When (RFC 3339).
    async fn updated_at(&self) -> String {
        time(self.0.updated_at)
    }
}

/// A rule to save (replacing the rule of that name).
#[derive(InputObject)]
pub struct NotificationRuleInput {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The events it notifies (at least one).
    pub events: Vec<GqlNotifyEvent>,
    /// Only about these nodes.
    #[graphql(default)]
    pub nodes: Vec<String>,
    /// Only about nodes carrying one of these tags.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// Where it goes.
    pub target: GqlTarget,
    /// Whether it notifies.
    #[graphql(default = true)]
    pub enabled: bool,
    /// A new secret (stored sealed, never returned); null keeps the one stored.
    pub secret: Option<String>,
    /// Removes the stored secret.
    #[graphql(default)]
    pub clear_secret: bool,
}

/// One notification, delivered or to be.
pub struct GqlDelivery(Delivery);

#[Object(name = "NotificationDelivery")]
impl GqlDelivery {
    /// Its id.
    async fn id(&self) -> i64 {
        self.0.id
    }
    /// The rule that made it.
    async fn rule(&self) -> &str {
        &self.0.rule
    }
    /// `cascade-failed`, `node-down`…, or `test`.
    async fn event(&self) -> &str {
        &self.0.event
    }
    /// The node it is about.
    async fn node(&self) -> Option<&str> {
        self.0.node.as_deref()
    }
    /// Its title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Its text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// `pending`, `sent`, `failed`.
    async fn status(&self) -> &str {
        self.0.status.as_str()
    }
    /// Attempts made.
    async fn attempts(&self) -> i64 {
        self.0.attempts
    }
    /// When it is tried next, while pending (RFC 3339).
    async fn next_at(&self) -> Option<String> {
        (self.0.status == wakehub_core::store::DeliveryStatus::Pending).then(|| time(self.0.next_at))
    }
    /// The last attempt's error.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When it was made (RFC 3339).
    async fn created_at(&self) -> String {
        time(self.0.created_at)
    }
    /// When the target accepted it (RFC 3339).
    async fn sent_at(&self) -> Option<String> {
        self.0.sent_at.map(time)
    }
}

/// Refuses anyone but an admin of every node (`FORBIDDEN`).
fn require_full_admin(ctx: &Context<'_>) -> async_graphql::Result<()> {
    let c = caller(ctx);
    if c.role.allows(Role::Admin) && c.scope.is_all() {
        return Ok(());
    }
    Err(api_error(
        ErrorCode::Forbidden,
        format!("`{}` may not manage notifications: that needs the admin role with the `*` scope", c.name),
    ))
}

/// Part of [`Query`](super::Query): `notificationRules`, `notificationDeliveries`.
#[derive(Default)]
pub struct NotificationsQuery;

#[Object]
impl NotificationsQuery {
    /// The notification rules (admins of every node).
    async fn notification_rules(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlRule>> {
        require_full_admin(ctx)?;
        let rules = ctx.data::<Engine>()?.store().run(|s| s.notification_rules()).await.api()?;
        Ok(rules.into_iter().map(GqlRule).collect())
    }

    /// The latest deliveries, newest first: each with its attempts and outcome (admins of
    /// every node).
    async fn notification_deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<GqlDelivery>> {
        require_full_admin(ctx)?;
        let n = super::shared::page(ctx, first)?;
        let list = ctx.data::<Engine>()?.store().run(move |s| s.deliveries(n)).await.api()?;
        Ok(list.into_iter().map(GqlDelivery).collect())
    }
}

/// Part of [`Mutation`](super::Mutation): `saveNotificationRule`, `deleteNotificationRule`,
/// `testNotificationRule`.
#[derive(Default)]
pub struct NotificationsMutation;

#[Object]
impl NotificationsMutation {
    /// Saves a rule (`VALIDATION` with the reason when it cannot be).
    async fn save_notification_rule(
        &self,
        ctx: &Context<'_>,
        input: NotificationRuleInput,
    ) -> async_graphql::Result<GqlRule> {
        require_full_admin(ctx)?;
        let rule = NotificationRule::new(
            input.name,
            input.events.into_iter().map(core_event).collect(),
            input.target.to_core()?,
        )
        .about(input.nodes, input.tags)
        .enabled(input.enabled);
        let secret = match (input.secret, input.clear_secret) {
            (Some(_), true) => {
                return Err(api_error(ErrorCode::Validation, "give a secret or clear it, not both"));
            }
            (Some(s), false) => SecretChange::Set(SecretString::new(s)),
            (None, true) => SecretChange::Clear,
            (None, false) => SecretChange::Keep,
        };
        let engine = ctx.data::<Engine>()?;
        let actor = caller(ctx).name;
        let store = engine.store().clone();
        let saved = tokio::task::spawn_blocking(move || save_rule(&store, rule, secret, &actor))
            .await
            .map_err(|e| api_error(ErrorCode::Internal, e.to_string()))?
            .api()?;
        Ok(GqlRule(saved))
    }

    /// Deletes a rule (its deliveries stay in the journal); false if there was none.
    async fn delete_notification_rule(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<bool> {
        require_full_admin(ctx)?;
        ctx.data::<Engine>()?.store().run(move |s| s.delete_notification_rule(&name)).await.api()
    }

    /// Sends a test notification through a rule, delivered like the others (within a few
    /// seconds, retried on failure); its delivery's id.
    async fn test_notification_rule(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<i64> {
        require_full_admin(ctx)?;
        let engine = ctx.data::<Engine>()?.clone();
        Notifier::new(engine).test(&name).api()
    }
}
