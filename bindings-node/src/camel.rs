//! Node's one converter of the core's serde types: a serde `Serializer`
//! that passes everything through to another one (JSON text, or a
//! `serde_json::Value`) but spells struct field names in camel case
//! (`request_id` → `requestId`). Struct fields are the core's names; maps
//! are data (a message's headers and body, whose keys must stay as sent),
//! so map keys are left as they are. It also notes integers beyond
//! ±(2^53 - 1), which `JSON.parse` would round, and writes bytes as `null`
//! (JSON has none; a caller sets them as a `Buffer`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

use crate::convert::MAX_SAFE;
use oc2mqtt::settings::Spelling;

/// `inner` with struct field names in camel case; `exact` turns false when
/// an integer beyond ±(2^53 - 1) goes through.
pub(crate) struct Camel<'a, S> {
    inner: S,
    exact: &'a Cell<bool>,
}

impl<'a, S> Camel<'a, S> {
    pub(crate) fn new(inner: S, exact: &'a Cell<bool>) -> Self {
        Self { inner, exact }
    }
}

/// A value serialized through [`Camel`].
struct Wrap<'a, T: ?Sized>(&'a T, &'a Cell<bool>);

impl<T: Serialize + ?Sized> Serialize for Wrap<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Camel::new(s, self.1))
    }
}

thread_local! {
    /// Field names are few and `'static`: each camel spelling is made once.
    static SPELT: RefCell<HashMap<&'static str, &'static str>> = RefCell::new(HashMap::new());
}

/// `name` in camel case, as a `'static` name (serde's struct fields are).
fn camel(name: &'static str) -> &'static str {
    if !name.contains('_') {
        return name;
    }
    SPELT.with(|m| {
        *m.borrow_mut().entry(name).or_insert_with(|| {
            // Leaked once per distinct field name of the core's types: a bounded set.
            Box::leak(Spelling::Camel.spell(name).into_owned().into_boxed_str())
        })
    })
}

impl<S> Camel<'_, S> {
    fn check(&self, magnitude: u128) {
        if magnitude > u128::from(MAX_SAFE) {
            self.exact.set(false);
        }
    }
}

macro_rules! forward {
    ($($f:ident($t:ty)),* $(,)?) => {
        $(fn $f(self, v: $t) -> Result<Self::Ok, Self::Error> {
            self.inner.$f(v)
        })*
    };
}

impl<'a, S: Serializer> Serializer for Camel<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Camel<'a, S::SerializeSeq>;
    type SerializeTuple = Camel<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Camel<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Camel<'a, S::SerializeTupleVariant>;
    type SerializeMap = Camel<'a, S::SerializeMap>;
    type SerializeStruct = Camel<'a, S::SerializeStruct>;
    type SerializeStructVariant = Camel<'a, S::SerializeStructVariant>;

    forward!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
    );

    /// Bytes are no JSON: `null`, for the caller to set as a `Buffer`.
    fn serialize_bytes(self, _: &[u8]) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }

    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.check(u128::from(v.unsigned_abs()));
        self.inner.serialize_i64(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.check(u128::from(v));
        self.inner.serialize_u64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.check(v.unsigned_abs());
        self.inner.serialize_i128(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.check(v);
        self.inner.serialize_u128(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&Wrap(v, self.exact))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_struct(name, &Wrap(v, self.exact))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_variant(name, index, variant, &Wrap(v, self.exact))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(Camel::new(self.inner.serialize_seq(len)?, self.exact))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        Ok(Camel::new(self.inner.serialize_tuple(len)?, self.exact))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Ok(Camel::new(
            self.inner.serialize_tuple_struct(name, len)?,
            self.exact,
        ))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Ok(Camel::new(
            self.inner
                .serialize_tuple_variant(name, index, variant, len)?,
            self.exact,
        ))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(Camel::new(self.inner.serialize_map(len)?, self.exact))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Ok(Camel::new(
            self.inner.serialize_struct(name, len)?,
            self.exact,
        ))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Ok(Camel::new(
            self.inner
                .serialize_struct_variant(name, index, variant, len)?,
            self.exact,
        ))
    }
}

/// The compound serializers: each element or value goes through [`Camel`].
macro_rules! elements {
    ($($tr:ident :: $f:ident),* $(,)?) => {
        $(impl<S: $tr> $tr for Camel<'_, S> {
            type Ok = S::Ok;
            type Error = S::Error;
            fn $f<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
                self.inner.$f(&Wrap(v, self.exact))
            }
            fn end(self) -> Result<S::Ok, S::Error> {
                self.inner.end()
            }
        })*
    };
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl<S: SerializeMap> SerializeMap for Camel<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), S::Error> {
        // Data: as it is.
        self.inner.serialize_key(&Wrap(k, self.exact))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
        self.inner.serialize_value(&Wrap(v, self.exact))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeStruct> SerializeStruct for Camel<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        self.inner.serialize_field(camel(key), &Wrap(v, self.exact))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(camel(key))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeStructVariant> SerializeStructVariant for Camel<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        self.inner.serialize_field(camel(key), &Wrap(v, self.exact))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(camel(key))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Event {
        map: serde_json::Value,
        big: u64,
    }

    impl Serialize for Event {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_struct("Event", 3)?;
            m.serialize_field("request_id", "r1")?;
            m.serialize_field("message", &self.map)?;
            m.serialize_field("missing_count", &self.big)?;
            m.end()
        }
    }

    fn to_value(e: &Event) -> (serde_json::Value, bool) {
        let exact = Cell::new(true);
        let v = e
            .serialize(Camel::new(serde_json::value::Serializer, &exact))
            .expect("serializes to a JSON value");
        (v, exact.get())
    }

    #[test]
    fn struct_fields_are_camel_case_and_map_keys_stay_as_sent() {
        let e = Event {
            map: json!({"request_id": "x", "nested": {"response_requested": "none"}}),
            big: 3,
        };
        let (v, exact) = to_value(&e);
        assert_eq!(
            v,
            json!({"requestId": "r1", "message": {"request_id": "x", "nested": {"response_requested": "none"}}, "missingCount": 3})
        );
        assert!(exact);
    }

    #[test]
    fn integers_beyond_what_json_parse_keeps_are_noted() {
        let e = Event {
            map: json!({"n": 1u64 << 60}),
            big: 0,
        };
        assert!(!to_value(&e).1);
        let e = Event {
            map: json!({"n": -(1i64 << 60)}),
            big: MAX_SAFE,
        };
        assert!(!to_value(&e).1);
        let e = Event {
            map: json!({"n": -(MAX_SAFE as i64)}),
            big: MAX_SAFE,
        };
        assert!(to_value(&e).1);
    }
}
