//! What every bench binary of this crate shares: the repository root, a
//! throwaway Mosquitto from tests/broker/broker.py stopped by PID, process
//! CPU time and percentiles.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use serde_json::Value;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The repository's root directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A throwaway Mosquitto, stopped by PID when dropped.
pub struct Broker {
    pub pid: u32,
    pub port: u16,
}

impl Broker {
    pub fn start(dir: &Path) -> Res<Self> {
        let out = Process::new("python3")
            .arg(root().join("tests/broker/broker.py"))
            .args(["start", "--dir"])
            .arg(dir)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "broker.py start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let info: Value = serde_json::from_slice(&out.stdout)?;
        let pid = info["pid"].as_u64().ok_or("broker.py: no pid")?;
        let port = info["port"].as_u64().ok_or("broker.py: no port")?;
        Ok(Self {
            pid: u32::try_from(pid)?,
            port: u16::try_from(port)?,
        })
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Process::new("python3")
            .arg(root().join("tests/broker/broker.py"))
            .args(["stop", "--pid", &self.pid.to_string()])
            .status();
    }
}

/// CPU time (user + system) of a process so far, in µs; `None` is this process.
pub fn cpu_us(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks * 1e6 / 100.0 // USER_HZ is 100 on Linux
}

/// The `p` quantile (0..=1) of already sorted values; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64) * p) as usize;
    sorted[i.min(sorted.len() - 1)]
}
