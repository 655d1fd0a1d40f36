//! Keyword arguments to the core's settings (`oc2mqtt::settings`): one
//! converter from a Python value to each [`Kind`], with Python's error texts
//! (a `TypeError` naming the argument for a wrong type), then
//! [`Settings::set`], which checks the value and names the setting in a
//! `ConfigError`. Defaults are the core types' own; getters and reprs read
//! back through the same table.
//!
//! What Python spells its own way is here and nowhere else: the keyword
//! arguments named otherwise than the core's settings ([`RENAMED`]) and the
//! values Python takes in another shape ([`shape`]).

use std::path::PathBuf;
use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};

use oc2mqtt::settings::{Kind, Setting, Settings, Spelling, Value};

use crate::convert;
use crate::errors::IntoPyResult;
use crate::repr::Repr;

/// Keyword arguments whose Python name is not the core's: (Python, core).
const RENAMED: &[(&str, &str)] = &[
    // `ClientConfig(broker)`: one URL, or several.
    ("broker", "brokers"),
    // `Consumer(handler_timeout=)` predates the `_secs` names.
    ("handler_timeout", "handler_timeout_secs"),
];

/// The core's name for the keyword argument `name`.
fn core_name(name: &str) -> &str {
    RENAMED
        .iter()
        .find(|(py, _)| *py == name)
        .map_or(name, |(_, core)| core)
}

/// The keyword argument's name for the core's setting `name`.
fn py_name(name: &str) -> &str {
    RENAMED
        .iter()
        .find(|(_, core)| *core == name)
        .map_or(name, |(py, _)| py)
}

/// How Python hands over a setting, where its kind alone does not say.
#[derive(Clone, Copy)]
enum Shape {
    /// As the kind has it.
    Plain,
    /// A broker URL or a list of them.
    Urls,
}

fn shape(name: &str) -> Shape {
    match name {
        "broker" => Shape::Urls,
        _ => Shape::Plain,
    }
}

fn type_error(obj: &Bound<'_, PyAny>, what: &str, expected: &str) -> PyResult<PyErr> {
    Ok(PyTypeError::new_err(format!(
        "{what}: expected {expected}, found {}",
        obj.get_type().name()?
    )))
}

fn is_number(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyBool>().is_err() && (obj.cast::<PyInt>().is_ok() || obj.cast::<PyFloat>().is_ok())
}

/// A number; the core checks its range.
fn number(obj: &Bound<'_, PyAny>, what: &str, expected: &str) -> PyResult<f64> {
    if is_number(obj) {
        obj.extract()
    } else {
        Err(type_error(obj, what, expected)?)
    }
}

const SECONDS: &str = "a number of seconds (int or float)";

/// A timeout that is no setting (`next(timeout=)`), in seconds as
/// [`Kind::Seconds`] takes them; `None` → `default`.
pub fn opt_seconds_arg(
    obj: Option<&Bound<'_, PyAny>>,
    what: &str,
    default: Option<Duration>,
) -> PyResult<Option<Duration>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(default);
    };
    let secs = number(obj, what, SECONDS)?;
    Duration::try_from_secs_f64(secs).map(Some).map_err(|_| {
        let expected = Kind::Seconds.expected();
        PyValueError::new_err(format!("{what}: expected {expected}, found {secs}"))
    })
}

/// A file path: `str` or `os.PathLike`.
fn path(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    if obj.cast::<PyString>().is_ok() || obj.hasattr("__fspath__")? {
        Ok(obj.extract::<PathBuf>()?.to_string_lossy().into_owned())
    } else {
        Err(type_error(obj, what, "a path (str or os.PathLike)")?)
    }
}

/// [`Kind::Pairs`] from a dict `{"deny": ["ipv4_net"]}` or a list of
/// `("deny", "ipv4_net")` pairs, read as JSON; the shapes are core's
/// (`Value::pairs_from_json`).
fn pairs(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    let json = convert::py_to_value(obj, what)?;
    Value::pairs_from_json(json).map_err(|e| match e {
        oc2mqtt::Error::Config(why) => PyTypeError::new_err(format!("{what}: {why}")),
        other => PyTypeError::new_err(format!("{what}: {other}")),
    })
}

/// `"5", "3.1.1" or "auto"`: what a choice takes, as Python writes it.
fn choices(kind: Kind) -> String {
    let Kind::Choice { values, .. } = kind else {
        return kind.expected().into_owned();
    };
    let quoted: Vec<_> = values.iter().map(|v| format!("\"{v}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// The value of the keyword argument `what`, of kind `kind`, from `obj`;
/// a `TypeError` naming `what` when Python's type does not fit.
pub fn value(obj: &Bound<'_, PyAny>, setting: &Setting, what: &str) -> PyResult<Value> {
    let texts = |v: Vec<String>| -> PyResult<Value> { Ok(Value::Texts(v)) };
    let kind = setting.kind;
    match (shape(what), kind) {
        (Shape::Urls, _) if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() => {
            texts(convert::string_list(obj, what)?)
        }
        (Shape::Urls, _) if obj.cast::<PyString>().is_err() => {
            let schemes: Vec<String> = oc2mqtt::client::BROKER_SCHEMES
                .iter()
                .map(|s| format!("{s}://"))
                .collect();
            Err(type_error(
                obj,
                what,
                &format!(
                    "a URL ({}) or a list of them",
                    oc2mqtt::settings::one_of(&schemes)
                ),
            )?)
        }
        (Shape::Urls, _) => texts(vec![convert::string_arg(obj, what)?]),
        (_, Kind::Flag) => match obj.cast::<PyBool>() {
            Ok(b) => Ok(Value::Flag(b.is_true())),
            Err(_) => Err(type_error(obj, what, "bool")?),
        },
        (_, Kind::Count { .. }) => convert::u64_arg(obj, what).map(Value::Count),
        (_, Kind::Seconds | Kind::Duration) => number(obj, what, SECONDS).map(Value::Number),
        (_, Kind::Number) => number(obj, what, "a number").map(Value::Number),
        (_, Kind::Path) => path(obj, what).map(Value::Text),
        // A lone str only where the core's table says so (`to`); elsewhere
        // (`profiles="slpf"`) it is the usual slip.
        (_, Kind::Texts) if setting.single => convert::one_or_many(obj, what).map(Value::Texts),
        (_, Kind::Texts) => texts(convert::string_list(obj, what)?),
        (_, Kind::Pairs) => pairs(obj, what),
        // `mqtt_version=5` as well as "5".
        (_, Kind::Choice { numeric: true, .. }) if is_number(obj) => {
            Ok(Value::Text(obj.str()?.to_string()))
        }
        (_, Kind::Choice { numeric: true, .. }) if obj.cast::<PyString>().is_err() => {
            Err(type_error(obj, what, &choices(kind))?)
        }
        (_, Kind::Text | Kind::Choice { .. }) => convert::string_arg(obj, what).map(Value::Text),
    }
}

/// Sets `target`'s settings from keyword arguments, in order: `(name, value)`
/// with the Python name; `None` (given or not) leaves the default.
pub fn apply<T: Settings>(
    py: Python<'_>,
    target: &mut T,
    args: &[(&str, Option<&Bound<'_, PyAny>>)],
) -> PyResult<()> {
    for &(name, obj) in args {
        let core = core_name(name);
        // Looked up even when not given: a name this binding gets wrong fails every call.
        let setting = T::setting(Spelling::Snake, core).py_err(py)?;
        let Some(obj) = obj.filter(|o| !o.is_none()) else {
            continue;
        };
        let v = value(obj, setting, name)?;
        target
            .set(Spelling::Snake, core, v)
            .map_err(|e| match e {
                // The core names the setting its way; the caller wrote `name`.
                oc2mqtt::Error::Config(why) if name != core => oc2mqtt::Error::Config(
                    why.strip_prefix(core)
                        .map_or_else(|| why.clone(), |rest| format!("{name}{rest}")),
                ),
                other => other,
            })
            .py_err(py)?;
    }
    Ok(())
}

/// `T`'s defaults with the keyword arguments applied ([`apply`]).
pub fn build<T: Settings>(
    py: Python<'_>,
    args: &[(&str, Option<&Bound<'_, PyAny>>)],
) -> PyResult<T> {
    let mut t = T::default();
    apply(py, &mut t, args)?;
    Ok(t)
}

/// `[("name", name), ...]` for [`apply`]: each argument under its own name.
macro_rules! kwargs {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), $name.into())),*]
    };
}
pub(crate) use kwargs;

/// `T`'s defaults with the keyword arguments named applied ([`build`]):
/// `keywords! { py; to, timeout }`, what a generated method writes.
macro_rules! keywords {
    ($py:expr; $($name:ident),* $(,)?) => {
        $crate::settings::build($py, &$crate::settings::kwargs![$($name),*])
    };
}
pub(crate) use keywords;

/// A setting's value as Python has it: `None`, `bool`, `int`, `float`,
/// `str`, a path (`pathlib.Path`), a list of `str`.
fn to_py<'py>(py: Python<'py>, kind: Kind, v: Option<Value>) -> PyResult<Bound<'py, PyAny>> {
    match v {
        None => Ok(py.None().into_bound(py)),
        Some(Value::Flag(b)) => b.into_bound_py_any(py),
        Some(Value::Count(n)) => n.into_bound_py_any(py),
        Some(Value::Number(x)) => x.into_bound_py_any(py),
        Some(Value::Text(t)) if kind == Kind::Path => PathBuf::from(t).into_bound_py_any(py),
        Some(Value::Text(t)) => t.into_bound_py_any(py),
        Some(Value::Texts(t)) => t.into_bound_py_any(py),
    }
}

/// The value of `target`'s setting `name` (the core's name), for a getter.
pub fn get<'py, T: Settings>(
    py: Python<'py>,
    target: &T,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let setting = T::setting(Spelling::Snake, name).py_err(py)?;
    to_py(py, setting.kind, target.get_value(setting.name))
}

/// `class(positional..., key=value, ...)`: the `positional` settings (a
/// list of one shown as its item), then every other setting that is not at
/// its default, a secret one as `<hidden>`.
pub fn repr<T: Settings>(
    py: Python<'_>,
    class: &'static str,
    target: &T,
    positional: &[&str],
) -> PyResult<String> {
    let mut r = Repr::new(py, class);
    for name in positional {
        let setting = T::setting(Spelling::Snake, name).py_err(py)?;
        let v = match target.get_value(setting.name) {
            Some(Value::Texts(mut one)) if one.len() == 1 => one.pop().map(Value::Text),
            v => v,
        };
        r = r.arg(to_py(py, setting.kind, v)?)?;
    }
    for (setting, v) in target.changed() {
        if positional.contains(&setting.name) {
            continue;
        }
        let name = py_name(setting.name);
        r = if setting.secret {
            r.raw(name, "<hidden>")
        } else {
            r.field(name, to_py(py, setting.kind, v)?)?
        };
    }
    Ok(r.finish())
}
