//! What the long-running CLI tests share: a throwaway Mosquitto.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A Mosquitto of its own (`tests/broker/broker.py`), stopped by PID on drop.
pub struct Broker {
    pub pid: u64,
    pub port: u64,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("python3")
            .arg(repo_root().join("tests/broker/broker.py"))
            .args(["start", "--dir"])
            .arg(dir.path())
            .output()
            .expect("broker.py");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        Self {
            pid: info["pid"].as_u64().expect("pid"),
            port: info["port"].as_u64().expect("port"),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("python3")
            .arg(repo_root().join("tests/broker/broker.py"))
            .args(["stop", "--pid", &self.pid.to_string()])
            .status();
    }
}
