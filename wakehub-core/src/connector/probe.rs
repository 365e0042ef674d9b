//! Readiness probes: a node that reports `on` is *up* only once its probe passes (a TCP
//! connection succeeds, or an HTTP GET answers the expected status).

use std::time::Duration;

use super::{ConnectorError, ErrorCode};
use crate::model::Readiness;

/// One attempt of the probe, bounded by `timeout`.
pub async fn probe_once(readiness: &Readiness, timeout: Duration) -> Result<(), ConnectorError> {
    match readiness {
        Readiness::Tcp { host, port } => {
            let addr = format!("{host}:{port}");
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(ConnectorError::new(ErrorCode::NotReady, format!("tcp {addr}: {e}"))),
                Err(_) => Err(ConnectorError::new(ErrorCode::NotReady, format!("tcp {addr}: no answer"))),
            }
        }
        Readiness::Http { url, status } => {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| ConnectorError::new(ErrorCode::NotReady, format!("http client: {e}")))?;
            match client.get(url).send().await {
                Ok(resp) if resp.status().as_u16() == *status => Ok(()),
                Ok(resp) => Err(ConnectorError::new(
                    ErrorCode::NotReady,
                    format!("GET {url} answered {} (expected {status})", resp.status().as_u16()),
                )),
                Err(e) => Err(ConnectorError::new(ErrorCode::NotReady, format!("GET {url}: {}", without_url(&e)))),
            }
        }
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "").replace(" ()", "");
    }
    s.trim().to_owned()
}

/// Exponential backoff for probing: 50 ms doubling to at most 1 s.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { next: Duration::from_millis(50) }
    }
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(1));
        d
    }
}
