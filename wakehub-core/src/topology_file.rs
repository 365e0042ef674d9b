//! The declarative topology file (TOML): parsing with every error at once, and export back
//! to the same format.
//!
//! The file's shape is owned here, not by the model: the model types derive nothing, and
//! this module converts both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use toml::Value;

pub use crate::model::NodeDraft;
use crate::model::{
    Capability, ConfigValue, ConnectorConfig, ErrorCode, Kind, ModelError, NodeId, NodeSpec, NodeState, Origin,
    PluginKinds, Readiness, SecretRef, Topology, is_secret_key,
};

/// What the parser needs to know beyond the file.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Node kinds declared by loaded plugins, with their default timeouts.
    pub plugin_kinds: PluginKinds,
    /// Who wrote it: the operator (whose file may use `env:`/`file:` secret references) or a
    /// client of the API (the default, which may not).
    pub origin: Origin,
    /// The connectors' own check of each node's table, run by the parser so that a file's
    /// problems — its structure and its connector keys — are all reported at once.
    pub connector_check: Option<ConnectorCheck>,
}

/// A check of one connector table (the connector registry's, with the loaded plugins'):
/// each problem with the key it is about, if one. The parser reports them as the field
/// `connector.KEY` (or `connector`).
#[derive(Clone)]
pub struct ConnectorCheck(pub std::sync::Arc<CheckFn>);

/// What a [`ConnectorCheck`] runs: a table's problems, each with its key if it has one.
pub type CheckFn = dyn Fn(&ConnectorConfig) -> Vec<(Option<String>, String)> + Send + Sync;

impl fmt::Debug for ConnectorCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectorCheck(..)")
    }
}

impl ParseOptions {
    /// The options for the operator's own file (`serve --config`, the command line).
    pub fn operator() -> Self {
        ParseOptions { plugin_kinds: PluginKinds::default(), origin: Origin::Operator, connector_check: None }
    }

    /// The same options with these plugin kinds.
    pub fn with_plugin_kinds(mut self, kinds: PluginKinds) -> Self {
        self.plugin_kinds = kinds;
        self
    }

    /// The same options, checking each connector table with `check`.
    pub fn with_connector_check(
        mut self,
        check: impl Fn(&ConnectorConfig) -> Vec<(Option<String>, String)> + Send + Sync + 'static,
    ) -> Self {
        self.connector_check = Some(ConnectorCheck(std::sync::Arc::new(check)));
        self
    }
}

/// One problem in a topology file: which node, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldError {
    /// The node's name (or `node #N` when it has none); `None` for file-level problems.
    pub node: Option<String>,
    /// The field (`parent`, `connector.type`…); `None` when the whole entry is wrong.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The model's code when the model refused it (`CYCLE`…), else `VALIDATION`.
    pub code: ErrorCode,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.node, &self.field) {
            (Some(n), Some(field)) => write!(f, "node `{n}`, field `{field}`: {}", self.message),
            (Some(n), None) => write!(f, "node `{n}`: {}", self.message),
            (None, Some(field)) => write!(f, "field `{field}`: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// Every problem found in a topology file. Nothing is applied when there is any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the topology file:\n{}", errors.len(), errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
#[non_exhaustive]
pub struct ParseError {
    /// The problems, in file order.
    pub errors: Vec<FieldError>,
}

/// Why a topology cannot be written out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A secret is still inline (plaintext); store the topology first so it is encrypted.
    #[error("node `{node}`: `connector.{key}` is a plaintext secret; it is never exported")]
    PlaintextSecret {
        /// The node.
        node: String,
        /// The connector key.
        key: String,
    },
}

const NODE_FIELDS: [&str; 17] = [
    "name",
    "kind",
    "parent",
    "depends_on",
    "pinned",
    "confirm_auto_shutdown",
    "stop_when_empty",
    "start_timeout",
    "stop_timeout",
    "readiness",
    "offers",
    "tags",
    "url",
    "idle",
    "proxy",
    "watts",
    "connector",
];

struct Entry {
    label: String,
    spec: NodeSpec,
    parent: Option<String>,
    depends_on: Vec<String>,
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, node: &str, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            node: Some(node.to_owned()),
            field: (!field.is_empty()).then(|| field.to_owned()),
            message: message.into(),
            code: ErrorCode::Validation,
        });
    }
    fn model(&mut self, node: &str, field: &str, err: &ModelError) {
        self.0.push(FieldError {
            node: Some(node.to_owned()),
            field: Some(field.to_owned()),
            message: err.to_string(),
            code: err.code(),
        });
    }
}

/// Parses and validates a topology file. All-or-nothing: any problem returns every problem
/// found, with the node and field it concerns.
pub fn parse(text: &str, options: &ParseOptions) -> Result<Topology, ParseError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ParseError {
        errors: vec![FieldError {
            node: None,
            field: None,
            message: format!("not valid TOML: {}", e.to_string().trim_end()),
            code: ErrorCode::Validation,
        }],
    })?;
    let mut errors = Errors(Vec::new());
    let mut entries = Vec::new();
    // Every name the file declares, also of entries with errors: a link to one of those is
    // not reported again as "unknown".
    let mut named = BTreeSet::new();
    for (key, value) in &table {
        if key != "node" {
            errors.0.push(FieldError {
                node: None,
                field: Some(key.clone()),
                message: "unknown top-level key (expected `[[node]]` entries)".into(),
                code: ErrorCode::Validation,
            });
            continue;
        }
        let Some(items) = value.as_array() else {
            errors.0.push(FieldError {
                node: None,
                field: Some("node".into()),
                message: "`node` must be an array of tables (`[[node]]`)".into(),
                code: ErrorCode::Validation,
            });
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(name) = item.get("name").and_then(Value::as_str) {
                named.insert(name.to_owned());
            }
            if let Some(entry) = parse_entry(i + 1, item, options, &mut errors) {
                entries.push(entry);
            }
        }
    }
    let topology = build(entries, &named, &mut errors);
    if errors.0.is_empty() { Ok(topology) } else { Err(ParseError { errors: errors.0 }) }
}

fn parse_entry(index: usize, item: &Value, options: &ParseOptions, errors: &mut Errors) -> Option<Entry> {
    let Some(t) = item.as_table() else {
        errors.push(&format!("node #{index}"), "", "each `[[node]]` entry must be a table");
        return None;
    };
    let name = t.get("name").and_then(Value::as_str);
    let label = name.map_or_else(|| format!("node #{index}"), str::to_owned);
    let before = errors.0.len();
    let name = match t.get("name") {
        None => {
            errors.push(&label, "name", "missing (every node needs a unique name)");
            String::new()
        }
        Some(Value::String(s)) => {
            if let Err(reason) = crate::model::validate_name(s) {
                errors.push(&label, "name", reason);
            }
            s.clone()
        }
        Some(_) => {
            errors.push(&label, "name", "must be a string");
            String::new()
        }
    };
    for key in t.keys() {
        if !NODE_FIELDS.contains(&key.as_str()) {
            errors.push(&label, key, format!("unknown field (expected one of: {})", NODE_FIELDS.join(", ")));
        }
    }
    let kind = match t.get("kind") {
        None => {
            errors.push(&label, "kind", "missing (physical, vm, lxc, container, stack, or a plugin kind)");
            None
        }
        Some(Value::String(s)) => {
            let kind = Kind::parse(s, &options.plugin_kinds);
            if kind.is_none() {
                let mut known = vec!["physical", "vm", "lxc", "container", "stack"];
                known.extend(options.plugin_kinds.names());
                errors.push(&label, "kind", format!("unknown kind `{s}` (expected one of: {})", known.join(", ")));
            }
            kind
        }
        Some(_) => {
            errors.push(&label, "kind", "must be a string");
            None
        }
    };
    let parent = opt_string(t, "parent", &label, errors);
    let depends_on = match t.get("depends_on") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| {
                let s = v.as_str();
                if s.is_none() {
                    errors.push(&label, "depends_on", "must be a list of node names");
                }
                s.map(str::to_owned)
            })
            .collect(),
        Some(_) => {
            errors.push(&label, "depends_on", "must be a list of node names");
            Vec::new()
        }
    };
    let pinned = opt_bool(t, "pinned", &label, errors);
    let confirm = opt_bool(t, "confirm_auto_shutdown", &label, errors);
    let stop_when_empty = opt_bool(t, "stop_when_empty", &label, errors);
    let url = opt_string(t, "url", &label, errors).filter(|u| match crate::model::validate_url(u) {
        Ok(()) => true,
        Err(e) => {
            errors.push(&label, "url", e);
            false
        }
    });
    let idle = t.get("idle").and_then(|v| match crate::model::IdleRule::from_value(v) {
        Ok(rule) => Some(rule),
        Err(e) => {
            errors.push(&label, "idle", e);
            None
        }
    });
    let proxy = t.get("proxy").and_then(|v| match crate::model::ProxyRoute::from_value(v) {
        Ok(route) if !route.hosts.is_empty() && route.upstream.is_none() && url.is_none() => {
            errors.push(&label, "proxy", "give `upstream` (or the node's `url`): where its requests go");
            None
        }
        Ok(route) => Some(route),
        Err(e) => {
            errors.push(&label, "proxy", e);
            None
        }
    });
    let power = t.get("watts").and_then(|v| match crate::model::PowerDraw::from_value(v) {
        Ok(draw) => Some(draw),
        Err(e) => {
            errors.push(&label, "watts", e);
            None
        }
    });
    let start_timeout = opt_duration(t, "start_timeout", &label, errors);
    let stop_timeout = opt_duration(t, "stop_timeout", &label, errors);
    let readiness = t.get("readiness").and_then(|v| parse_readiness(v, &label, errors));
    let mut offers = BTreeSet::new();
    match t.get("offers") {
        None => {}
        Some(Value::Array(items)) => {
            for v in items {
                match v.as_str().map(str::parse::<Capability>) {
                    Some(Ok(c)) => {
                        offers.insert(c);
                    }
                    _ => errors.push(&label, "offers", format!("unknown capability {v} (expected proxmox, docker)")),
                }
            }
        }
        Some(_) => errors.push(&label, "offers", "must be a list such as [\"proxmox\", \"docker\"]"),
    }
    let mut tags = BTreeSet::new();
    match t.get("tags") {
        None => {}
        Some(Value::Array(items)) => {
            for v in items {
                match v.as_str() {
                    Some(tag) => match crate::model::validate_tag(tag) {
                        Ok(()) => {
                            tags.insert(tag.to_owned());
                        }
                        Err(e) => errors.push(&label, "tags", e),
                    },
                    None => errors.push(&label, "tags", format!("{v} is not a tag (a string)")),
                }
            }
        }
        Some(_) => errors.push(&label, "tags", "must be a list such as [\"media\", \"lab\"]"),
    }
    let connector = match t.get("connector") {
        None => {
            errors.push(&label, "connector", "missing (a `[node.connector]` table with a `type`)");
            None
        }
        Some(Value::Table(c)) => parse_connector(c, &label, options.origin, errors),
        Some(_) => {
            errors.push(&label, "connector", "must be a table");
            None
        }
    };
    if let (Some(c), Some(check)) = (&connector, &options.connector_check) {
        for (key, message) in (check.0)(c) {
            let field = key.map_or_else(|| "connector".to_owned(), |k| format!("connector.{k}"));
            errors.push(&label, &field, message);
        }
    }
    if errors.0.len() != before {
        return None;
    }
    let (kind, connector) = (kind?, connector?);
    let mut spec = NodeSpec::new(name, kind, connector);
    spec.timeouts = options.plugin_kinds.timeouts_of(&spec.kind);
    spec.pinned = pinned.unwrap_or(false);
    if let Some(c) = confirm {
        spec.confirm_auto_shutdown = c;
    }
    spec.stop_when_empty = stop_when_empty.unwrap_or(false);
    if let Some(d) = start_timeout {
        spec.timeouts.start = d;
    }
    if let Some(d) = stop_timeout {
        spec.timeouts.stop = d;
    }
    spec.readiness = readiness;
    spec.offers = offers;
    spec.tags = tags;
    spec.url = url;
    spec.idle = idle;
    spec.proxy = proxy;
    spec.power = power;
    Some(Entry { label, spec, parent, depends_on })
}

fn opt_string(t: &toml::Table, key: &str, label: &str, errors: &mut Errors) -> Option<String> {
    match t.get(key) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(label, key, "must be a string");
            None
        }
    }
}

fn opt_bool(t: &toml::Table, key: &str, label: &str, errors: &mut Errors) -> Option<bool> {
    match t.get(key) {
        None => None,
        Some(Value::Boolean(b)) => Some(*b),
        Some(_) => {
            errors.push(label, key, "must be true or false");
            None
        }
    }
}

fn opt_duration(t: &toml::Table, key: &str, label: &str, errors: &mut Errors) -> Option<Duration> {
    let s = opt_string(t, key, label, errors)?;
    match humantime::parse_duration(&s) {
        Ok(d) if d.is_zero() => {
            errors.push(label, key, "must be longer than zero");
            None
        }
        Ok(d) if d > Duration::from_secs(24 * 3600) => {
            errors.push(label, key, "must be at most 24h");
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(label, key, format!("`{s}` is not a duration such as \"90s\" or \"5m\" ({e})"));
            None
        }
    }
}

fn parse_readiness(v: &Value, label: &str, errors: &mut Errors) -> Option<Readiness> {
    let Some(t) = v.as_table() else {
        errors.push(label, "readiness", "must be a table: { tcp = \"host:port\" } or { http = \"URL\", status = 200 }");
        return None;
    };
    for key in t.keys() {
        if !["tcp", "http", "status"].contains(&key.as_str()) {
            errors.push(label, &format!("readiness.{key}"), "unknown field (expected tcp, or http and status)");
        }
    }
    match (t.get("tcp"), t.get("http")) {
        (Some(Value::String(addr)), None) => {
            if t.contains_key("status") {
                errors.push(label, "readiness.status", "only applies to an http probe");
            }
            let parsed = addr.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)));
            match parsed {
                Some((host, port)) if !host.is_empty() && port != 0 => {
                    Some(Readiness::Tcp { host: host.trim_matches(['[', ']']).to_owned(), port })
                }
                _ => {
                    errors.push(label, "readiness.tcp", format!("`{addr}` is not host:port"));
                    None
                }
            }
        }
        (None, Some(Value::String(url))) => {
            let status = match t.get("status") {
                None => 200,
                Some(Value::Integer(n)) if (100..=599).contains(n) => *n as u16,
                Some(_) => {
                    errors.push(label, "readiness.status", "must be an HTTP status code (100-599)");
                    return None;
                }
            };
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                errors.push(label, "readiness.http", format!("`{url}` is not an http:// or https:// URL"));
                return None;
            }
            Some(Readiness::Http { url: url.clone(), status })
        }
        (Some(_), Some(_)) => {
            errors.push(label, "readiness", "give either `tcp` or `http`, not both");
            None
        }
        _ => {
            errors.push(label, "readiness", "needs `tcp = \"host:port\"` or `http = \"URL\"` (a string)");
            None
        }
    }
}

fn parse_connector(t: &toml::Table, label: &str, origin: Origin, errors: &mut Errors) -> Option<ConnectorConfig> {
    let type_name = match t.get("type") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => {
            errors.push(label, "connector.type", "must be a non-empty string such as \"sim\" or \"proxmox\"");
            None
        }
        None => {
            errors.push(label, "connector.type", "missing (which connector drives this node)");
            None
        }
    };
    let mut settings = BTreeMap::new();
    for (key, value) in t.iter().filter(|(k, _)| *k != "type") {
        match setting(key, value, origin) {
            Ok(v) => {
                settings.insert(key.clone(), v);
            }
            Err((path, e)) => errors.push(label, &format!("connector.{path}"), e),
        }
    }
    Some(ConnectorConfig { type_name: type_name?, settings })
}

/// One connector setting; keys named like secrets (at any depth) become [`SecretRef`]s.
/// An error carries the dotted path of the offending key.
fn setting(key: &str, v: &Value, origin: Origin) -> Result<ConfigValue, (String, String)> {
    if key.starts_with('$') {
        return Err((key.to_owned(), "keys starting with `$` are reserved".into()));
    }
    if is_secret_key(key) {
        return match v.as_str().map(SecretRef::parse) {
            Some(Ok(SecretRef::Env(_) | SecretRef::File(_))) if origin == Origin::Api => Err((
                key.to_owned(),
                "`env:` and `file:` references are read only from the operator's own topology file \
                 (`serve --config`, the command line); through the API, give the secret itself"
                    .into(),
            )),
            Some(Ok(secret)) => Ok(ConfigValue::Secret(secret)),
            Some(Err(e)) => Err((key.to_owned(), e)),
            None => Err((key.to_owned(), "a secret must be a string (inline, \"env:VAR\" or \"file:PATH\")".into())),
        };
    }
    let nested = |k: &str, v: &Value| setting(k, v, origin).map_err(|(path, e)| (format!("{key}.{path}"), e));
    Ok(match v {
        Value::String(s) => ConfigValue::String(s.clone()),
        Value::Integer(i) => ConfigValue::Integer(*i),
        Value::Float(f) => ConfigValue::Float(*f),
        Value::Boolean(b) => ConfigValue::Bool(*b),
        Value::Array(a) => ConfigValue::Array(a.iter().map(|v| nested("[]", v)).collect::<Result<_, _>>()?),
        Value::Table(t) => ConfigValue::Table(
            t.iter().map(|(k, v)| Ok((k.clone(), nested(k, v)?))).collect::<Result<_, (String, String)>>()?,
        ),
        Value::Datetime(_) => return Err((key.to_owned(), "dates are not supported in connector settings".into())),
    })
}

/// Parses one node given as JSON with the topology file's fields (`name`, `kind`, `parent`,
/// `depends_on`, …, `connector: {type, …}`), reporting every problem with its field.
pub fn parse_node(value: &serde_json::Value, options: &ParseOptions) -> Result<NodeDraft, ParseError> {
    let mut errors = Errors(Vec::new());
    let toml_value = match json_to_toml(value) {
        Ok(v) => v,
        Err(message) => {
            return Err(ParseError {
                errors: vec![FieldError { node: None, field: None, message, code: ErrorCode::Validation }],
            });
        }
    };
    match parse_entry(1, &toml_value, options, &mut errors) {
        Some(entry) if errors.0.is_empty() => {
            Ok(NodeDraft { spec: entry.spec, parent: entry.parent, depends_on: entry.depends_on })
        }
        _ => Err(ParseError { errors: errors.0 }),
    }
}

fn json_to_toml(v: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => return Err("null is not a value here; leave the field out instead".into()),
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Float(n.as_f64().ok_or("number out of range")?),
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(a) => Value::Array(a.iter().map(json_to_toml).collect::<Result<_, _>>()?),
        J::Object(o) => {
            Value::Table(o.iter().map(|(k, v)| Ok((k.clone(), json_to_toml(v)?))).collect::<Result<_, String>>()?)
        }
    })
}

/// Inserts the parsed entries: parents before children, then the dependency links; every
/// refusal of the model becomes a field error.
fn build(entries: Vec<Entry>, named: &BTreeSet<String>, errors: &mut Errors) -> Topology {
    let mut topology = Topology::new();
    let declared: BTreeSet<String> = entries.iter().map(|e| e.spec.name.clone()).collect();
    let mut seen_names = BTreeSet::new();
    let mut pending = Vec::new();
    for entry in entries {
        if !seen_names.insert(entry.spec.name.clone()) {
            errors.push(&entry.label, "name", "another node already has this name");
        } else if let Some(parent) = entry.parent.as_ref().filter(|p| !declared.contains(*p)) {
            // A parent declared with errors of its own is already reported.
            if !named.contains(parent) {
                errors.push(&entry.label, "parent", format!("unknown node `{parent}`"));
            }
        } else {
            pending.push(entry);
        }
    }
    let mut inserted: Vec<(String, Vec<String>)> = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut progress = false;
        let mut waiting = Vec::new();
        for entry in pending {
            let parent = match &entry.parent {
                None => None,
                Some(p) if failed.contains(p) => {
                    // The parent's own error is reported; the child cannot be placed.
                    failed.insert(entry.spec.name.clone());
                    progress = true;
                    continue;
                }
                Some(p) => match topology.by_name(p) {
                    Some(node) => Some(node.id),
                    None => {
                        waiting.push(entry);
                        continue;
                    }
                },
            };
            progress = true;
            let name = entry.spec.name.clone();
            match topology.add_node(entry.spec, parent) {
                Ok(_) => inserted.push((entry.label, entry.depends_on)),
                Err(e) => {
                    errors.model(&entry.label, e.field().unwrap_or("name"), &e);
                    failed.insert(name);
                }
            }
        }
        pending = waiting;
        if pending.is_empty() || !progress {
            break;
        }
    }
    for entry in pending {
        errors.push(
            &entry.label,
            "parent",
            format!("hosting cycle: `{}` is (indirectly) hosted by itself", entry.spec.name),
        );
    }
    for (label, depends_on) in inserted {
        let Some(from) = topology.by_name(&label).map(|n| n.id) else { continue };
        for dep in depends_on {
            match topology.by_name(&dep).map(|n| n.id) {
                Some(to) => {
                    if let Err(e) = topology.add_dependency(from, to) {
                        errors.model(&label, "depends_on", &e);
                    }
                }
                None if failed.contains(&dep) || named.contains(&dep) => {}
                None => errors.push(&label, "depends_on", format!("unknown node `{dep}`")),
            }
        }
    }
    for node in topology.nodes() {
        let Some(meter) = node.spec.power.as_ref().and_then(|p| p.meter.as_ref()) else { continue };
        if topology.by_name(meter).is_none() && !named.contains(meter) && !failed.contains(meter) {
            errors.push(&node.spec.name, "watts", format!("meter: unknown node `{meter}`"));
        }
    }
    topology
}

/// Writes the configured nodes of a topology in the file format, hosts before what they
/// host. Secrets are written as references (`env:`, `file:`, `credential:N`), never in
/// plaintext.
pub fn export(topology: &Topology) -> Result<String, ExportError> {
    let mut order: Vec<NodeId> = Vec::new();
    let mut roots: Vec<&crate::model::Node> = topology.nodes().filter(|n| n.parent.is_none()).collect();
    roots.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    for root in roots {
        order.push(root.id);
        order.extend(topology.hosted_descendants(root.id));
    }
    let mut nodes = Vec::new();
    for id in order {
        let Some(node) = topology.node(id) else { continue };
        if node.spec.state != NodeState::Configured {
            continue;
        }
        let spec = &node.spec;
        let defaults = spec.kind.default_timeouts();
        let mut t = toml::Table::new();
        t.insert("name".into(), spec.name.clone().into());
        t.insert("kind".into(), spec.kind.to_string().into());
        if let Some(p) = node.parent {
            t.insert("parent".into(), topology.name_of(p).into());
        }
        let deps = topology.dependencies(id);
        if !deps.is_empty() {
            let mut names: Vec<String> = deps.iter().map(|d| topology.name_of(*d)).collect();
            names.sort();
            t.insert("depends_on".into(), Value::Array(names.into_iter().map(Value::from).collect()));
        }
        if !spec.offers.is_empty() {
            t.insert("offers".into(), Value::Array(spec.offers.iter().map(|c| Value::from(c.as_str())).collect()));
        }
        if !spec.tags.is_empty() {
            t.insert("tags".into(), Value::Array(spec.tags.iter().map(|t| Value::from(t.as_str())).collect()));
        }
        if let Some(url) = &spec.url {
            t.insert("url".into(), url.as_str().into());
        }
        if spec.pinned {
            t.insert("pinned".into(), true.into());
        }
        if spec.confirm_auto_shutdown != spec.kind.default_confirm_auto_shutdown() {
            t.insert("confirm_auto_shutdown".into(), spec.confirm_auto_shutdown.into());
        }
        if spec.stop_when_empty {
            t.insert("stop_when_empty".into(), true.into());
        }
        if spec.timeouts.start != defaults.start {
            t.insert("start_timeout".into(), humantime::format_duration(spec.timeouts.start).to_string().into());
        }
        if spec.timeouts.stop != defaults.stop {
            t.insert("stop_timeout".into(), humantime::format_duration(spec.timeouts.stop).to_string().into());
        }
        if let Some(r) = &spec.readiness {
            let mut rt = toml::Table::new();
            match r {
                Readiness::Tcp { host, port } => {
                    let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                    rt.insert("tcp".into(), format!("{host}:{port}").into());
                }
                Readiness::Http { url, status } => {
                    rt.insert("http".into(), url.clone().into());
                    rt.insert("status".into(), i64::from(*status).into());
                }
            }
            t.insert("readiness".into(), Value::Table(rt));
        }
        if let Some(idle) = &spec.idle
            && let Ok(v) = Value::try_from(idle.to_json())
        {
            t.insert("idle".into(), v);
        }
        if let Some(proxy) = &spec.proxy
            && let Ok(v) = Value::try_from(proxy.to_json())
        {
            t.insert("proxy".into(), v);
        }
        if let Some(draw) = &spec.power
            && let Ok(v) = Value::try_from(draw.to_json())
        {
            t.insert("watts".into(), v);
        }
        let mut ct = toml::Table::new();
        ct.insert("type".into(), spec.connector.type_name.clone().into());
        for (key, value) in &spec.connector.settings {
            ct.insert(
                key.clone(),
                export_value(value)
                    .ok_or_else(|| ExportError::PlaintextSecret { node: spec.name.clone(), key: key.clone() })?,
            );
        }
        t.insert("connector".into(), Value::Table(ct));
        nodes.push(Value::Table(t));
    }
    let mut root = toml::Table::new();
    root.insert("node".into(), Value::Array(nodes));
    Ok(toml::to_string(&root).unwrap_or_default())
}

fn export_value(v: &ConfigValue) -> Option<Value> {
    Some(match v {
        ConfigValue::String(s) => s.clone().into(),
        ConfigValue::Integer(i) => (*i).into(),
        ConfigValue::Float(f) => (*f).into(),
        ConfigValue::Bool(b) => (*b).into(),
        ConfigValue::Array(a) => Value::Array(a.iter().map(export_value).collect::<Option<_>>()?),
        ConfigValue::Table(t) => {
            Value::Table(t.iter().map(|(k, v)| Some((k.clone(), export_value(v)?))).collect::<Option<_>>()?)
        }
        ConfigValue::Secret(s) => s.to_reference()?.into(),
    })
}
