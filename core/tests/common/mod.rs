//! Test fixtures: a throwaway Mosquitto per test (through tests/broker/broker.py,
//! the fixture every language shares) and a raw paho publisher.
#![allow(dead_code, missing_docs)]

pub mod vectors;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oc2mqtt::codec::PublishProperties;
use paho_mqtt as mqtt;
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ has a parent")
        .to_path_buf()
}

/// A Mosquitto on free ports, stopped by PID when dropped.
pub struct Broker {
    pub info: Value,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl Broker {
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oc2mqtt-broker-")
            .tempdir()
            .expect("temp dir");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let info = Self::launch(dir.path(), &args);
        Self { info, args, dir }
    }

    fn launch(dir: &Path, args: &[String]) -> Value {
        let out = Command::new("python3")
            .arg(repo_root().join("tests/broker/broker.py"))
            .args(["start", "--dir"])
            .arg(dir)
            .args(args)
            .output()
            .expect("python3 runs tests/broker/broker.py");
        assert!(
            out.status.success(),
            "broker did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("broker.py prints one JSON line")
    }

    pub fn port(&self) -> u64 {
        self.info["port"].as_u64().expect("port")
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port())
    }

    pub fn tls_url(&self) -> String {
        format!(
            "mqtts://localhost:{}",
            self.info["tls_port"].as_u64().expect("started with --tls")
        )
    }

    pub fn file(&self, key: &str) -> PathBuf {
        PathBuf::from(
            self.info[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in broker info")),
        )
    }

    pub fn stop(&mut self) {
        if let Some(pid) = self.info["pid"].as_u64() {
            let _ = Command::new("python3")
                .arg(repo_root().join("tests/broker/broker.py"))
                .args(["stop", "--pid", &pid.to_string()])
                .status();
            self.info["pid"] = Value::Null;
        }
    }

    /// Stops and starts again on the same ports (and persistence file).
    pub fn restart(&mut self) {
        self.stop();
        let mut args = self.args.clone();
        args.extend(["--port".to_owned(), self.port().to_string()]);
        if let Some(t) = self.info["tls_port"].as_u64() {
            args.extend(["--tls-port".to_owned(), t.to_string()]);
        }
        self.info = Self::launch(self.dir.path(), &args);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bare paho client for publishing exactly the bytes and properties a test wants.
pub struct RawClient {
    pub cli: mqtt::AsyncClient,
    pub stream: mqtt::AsyncReceiver<Option<mqtt::Message>>,
    v5: bool,
}

impl RawClient {
    pub async fn connect(url: &str, v5: bool, subscribe: &[&str]) -> Self {
        let uri = url.replace("mqtt://", "tcp://");
        let create = mqtt::CreateOptionsBuilder::new()
            .server_uri(uri)
            .client_id(format!("raw-{}", uuid_like()))
            .mqtt_version(if v5 {
                mqtt::MQTT_VERSION_5
            } else {
                mqtt::MQTT_VERSION_3_1_1
            })
            .persistence(mqtt::PersistenceType::None)
            .finalize();
        let mut cli = mqtt::AsyncClient::new(create).expect("client");
        let stream = cli.get_stream(10_000);
        let opts = if v5 {
            mqtt::ConnectOptionsBuilder::new_v5()
        } else {
            mqtt::ConnectOptionsBuilder::new_v3()
        }
        .finalize();
        cli.connect(opts).await.expect("raw client connects");
        for t in subscribe {
            cli.subscribe(*t, 1).await.expect("subscribe");
        }
        Self { cli, stream, v5 }
    }

    pub async fn publish(&self, topic: &str, payload: &[u8], props: Option<&PublishProperties>) {
        let mut b = mqtt::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(1);
        if let (true, Some(p)) = (self.v5, props) {
            let mut mp = mqtt::Properties::new();
            if let Some(pfi) = p.payload_format_indicator {
                mp.push_byte(mqtt::PropertyCode::PayloadFormatIndicator, pfi)
                    .expect("pfi");
            }
            if let Some(ct) = &p.content_type {
                mp.push_string(mqtt::PropertyCode::ContentType, ct)
                    .expect("ct");
            }
            for (k, v) in &p.user_properties {
                mp.push_string_pair(mqtt::PropertyCode::UserProperty, k, v)
                    .expect("user property");
            }
            b = b.properties(mp);
        }
        self.cli.publish(b.finalize()).await.expect("publish");
    }

    /// The next message within `timeout`, if any.
    pub async fn next(&self, timeout: Duration) -> Option<mqtt::Message> {
        match tokio::time::timeout(timeout, self.stream.recv()).await {
            Ok(Ok(Some(m))) => Some(m),
            _ => None,
        }
    }
}

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
