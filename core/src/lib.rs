//! # oc2mqtt
//!
//! OpenC2 command and control over MQTT (the OASIS "Specification for
//! Transfer of OpenC2 Messages via MQTT", v1.0).
//!
//! The sans-IO half does no I/O, holds no thread and reads no clock it was
//! not given, so any MQTT client can use it:
//! - [`message`]: the message model and its validation;
//! - [`codec`]: JSON/CBOR in the spec, otupy and bare dialects, with MQTT properties;
//! - [`topics`]: subscriptions, command and response topics, filter matching;
//! - [`correlate`]: matching responses to commands;
//! - [`dedup`]: dropping duplicates;
//! - [`rules`]: a consumer's OpenC2 rules (a command in, the responses out).
//!
//! With the `client` feature, [`settings`] describes every setting the
//! bindings take (name, kind, meaning) once, for their generic converters.
//!
//! ```
//! use oc2mqtt::{codec, topics::Topics};
//! use oc2mqtt::message::{Command, Message, Target};
//!
//! let cmd = Command::new("query", Target::features(["versions"])).unwrap();
//! let msg = Message::request(cmd).from("producer-1").to(["fw-1"]);
//! let (payload, props) = codec::encode(&msg, codec::Encoding::Json, codec::Dialect::Spec).unwrap();
//! let topics = Topics::new().command_topics(&msg).unwrap();
//! assert_eq!(topics, ["oc2/cmd/device/fw-1"]);
//! assert_eq!(props.content_type.as_deref(), Some("application/openc2"));
//! assert_eq!(codec::decode(&payload, Some(&props)).unwrap().message, msg);
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

#[cfg(feature = "client")]
pub mod client;
pub mod codec;
#[cfg(feature = "client")]
pub mod consumer;
pub mod correlate;
pub mod dedup;
pub mod error;
mod fastpath;
#[cfg(feature = "client")]
pub mod journal;
pub mod message;
#[cfg(feature = "client")]
pub mod monitor;
#[cfg(feature = "client")]
pub mod producer;
pub mod rules;
#[cfg(feature = "client")]
pub mod settings;
mod strict;
pub mod topics;

pub use codec::{Decoded, Dialect, Encoding, PublishProperties, decode, encode};
pub use correlate::{Correlator, Expect};
pub use dedup::{DedupKey, Deduplicator};
pub use error::{Error, MessageError, MessageErrorKind, Result};
pub use message::{Body, Command, Headers, Message, MsgType, Response, Target};

/// Locks `m`, going on if a panic poisoned it: a panic while holding one of
/// the crate's locks cannot leave its tables inconsistent in a way that
/// matters more than to keep serving.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
