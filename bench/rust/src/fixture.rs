//! What every bench binary of this crate shares: the repository root and a
//! throwaway Mosquitto from tests/broker/broker.py, stopped by PID.

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
