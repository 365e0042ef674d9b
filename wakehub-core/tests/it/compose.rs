//! The Compose subset: every accepted form read into its long form, the same meaning giving
//! the same digest, and every refusal naming its key (and its line when the key is unknown).

use std::time::Duration;

use wakehub_core::stack::{Condition, Restart, parse_compose, render};

const FULL: &str = r#"
name: media
version: "3.9"
x-common: &common
  restart: unless-stopped
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
      PGPORT: 5432
      DEBUG: true
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 2s
      timeout: 1s
      retries: 10
      start_period: 1m30s
    restart: always
  migrate:
    image: app:1.2
    command: ./migrate --all "with space"
    depends_on:
      db:
        condition: service_healthy
  web:
    image: app:1.2
    command: ["serve", "--port", "8080"]
    environment:
      - MODE=production
      - PRICE=$$5
    ports:
      - "8080:80"
      - "127.0.0.1:9443:443/tcp"
      - 53/udp
      - target: 9000
        published: "9001"
    volumes:
      - /srv/static:/static:ro
      - cache:/cache
      - type: tmpfs
        target: /tmp
    networks: [front, back]
    depends_on:
      migrate:
        condition: service_completed_successfully
      db:
        condition: service_healthy
    restart: on-failure:3
    labels:
      traefik.enable: "true"
    user: 1000
    stop_grace_period: 1m30s
    x-note: ignored
volumes:
  pgdata:
  cache:
    driver: local
networks:
  front:
  back:
    internal: true
"#;

#[test]
fn every_accepted_form_is_read_into_its_long_form() {
    let c = parse_compose(FULL).unwrap();
    assert_eq!(c.start_order(), ["db", "migrate", "web"]);
    let db = &c.services["db"];
    assert_eq!(db.environment["PGPORT"], "5432");
    assert_eq!(db.environment["DEBUG"], "true");
    let h = db.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, ["CMD", "pg_isready", "-U", "postgres"]);
    assert_eq!(
        (h.interval, h.timeout, h.retries, h.start_period),
        (Duration::from_secs(2), Duration::from_secs(1), 10, Duration::from_secs(90))
    );
    assert_eq!(db.restart, Restart::Always);
    assert_eq!(c.services["migrate"].command.as_deref().unwrap(), ["./migrate", "--all", "with space"]);
    let web = &c.services["web"];
    assert_eq!(web.environment["PRICE"], "$5", "`$$` is a literal `$`");
    let ports: Vec<String> = web
        .ports
        .iter()
        .map(|p| format!("{}:{:?}:{}/{}", p.host_ip.as_deref().unwrap_or("*"), p.published, p.target, p.protocol))
        .collect();
    assert_eq!(
        ports,
        ["*:None:53/udp", "*:Some(8080):80/tcp", "*:Some(9001):9000/tcp", "127.0.0.1:Some(9443):443/tcp"]
    );
    let mounts: Vec<(&str, Option<&str>, &str, bool)> =
        web.volumes.iter().map(|m| (m.kind.as_str(), m.source.as_deref(), m.target.as_str(), m.read_only)).collect();
    assert_eq!(
        mounts,
        [
            ("bind", Some("/srv/static"), "/static", true),
            ("volume", Some("cache"), "/cache", false),
            ("tmpfs", None, "/tmp", false)
        ]
    );
    assert_eq!(web.networks, ["front", "back"]);
    assert_eq!(web.depends_on["migrate"], Condition::ServiceCompletedSuccessfully);
    assert_eq!(web.restart, Restart::OnFailure(Some(3)));
    assert_eq!(web.user.as_deref(), Some("1000"));
    assert_eq!(web.stop_grace_period, Some(Duration::from_secs(90)));
    assert!(c.networks["back"].internal);
    assert_eq!(c.volumes["cache"].driver.as_deref(), Some("local"));
}

#[test]
fn the_same_meaning_gives_the_same_digest_and_a_change_another() {
    let a = parse_compose("services:\n  web:\n    image: nginx\n    environment: [A=1, B=2]\n    depends_on: [db]\n  db:\n    image: pg\n").unwrap();
    let b = parse_compose(
        "# reordered, long forms\nservices:\n  db: {image: pg}\n  web:\n    depends_on:\n      db: {condition: service_started}\n    environment: {B: '2', A: 1}\n    image: nginx\n",
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.digest().len(), 64);
    let c = parse_compose("services:\n  web:\n    image: nginx:1.27\n    environment: [A=1, B=2]\n    depends_on: [db]\n  db:\n    image: pg\n").unwrap();
    assert_ne!(a.digest(), c.digest());
}

/// `text` is refused with a message containing `needle`, at `line` if given.
fn refused(text: &str, needle: &str, line: Option<usize>) {
    let e = parse_compose(text).expect_err(needle);
    assert!(e.to_string().contains(needle), "{e} (expected `{needle}`)");
    if let Some(line) = line {
        assert_eq!(e.location.map(|(l, _)| l), Some(line), "{e}");
    }
}

#[test]
fn unknown_keys_are_refused_with_their_name_and_line() {
    refused(
        "services:\n  web:\n    image: nginx\n    build: .\n",
        "services.web: `build` is not supported (WakeHub does not build images",
        Some(4),
    );
    refused("services:\n  web:\n    image: nginx\n    privileged: true\n", "`privileged` is not supported", Some(4));
    refused(
        "services:\n  web:\n    image: nginx\nsecrets:\n  x: {}\n",
        "`secrets` is not supported at the top level",
        Some(4),
    );
    refused("services:\n  web:\n    image: nginx\n    env_file: .env\n", "never reads files of the server", Some(4));
    // Inside a nested table, the parser's own location.
    refused(
        "services:\n  web:\n    image: nginx\n    healthcheck:\n      test: [CMD, 'true']\n      intervall: 2s\n",
        "unknown field `intervall`",
        Some(6),
    );
    refused(
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        mode: host\n",
        "unknown field `mode`",
        Some(6),
    );
    refused(
        "services:\n  web:\n    image: nginx\n    depends_on:\n      db: {condition: service_ready}\n  db: {image: x}\n",
        "unknown variant `service_ready`",
        Some(5),
    );
}

#[test]
fn what_is_wrong_is_said_for_people() {
    refused("", "a compose file is a map with `services`", None);
    refused("services: {}\n", "`services` names no service", None);
    refused("services:\n  web:\n    command: x\n", "`image` is required", None);
    refused(
        "services:\n  web:\n    image: nginx\n    depends_on: [db]\n",
        "services.web.depends_on: there is no service `db`",
        None,
    );
    refused(
        "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
        "depends_on forms a cycle between a, b",
        None,
    );
    refused("services:\n  a: {image: x, depends_on: [a]}\n", "cannot depend on itself", None);
    refused("services:\n  a: {image: x, volumes: ['data:/data']}\n", "volume `data` is not declared", None);
    refused("services:\n  a: {image: x, networks: [front]}\n", "network `front` is not declared", None);
    refused(
        "services:\n  a: {image: x, volumes: ['./conf:/etc/conf']}\n",
        "must be an absolute path of the Docker host",
        None,
    );
    refused("services:\n  a: {image: x, volumes: ['/srv:data']}\n", "`data` is not an absolute path", None);
    refused("services:\n  a: {image: x, ports: ['80:80:80:80']}\n", "is not [HOST_IP:][PUBLISHED:]TARGET", None);
    refused("services:\n  a: {image: x, ports: ['99999:80']}\n", "is not [HOST_IP:][PUBLISHED:]TARGET", None);
    refused("services:\n  a: {image: x, ports: ['80/sctp']}\n", "protocol `sctp` is tcp or udp", None);
    refused(
        "services:\n  a: {image: x, restart: sometimes}\n",
        "`sometimes` is no, always, on-failure[:N] or unless-stopped",
        None,
    );
    refused("services:\n  a: {image: x, healthcheck: {test: [CMD]}}\n", "`test` is a command line", None);
    refused(
        "services:\n  a: {image: x, healthcheck: {test: 'true', interval: soon}}\n",
        "`soon` is not a duration",
        None,
    );
    refused("services:\n  a: {image: x, command: 'echo \"open'}\n", "has an unclosed quote", None);
    refused("services:\n  'bad name': {image: x}\n", "is not a service name", None);
    refused("services:\n  a: {image: x, environment: [A=1, A=2]}\n", "`A` is given twice", None);
}

#[test]
fn nothing_comes_from_the_server_environment() {
    refused(
        "services:\n  a: {image: x, environment: {HOME: $HOME}}\n",
        "services.a.environment.HOME: variable substitution",
        None,
    );
    refused("services:\n  a: {image: 'nginx:${TAG}'}\n", "services.a.image: variable substitution", None);
    refused("services:\n  a: {image: x, command: 'echo ${SECRET}'}\n", "variable substitution", None);
    // A lone `$` (not a name after it) is kept.
    let c = parse_compose("services:\n  a: {image: x, environment: {P: 'costs 5$'}}\n").unwrap();
    assert_eq!(c.services["a"].environment["P"], "costs 5$");
}

#[test]
fn a_huge_file_is_refused_before_it_is_read() {
    let big = format!("services:\n  a:\n    image: x\n    labels:\n{}", "      k: v\n".repeat(30_000));
    refused(&big, "at most 256 KiB", None);
}

#[test]
fn a_model_rendered_as_a_compose_file_reads_back_the_same() {
    let full = parse_compose(FULL).unwrap();
    let rendered = render(&full);
    assert_eq!(parse_compose(&rendered).unwrap(), full, "{rendered}");
    // One form: rendering what was read from the rendering changes nothing.
    assert_eq!(render(&parse_compose(&rendered).unwrap()), rendered);
    // `$` stays literal, a disabled check stays disabled, no restart is the default.
    let tricky =
        "services:\n  a:\n    image: busybox\n    command: echo $$HOME\n    healthcheck:\n      disable: true\n";
    let back = parse_compose(&render(&parse_compose(tricky).unwrap())).unwrap();
    assert_eq!(back.services["a"].command.as_deref(), Some(&["echo".to_owned(), "$HOME".to_owned()][..]));
    assert_eq!(back.services["a"].healthcheck.as_ref().unwrap().test, ["NONE"]);
}
