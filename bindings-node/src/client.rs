//! Client configuration and counters: wraps `oc2mqtt::client::{ClientConfig, Stats}`.
//!
//! The settings are the core's table's, read by [`settings`]; `url` (one
//! broker) is Node's own spelling of `brokers`.

use napi::bindgen_prelude::{Env, FromNapiValue, JsValue, Object, Unknown};

use oc2mqtt::client::{ClientConfig, Stats};
use oc2mqtt::settings::{Setting, Settings, Spelling};

use crate::convert::{self, field};
use crate::settings::{self, Known};

/// Checks a configuration's values as the core does, naming each setting
/// as JavaScript spells it (`keepAliveSecs`, not `keep_alive_secs`).
pub(crate) fn validate(c: &ClientConfig) -> oc2mqtt::Result<()> {
    c.validate_naming(|name| Spelling::Camel.spell(name).into_owned())
}

/// Reads the client settings of a role's configuration object.
///
/// Values are checked for type here; their meaning (URL syntax, ranges,
/// files) is checked by the core when connecting.
pub(crate) fn config(env: &Env, obj: &Object<'_>) -> napi::Result<ClientConfig> {
    let url = convert::opt_string(env, field(env, obj, "url")?, "config.url")?;
    let brokers = !convert::is_absent(&field(env, obj, "brokers")?)?;
    if url.is_some() == brokers {
        return Err(if brokers {
            convert::value_error(
                env,
                "The config must have either \"url\" or \"brokers\", not both",
            )
        } else {
            convert::type_error(
                env,
                "The config must have a \"url\" (string) or \"brokers\" (array of strings)",
            )
        });
    }
    let mut c = ClientConfig::default();
    settings::apply(env, obj, "config", &mut c)?;
    if let Some(url) = url {
        c.brokers = vec![url];
    }
    Ok(c)
}

/// The configuration object of a role: an object whose keys are the client
/// settings, `url`, and `extra`.
pub(crate) fn config_object<'a>(
    env: &Env,
    v: Unknown<'a>,
    extra: &[&str],
) -> napi::Result<Object<'a>> {
    config_object_with(env, v, &[], extra)
}

/// [`config_object`] of a role that takes the settings of `tables` too (a consumer's).
pub(crate) fn config_object_with<'a>(
    env: &Env,
    v: Unknown<'a>,
    tables: &[&'static [Setting]],
    extra: &[&str],
) -> napi::Result<Object<'a>> {
    const WHAT: &str = "\"config\" argument";
    let obj = convert::object(env, v, WHAT)?;
    let mut all = vec![ClientConfig::SETTINGS];
    all.extend_from_slice(tables);
    let known = Known {
        first: &["url"],
        tables: &all,
        last: extra,
    };
    settings::check_keys(env, &obj, WHAT, &known)?;
    Ok(obj)
}

/// Counters as a plain object (`mqttVersion`: `'5'`, `'3.1.1'`, or null
/// before the first connection).
pub(crate) fn stats_to_js<'e>(env: &'e Env, s: &Stats) -> napi::Result<Object<'e>> {
    let v = convert::core_to_js(env, s)?;
    // SAFETY: `Stats` serializes as a struct, so `v` is a plain object of this env.
    unsafe { Object::from_napi_value(env.raw(), v.raw()) }
}
