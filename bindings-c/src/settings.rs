//! Settings by name, through core's table (`oc2::settings`): how every
//! setter of `oc2_config_builder` and `oc2_consumer_options` converts.
//!
//! The generic setters (`oc2_config_builder_set`, `oc2_consumer_options_set`)
//! take a name and text; the typed ones hand their C argument over as a
//! typed `Value` through [`set_by_name!`]: one line naming the setting, the
//! C type doing the conversion ([`CArg`]). Names, kinds, checks and error
//! texts are core's; this file only knows C types.

use std::ffi::c_char;

use oc2::settings::{Settings, Spelling, Value};

use crate::error::{Failure, oc2_result};
use crate::ffi::{
    LastError, Outcome, try_cstr, try_mut, try_opt_cstr, try_out, try_ref, write_text,
};

/// What one C argument does to its setting.
pub(crate) enum Change {
    /// Sets it to this value.
    Set(Value),
    /// Puts it back to its default (unset, for an optional one).
    Unset,
    /// Appends this text to a list setting.
    Add(String),
}

/// A C argument of a typed setter, converted to a [`Change`] before anything changes.
pub(crate) trait CArg {
    fn change(self) -> Result<Change, oc2_result>;
}

impl CArg for bool {
    fn change(self) -> Result<Change, oc2_result> {
        Ok(Change::Set(Value::Flag(self)))
    }
}

macro_rules! count_arg {
    ($($t:ty),+) => {$(
        impl CArg for $t {
            fn change(self) -> Result<Change, oc2_result> {
                Ok(Change::Set(Value::Count(self as u64)))
            }
        }
    )+};
}
count_arg!(u8, u32, u64, usize);

impl CArg for f64 {
    fn change(self) -> Result<Change, oc2_result> {
        Ok(Change::Set(Value::Number(self)))
    }
}

/// A required NUL-terminated UTF-8 string.
impl CArg for *const c_char {
    fn change(self) -> Result<Change, oc2_result> {
        Ok(Change::Set(Value::Text(try_cstr(self)?.to_owned())))
    }
}

/// A conversion made by a function (an `OC2_*` constant to its choice).
impl CArg for Result<Change, oc2_result> {
    fn change(self) -> Result<Change, oc2_result> {
        self
    }
}

/// A string that may be NULL: NULL puts the setting back to its default.
pub(crate) struct OrDefault(pub *const c_char);

impl CArg for OrDefault {
    fn change(self) -> Result<Change, oc2_result> {
        Ok(match try_opt_cstr(self.0)? {
            Some(text) => Change::Set(Value::Text(text.to_owned())),
            None => Change::Unset,
        })
    }
}

/// A number whose 0 puts the setting back to its default (none).
pub(crate) struct ZeroIsDefault<T>(pub T);

impl<T: CArg + Default + PartialEq> CArg for ZeroIsDefault<T> {
    fn change(self) -> Result<Change, oc2_result> {
        if self.0 == T::default() {
            Ok(Change::Unset)
        } else {
            self.0.change()
        }
    }
}

/// Milliseconds, C's unit for a span of time, for a setting in seconds.
#[derive(Default, PartialEq)]
pub(crate) struct Millis(pub u64);

impl CArg for Millis {
    fn change(self) -> Result<Change, oc2_result> {
        Ok(Change::Set(Value::Number(self.0 as f64 / 1000.0)))
    }
}

/// A string appended to a list setting.
pub(crate) struct Append(pub *const c_char);

impl CArg for Append {
    fn change(self) -> Result<Change, oc2_result> {
        Ok(Change::Add(try_cstr(self.0)?.to_owned()))
    }
}

/// A C object that carries settings, and where its last error goes.
pub(crate) trait Holder {
    type Settings: Settings + Clone;
    fn parts(&mut self) -> (&mut Self::Settings, &mut LastError);
    fn settings(&self) -> &Self::Settings;
}

fn change<S: Settings>(s: &mut S, name: &str, change: Change) -> oc2::Result<()> {
    match change {
        Change::Set(v) => s.set(Spelling::Snake, name, v),
        Change::Unset => s.unset(Spelling::Snake, name),
        Change::Add(t) => {
            let mut list = match s.get(Spelling::Snake, name)? {
                Some(Value::Texts(list)) => list,
                _ => Vec::new(),
            };
            list.push(t);
            s.set(Spelling::Snake, name, Value::Texts(list))
        }
    }
}

/// Applies a typed setter's changes, all or none. A value core refuses is
/// `OC2_RESULT_INVALID_ARGUMENT` (the argument is out of its documented
/// range), with core's text in the holder's last error.
pub(crate) fn apply<H: Holder, const N: usize>(
    holder: &mut H,
    changes: [(&str, Change); N],
) -> Outcome {
    let (settings, last_error) = holder.parts();
    last_error.clear();
    let mut next = settings.clone();
    for (name, c) in changes {
        change(&mut next, name, c).map_err(|e| match last_error.fail(&e) {
            oc2_result::OC2_RESULT_CONFIG => oc2_result::OC2_RESULT_INVALID_ARGUMENT,
            code => code,
        })?;
    }
    *settings = next;
    Ok(())
}

/// The generic setter: the setting called `name` (snake case) from `value`
/// as text; an unknown name or a value that does not fit is
/// `OC2_RESULT_CONFIG` with core's text in the holder's last error.
pub(crate) fn set_text<H: Holder>(
    handle: *mut H,
    name: *const c_char,
    value: *const c_char,
) -> Outcome {
    let (settings, last_error) = try_mut(handle)?.parts();
    last_error.clear();
    let name = try_cstr(name)?;
    let value = try_cstr(value)?;
    settings
        .set_text(Spelling::Snake, name, value)
        .map_err(|e| last_error.fail(&e))
}

/// The generic getter: the setting called `name` as text (lists joined by
/// commas) into the caller's buffer. `OC2_RESULT_ABSENT` when it is unset
/// or secret (a password is never read back); `OC2_RESULT_CONFIG` for an
/// unknown name.
pub(crate) fn get_text<H: Holder>(
    handle: *const H,
    name: *const c_char,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> Outcome {
    let settings = try_ref(handle)?.settings();
    let name = try_cstr(name)?;
    try_out(written)?;
    let setting = H::Settings::setting(Spelling::Snake, name).map_err(|e| e.code())?;
    match settings.get(Spelling::Snake, name) {
        Ok(Some(v)) if !setting.secret => write_text(&v.to_string(), buf, len, written),
        Ok(_) => Err(oc2_result::OC2_RESULT_ABSENT),
        Err(e) => Err(e.code()),
    }
}

/// The whole body of a typed setter: `set_by_name!(handle; "keep_alive_secs" = seconds)`.
/// The handle is checked first, then each argument is converted by its
/// type's [`CArg`] (a NULL or a non-UTF-8 string fails before anything
/// changes), then [`apply`] sets them in order.
macro_rules! set_by_name {
    ($handle:expr; $($name:literal = $arg:expr),+ $(,)?) => {
        $crate::ffi::guard(|| {
            let holder = $crate::ffi::try_mut($handle)?;
            let changes = [$(($name, $crate::settings::CArg::change($arg)?)),+];
            $crate::settings::apply(holder, changes)
        })
    };
}
pub(crate) use set_by_name;
