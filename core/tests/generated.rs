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

fn pyi_region(what: &str) -> Vec<String> {
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
        for made in make(what) {
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
    vec![
        ("bindings-node/index.d.ts", typings(&header, &read(TYPINGS))),
        (dts, header),
        (pyi, regions(&read(pyi), "#", &pyi_region)),
        (
            "bindings-python/src/generated/client_config.rs",
            CLIENT_CONFIG.rust(),
        ),
        (c, regions(&read(c), "//", &c_doc)),
        (c_consumer, regions(&read(c_consumer), "//", &c_doc)),
    ]
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
