//! Test fixtures: a throwaway Mosquitto per test (through tests/broker/broker.py,
//! the fixture every language shares) and a raw publisher that is not ours (rumqttc).
#![allow(dead_code, missing_docs)]

pub mod vectors;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oc2mqtt::codec::PublishProperties;
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

    /// `ws://127.0.0.1:<ws_port><ws_path>` when the broker serves MQTT over WebSocket.
    pub fn ws_url(&self) -> Option<String> {
        let port = self.info["ws_port"].as_u64()?;
        // RabbitMQ's web_mqtt serves /ws; Mosquitto takes any path.
        let path = if self.info["kind"] == "rabbitmq" {
            "/ws"
        } else {
            "/mqtt"
        };
        Some(format!("ws://127.0.0.1:{port}{path}"))
    }

    /// `wss://localhost:<wss_port>/mqtt` when the broker serves MQTT over WebSocket over TLS.
    pub fn wss_url(&self) -> Option<String> {
        let port = self.info["wss_port"].as_u64()?;
        Some(format!("wss://localhost:{port}/mqtt"))
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

/// `openssl s_server` on a free port with the broker's certificate and the
/// given protocol and cipher options: a TLS server that offers what a test
/// wants; killed by its handle when dropped.
pub struct TlsServer {
    pub port: u16,
    child: std::process::Child,
}

impl TlsServer {
    pub fn start(broker: &Broker, options: &[&str]) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let child = Command::new("openssl")
            .args(["s_server", "-quiet"])
            .args(options)
            .args(["-accept", &port.to_string()])
            .arg("-cert")
            .arg(broker.file("server_cert"))
            .arg("-key")
            .arg(broker.file("server_key"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A consumer for `device` answering every command `200`, from `serve`.
pub async fn serving(
    config: oc2mqtt::client::ClientConfig,
    device: &str,
) -> oc2mqtt::client::Consumer {
    let c =
        oc2mqtt::client::Consumer::connect(config, oc2mqtt::client::ConsumerOptions::new(device))
            .await
            .expect("consumer connects");
    let serving = c.clone();
    tokio::spawn(async move { serving.serve(|_| Ok(None)).await });
    c
}

/// Sends `cmd` and asserts that the exchange completes.
pub async fn completes(
    p: &oc2mqtt::client::Producer,
    cmd: oc2mqtt::message::Command,
    options: oc2mqtt::client::SendOptions,
) {
    let s = p.send(cmd, options).await.expect("sent").collect().await;
    assert!(s.complete, "{s:?}");
}

/// A message a [`RawClient`] received.
pub struct RawMessage {
    topic: String,
    payload: Vec<u8>,
    pub retain: bool,
}

impl RawMessage {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

enum RawCli {
    V5(rumqttc::v5::AsyncClient),
    V3(rumqttc::AsyncClient),
}

/// A client that is not ours (rumqttc), for publishing exactly the bytes
/// and properties a test wants, as a v5 or a v3.1.1 peer.
pub struct RawClient {
    cli: RawCli,
    rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<RawMessage>>,
}

fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (h, p) = rest.rsplit_once(':').expect("host:port");
    (h.to_owned(), p.trim_end_matches('/').parse().expect("port"))
}

impl RawClient {
    pub async fn connect(url: &str, v5: bool, subscribe: &[&str]) -> Self {
        Self::open(url, v5, subscribe, None).await
    }

    /// Connects with a user name and password, subscribing nothing.
    pub async fn connect_as(url: &str, v5: bool, user: (&str, &str)) -> Self {
        Self::open(url, v5, &[], Some(user)).await
    }

    async fn open(url: &str, v5: bool, subscribe: &[&str], user: Option<(&str, &str)>) -> Self {
        let (host, port) = host_port(url);
        let id = format!("raw-{}", uuid_like());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let cli = if v5 {
            let mut opts = rumqttc::v5::MqttOptions::new(id, host, port);
            if let Some((u, p)) = user {
                opts.set_credentials(u, p);
            }
            let (cli, mut el) = rumqttc::v5::AsyncClient::new(opts, 1000);
            tokio::spawn(async move {
                let mut ready = Some(ready_tx);
                loop {
                    match el.poll().await {
                        Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::ConnAck(_))) => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                        Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::Publish(p))) => {
                            let _ = tx.send(RawMessage {
                                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            RawCli::V5(cli)
        } else {
            let mut opts = rumqttc::MqttOptions::new(id, host, port);
            if let Some((u, p)) = user {
                opts.set_credentials(u, p);
            }
            let (cli, mut el) = rumqttc::AsyncClient::new(opts, 1000);
            tokio::spawn(async move {
                let mut ready = Some(ready_tx);
                loop {
                    match el.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(_))) => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Incoming::Publish(p))) => {
                            let _ = tx.send(RawMessage {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            RawCli::V3(cli)
        };
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("raw client connects within 10 s")
            .expect("raw client connects");
        let raw = Self {
            cli,
            rx: tokio::sync::Mutex::new(rx),
        };
        for t in subscribe {
            match &raw.cli {
                RawCli::V5(c) => c
                    .subscribe(*t, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                    .await
                    .expect("subscribe"),
                RawCli::V3(c) => c
                    .subscribe(*t, rumqttc::QoS::AtLeastOnce)
                    .await
                    .expect("subscribe"),
            }
        }
        // SUBACK is not awaited by rumqttc's API: give it a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        raw
    }

    pub async fn publish(&self, topic: &str, payload: &[u8], props: Option<&PublishProperties>) {
        self.publish_as(topic, payload, props, false).await;
    }

    /// Publishes with the Retain flag set.
    pub async fn publish_retained(
        &self,
        topic: &str,
        payload: &[u8],
        props: Option<&PublishProperties>,
    ) {
        self.publish_as(topic, payload, props, true).await;
    }

    async fn publish_as(
        &self,
        topic: &str,
        payload: &[u8],
        props: Option<&PublishProperties>,
        retain: bool,
    ) {
        match &self.cli {
            RawCli::V5(c) => {
                let mut p = rumqttc::v5::mqttbytes::v5::PublishProperties::default();
                if let Some(props) = props {
                    p.payload_format_indicator = props.payload_format_indicator;
                    p.content_type = props.content_type.clone();
                    p.user_properties = props.user_properties.clone();
                }
                c.publish_with_properties(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    retain,
                    payload.to_vec(),
                    p,
                )
                .await
                .expect("publish");
            }
            RawCli::V3(c) => c
                .publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload.to_vec())
                .await
                .expect("publish"),
        }
    }

    /// The next message within `timeout`, if any.
    pub async fn next(&self, timeout: Duration) -> Option<RawMessage> {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Whether the broker still holds a session for `client_id`: a v3.1.1
/// CONNECT with clean session 0 under that id, and CONNACK's Session Present.
pub async fn session_present(url: &str, client_id: &str, user: (&str, &str)) -> bool {
    // RabbitMQ closes a connection that comes while the last one under the
    // same id is still being torn down: try again a moment later.
    let mut last = String::new();
    for _ in 0..5 {
        match session_present_once(url, client_id, user).await {
            Ok(present) => return present,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("session check cannot connect: {last}");
}

async fn session_present_once(
    url: &str,
    client_id: &str,
    user: (&str, &str),
) -> Result<bool, String> {
    let (host, port) = host_port(url);
    let mut opts = rumqttc::MqttOptions::new(client_id, host, port);
    opts.set_clean_session(false);
    opts.set_credentials(user.0, user.1);
    let (cli, mut el) = rumqttc::AsyncClient::new(opts, 10);
    let present = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Incoming::ConnAck(a))) => {
                    break Ok(a.session_present);
                }
                Ok(_) => {}
                Err(e) => break Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK within 10 s".to_owned())??;
    // Leave nothing behind either: end this session at once.
    let _ = cli.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), el.poll()).await;
    Ok(present)
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
