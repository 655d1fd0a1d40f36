//! The bindings' per-setting declarations, made from core's settings tables
//! (`oc2mqtt::settings`): Node's option interfaces and choice types in
//! `dts-header.d.ts`, Python's `ClientConfig` (its class, keyword
//! signature and getters in `generated/client_config.rs`, its stub in
//! `_native.pyi`) and C's by-name setters with their list of settings.
//!
//! The files are committed. This test regenerates them and fails when one
//! differs, naming the command that rewrites them:
//! `make generate` (`OC2MQTT_BLESS=1 cargo test -p oc2mqtt --test generated`).
//! So a new setting is its field and default (`client/config.rs`, ...) and
//! its row and arms in `settings.rs`, then `make generate`.
//!
//! In a hand-written file, a region between `@generated <what> (...)` and
//! `@end generated` comment lines is this file's; everything else is left as
//! it is. `<what>` says what goes there: `members <Table>` (all its
//! settings), `members <Table> but a, b` or `members <Table> only a, b`,
//! `choices` (a type per choice setting), `class ClientConfig` (Python's),
//! `names` (a type per name table of core's: the strings a binding shows for
//! message types, close reasons, monitor events, ...; see [`names`]).

use std::path::{Path, PathBuf};

use oc2mqtt::client::ClientConfig;
use oc2mqtt::dedup::DedupOptions;
use oc2mqtt::producer::SendOptions;
use oc2mqtt::rules::ConsumerOptions;
use oc2mqtt::settings::{Kind, Setting, Settings, Value};
use oc2mqtt::topics::TopicScheme;

/// Appends a formatted line to a `String`.
macro_rules! emit {
    ($out:expr, $($fmt:tt)*) => {{
        $out.push_str(&format!($($fmt)*));
        $out.push('\n');
    }};
}

/// A settings table as the bindings take it.
struct Table {
    name: &'static str,
    settings: &'static [Setting],
    /// The default value of a setting (`None`: unset).
    default: fn(&str) -> Option<Value>,
}

fn tables() -> [Table; 6] {
    [
        Table {
            name: "ClientConfig",
            settings: ClientConfig::SETTINGS,
            default: |n| ClientConfig::default().get_value(n),
        },
        Table {
            name: "ConsumerOptions",
            settings: <ConsumerOptions as Settings>::SETTINGS,
            default: |n| ConsumerOptions::default().get_value(n),
        },
        // What `ConsumerRules` takes of a consumer's settings.
        Table {
            name: "ConsumerRules",
            settings: ConsumerOptions::RULES_SETTINGS,
            default: |n| ConsumerOptions::default().get_value(n),
        },
        Table {
            name: "SendOptions",
            settings: SendOptions::SETTINGS,
            default: |n| SendOptions::default().get_value(n),
        },
        // The settings that make a topic scheme (`ConsumerRules` takes them).
        Table {
            name: "TopicScheme",
            settings: TopicScheme::SETTINGS,
            default: |n| TopicScheme::default().get_value(n),
        },
        Table {
            name: "DedupOptions",
            settings: DedupOptions::SETTINGS,
            default: |n| DedupOptions::default().get_value(n),
        },
    ]
}

fn table(name: &str) -> Table {
    tables()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no settings table '{name}'"))
}

/// Every setting of every table, once (for respelling names in docs).
fn all_settings() -> Vec<&'static Setting> {
    let mut out: Vec<&'static Setting> = Vec::new();
    for t in tables() {
        for s in t.settings {
            if !out.iter().any(|o| o.name == s.name) {
                out.push(s);
            }
        }
    }
    out
}

/// Each choice setting once, by name, in table order.
fn choices() -> Vec<&'static Setting> {
    all_settings()
        .into_iter()
        .filter(|s| matches!(s.kind, Kind::Choice { .. }))
        .collect()
}

fn camel(name: &str) -> String {
    oc2mqtt::settings::Spelling::Camel.spell(name).into_owned()
}

/// `response_topics` → `ResponseTopics`: the name of a choice's type.
fn pascal(name: &str) -> String {
    let c = camel(name);
    let mut chars = c.chars();
    chars
        .next()
        .map(|f| f.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|f| f.to_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Words of `text` on lines of at most `width` characters, the first after
/// `first`, the others after `rest`.
fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > width {
            lines.push(line);
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines
}

/// The choice's values that are also numbers (`mqtt_version: 5`).
fn numeric_values(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::Choice {
            values,
            numeric: true,
        } => values
            .iter()
            .copied()
            .filter(|v| v.parse::<u64>().is_ok())
            .collect(),
        _ => Vec::new(),
    }
}

fn choice_values(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Choice { values, .. } => values,
        _ => &[],
    }
}

// ---------------------------------------------------------------- Names

/// Core's name tables, as each binding declares them: the type's name, what
/// it is, and its strings (from core's own constants, in core's order).
fn names() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    use oc2mqtt::MessageErrorKind;
    use oc2mqtt::client::LogLevel;
    use oc2mqtt::correlate::{CloseReason, Outcome};
    use oc2mqtt::message::{MsgType, ResponseRequested};
    use oc2mqtt::monitor::{MonitorEvent, Pairing};
    use oc2mqtt::rules::Skip;
    use oc2mqtt::topics::Role;
    vec![
        (
            "MsgType",
            "The three kinds of OpenC2 message",
            MsgType::ALL.iter().map(|t| t.as_key()).collect(),
        ),
        (
            "ResponseRequested",
            "What a command asks of its responders (`args.response_requested`)",
            ResponseRequested::ALL.iter().map(|r| r.as_str()).collect(),
        ),
        (
            "CloseReason",
            "Why an exchange closed",
            CloseReason::ALL.iter().map(|r| r.as_str()).collect(),
        ),
        (
            "CorrelatorState",
            "What a response meant for its exchange",
            Outcome::<()>::KINDS.to_vec(),
        ),
        (
            "DecodeErrorKind",
            "What was wrong with a message that could not be decoded",
            MessageErrorKind::ALL.iter().map(|k| k.as_str()).collect(),
        ),
        (
            "Skip",
            "Why a consumer did not hand a message to its application",
            Skip::KINDS.to_vec(),
        ),
        (
            "MonitorEventKind",
            "The kinds of monitor event",
            MonitorEvent::KINDS.to_vec(),
        ),
        (
            "PairingState",
            "Where an event leaves its command's exchange (unpaired: none)",
            Pairing::STATES.to_vec(),
        ),
        (
            "LogLevel",
            "A log record's level, most severe first",
            LogLevel::ALL.iter().map(|l| l.as_str()).collect(),
        ),
        (
            "Role",
            "A client's role, for its topics",
            Role::ALL.iter().map(|r| r.as_str()).collect(),
        ),
    ]
}

// ---------------------------------------------------------------- TypeScript

/// A doc text as TypeScript readers see it: settings named in camel case.
fn ts_doc(doc: &str) -> String {
    let mut out = doc.to_owned();
    for s in all_settings() {
        out = out.replace(&format!("`{}`", s.name), &format!("`{}`", camel(s.name)));
    }
    capitalize(&out)
}

/// A number as JavaScript and Python write it: `10`, not `10.0`.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// ` (default 60)`, in JavaScript's units and syntax; empty when unset.
fn ts_default(s: &Setting, v: Option<Value>) -> String {
    let unit = if s.kind == Kind::Duration {
        "in ms; "
    } else {
        ""
    };
    let shown = match v {
        None => None,
        Some(Value::Flag(b)) => Some(b.to_string()),
        Some(Value::Count(n)) => Some(n.to_string()),
        Some(Value::Number(x)) if s.kind == Kind::Duration => Some(number(x * 1000.0)),
        Some(Value::Number(x)) => Some(number(x)),
        Some(Value::Text(t)) => Some(format!("`'{t}'`")),
        Some(Value::Texts(t)) if t.is_empty() => None,
        Some(Value::Texts(t)) => Some(format!(
            "`[{}]`",
            t.iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    match shown {
        Some(d) => format!(" ({unit}default {d})"),
        None if !unit.is_empty() => " (in ms)".to_owned(),
        None => String::new(),
    }
}

fn ts_type(s: &Setting) -> String {
    match s.kind {
        Kind::Flag => "boolean".into(),
        Kind::Count { .. } | Kind::Seconds | Kind::Duration | Kind::Number => "number".into(),
        Kind::Text | Kind::Path => "string".into(),
        Kind::Texts if s.single => "string | string[]".into(),
        Kind::Texts => "string[]".into(),
        Kind::Pairs => "Array<[string, string]> | Record<string, string[]>".into(),
        Kind::Choice { .. } => pascal(s.name),
    }
}

/// The settings a `members` region names: `Table`, `Table but a, b`, `Table only a, b`.
fn selected(what: &str) -> (Table, Vec<&'static Setting>) {
    let (name, filter) = what.split_once(' ').unwrap_or((what, ""));
    let t = table(name);
    let list = |l: &str| -> Vec<String> {
        l.split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    };
    let keep: Box<dyn Fn(&str) -> bool> = if let Some(but) = filter.strip_prefix("but ") {
        let but = list(but);
        Box::new(move |n| !but.iter().any(|b| b == n))
    } else if let Some(only) = filter.strip_prefix("only ") {
        let only = list(only);
        for n in &only {
            assert!(
                t.settings.iter().any(|s| s.name == *n),
                "{name} has no setting '{n}'"
            );
        }
        Box::new(move |n| only.iter().any(|o| o == n))
    } else {
        assert!(filter.is_empty(), "unknown filter '{filter}'");
        Box::new(|_| true)
    };
    let settings = t.settings.iter().filter(|s| keep(s.name)).collect();
    (t, settings)
}

fn ts_region(what: &str) -> Vec<String> {
    let mut out = Vec::new();
    if what == "choices" {
        for s in choices() {
            out.push(format!("/** {}. */", ts_doc(s.doc)));
            let numbers = numeric_values(s.kind);
            let literals: Vec<String> = numbers
                .iter()
                .map(|n| n.to_string())
                .chain(choice_values(s.kind).iter().map(|v| format!("'{v}'")))
                .collect();
            out.push(format!(
                "export type {} = {}",
                pascal(s.name),
                literals.join(" | ")
            ));
        }
        return out;
    }
    if what == "error codes" {
        // Node's error `code`: `OC2_` and core's kind in capitals (bindings-node/src/error.rs).
        let codes: Vec<String> = oc2mqtt::Error::KINDS
            .iter()
            .map(|k| format!("'OC2_{}'", k.to_ascii_uppercase()))
            .collect();
        out.push(format!("export type ErrorCode = {}", codes.join(" | ")));
        return out;
    }
    if what == "status codes" {
        out.push("/** The status codes of the Language Specification (3.3.2.1). */".to_owned());
        let codes: Vec<String> = oc2mqtt::message::STATUS_CODES
            .iter()
            .map(u16::to_string)
            .collect();
        out.push(format!("export type StatusCode = {}", codes.join(" | ")));
        return out;
    }
    if what == "names" {
        for (name, doc, values) in names() {
            out.push(format!("/** {doc}. */"));
            let literals: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            out.push(format!("export type {name} = {}", literals.join(" | ")));
        }
        return out;
    }
    let what = what
        .strip_prefix("members ")
        .unwrap_or_else(|| panic!("unknown region '{what}' in dts-header.d.ts"));
    let (t, settings) = selected(what);
    for s in settings {
        let default = ts_default(s, (t.default)(s.name));
        out.push(format!("/** {}{default}. */", ts_doc(s.doc)));
        out.push(format!("{}?: {}", camel(s.name), ts_type(s)));
    }
    out
}

// ---------------------------------------------------------------- Python

/// A doc text as Python's reStructuredText has it: ``literal``.
fn py_doc(doc: &str) -> String {
    let mut out = String::new();
    for (i, part) in doc.split('`').enumerate() {
        if i > 0 {
            out.push_str("``");
        }
        out.push_str(part);
    }
    out
}

fn py_value(v: Option<Value>) -> String {
    match v {
        None => "None".into(),
        Some(Value::Flag(b)) => if b { "True" } else { "False" }.into(),
        Some(Value::Count(n)) => n.to_string(),
        Some(Value::Number(x)) => number(x),
        Some(Value::Text(t)) => format!("'{t}'"),
        Some(Value::Texts(t)) if t.is_empty() => "None".into(),
        Some(Value::Texts(t)) => format!(
            "[{}]",
            t.iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_alias(s: &Setting) -> String {
    format!("_{}", pascal(s.name))
}

/// The type a keyword argument takes.
fn py_arg_type(s: &Setting) -> String {
    match s.kind {
        Kind::Flag => "bool".into(),
        Kind::Count { .. } => "int".into(),
        Kind::Seconds | Kind::Duration | Kind::Number => "float".into(),
        Kind::Text => "str".into(),
        Kind::Path => "_Path".into(),
        Kind::Texts if s.single => "str | Sequence[str]".into(),
        Kind::Texts => "Sequence[str]".into(),
        Kind::Pairs => "_Pairs".into(),
        Kind::Choice { numeric: true, .. } => format!("{} | int", py_alias(s)),
        Kind::Choice { .. } => py_alias(s),
    }
}

/// The type a getter returns.
fn py_get_type(s: &Setting, default: &Option<Value>) -> String {
    let t = match s.kind {
        Kind::Flag => "bool".into(),
        Kind::Count { .. } => "int".into(),
        Kind::Seconds | Kind::Duration | Kind::Number => "float".into(),
        Kind::Text => "str".into(),
        Kind::Path => "pathlib.Path".into(),
        Kind::Texts | Kind::Pairs => "list[str]".into(),
        Kind::Choice { .. } => py_alias(s),
    };
    if default.is_none() {
        format!("{t} | None")
    } else {
        t
    }
}

/// Python's `ClientConfig`: what the table does not say.
struct PyClass {
    table: &'static str,
    class: &'static str,
    rust: &'static str,
    /// The first, positional argument: (its name, the setting it sets, its type).
    positional: (&'static str, &'static str, &'static str),
    /// Getters written by hand (in the macro's call).
    own_getters: &'static [&'static str],
    /// The docstring before the list of keyword arguments (Markdown: `literal`).
    intro: &'static str,
}

const CLIENT_CONFIG: PyClass = PyClass {
    table: "ClientConfig",
    class: "ClientConfig",
    rust: "PyClientConfig",
    positional: ("broker", "brokers", "str | Sequence[str]"),
    own_getters: &["peer"],
    intro: "How to reach and talk to the broker; checked when made (a `ConfigError` \
            or `IoError` names the setting).\n\n`broker` is a URL (`mqtt://`, \
            `mqtts://`, `ws://`, `wss://`) or a list of them, tried in order \
            (failover). The keyword arguments, with their defaults:",
};

impl PyClass {
    fn keywords(&self) -> Vec<&'static Setting> {
        table(self.table)
            .settings
            .iter()
            .filter(|s| s.name != self.positional.1)
            .collect()
    }

    /// The docstring, one line at a time, unindented: reStructuredText for
    /// the stub (``literal``), Markdown for the Rust doc that `help()` shows
    /// (`literal`). Each default follows its name on its line.
    fn docstring(&self, rst: bool) -> Vec<String> {
        let t = table(self.table);
        let text = |doc: &str| {
            if rst { py_doc(doc) } else { doc.to_owned() }
        };
        let mut out = Vec::new();
        for (i, para) in self.intro.split("\n\n").enumerate() {
            if i > 0 {
                out.push(String::new());
            }
            out.extend(wrap(&text(para), 84, "", ""));
        }
        out.push(String::new());
        for s in self.keywords() {
            let item = format!(
                "{} (default {}): {}",
                text(&format!("`{}`", s.name)),
                py_value((t.default)(s.name)),
                text(s.doc),
            );
            out.extend(wrap(&item, 84, "- ", "  "));
        }
        out
    }

    /// The getters: (name, setting) for each readable setting; a secret one
    /// is `has_<name>`.
    fn getters(&self) -> Vec<(String, &'static Setting)> {
        table(self.table)
            .settings
            .iter()
            .filter(|s| !self.own_getters.contains(&s.name))
            .map(|s| {
                let name = if s.secret {
                    format!("has_{}", s.name)
                } else {
                    s.name.to_owned()
                };
                (name, s)
            })
            .collect()
    }

    fn stub(&self) -> Vec<String> {
        let t = table(self.table);
        let mut out = vec!["@final".to_owned(), format!("class {}:", self.class)];
        let doc = self.docstring(true);
        for (i, line) in doc.iter().enumerate() {
            let mut l = String::from("    ");
            if i == 0 {
                l.push_str("\"\"\"");
            }
            l.push_str(line);
            out.push(l.trim_end().to_owned());
        }
        out.push("    \"\"\"".into());
        out.push(String::new());
        out.push("    def __new__(".into());
        out.push("        cls,".into());
        out.push(format!(
            "        {}: {},",
            self.positional.0, self.positional.2
        ));
        out.push("        *,".into());
        for s in self.keywords() {
            out.push(format!(
                "        {}: {} | None = None,",
                s.name,
                py_arg_type(s)
            ));
        }
        out.push(format!("    ) -> {}: ...", self.class));
        for (name, s) in self.getters() {
            let ty = if s.secret {
                "bool".to_owned()
            } else {
                py_get_type(s, &(t.default)(s.name))
            };
            out.push("    @property".into());
            out.push(format!("    def {name}(self) -> {ty}: ..."));
        }
        out
    }

    fn rust(&self) -> String {
        let t = table(self.table);
        let mut r = String::new();
        let core = format!("oc2mqtt::client::{}", t.name);
        emit!(
            r,
            "// @generated by core/tests/generated.rs from core's settings table\n\
             // (`{}::SETTINGS`). Do not edit: change core/src/settings.rs, then run\n\
             // `make generate`.\n",
            t.name
        );
        let mac = snake(self.class);
        emit!(
            r,
            "/// `{}` with `#[pymethods]`: `new` (a keyword argument per setting), a getter\n\
             /// per setting (`has_<name>` for a secret one), and the methods given.\n\
             macro_rules! {mac} {{\n    ($($own:tt)*) => {{",
            self.rust
        );
        for line in self.docstring(false) {
            emit!(
                r,
                "        ///{}{line}",
                if line.is_empty() { "" } else { " " }
            );
        }
        emit!(
            r,
            "        #[pyclass(name = \"{}\", module = \"oc2mqtt\", frozen)]\n        \
             #[derive(Clone)]\n        pub struct {} {{\n            \
             pub(crate) inner: {core},\n        }}\n",
            self.class,
            self.rust
        );
        emit!(r, "        #[pymethods]\n        impl {} {{", self.rust);
        let mut sig = vec![self.positional.0.to_owned(), "*".to_owned()];
        sig.extend(self.keywords().iter().map(|s| format!("{} = None", s.name)));
        emit!(r, "            #[new]");
        emit!(r, "            #[pyo3(signature = (");
        let mut line = String::new();
        for (i, item) in sig.iter().enumerate() {
            let item = if i + 1 < sig.len() {
                format!("{item},")
            } else {
                item.clone()
            };
            if !line.is_empty() && 16 + line.len() + 1 + item.len() > 100 {
                emit!(r, "                {line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&item);
        }
        emit!(r, "                {line}");
        emit!(r, "            ))]");
        emit!(r, "            #[allow(clippy::too_many_arguments)]");
        emit!(r, "            fn new(");
        emit!(r, "                py: Python<'_>,");
        emit!(
            r,
            "                {}: &Bound<'_, PyAny>,",
            self.positional.0
        );
        for s in self.keywords() {
            emit!(r, "                {}: Option<&Bound<'_, PyAny>>,", s.name);
        }
        emit!(r, "            ) -> PyResult<Self> {{");
        emit!(r, "                let inner = crate::settings::build(");
        emit!(r, "                    py,");
        emit!(r, "                    &crate::settings::kwargs![");
        emit!(r, "                        {},", self.positional.0);
        for s in self.keywords() {
            emit!(r, "                        {},", s.name);
        }
        emit!(r, "                    ],");
        emit!(r, "                )?;");
        emit!(r, "                Self::checked(py, inner)");
        emit!(r, "            }}");
        for (name, s) in self.getters() {
            r.push('\n');
            emit!(r, "            #[getter]");
            if s.secret {
                emit!(
                    r,
                    "            fn {name}(&self) -> bool {{\n                \
                     oc2mqtt::settings::Settings::get_value(&self.inner, \"{}\").is_some()\n            }}",
                    s.name
                );
            } else {
                emit!(
                    r,
                    "            fn {name}<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {{\n                \
                     crate::settings::get(py, &self.inner, \"{}\")\n            }}",
                    s.name
                );
            }
        }
        emit!(r, "\n            $($own)*\n        }}\n    }};\n}}");
        r
    }
}

fn snake(class: &str) -> String {
    let mut out = String::new();
    for (i, c) in class.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn pyi_region(what: &str, docs: &[RsDoc]) -> Vec<String> {
    if let Some(spec) = what.strip_prefix("keywords ") {
        return keyword_entries(spec)
            .iter()
            .flat_map(|e| e.keywords(&[]))
            .map(|s| format!("{}: {} | None = None,", py_keyword(s.name), py_arg_type(s)))
            .collect();
    }
    if let Some(key) = what.strip_prefix("doc ") {
        let doc = docs.iter().find(|d| d.key == key).unwrap_or_else(|| {
            panic!("no '// @generated doc {key}: ...' region in bindings-python/src")
        });
        return doc.stub();
    }
    match what {
        "choices" => choices()
            .into_iter()
            .map(|s| {
                let values: Vec<String> = choice_values(s.kind)
                    .iter()
                    .map(|v| format!("\"{v}\""))
                    .collect();
                format!("{} = Literal[{}]", py_alias(s), values.join(", "))
            })
            .collect(),
        "class ClientConfig" => CLIENT_CONFIG.stub(),
        "names" => names()
            .into_iter()
            .map(|(name, _, values)| {
                let values: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                format!("_{name} = Literal[{}]", values.join(", "))
            })
            .collect(),
        _ => panic!("unknown region '{what}' in _native.pyi"),
    }
}

// ---------------------------------------------------------------- Python keyword arguments

/// Python's keyword arguments named otherwise than core's settings:
/// (Python, core), as `RENAMED` in `bindings-python/src/settings.rs` has them
/// (checked by a test below). `Consumer(handler_timeout=)` predates the `_secs` names.
const PY_RENAMED: &[(&str, &str)] = &[("handler_timeout", "handler_timeout_secs")];

/// The keyword argument's name for core's setting `name`.
fn py_keyword(name: &str) -> &str {
    PY_RENAMED
        .iter()
        .find(|(_, core)| *core == name)
        .map_or(name, |(py, _)| py)
}

/// One table of a keyword region: `SendOptions but to, profile as options`
/// (the settings a method takes of it, and the variable it is built into).
struct KeywordEntry {
    table: Table,
    settings: Vec<&'static Setting>,
    var: Option<String>,
}

impl KeywordEntry {
    /// Its settings that are keyword arguments: all but the `positional` ones.
    fn keywords(&self, positional: &[&str]) -> Vec<&'static Setting> {
        self.settings
            .iter()
            .copied()
            .filter(|s| !positional.contains(&py_keyword(s.name)))
            .collect()
    }

    /// The core type it is built into.
    fn rust_type(&self) -> &'static str {
        match self.table.name {
            "ClientConfig" => "oc2mqtt::client::ClientConfig",
            "ConsumerOptions" | "ConsumerRules" => "oc2mqtt::rules::ConsumerOptions",
            "SendOptions" => "oc2mqtt::producer::SendOptions",
            "TopicScheme" => "oc2mqtt::topics::TopicScheme",
            "DedupOptions" => "oc2mqtt::dedup::DedupOptions",
            other => panic!("no Rust type for the table {other}"),
        }
    }
}

/// `Table [but|only a, b] [as var]; ...`: the tables a method's keyword arguments come from.
fn keyword_entries(spec: &str) -> Vec<KeywordEntry> {
    spec.split(';')
        .map(|entry| {
            let entry = entry.trim();
            let (what, var) = match entry.rsplit_once(" as ") {
                Some((what, var)) => (what, Some(var.trim().to_owned())),
                None => (entry, None),
            };
            let (table, settings) = selected(what.trim());
            KeywordEntry {
                table,
                settings,
                var,
            }
        })
        .collect()
}

/// The list of keyword arguments with their defaults, one item per setting,
/// Markdown (`literal`) or reStructuredText (``literal``), wrapped after
/// `width` characters.
fn py_keyword_list(entries: &[KeywordEntry], rst: bool, width: usize) -> Vec<String> {
    let text = |doc: &str| {
        if rst { py_doc(doc) } else { doc.to_owned() }
    };
    let mut out = Vec::new();
    for e in entries {
        for s in e.keywords(&[]) {
            let item = format!(
                "{} (default {}): {}",
                text(&format!("`{}`", py_keyword(s.name))),
                py_value((e.table.default)(s.name)),
                text(s.doc),
            );
            out.extend(wrap(&item, width, "- ", "  "));
        }
    }
    out
}

/// A `// @generated doc <Key>: <spec>` region of a binding's Rust source: the
/// list of keyword arguments in the doc comment around it, which is also the
/// docstring of `<Key>` (a class, or `Class.method`) in the stub.
struct RsDoc {
    key: String,
    spec: String,
    /// The doc comment's lines before the region and after it, without `///`.
    before: Vec<String>,
    after: Vec<String>,
}

impl RsDoc {
    /// Every doc region of the Rust sources in `dir`.
    fn find(dir: &Path) -> Vec<RsDoc> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let text =
                std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let lines: Vec<&str> = text.lines().collect();
            let doc = |l: &str| {
                l.trim_start()
                    .strip_prefix("///")
                    .map(|d| d.strip_prefix(' ').unwrap_or(d).to_owned())
            };
            for (i, line) in lines.iter().enumerate() {
                let Some(rest) = line.trim_start().strip_prefix("// @generated doc ") else {
                    continue;
                };
                let what = rest.split(" (").next().unwrap_or(rest);
                let (key, spec) = what
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("'{line}': expected 'doc <Key>: <tables>'"));
                let mut before: Vec<String> =
                    lines[..i].iter().rev().map_while(|l| doc(l)).collect();
                before.reverse();
                let end = lines[i..]
                    .iter()
                    .position(|l| l.trim_start() == "// @end generated")
                    .unwrap_or_else(|| panic!("'{line}' has no end"))
                    + i;
                let after = lines[end + 1..].iter().map_while(|l| doc(l)).collect();
                out.push(RsDoc {
                    key: key.to_owned(),
                    spec: spec.to_owned(),
                    before,
                    after,
                });
            }
        }
        out
    }

    /// The docstring in the stub: the same text in reStructuredText.
    fn stub(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.before.iter().map(|l| py_doc(l)).collect();
        lines.push(String::new());
        lines.extend(py_keyword_list(&keyword_entries(&self.spec), true, 88));
        lines.extend(self.after.iter().map(|l| py_doc(l)));
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            out.push(if i == 0 {
                format!("\"\"\"{l}")
            } else {
                l.clone()
            });
        }
        out.push("\"\"\"".into());
        // A class's docstring is followed by a blank line (as ruff formats it).
        if !self.key.contains('.') {
            out.push(String::new());
        }
        out
    }
}

/// A region of a binding's Rust source: `doc <Key>: <tables>` (the list of
/// keyword arguments, in a doc comment) or `fn <head>: <tables>` (a
/// `#[pymethods]` method's signature, its parameters, and the options built
/// from its keyword arguments; the hand-written body follows the region).
fn rs_region(what: &str, indent: usize) -> Vec<String> {
    if let Some(rest) = what.strip_prefix("doc ") {
        let (_, spec) = rest.split_once(": ").expect("doc <Key>: <tables>");
        let mut out = vec!["///".to_owned()];
        let width = 92 - indent;
        for l in py_keyword_list(&keyword_entries(spec), false, width) {
            out.push(format!("/// {l}"));
        }
        return out;
    }
    let rest = what
        .strip_prefix("fn ")
        .unwrap_or_else(|| panic!("unknown region '{what}' in bindings-python/src"));
    let (head, spec) = rest
        .rsplit_once(": ")
        .unwrap_or_else(|| panic!("'{what}': expected 'fn <head>: <tables>'"));
    py_method(head, &keyword_entries(spec), indent)
}

/// `name[<'py>](receiver, positional...) -> Ret` as a `#[pymethods]` method taking
/// `entries`' settings as keyword arguments.
fn py_method(head: &str, entries: &[KeywordEntry], indent: usize) -> Vec<String> {
    let (sig, ret) = head
        .split_once(" -> ")
        .unwrap_or_else(|| panic!("'{head}': expected a return type"));
    let (name, args) = sig
        .split_once('(')
        .unwrap_or_else(|| panic!("'{head}': expected (arguments)"));
    let args = args.strip_suffix(')').expect("(arguments)");
    let (name, lt) = match name.split_once('<') {
        Some((name, lt)) => (name, lt.trim_end_matches('>')),
        None => (name, "'_"),
    };
    let generic = if lt == "'_" {
        String::new()
    } else {
        format!("<{lt}>")
    };
    let mut params = Vec::new();
    let mut positional = Vec::new();
    for a in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match a {
            "&self" => params.push("&self".to_owned()),
            "_cls" => params.push("_cls: &Bound<'_, PyType>".to_owned()),
            a => positional.push(a),
        }
    }
    params.push(format!("py: Python<{lt}>"));
    params.extend(
        positional
            .iter()
            .map(|a| format!("{a}: &Bound<{lt}, PyAny>")),
    );
    let keywords: Vec<&str> = entries
        .iter()
        .flat_map(|e| e.keywords(&positional))
        .map(|s| py_keyword(s.name))
        .collect();
    params.extend(
        keywords
            .iter()
            .map(|k| format!("{k}: Option<&Bound<{lt}, PyAny>>")),
    );

    let mut out = Vec::new();
    let mut sig: Vec<String> = positional.iter().map(|p| (*p).to_owned()).collect();
    sig.push("*".into());
    sig.extend(keywords.iter().map(|k| format!("{k} = None")));
    let one = format!("#[pyo3(signature = ({}))]", sig.join(", "));
    if indent + one.len() <= 100 {
        out.push(one);
    } else {
        out.push("#[pyo3(signature = (".into());
        out.extend(wrap(&sig.join(", "), 100 - indent, "    ", "    "));
        out.push("))]".into());
    }
    // clippy's too_many_arguments counts the receiver and `py`.
    if params.len() > 7 {
        out.push("#[allow(clippy::too_many_arguments)]".into());
    }
    let one = format!("fn {name}{generic}({}) -> {ret} {{", params.join(", "));
    if indent + one.len() <= 100 {
        out.push(one);
    } else {
        out.push(format!("fn {name}{generic}("));
        out.extend(params.iter().map(|p| format!("    {p},")));
        out.push(format!(") -> {ret} {{"));
    }
    for e in entries {
        let Some(var) = &e.var else { continue };
        // The positional arguments that are settings too (`device_id`), then the keywords.
        let names: Vec<&str> = e
            .settings
            .iter()
            .map(|s| py_keyword(s.name))
            .filter(|n| positional.contains(n) || keywords.contains(n))
            .collect();
        out.push(format!(
            "    let {var}: {} = crate::settings::keywords! {{",
            e.rust_type()
        ));
        out.extend(wrap(
            &format!("py; {}", names.join(", ")),
            100 - indent,
            "        ",
            "        ",
        ));
        out.push("    }?;".into());
    }
    out
}

// ---------------------------------------------------------------- C

/// The list of settings in the doc of C's by-name setter (`oc2_config_builder_set`).
fn c_list(t: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for s in t.settings {
        let what = match s.kind {
            Kind::Flag => "true/false".to_owned(),
            Kind::Count { .. } => "a whole number".to_owned(),
            Kind::Seconds => "seconds, fractions allowed".to_owned(),
            Kind::Duration => "milliseconds".to_owned(),
            Kind::Number => "a number".to_owned(),
            Kind::Text => "text".to_owned(),
            Kind::Path => "a path".to_owned(),
            Kind::Texts | Kind::Pairs => "a list, separated by commas".to_owned(),
            Kind::Choice { values, .. } => values
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let default = match (t.default)(s.name) {
            None => String::new(),
            Some(Value::Texts(v)) if v.is_empty() => String::new(),
            Some(Value::Text(v)) if v.is_empty() => String::new(),
            Some(Value::Text(v)) => format!("; default \"{v}\""),
            Some(v) => format!("; default {v}"),
        };
        let item = format!("`{}` ({what}{default}): {}.", s.name, s.doc);
        out.extend(wrap(&item, 96, "- ", "  "));
    }
    out
}

fn c_region(what: &str) -> Vec<String> {
    let name = what
        .strip_prefix("settings ")
        .unwrap_or_else(|| panic!("unknown region '{what}' in bindings-c"));
    c_list(&table(name))
}

// ---------------------------------------------------------------- files

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// `text` with every region between a `{comment} @generated <what> (...)`
/// line and a `{comment} @end generated` line made again by `make`.
fn regions(text: &str, comment: &str, make: &dyn Fn(&str) -> Vec<String>) -> String {
    regions_indented(text, comment, &|what, _| make(what))
}

/// [`regions`], where what is made depends on the region's indentation too.
fn regions_indented(
    text: &str,
    comment: &str,
    make: &dyn Fn(&str, usize) -> Vec<String>,
) -> String {
    let start = format!("{comment} @generated ");
    let end = format!("{comment} @end generated");
    let mut out = String::new();
    let mut lines = text.lines();
    let mut found = 0;
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix(&start) else {
            continue;
        };
        found += 1;
        let what = rest.split(" (").next().unwrap_or(rest).trim();
        let indent = &line[..line.len() - trimmed.len()];
        for made in make(what, indent.len()) {
            if made.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("{indent}{made}\n"));
            }
        }
        loop {
            let l = lines
                .next()
                .unwrap_or_else(|| panic!("'{start}{what}' has no '{end}'"));
            if l.trim_start() == end {
                out.push_str(l);
                out.push('\n');
                break;
            }
        }
    }
    assert!(found > 0, "no '{start}' region");
    out
}

const TYPINGS: &str = "bindings-node/index.d.ts";

/// Python's sources, and those with keyword arguments made from the tables.
const PY_SRC: &str = "bindings-python/src";
const PY_KEYWORDS: [&str; 3] = [
    "bindings-python/src/producer.rs",
    "bindings-python/src/consumer.rs",
    "bindings-python/src/rules.rs",
];

/// Node's typings with `header` in front: napi writes the header verbatim,
/// then what it generates from the Rust sources after the header's last
/// line, so that a new header needs no Rust build.
fn typings(header: &str, typings: &str) -> String {
    let last = header.lines().last().expect("a header");
    let from_rust = typings
        .split_once(&format!("\n{last}\n"))
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| {
            panic!("{TYPINGS} has no line '{last}': run `make -C bindings-node build`")
        });
    format!("{header}{from_rust}")
}

/// Each generated file: its path from the workspace root and its content.
fn generated() -> Vec<(&'static str, String)> {
    let read =
        |p: &str| std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let dts = "bindings-node/dts-header.d.ts";
    let pyi = "bindings-python/python/oc2mqtt/_native.pyi";
    let c = "bindings-c/src/config.rs";
    let c_consumer = "bindings-c/src/consumer.rs";
    let c_doc = |what: &str| -> Vec<String> {
        c_region(what)
            .into_iter()
            .map(|l| format!("///{}{l}", if l.is_empty() { "" } else { " " }))
            .collect()
    };
    let header = regions(&read(dts), "//", &ts_region);
    let docs = RsDoc::find(&root().join(PY_SRC));
    let mut out = vec![
        ("bindings-node/index.d.ts", typings(&header, &read(TYPINGS))),
        (dts, header),
        (pyi, regions(&read(pyi), "#", &|w| pyi_region(w, &docs))),
        (
            "bindings-python/src/generated/client_config.rs",
            CLIENT_CONFIG.rust(),
        ),
        (c, regions(&read(c), "//", &c_doc)),
        (c_consumer, regions(&read(c_consumer), "//", &c_doc)),
    ];
    for f in PY_KEYWORDS {
        out.push((f, regions_indented(&read(f), "//", &rs_region)));
    }
    out
}

#[test]
fn binding_declarations_are_generated_from_the_settings_tables() {
    let bless = std::env::var_os("OC2MQTT_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, want) in generated() {
        let full = root().join(path);
        let have = std::fs::read_to_string(&full).unwrap_or_default();
        if have == want {
            continue;
        }
        if bless {
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{path}: {e}"));
            }
            std::fs::write(&full, &want).unwrap_or_else(|e| panic!("{path}: {e}"));
            eprintln!("generated: rewrote {path}");
        } else {
            let line = have
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
            stale.push(format!("{path} (first difference at line {})", line + 1));
        }
    }
    assert!(
        stale.is_empty(),
        "generated binding declarations are stale:\n  {}\n\
         they are made from core's settings tables: run `make generate` \
         (OC2MQTT_BLESS=1 cargo test -p oc2mqtt --test generated) and commit the result",
        stale.join("\n  ")
    );
}

#[test]
fn regions_keep_the_hand_written_text_around_them() {
    let text =
        "a\n  // @generated members SendOptions only expect (x)\n  old\n  // @end generated\nb\n";
    let out = regions(text, "//", &ts_region);
    assert_eq!(
        out,
        "a\n  // @generated members SendOptions only expect (x)\n  \
         /** Complete after this many distinct responders sent a final response (broadcasts). */\n  \
         expect?: number\n  // @end generated\nb\n"
    );
}

#[test]
fn a_duration_is_in_milliseconds_for_javascript_and_seconds_for_python() {
    let t = table("SendOptions");
    let timeout = t
        .settings
        .iter()
        .find(|s| s.name == "timeout")
        .expect("SendOptions has a timeout");
    assert_eq!(
        ts_default(timeout, (t.default)("timeout")),
        " (in ms; default 10000)"
    );
    assert_eq!(py_value((t.default)("timeout")), "10");
}

#[test]
fn python_renames_keyword_arguments_as_its_binding_does() {
    let path = root().join(PY_SRC).join("settings.rs");
    let binding = std::fs::read_to_string(&path).expect("bindings-python/src/settings.rs");
    for (py, core) in PY_RENAMED {
        assert!(
            binding.contains(&format!("(\"{py}\", \"{core}\")")),
            "{}: RENAMED has no ({py}, {core})",
            path.display()
        );
    }
}

#[test]
fn a_python_method_takes_its_tables_settings_as_keyword_arguments() {
    let made = py_method(
        "send(&self, command) -> PyResult<PyExchange>",
        &keyword_entries("SendOptions but to, profile, expect, dialect as options"),
        4,
    );
    assert_eq!(
        made,
        [
            "#[pyo3(signature = (command, *, timeout = None, encoding = None))]",
            "fn send(",
            "    &self,",
            "    py: Python<'_>,",
            "    command: &Bound<'_, PyAny>,",
            "    timeout: Option<&Bound<'_, PyAny>>,",
            "    encoding: Option<&Bound<'_, PyAny>>,",
            ") -> PyResult<PyExchange> {",
            "    let options: oc2mqtt::producer::SendOptions = crate::settings::keywords! {",
            "        py; timeout, encoding",
            "    }?;",
        ]
    );
    let made = py_method(
        "new(device_id) -> PyResult<Self>",
        &keyword_entries("ConsumerOptions only device_id, handler_timeout_secs as o"),
        4,
    );
    assert_eq!(
        made[0],
        "#[pyo3(signature = (device_id, *, handler_timeout = None))]"
    );
    assert_eq!(made[7], "        py; device_id, handler_timeout");
}
