//! The native module `oc2mqtt._native`: conversions between Python and the
//! `oc2mqtt` core. Files mirror the core's modules; none holds OpenC2 logic.
//! The public API is the `oc2mqtt` package (python/oc2mqtt/__init__.py).

use pyo3::prelude::*;

mod aio;
mod cli;
mod client;
mod codec;
mod consumer;
mod convert;
mod correlate;
mod dedup;
mod errors;
mod logging;
mod monitor;
mod producer;
mod pyser;
mod repr;
mod rules;
mod settings;
mod shutdown;
mod topics;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The logging bridge is installed by the first client (or `refresh_logging`),
    // not here: `python -m oc2mqtt` imports this module and then runs the
    // command line, which installs its own logging.
    shutdown::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // For `_serve.py`'s asyncio loop: the core's limit, not a copy.
    m.setattr(
        "_CONCURRENT_HANDLERS",
        oc2mqtt::consumer::CONCURRENT_HANDLERS,
    )?;
    // For `otupy.py`: what core knows of otupy's transfer, and the MQTT Content Type.
    m.setattr(
        "_OTUPY_MESSAGE_EXPIRY_SECS",
        oc2mqtt::topics::otupy::MESSAGE_EXPIRY_SECS,
    )?;
    m.setattr("_CONTENT_TYPE", oc2mqtt::codec::CONTENT_TYPE)?;
    m.add_function(wrap_pyfunction!(topics::_otupy_client_id, m)?)?;
    m.add_function(wrap_pyfunction!(topics::_otupy_wire, m)?)?;
    m.add_function(wrap_pyfunction!(client::_broker_url, m)?)?;
    errors::register(m)?;
    m.add_class::<codec::PyDecoded>()?;
    m.add_function(wrap_pyfunction!(codec::decode, m)?)?;
    m.add_function(wrap_pyfunction!(codec::encode, m)?)?;
    m.add_function(wrap_pyfunction!(codec::request, m)?)?;
    m.add_function(wrap_pyfunction!(codec::response_to, m)?)?;
    m.add_class::<topics::PyTopics>()?;
    m.add_function(wrap_pyfunction!(topics::subscriptions, m)?)?;
    m.add_function(wrap_pyfunction!(topics::command_topics, m)?)?;
    m.add_function(wrap_pyfunction!(topics::response_topics, m)?)?;
    m.add_function(wrap_pyfunction!(topics::topic_matches, m)?)?;
    m.add_function(wrap_pyfunction!(topics::validate_id, m)?)?;
    m.add_class::<correlate::PyCorrelator>()?;
    m.add_class::<correlate::PyOutcome>()?;
    m.add_class::<correlate::PyClosed>()?;
    m.add_class::<dedup::PyDeduplicator>()?;
    rules::register(m)?;
    m.add_class::<client::PyClientConfig>()?;
    m.add_class::<producer::PyProducer>()?;
    m.add_class::<producer::PyExchange>()?;
    m.add_class::<producer::PyReply>()?;
    m.add_class::<producer::PySummary>()?;
    m.add_class::<consumer::PyConsumer>()?;
    m.add_class::<consumer::PyIncoming>()?;
    m.add_class::<monitor::PyMonitor>()?;
    m.add_class::<monitor::PyMonitorEvent>()?;
    m.add_class::<aio::PyConnecting>()?;
    m.add_function(wrap_pyfunction!(cli::_cli, m)?)?;
    m.add_function(wrap_pyfunction!(logging::refresh_logging, m)?)?;
    m.add_function(wrap_pyfunction!(logging::_emit_log, m)?)?;
    Ok(())
}
