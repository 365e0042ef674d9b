//! Notification rules (which events, about which nodes, go where: ntfy, a signed webhook,
//! e-mail) with their secret sealed apart, and the deliveries — each one journaled with its
//! attempts, its last error and how it ended.

use super::db::OptionalExtension;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, db};
use crate::secrets::{Sealed, SecretString};

/// An event a rule may notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A cascade failed (or was interrupted).
    CascadeFailed,
    /// A shutdown proposal waits for a decision.
    ProposalWaiting,
    /// A node went off or into error outside any cascade.
    NodeDown,
    /// A maintenance run ended (its report).
    MaintenanceReport,
    /// A machine has more updates than it had.
    UpdateAvailable,
}

impl NotifyEvent {
    /// Every event, in a stable order.
    pub const ALL: [NotifyEvent; 5] = [
        NotifyEvent::CascadeFailed,
        NotifyEvent::ProposalWaiting,
        NotifyEvent::NodeDown,
        NotifyEvent::MaintenanceReport,
        NotifyEvent::UpdateAvailable,
    ];

    /// `cascade-failed`, `proposal-waiting`, `node-down`, `maintenance-report`,
    /// `update-available`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::CascadeFailed => "cascade-failed",
            NotifyEvent::ProposalWaiting => "proposal-waiting",
            NotifyEvent::NodeDown => "node-down",
            NotifyEvent::MaintenanceReport => "maintenance-report",
            NotifyEvent::UpdateAvailable => "update-available",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<NotifyEvent> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// How an e-mail is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the local network).
    None,
    /// SMTP upgraded with STARTTLS (port 587).
    Starttls,
    /// SMTP inside TLS from the start (port 465).
    Tls,
}

/// Where a rule's notifications go. Its secret (an ntfy access token, the webhook's HMAC
/// key, the SMTP password) is kept apart, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Target {
    /// An ntfy server's topic (`POST {server}/{topic}`; the secret is its access token).
    Ntfy {
        /// The server (`https://ntfy.sh`).
        server: String,
        /// The topic.
        topic: String,
    },
    /// A webhook: `POST` of a JSON document signed with HMAC-SHA256 of the secret
    /// (`X-WakeHub-Signature: sha256=…`).
    Webhook {
        /// The URL.
        url: String,
    },
    /// E-mail over SMTP (the secret is the password of `user`).
    Smtp {
        /// The server.
        host: String,
        /// Its port.
        port: u16,
        /// How the connection is protected.
        security: SmtpSecurity,
        /// The sender.
        from: String,
        /// The recipients.
        to: Vec<String>,
        /// Who logs in, if the server wants a login.
        user: Option<String>,
    },
}

impl Target {
    /// `ntfy`, `webhook`, `smtp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Ntfy { .. } => "ntfy",
            Target::Webhook { .. } => "webhook",
            Target::Smtp { .. } => "smtp",
        }
    }
}

/// A notification rule as stored (its secret is never in it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationRule {
    /// Its name (unique).
    pub name: String,
    /// The events it notifies.
    pub events: Vec<NotifyEvent>,
    /// Only about these nodes (with `tags`: either); none of both: every node.
    pub nodes: Vec<String>,
    /// Only about nodes carrying one of these tags.
    pub tags: Vec<String>,
    /// Where it goes.
    pub target: Target,
    /// Whether it notifies.
    pub enabled: bool,
    /// Whether a secret is stored for it.
    pub has_secret: bool,
    /// Who wrote it last.
    pub updated_by: String,
    /// When (ms since the epoch).
    pub updated_at: i64,
}

impl NotificationRule {
    /// An enabled rule sending `events` about every node to `target`.
    pub fn new(name: impl Into<String>, events: Vec<NotifyEvent>, target: Target) -> NotificationRule {
        NotificationRule {
            name: name.into(),
            events,
            nodes: Vec::new(),
            tags: Vec::new(),
            target,
            enabled: true,
            has_secret: false,
            updated_by: String::new(),
            updated_at: 0,
        }
    }

    /// The same rule, only about `nodes` and `tags`.
    pub fn about(mut self, nodes: Vec<String>, tags: Vec<String>) -> NotificationRule {
        self.nodes = nodes;
        self.tags = tags;
        self
    }

    /// The same rule, enabled or not.
    pub fn enabled(mut self, enabled: bool) -> NotificationRule {
        self.enabled = enabled;
        self
    }
}

/// How a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not sent yet (perhaps after failed attempts, to be tried again at `next_at`).
    Pending,
    /// Accepted by the target.
    Sent,
    /// Given up after its last attempt.
    Failed,
}

impl DeliveryStatus {
    /// `pending`, `sent`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// One notification to deliver, or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The rule that made it.
    pub rule: String,
    /// The journal event it tells of (none for a test).
    pub event_id: Option<i64>,
    /// `cascade-failed`…, or `test`.
    pub event: String,
    /// The node it is about.
    pub node: Option<String>,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// How it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i64,
    /// When it is tried next (pending) (ms since the epoch).
    pub next_at: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: i64,
    /// When the target accepted it.
    pub sent_at: Option<i64>,
}

fn secret_aad(name: &str) -> Vec<u8> {
    format!("notification:{name}").into_bytes()
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

const RULE_COLUMNS: &str = "name, events, nodes, tags, target, enabled, secret IS NOT NULL, updated_by, updated_at";

fn rule_row(r: &super::db::Row<'_>) -> super::db::Result<Result<NotificationRule, StoreError>> {
    let (name, events, nodes, tags, target): (String, String, String, String, String) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    let corrupt = |e: serde_json::Error| StoreError::Corrupt { message: format!("notification rule {name}: {e}") };
    let parsed = (|| {
        Ok::<_, serde_json::Error>((
            serde_json::from_str(&events)?,
            serde_json::from_str(&nodes)?,
            serde_json::from_str(&tags)?,
            serde_json::from_str(&target)?,
        ))
    })();
    Ok(match parsed {
        Ok((events, nodes, tags, target)) => Ok(NotificationRule {
            name: name.clone(),
            events,
            nodes,
            tags,
            target,
            enabled: r.get(5)?,
            has_secret: r.get(6)?,
            updated_by: r.get(7)?,
            updated_at: r.get(8)?,
        }),
        Err(e) => Err(corrupt(e)),
    })
}

const DELIVERY_COLUMNS: &str =
    "id, rule, event_id, event, node, title, body, status, attempts, next_at, last_error, created_at, sent_at";

fn delivery_row(r: &super::db::Row<'_>) -> super::db::Result<Delivery> {
    let status: String = r.get(7)?;
    Ok(Delivery {
        id: r.get(0)?,
        rule: r.get(1)?,
        event_id: r.get(2)?,
        event: r.get(3)?,
        node: r.get(4)?,
        title: r.get(5)?,
        body: r.get(6)?,
        status: match status.as_str() {
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        },
        attempts: r.get(8)?,
        next_at: r.get(9)?,
        last_error: r.get(10)?,
        created_at: r.get(11)?,
        sent_at: r.get(12)?,
    })
}

/// What to change of a rule's secret when it is saved.
#[derive(Debug, Clone)]
pub enum SecretChange {
    /// Keep the one stored (if any).
    Keep,
    /// Store this one.
    Set(SecretString),
    /// Remove it.
    Clear,
}

impl Store {
    /// Writes rule `r` (replacing one of the same name) and its secret as `change` says.
    pub fn save_notification_rule(
        &self,
        r: &NotificationRule,
        change: &SecretChange,
        actor: &str,
        now: i64,
    ) -> Result<NotificationRule, StoreError> {
        let sealed = match change {
            SecretChange::Set(s) => Some(self.inner.key.seal(s.expose().as_bytes(), &secret_aad(&r.name))),
            _ => None,
        };
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO notification_rules (name, events, nodes, tags, target, enabled, updated_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (name) DO UPDATE SET events = ?2, nodes = ?3, tags = ?4, target = ?5, enabled = ?6,
                     updated_by = ?7, updated_at = ?8",
                params![
                    r.name,
                    to_json(&r.events),
                    to_json(&r.nodes),
                    to_json(&r.tags),
                    to_json(&r.target),
                    r.enabled,
                    actor,
                    now
                ],
            )
            .map_err(db)?;
            match (change, &sealed) {
                (SecretChange::Set(_), Some(s)) => tx
                    .execute(
                        "UPDATE notification_rules SET secret_nonce = ?1, secret = ?2 WHERE name = ?3",
                        params![s.nonce, s.ciphertext, r.name],
                    )
                    .map_err(db)?,
                (SecretChange::Clear, _) => tx
                    .execute(
                        "UPDATE notification_rules SET secret_nonce = NULL, secret = NULL WHERE name = ?1",
                        [&r.name],
                    )
                    .map_err(db)?,
                _ => 0,
            };
            let saved = tx
                .query_row(
                    &format!("SELECT {RULE_COLUMNS} FROM notification_rules WHERE name = ?1"),
                    [&r.name],
                    rule_row,
                )
                .map_err(db)??;
            Ok(saved)
        })
    }

    /// Every rule, by name.
    pub fn notification_rules(&self) -> Result<Vec<NotificationRule>, StoreError> {
        self.transaction(|tx| {
            let mut stmt =
                tx.prepare(&format!("SELECT {RULE_COLUMNS} FROM notification_rules ORDER BY name")).map_err(db)?;
            let rows = stmt.query_map((), rule_row).map_err(db)?;
            rows.map(|r| r.map_err(db)?).collect()
        })
    }

    /// Rule `name`, if it exists.
    pub fn notification_rule(&self, name: &str) -> Result<Option<NotificationRule>, StoreError> {
        self.transaction(|tx| {
            tx.query_row(&format!("SELECT {RULE_COLUMNS} FROM notification_rules WHERE name = ?1"), [name], rule_row)
                .optional()
                .map_err(db)?
                .transpose()
        })
    }

    /// The secret of rule `name`, opened (for its delivery only).
    pub fn notification_secret(&self, name: &str) -> Result<Option<SecretString>, StoreError> {
        type SealedColumns = (Option<Vec<u8>>, Option<Vec<u8>>);
        let row: Option<SealedColumns> = self.transaction(|tx| {
            tx.query_row("SELECT secret_nonce, secret FROM notification_rules WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(db)
        })?;
        match row {
            Some((Some(nonce), Some(ciphertext))) => {
                let plain = self.inner.key.open(&Sealed { nonce, ciphertext }, &secret_aad(name))?;
                Ok(Some(SecretString::new(String::from_utf8_lossy(&plain).into_owned())))
            }
            _ => Ok(None),
        }
    }

    /// Deletes rule `name` (its deliveries stay in the journal); whether it existed.
    pub fn delete_notification_rule(&self, name: &str) -> Result<bool, StoreError> {
        self.transaction(|tx| Ok(tx.execute("DELETE FROM notification_rules WHERE name = ?1", [name]).map_err(db)? > 0))
    }

    /// Records a delivery to make, due now.
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue_delivery(
        &self,
        rule: &str,
        event_id: Option<i64>,
        event: &str,
        node: Option<&str>,
        title: &str,
        body: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO notification_deliveries (rule, event_id, event, node, title, body, status, attempts,
                     next_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7)",
                params![rule, event_id, event, node, title, body, now],
            )
            .map_err(db)?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Pending deliveries due at `now`, oldest first.
    pub fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries
                     WHERE status = 'pending' AND next_at <= ?1 ORDER BY next_at, id LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = stmt.query_map(params![now, limit as i64], delivery_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// When the next pending delivery is due, if any.
    pub fn next_delivery_at(&self) -> Result<Option<i64>, StoreError> {
        self.transaction(|tx| {
            tx.query_row("SELECT MIN(next_at) FROM notification_deliveries WHERE status = 'pending'", (), |r| r.get(0))
                .map_err(db)
        })
    }

    /// Records an attempt: sent, or failed with `error` — to be tried again at `retry_at`,
    /// or given up without it.
    pub fn delivery_attempted(
        &self,
        id: i64,
        outcome: Result<(), (&str, Option<i64>)>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| {
            match outcome {
                Ok(()) => tx.execute(
                    "UPDATE notification_deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?2,
                         last_error = NULL WHERE id = ?1",
                    params![id, now],
                ),
                Err((error, Some(retry_at))) => tx.execute(
                    "UPDATE notification_deliveries SET attempts = attempts + 1, last_error = ?2, next_at = ?3
                     WHERE id = ?1",
                    params![id, error, retry_at],
                ),
                Err((error, None)) => tx.execute(
                    "UPDATE notification_deliveries SET status = 'failed', attempts = attempts + 1, last_error = ?2
                     WHERE id = ?1",
                    params![id, error],
                ),
            }
            .map_err(db)?;
            Ok(())
        })
    }

    /// The latest `limit` deliveries, newest first.
    pub fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare(&format!("SELECT {DELIVERY_COLUMNS} FROM notification_deliveries ORDER BY id DESC LIMIT ?1"))
                .map_err(db)?;
            let rows = stmt.query_map([limit as i64], delivery_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// The last journal event the notifier has read (none: it starts from the present).
    pub fn notifier_position(&self) -> Result<Option<i64>, StoreError> {
        self.transaction(|tx| {
            tx.query_row("SELECT value FROM meta WHERE key = 'notifier_position'", (), |r| r.get::<_, String>(0))
                .optional()
                .map(|v| v.and_then(|v| v.parse().ok()))
                .map_err(db)
        })
    }

    /// Records that the notifier has read the journal up to event `id`.
    pub fn set_notifier_position(&self, id: i64) -> Result<(), StoreError> {
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('notifier_position', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                [id.to_string()],
            )
            .map_err(db)?;
            Ok(())
        })
    }
}
