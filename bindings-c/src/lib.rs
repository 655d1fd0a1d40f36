//! liboc2mqtt: the C library of oc2mqtt.
//!
//! This crate holds conversions only (C types to and from the `oc2mqtt`
//! crate); every OpenC2 rule lives in core. Conventions follow rustls-ffi:
//! `oc2_<type>_<verb>` symbols, opaque handles, result codes, outputs last,
//! every body inside a panic boundary. The C documentation is the generated
//! header `include/oc2mqtt.h`; its preamble (in `cbindgen.toml`) states the
//! ownership rules.

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
mod message;
mod monitor;
mod producer;
mod rules;
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
pub use message::*;
pub use monitor::*;
pub use producer::*;
pub use rules::*;
pub use topics::*;
