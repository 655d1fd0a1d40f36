//! Options objects in, the core's settings out: wraps `oc2mqtt::settings`.
//!
//! One converter per [`Kind`] turns a property into a [`Value`] with Node's
//! error texts (`The config.keepAliveSecs must be of type number. Received
//! type string`); the core's table gives the names (in camel case), the kinds
//! and the defaults, and checks the values. So a configuration object is read
//! by looping over its properties, and a new setting in the core needs nothing
//! here. The binding's own properties (`url`, `id`, `signal`, `filter`,
//! `pairingWindowMs`) are its callers'.

use std::borrow::Cow;

use napi::bindgen_prelude::{Env, Object, Unknown, ValueType};

use oc2mqtt::settings::{Kind, Setting, Settings, Spelling, Value};

use crate::convert::{self, MAX_SAFE, field};
use crate::error::OrThrow;

/// The properties an options object takes: the binding's own listed first
/// (`url`), the settings of core tables, then the binding's own listed last
/// (`id`, `signal`); errors list them in that order.
pub(crate) struct Known<'a> {
    pub(crate) first: &'a [&'a str],
    pub(crate) tables: &'a [&'static [Setting]],
    pub(crate) last: &'a [&'a str],
}

impl Known<'_> {
    fn settings(&self) -> impl Iterator<Item = &'static Setting> + '_ {
        self.tables.iter().flat_map(|t| t.iter())
    }

    fn has(&self, key: &str) -> bool {
        self.first.contains(&key)
            || self.last.contains(&key)
            || self
                .settings()
                .any(|s| Spelling::Camel.matches(s.name, key))
    }

    fn list(&self) -> String {
        let own = |keys: &[&str]| keys.iter().map(|k| Cow::Owned(k.to_string())).collect();
        let mut names: Vec<Cow<'_, str>> = own(self.first);
        names.extend(self.settings().map(|s| Spelling::Camel.spell(s.name)));
        names.extend(own(self.last));
        names.join(", ")
    }
}

/// Refuses a property `known` does not list, so that a typo (`keepalive`)
/// is an error rather than a silently ignored setting.
pub(crate) fn check_keys(
    env: &Env,
    obj: &Object<'_>,
    what: &str,
    known: &Known<'_>,
) -> napi::Result<()> {
    unknown(env, &Object::keys(obj)?, what, known)
}

fn unknown(env: &Env, keys: &[String], what: &str, known: &Known<'_>) -> napi::Result<()> {
    for key in keys {
        if !known.has(key) {
            return Err(convert::value_error(
                env,
                &format!(
                    "The {what} has an unknown property \"{key}\"; known properties: {}",
                    known.list()
                ),
            ));
        }
    }
    Ok(())
}

/// Sets `target`'s settings from the properties of `obj` its table knows
/// (the others are the caller's). `path` names the object in errors
/// (`config` → `config.keepAliveSecs`).
pub(crate) fn apply<T: Settings>(
    env: &Env,
    obj: &Object<'_>,
    path: &str,
    target: &mut T,
) -> napi::Result<()> {
    apply_keys(env, obj, &Object::keys(obj)?, path, target)
}

fn apply_keys<T: Settings>(
    env: &Env,
    obj: &Object<'_>,
    keys: &[String],
    path: &str,
    target: &mut T,
) -> napi::Result<()> {
    for key in keys {
        if T::SETTINGS
            .iter()
            .any(|s| Spelling::Camel.matches(s.name, key))
        {
            set(env, target, key, field(env, obj, key)?, path)?;
        }
    }
    Ok(())
}

/// Sets the setting JavaScript calls `key` from `v`; `undefined` and `null`
/// leave it as it is. Whether it was set. `path` names the object in errors
/// (`config` → `config.keepAliveSecs`).
pub(crate) fn set<T: Settings>(
    env: &Env,
    target: &mut T,
    key: &str,
    v: Unknown<'_>,
    path: &str,
) -> napi::Result<bool> {
    set_as(env, target, key, v, &format!("{path}.{key}"))
}

/// [`set`], naming the property `what` in errors (a property whose name is
/// not the setting's, as [`pick`] reads).
fn set_as<T: Settings>(
    env: &Env,
    target: &mut T,
    key: &str,
    v: Unknown<'_>,
    what: &str,
) -> napi::Result<bool> {
    if convert::is_absent(&v)? {
        return Ok(false);
    }
    let setting = T::setting(Spelling::Camel, key).or_throw(env)?;
    let value = value(env, setting, v, what)?;
    let number = match value {
        Value::Number(n) => Some(n),
        _ => None,
    };
    target
        .set(Spelling::Camel, key, value)
        .map_err(|e| match (e, number) {
            // A number the core refuses is out of its kind's range: Node's RangeError.
            (oc2mqtt::Error::Config(_), Some(n)) => convert::range_error(
                env,
                &format!(
                    "The {what} must be {}. Received {}",
                    setting.kind.expected(),
                    js_number(n)
                ),
            ),
            // The core's reason, after the key it starts with: "unknown peer 'x'; expected ...".
            (oc2mqtt::Error::Config(why), None) => {
                let reason = why.strip_prefix(key).and_then(|r| r.strip_prefix(": "));
                convert::value_error(
                    env,
                    &format!("The {what} is invalid: {}", reason.unwrap_or(&why)),
                )
            }
            (other, _) => crate::error::throw(env, &other),
        })?;
    Ok(true)
}

/// The settings of `T` an options argument gives among `keys`, each
/// `(property, setting)` as JavaScript spells them (`('prefix',
/// 'topicPrefix')` where a property predates the setting's name); other
/// properties are ignored. `None` when the argument is absent.
pub(crate) fn pick<T: Settings>(
    env: &Env,
    options: Unknown<'_>,
    keys: &[(&str, &str)],
) -> napi::Result<Option<T>> {
    let Some(obj) = convert::opt_object(env, options, "\"options\" argument")? else {
        return Ok(None);
    };
    let mut out = T::default();
    for (prop, key) in keys {
        set_as(
            env,
            &mut out,
            key,
            field(env, &obj, prop)?,
            &format!("options.{prop}"),
        )?;
    }
    Ok(Some(out))
}

/// An options argument read into `T` (its defaults when absent), refusing
/// properties neither `T`'s table nor `extra` lists.
pub(crate) fn options<T: Settings>(env: &Env, v: Unknown<'_>, extra: &[&str]) -> napi::Result<T> {
    const WHAT: &str = "\"options\" argument";
    let mut out = T::default();
    if let Some(obj) = convert::opt_object(env, v, WHAT)? {
        let known = Known {
            first: &[],
            tables: &[T::SETTINGS],
            last: extra,
        };
        // Read once: a send's options are read on every send.
        let keys = Object::keys(&obj)?;
        unknown(env, &keys, WHAT, &known)?;
        apply_keys(env, &obj, &keys, "options", &mut out)?;
    }
    Ok(out)
}

/// A JavaScript number as JavaScript prints it in messages.
fn js_number(n: f64) -> String {
    match n {
        f64::INFINITY => "Infinity".to_owned(),
        f64::NEG_INFINITY => "-Infinity".to_owned(),
        n => n.to_string(),
    }
}

/// `v` as a value of `setting`'s kind, or Node's error naming `what`.
fn value(env: &Env, setting: &Setting, v: Unknown<'_>, what: &str) -> napi::Result<Value> {
    let is = |t: ValueType| v.get_type().map(|vt| vt == t);
    Ok(match setting.kind {
        Kind::Flag => Value::Flag(convert::opt_bool(env, v, what)?.unwrap_or_default()),
        Kind::Count { max, .. } => Value::Count(convert::uint(env, v, what, max.min(MAX_SAFE))?),
        // JavaScript's unit of time is the millisecond (`setTimeout`).
        Kind::Duration => Value::Number(convert::uint(env, v, what, MAX_SAFE)? as f64 / 1000.0),
        // The core checks the range (finite, and not negative or greater than 0).
        Kind::Seconds | Kind::Number => Value::Number(convert::number(env, &v, what)?),
        Kind::Text | Kind::Path => Value::Text(convert::string(env, v, what)?),
        // Pairs have their JavaScript shape: `[[action, target], ...]` or `{ action: [targets] }`.
        Kind::Pairs => pairs(env, v, what)?,
        Kind::Texts if setting.single && is(ValueType::String)? => {
            Value::Text(convert::string(env, v, what)?)
        }
        Kind::Texts if setting.single => Value::Texts(convert::string_list(
            env,
            v,
            &format!("{what} (a string or an array of strings)"),
        )?),
        Kind::Texts => Value::Texts(convert::string_list(env, v, what)?),
        Kind::Choice { numeric: true, .. } if is(ValueType::Number)? => {
            Value::Count(convert::uint(env, v, what, MAX_SAFE)?)
        }
        Kind::Choice { .. } => Value::Text(convert::string(env, v, what)?),
    })
}

/// [`Kind::Pairs`] from `[[action, target], ...]` or `{ action: [targets] }`,
/// read as JSON; the shapes are core's (`Value::pairs_from_json`).
fn pairs(env: &Env, v: Unknown<'_>, what: &str) -> napi::Result<Value> {
    Value::pairs_from_json(convert::json(env, v, what)?).map_err(|e| {
        let why = match e {
            oc2mqtt::Error::Config(why) => why,
            other => other.to_string(),
        };
        convert::type_error(env, &format!("The {what} has the wrong shape: {why}"))
    })
}
