//! liboc2mqtt: the C library of oc2mqtt.
//!
//! This crate holds conversions only (C types to and from the `oc2mqtt`
//! crate); every OpenC2 rule lives in core. Conventions follow rustls-ffi:
//! `oc2_<type>_<verb>` symbols, opaque handles, result codes, outputs last,
//! every body inside a panic boundary. The C documentation is the generated
//! header `include/oc2mqtt.h`; its preamble (in `cbindgen.toml`) states the
//! ownership rules.
//!
//! Layers, each using only those above it:
//! - `error.rs`: the result codes and the one mapping of core errors to
//!   them (`Failure`); it uses nothing else of this crate.
//! - `ffi.rs`: what every entry point goes through: the one panic boundary
//!   (`guard`, `guard_free`), the one null check and pointer reading
//!   (`try_ref`, `try_mut`, `try_opt_ref`, `try_out`, `try_cstr`, ...),
//!   `LastError::fail` (a failure's text kept, its code returned) and the
//!   handles C owns (`box_handle!`: only those are made by `to_c` and
//!   freed by `free_box`).
//! - `settings.rs`: options by name through core's settings table; every
//!   typed setter is one `set_by_name!` line.
//! - the handle files (`config.rs`, `consumer.rs`, ...) and `library.rs`
//!   (result texts, versions).

// The C caller upholds the pointer contracts documented on each function;
// marking every entry point `unsafe` would add nothing for a C caller.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
// C names (`oc2_message`) are the public contract of this crate.
#![allow(non_camel_case_types)]

// Declaration order is the order of the generated header.
mod client;
mod codec;
mod config;
mod consumer;
mod correlate;
mod dedup;
mod error;
mod events;
mod ffi;
mod library;
mod message;
mod monitor;
mod producer;
mod rules;
mod settings;
mod topics;

pub use client::{OC2_WAIT_FOREVER, oc2_stats};
pub use codec::*;
pub use config::*;
pub use consumer::*;
pub use correlate::*;
pub use dedup::*;
pub use error::*;
pub use events::*;
pub use ffi::{oc2_bytes, oc2_str, oc2_strings};
pub use library::*;
pub use message::*;
pub use monitor::*;
pub use producer::*;
pub use rules::*;
pub use topics::*;
