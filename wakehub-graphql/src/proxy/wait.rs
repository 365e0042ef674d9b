//! While a node starts: the `503` answers (with `Retry-After`), the waiting page a browser
//! gets, and its live feed. The page follows exactly one cascade through a ticket — a random
//! name known only to whoever got the page — so the feed tells nothing of other cascades.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use wakehub_core::events::CascadeStatus;
use wakehub_core::model::{Action, CascadeId};
use wakehub_core::store::CascadeRecord;

use super::{Proxy, Route};

/// How long a waiting page's ticket lives.
const TICKET_TTL: Duration = Duration::from_secs(3600);

/// Tickets to cascades.
#[derive(Default)]
pub(super) struct Tickets(Mutex<HashMap<String, (CascadeId, Instant)>>);

impl Tickets {
    fn issue(&self, cascade: CascadeId) -> String {
        let ticket = wakehub_core::secrets::random_string(18);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < TICKET_TTL);
        map.insert(ticket.clone(), (cascade, Instant::now()));
        ticket
    }

    fn cascade(&self, ticket: &str) -> Option<CascadeId> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(ticket).filter(|(_, at)| at.elapsed() < TICKET_TTL).map(|(c, _)| *c)
    }
}

/// What the waiting page shows of a cascade: its steps and how it ended.
fn snapshot(record: &CascadeRecord, steps: &[wakehub_core::store::StepRecord]) -> serde_json::Value {
    serde_json::json!({
        "status": record.status.as_str(),
        "message": record.error_message,
        "steps": steps.iter().map(|s| serde_json::json!({
            "node": s.node_name,
            "action": s.action.as_str(),
            "status": s.status.as_str(),
        })).collect::<Vec<_>>(),
    })
}

/// The answer while `route`'s node starts by `cascade`: the waiting page for a browser,
/// else `503` with `Retry-After` (the plan's estimate) and a JSON body.
pub(super) async fn starting(proxy: &Proxy, route: &Route, cascade: CascadeId, html: bool) -> Response {
    let estimate = match proxy.engine.plan(route.node, Action::Start).await {
        Ok(plan) => plan.estimate.as_secs().clamp(1, 600),
        Err(_) => 5,
    };
    let retry = estimate.to_string();
    if !html {
        let body = serde_json::json!({
            "status": "starting", "node": route.name, "cascade": cascade.to_string(), "retryAfter": estimate,
        });
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry), (header::CACHE_CONTROL, "no-store".into())],
            axum::Json(body),
        )
            .into_response();
    }
    let ticket = proxy.tickets.issue(cascade);
    let page = PAGE.replace("{node}", &route.name).replace("{ticket}", &ticket).replace("{retry}", &retry);
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, retry),
            (header::CACHE_CONTROL, "no-store".into()),
            (header::CONTENT_TYPE, "text/html; charset=utf-8".into()),
        ],
        page,
    )
        .into_response()
}

/// The answer when the start failed (`502`, with its reason).
pub(super) fn failed(route: &Route, record: &CascadeRecord) -> Response {
    let why = record.error_message.as_deref().unwrap_or("see WakeHub's journal");
    super::plain(StatusCode::BAD_GATEWAY, format!("{} did not start ({}): {why}\n", route.name, record.status.as_str()))
}

/// `/.wakehub/wait/{ticket}`: server-sent events, each the cascade's snapshot, until it ends.
pub(super) async fn events(State(proxy): State<Arc<Proxy>>, Path(ticket): Path<String>) -> Response {
    let Some(cascade) = proxy.tickets.cascade(&ticket) else {
        return super::plain(StatusCode::NOT_FOUND, "no such waiting page (it expires after an hour)\n");
    };
    Sse::new(feed(proxy, cascade)).keep_alive(KeepAlive::default()).into_response()
}

fn feed(proxy: Arc<Proxy>, cascade: CascadeId) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    let engine = proxy.engine.clone();
    // Live events first, then the snapshot: nothing between them is missed (a snapshot
    // twice is harmless).
    let after = engine.store().last_event_id().ok().flatten();
    let live = engine.subscribe(after).filter_map(move |e| {
        let mine = e.as_ref().ok().and_then(|e| e.kind.cascade()) == Some(cascade);
        futures::future::ready(mine.then_some(()))
    });
    let ticks = futures::stream::once(futures::future::ready(())).chain(live);
    ticks
        .then(move |()| {
            let engine = engine.clone();
            async move {
                let record = engine.store().cascade(cascade).ok().flatten()?;
                let steps = engine.store().steps(cascade).unwrap_or_default();
                Some((record.status, snapshot(&record, &steps)))
            }
        })
        .filter_map(futures::future::ready)
        .scan(false, |over, (status, body)| {
            if *over {
                return futures::future::ready(None);
            }
            *over = !matches!(status, CascadeStatus::Pending | CascadeStatus::InProgress);
            futures::future::ready(Some(Ok(SseEvent::default().data(body.to_string()))))
        })
}

/// The waiting page: the cascade's steps as they go, then the page it stands for. Without
/// JavaScript it asks again every few seconds.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Starting {node}…</title>
<noscript><meta http-equiv="refresh" content="{retry}"></noscript>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f4f6f8; color: #1b1f24; }
  main { background: #fff; border: 1px solid #d5dbe1; border-radius: 12px; padding: 1.5rem 2rem; max-width: 32rem; width: calc(100% - 3rem); }
  h1 { font-size: 1.3rem; margin: 0 0 0.5rem; }
  progress { width: 100%; height: 0.6rem; }
  ol { padding-left: 1.2rem; }
  li[data-status="done"], li[data-status="skipped"], li[data-status="joined"] { color: #1a7f37; }
  li[data-status="running"] { font-weight: 600; }
  li[data-status="failed"] { color: #b42318; }
  .error { color: #b42318; }
  .muted { color: #57606a; font-size: 0.9rem; }
</style>
</head>
<body>
<main>
  <h1>Starting {node}…</h1>
  <p class="muted">WakeHub is waking what <strong>{node}</strong> needs. This page follows it and opens {node} once it is up.</p>
  <progress id="bar" max="1" value="0" aria-label="Progress"></progress>
  <ol id="steps" aria-live="polite"></ol>
  <p id="outcome" role="status"></p>
</main>
<script>
  const steps = document.getElementById('steps');
  const bar = document.getElementById('bar');
  const outcome = document.getElementById('outcome');
  const words = { pending: 'waiting', running: 'in progress', done: 'done', skipped: 'already done', joined: 'done', failed: 'failed', cancelled: 'cancelled', interrupted: 'interrupted' };
  const feed = new EventSource('/.wakehub/wait/{ticket}');
  feed.onmessage = (m) => {
    const c = JSON.parse(m.data);
    steps.replaceChildren(...c.steps.map((s) => {
      const li = document.createElement('li');
      li.dataset.status = s.status;
      li.textContent = `${s.action} ${s.node}: ${words[s.status] ?? s.status}`;
      return li;
    }));
    const finished = c.steps.filter((s) => ['done', 'skipped', 'joined'].includes(s.status)).length;
    bar.max = Math.max(c.steps.length, 1);
    bar.value = finished;
    if (c.status === 'completed') {
      outcome.textContent = 'Ready: opening it…';
      feed.close();
      setTimeout(() => location.reload(), 300);
    } else if (c.status !== 'pending' && c.status !== 'in_progress') {
      outcome.className = 'error';
      outcome.textContent = `It did not start (${c.status})${c.message ? ': ' + c.message : ''}. Reload to try again.`;
      feed.close();
    }
  };
  feed.onerror = () => { if (feed.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), {retry} * 1000); };
</script>
</body>
</html>
"#;
