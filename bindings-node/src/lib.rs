//! Node.js binding of oc2mqtt: the npm package `oc2mqtt`.
//!
//! Conversions only. Each module mirrors a core module (`codec.rs` wraps
//! `oc2mqtt::codec`, `producer.rs` wraps `oc2mqtt::producer`, and so on);
//! OpenC2 logic stays in the core. Arguments arrive as `Unknown` and are
//! checked in [`convert`], so that a wrong type is a `TypeError` naming the
//! argument rather than napi's generic `InvalidArg` error; options objects
//! are read through the core's settings tables in [`settings`]; results and
//! events go out as the core's serde types, through [`camel`] (camel-case
//! names) and one `JSON.parse` in [`convert::core_to_js`]. Every core error
//! becomes an `Error` with a stable `code` in [`error`], the one place that
//! maps them. Network work runs on one tokio thread of the binding's; [`runtime`]
//! settles Promises from there, converting results on the JavaScript thread.
//! The JavaScript layer in `index.js` adds what is JavaScript by nature:
//! async iteration, `AbortSignal`, `Symbol.asyncDispose`, the roles'
//! `EventEmitter` side and `setLogger`.

// napi-rs registers the `#[napi]` exports only outside `cfg(test)`, so a test
// build (what `clippy --all-targets` checks) sees them as never used.
#![cfg_attr(test, allow(dead_code))]

mod camel;
mod client;
mod codec;
mod consumer;
mod convert;
mod correlate;
mod dedup;
mod error;
mod events;
mod later;
mod monitor;
mod producer;
mod rules;
mod runtime;
mod settings;
mod topics;
