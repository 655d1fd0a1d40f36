//! Core `tracing` events reach Python's `logging` under the `oc2mqtt` logger.
//!
//! tracing's `log` feature turns events into `log` records when no tracing
//! subscriber is installed (none is, in the extension); this `log::Log`
//! hands them to `logging.getLogger("oc2mqtt.<module>")`. The effective level
//! of each logger is cached so that a disabled event costs no GIL; call
//! `refresh_logging()` after changing levels (clients do it when they start).
//! It never blocks interpreter shutdown: it skips events it cannot deliver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

struct PyLogger {
    /// Effective level per target, learnt from Python on first use.
    levels: RwLock<HashMap<String, LevelFilter>>,
}

static LOGGER: LazyLock<PyLogger> = LazyLock::new(|| PyLogger {
    levels: RwLock::new(HashMap::new()),
});

/// The Python logger name for a Rust target: `oc2mqtt::client` → `oc2mqtt.client`;
/// dependencies go under `oc2mqtt.` too so one logger controls everything.
fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    if dotted == "oc2mqtt" || dotted.starts_with("oc2mqtt.") {
        dotted
    } else {
        format!("oc2mqtt.{dotted}")
    }
}

fn py_level(level: Level) -> u32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

fn filter_of(py_level: u32) -> LevelFilter {
    match py_level {
        0..=5 => LevelFilter::Trace,
        6..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        31..=40 => LevelFilter::Error,
        _ => LevelFilter::Off,
    }
}

impl PyLogger {
    fn cached(&self, target: &str) -> Option<LevelFilter> {
        self.levels.read().ok().and_then(|m| m.get(target).copied())
    }

    /// Looks up the Python logger for `target` and caches its effective level.
    fn learn<'py>(&self, py: Python<'py>, target: &str) -> PyResult<(String, Bound<'py, PyAny>)> {
        let name = logger_name(target);
        let logger = py
            .import("logging")?
            .getattr("getLogger")?
            .call1((&name,))?;
        let effective: u32 = logger.call_method0("getEffectiveLevel")?.extract()?;
        if let Ok(mut m) = self.levels.write() {
            m.insert(target.to_owned(), filter_of(effective));
        }
        Ok((name, logger))
    }

    fn emit(&self, py: Python<'_>, record: &Record<'_>) -> PyResult<()> {
        let (name, logger) = self.learn(py, record.target())?;
        let level = py_level(record.level());
        if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
            return Ok(());
        }
        let py_record = logger.call_method1(
            "makeRecord",
            (
                &name,
                level,
                record.file().unwrap_or("<rust>"),
                record.line().unwrap_or(0),
                record.args().to_string(),
                PyTuple::empty(py),
                py.None(),
            ),
        )?;
        logger.call_method1("handle", (py_record,))?;
        Ok(())
    }
}

impl Log for PyLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.cached(metadata.target())
            .is_none_or(|f| metadata.level() <= f)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Never wait on (or panic in) an interpreter that is shutting down.
        let _ = crate::shutdown::attach(|py| {
            let pending = PyErr::take(py);
            if let Err(e) = self.emit(py, record) {
                // A broken handler must not break the network thread; Python reports it.
                e.write_unraisable(py, None);
            }
            if let Some(e) = pending {
                e.restore(py);
            }
        });
    }

    fn flush(&self) {}
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the bridge (once per process; a second call is harmless).
pub fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    if log::set_logger(&*LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Trace);
    }
}

/// Whether the bridge was installed (a client was made): then the command
/// line, which installs its own logging, cannot run in this process.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::SeqCst)
}

/// Forgets the cached logger levels, so that level changes made with
/// `logging` since the last event take effect. Installs the bridge first:
/// every client calls this when it starts.
#[pyfunction]
pub fn refresh_logging() {
    install();
    if let Ok(mut m) = LOGGER.levels.write() {
        m.clear();
    }
}

/// Emits one tracing event at `level` ("error", "warning", "info", "debug",
/// "trace") with target `oc2mqtt::python`; for testing the bridge.
#[pyfunction]
pub fn _emit_log(level: &str, message: &str) -> PyResult<()> {
    let level = match level {
        "error" => Level::Error,
        "warning" => Level::Warn,
        "info" => Level::Info,
        "debug" => Level::Debug,
        "trace" => Level::Trace,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "level: unknown '{other}'; expected error, warning, info, debug or trace"
            )));
        }
    };
    install();
    // Through tracing, exactly like the core's events.
    match level {
        Level::Error => tracing::error!(target: "oc2mqtt::python", "{message}"),
        Level::Warn => tracing::warn!(target: "oc2mqtt::python", "{message}"),
        Level::Info => tracing::info!(target: "oc2mqtt::python", "{message}"),
        Level::Debug => tracing::debug!(target: "oc2mqtt::python", "{message}"),
        Level::Trace => tracing::trace!(target: "oc2mqtt::python", "{message}"),
    }
    Ok(())
}
