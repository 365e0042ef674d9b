//! Sending one notification: ntfy's publish API, a webhook signed with HMAC-SHA256, or an
//! e-mail over SMTP (lettre). Every send is bounded in time; an error says why, without the
//! secret.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::Sha256;

use crate::secrets::SecretString;
use crate::store::{Delivery, SmtpSecurity, Target};

/// The longest one attempt may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// `sha256=` and the hex HMAC-SHA256 of `timestamp.body` keyed with `secret`: what a
/// webhook's receiver recomputes to trust it (`X-WakeHub-Signature`, the timestamp in
/// `X-WakeHub-Timestamp`, both signed so an old body cannot be replayed as new).
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Checks a target's values.
pub fn validate_target(target: &Target) -> Result<(), String> {
    match target {
        Target::Ntfy { server, topic } => {
            crate::model::validate_url(server).map_err(|e| format!("server: {e}"))?;
            if topic.is_empty()
                || topic.len() > 64
                || !topic.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                return Err(format!("topic: `{topic}` is not an ntfy topic (letters, digits, - and _, at most 64)"));
            }
        }
        Target::Webhook { url } => crate::model::validate_url(url).map_err(|e| format!("url: {e}"))?,
        Target::Smtp { host, port, from, to, user, .. } => {
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return Err(format!("host: `{host}` is not a host name"));
            }
            if *port == 0 {
                return Err("port: 1 to 65535".into());
            }
            from.parse::<Mailbox>().map_err(|e| format!("from: `{from}`: {e}"))?;
            if to.is_empty() || to.len() > 20 {
                return Err("to: 1 to 20 addresses".into());
            }
            for a in to {
                a.parse::<Mailbox>().map_err(|e| format!("to: `{a}`: {e}"))?;
            }
            if user.as_ref().is_some_and(|u| u.is_empty()) {
                return Err("user: empty".into());
            }
        }
    }
    Ok(())
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// Sends `d` to `target`.
pub(super) async fn deliver(target: &Target, secret: Option<&SecretString>, d: &Delivery) -> Result<(), String> {
    match target {
        Target::Ntfy { server, topic } => {
            let url = format!("{}/{topic}", server.trim_end_matches('/'));
            let mut req = client()?
                .post(&url)
                .header("Title", &d.title)
                .header(
                    "Tags",
                    if d.event == "test" { "white_check_mark".to_owned() } else { format!("wakehub,{}", d.event) },
                )
                .header(
                    "Priority",
                    if matches!(d.event.as_str(), "cascade-failed" | "node-down") { "high" } else { "default" },
                )
                .body(d.body.clone());
            if let Some(token) = secret {
                req = req.bearer_auth(token.expose());
            }
            let r = req.send().await.map_err(|e| crate::connector::transport::cause_chain(&e))?;
            if !r.status().is_success() {
                return Err(format!("{url} answered {}", r.status().as_u16()));
            }
            Ok(())
        }
        Target::Webhook { url } => {
            let secret = secret.ok_or("the webhook has no secret to sign with")?;
            let body = serde_json::json!({
                "id": d.id, "event": d.event, "rule": d.rule, "node": d.node, "title": d.title, "body": d.body,
                "journalEvent": d.event_id, "at": d.created_at,
            })
            .to_string();
            let timestamp = crate::store::now_ms().to_string();
            let r = client()?
                .post(url)
                .header("content-type", "application/json")
                .header("X-WakeHub-Timestamp", &timestamp)
                .header("X-WakeHub-Signature", signature(secret.expose(), &timestamp, body.as_bytes()))
                .body(body)
                .send()
                .await
                .map_err(|e| crate::connector::transport::cause_chain(&e))?;
            if !r.status().is_success() {
                return Err(format!("{url} answered {}", r.status().as_u16()));
            }
            Ok(())
        }
        Target::Smtp { host, port, security, from, to, user } => {
            let mut message = Message::builder()
                .from(from.parse().map_err(|e| format!("from: {e}"))?)
                .subject(format!("[WakeHub] {}", d.title))
                .header(ContentType::TEXT_PLAIN);
            for a in to {
                message = message.to(a.parse().map_err(|e| format!("to: {e}"))?);
            }
            let message = message.body(d.body.clone()).map_err(|e| e.to_string())?;
            let tls = || TlsParameters::new(host.clone()).map_err(|e| e.to_string());
            let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(*port)
                .timeout(Some(SEND_TIMEOUT))
                .tls(match security {
                    SmtpSecurity::None => Tls::None,
                    SmtpSecurity::Starttls => Tls::Required(tls()?),
                    SmtpSecurity::Tls => Tls::Wrapper(tls()?),
                });
            if let (Some(user), Some(password)) = (user, secret) {
                transport = transport.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
            }
            transport.build().send(message).await.map(|_| ()).map_err(|e| format!("SMTP {host}:{port}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // As Python's hmac.new(b"k", b"1.body", hashlib.sha256) computes it.
        let a = signature("k", "1", b"body");
        assert_eq!(a, "sha256=6e005234e2e9b8d2d4963e861925cbc22f29be0a65e4d9ba7cd6b8af0115dae2");
        assert_eq!(a, signature("k", "1", b"body"));
        assert_ne!(a, signature("k", "2", b"body"));
        assert_ne!(a, signature("other", "1", b"body"));
    }

    #[test]
    fn targets_are_checked() {
        assert!(
            validate_target(&Target::Ntfy { server: "https://ntfy.sh".into(), topic: "lab-alerts".into() }).is_ok()
        );
        assert!(validate_target(&Target::Ntfy { server: "ntfy.sh".into(), topic: "a".into() }).is_err());
        assert!(validate_target(&Target::Ntfy { server: "https://ntfy.sh".into(), topic: "a/b".into() }).is_err());
        let smtp = |to: &str| Target::Smtp {
            host: "mail.lan".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            from: "WakeHub <wakehub@lab.example>".into(),
            to: vec![to.into()],
            user: None,
        };
        assert!(validate_target(&smtp("ada@lab.example")).is_ok());
        assert!(validate_target(&smtp("not an address")).unwrap_err().starts_with("to:"));
    }
}
