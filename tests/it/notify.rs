//! Notifications delivered to real receivers: e-mail to a real SMTP server (aiosmtpd), a
//! webhook whose receiver checks the HMAC signature, ntfy's publish API (a stand-in following
//! it, with its access token). A failed cascade and a node down unexpectedly are notified to
//! the rules that want them (a stop by WakeHub is not "down unexpectedly"); a target down for
//! a while gets the notification on a later attempt, each attempt journaled; a target that
//! never answers does not hold a cascade back.

use std::time::Duration;

use wakehub_core::connector::sim::SimConnector;
use wakehub_core::connector::{PowerState, Registry, Target as NodeTarget};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::model::{Action, Origin};
use wakehub_core::notify::{BACKOFF, Notifier, save_rule};
use wakehub_core::secrets::{MasterKey, SecretString};
use wakehub_core::store::{DeliveryStatus, NotificationRule, NotifyEvent, SecretChange, SmtpSecurity, Store, Target};
use wakehub_tests::{Sinks, SmtpSink};

const LAB: &str = r#"
[[node]]
name = "nas"
kind = "physical"
tags = ["storage"]
[node.connector]
type = "sim"
initially = "on"

[[node]]
name = "tv"
kind = "physical"
tags = ["media"]
[node.connector]
type = "sim"
fail = "start"
"#;

fn lab() -> (Engine, SimConnector) {
    let store = Store::open_in_memory(MasterKey::generate()).unwrap();
    store.import(&crate::support::parse(LAB), Origin::Operator).unwrap();
    let sim = SimConnector::new();
    let mut registry = Registry::builtin();
    registry.register("sim", sim.clone());
    (Engine::new(store, registry, EngineConfig::default()).unwrap(), sim)
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_nodes_down_reach_mail_webhooks_and_ntfy() {
    let (sinks, smtp) = (Sinks::start("hook-secret", "tk_ntfy"), SmtpSink::start());
    let (e, sim) = lab();
    let store = e.store().clone();
    let secret = |s: &str| SecretChange::Set(SecretString::new(s));
    let mail = Target::Smtp {
        host: "127.0.0.1".into(),
        port: smtp.port,
        security: SmtpSecurity::None,
        from: "WakeHub <wakehub@lab.example>".into(),
        to: vec!["ada@lab.example".into()],
        user: None,
    };
    save_rule(&store, NotificationRule::new("mail", vec![NotifyEvent::CascadeFailed], mail), SecretChange::Keep, "ada")
        .unwrap();
    let hook = Target::Webhook { url: format!("{}/hook", sinks.url) };
    save_rule(&store, NotificationRule::new("hook", NotifyEvent::ALL.to_vec(), hook), secret("hook-secret"), "ada")
        .unwrap();
    // ntfy only hears about the storage nodes.
    let ntfy = Target::Ntfy { server: sinks.url.clone(), topic: "lab".into() };
    let rule = NotificationRule::new("phone", vec![NotifyEvent::NodeDown, NotifyEvent::CascadeFailed], ntfy)
        .about(vec![], vec!["storage".into()]);
    save_rule(&store, rule, secret("tk_ntfy"), "ada").unwrap();
    // A rule is checked: a webhook without a secret, a bad target, an unknown node.
    let bad = |r: NotificationRule, s: SecretChange| save_rule(&store, r, s, "ada").unwrap_err().to_string();
    let unsigned = NotificationRule::new("x", vec![NotifyEvent::NodeDown], Target::Webhook { url: sinks.url.clone() });
    assert!(bad(unsigned, SecretChange::Keep).contains("give it a secret"));
    let wrong =
        NotificationRule::new("x", vec![NotifyEvent::NodeDown], Target::Ntfy { server: "x".into(), topic: "t".into() });
    assert!(bad(wrong, SecretChange::Keep).contains("server:"));
    let ghost = NotificationRule::new(
        "x",
        vec![NotifyEvent::NodeDown],
        Target::Ntfy { server: sinks.url.clone(), topic: "t".into() },
    )
    .about(vec!["ghost".into()], vec![]);
    assert!(bad(ghost, SecretChange::Keep).contains("unknown node(s): ghost"));
    assert!(store.notification_rule("x").unwrap().is_none());
    // A rule as read says whether it has a secret, never which.
    let phone = store.notification_rule("phone").unwrap().unwrap();
    assert!(phone.has_secret && !format!("{phone:?}").contains("tk_ntfy"));
    assert_eq!(store.notification_secret("phone").unwrap().unwrap().expose(), "tk_ntfy");

    let notifier = Notifier::new(e.clone());
    let running = tokio::spawn(notifier.clone().run());
    // A failed cascade: to the mail and the webhook (tv is not storage: not to ntfy).
    let t = store.topology().unwrap();
    let tv = t.by_name("tv").unwrap().id;
    let failed = e.request(tv, Action::Start).await.unwrap();
    e.wait(failed.id).await.unwrap();
    let mail = until("the mail", || smtp.messages().into_iter().next()).await;
    assert!(mail.contains("Subject: [WakeHub] start of tv failed"), "{mail}");
    assert!(mail.contains("To: ada@lab.example"), "{mail}");
    let hooks = until("the webhook", || {
        let r: Vec<_> = sinks.received().into_iter().filter(|r| r["kind"] == "webhook").collect();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(hooks[0]["verified"], true, "the receiver checked the signature: {hooks:?}");
    assert_eq!(hooks[0]["json"]["event"], "cascade-failed");
    assert_eq!(hooks[0]["json"]["node"], "tv");

    // A stop by WakeHub is expected: nothing. The NAS found off behind WakeHub's back is not.
    let nas = t.by_name("nas").unwrap().id;
    let target = NodeTarget::of(&t, nas).unwrap();
    sim.set(&target, PowerState::Off).unwrap();
    e.observe(&t).await;
    let ntfy = until("ntfy", || sinks.received().into_iter().find(|r| r["kind"] == "ntfy")).await;
    assert_eq!((&ntfy["topic"], &ntfy["title"], &ntfy["priority"]), (&"lab".into(), &"nas is off".into(), &4.into()));
    assert!(ntfy["message"].as_str().unwrap().contains("while nothing of WakeHub's was taking it down"));
    let before = store.deliveries(100).unwrap().len();
    let started = e.request(nas, Action::Start).await.unwrap();
    e.wait(started.id).await.unwrap();
    let stopped = e.request(nas, Action::Stop).await.unwrap();
    e.wait(stopped.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = store.deliveries(100).unwrap();
    assert!(
        after[..after.len() - before].iter().all(|d| d.event != "node-down"),
        "a stop by WakeHub is no news: {after:?}"
    );

    // The webhook's receiver is down for a moment: the delivery is tried again, and arrives.
    sinks.fail_next(1);
    let id = notifier.test("hook").unwrap();
    let retried = until("a retry", || {
        let d = store.deliveries(100).unwrap().into_iter().find(|d| d.id == id)?;
        (d.attempts == 1 && d.status == DeliveryStatus::Pending).then_some(d)
    })
    .await;
    assert!(retried.last_error.as_deref().unwrap().contains("answered 503"), "{retried:?}");
    assert!(retried.next_at - retried.created_at >= BACKOFF[0].as_millis() as i64 - 1000);
    let sent = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let d = store.deliveries(100).unwrap().into_iter().find(|d| d.id == id).unwrap();
            if d.status == DeliveryStatus::Sent {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("delivered on its second attempt");
    assert_eq!(sent.attempts, 2);
    running.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_never_holds_a_cascade_back() {
    let (e, _) = lab();
    let store = e.store().clone();
    // A webhook on a port where nothing listens, and an SMTP server that accepts and never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mail = Target::Smtp {
        host: "127.0.0.1".into(),
        port: silent.local_addr().unwrap().port(),
        security: SmtpSecurity::None,
        from: "wakehub@lab.example".into(),
        to: vec!["ada@lab.example".into()],
        user: None,
    };
    save_rule(&store, NotificationRule::new("mail", NotifyEvent::ALL.to_vec(), mail), SecretChange::Keep, "ada")
        .unwrap();
    let dead = Target::Webhook { url: format!("http://127.0.0.1:{}/hook", wakehub_tests::free_port()) };
    let secret = SecretChange::Set(SecretString::new("s"));
    save_rule(&store, NotificationRule::new("dead", NotifyEvent::ALL.to_vec(), dead), secret, "ada").unwrap();
    let notifier = tokio::spawn(Notifier::new(e.clone()).run());
    let tv = store.topology().unwrap().by_name("tv").unwrap().id;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let c = e.request(tv, Action::Start).await.unwrap();
        e.wait(c.id).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
    let failed = until("the webhook's first failure", || {
        let d = store.deliveries(100).unwrap();
        d.iter().find(|d| d.rule == "dead" && d.attempts == 1).cloned()
    })
    .await;
    assert!(failed.last_error.as_deref().unwrap().contains("onnect"), "{failed:?}");
    notifier.abort();
}
