//! Client configuration and its validation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::codec::DEFAULT_MAX_PAYLOAD;
use crate::error::{Error, Result};
use crate::topics::{Peer, ResponseTopics, TopicScheme, Topics};

/// The QoS levels OpenC2 over MQTT publishes and subscribes with (MQTT-T
/// 2.3: at least once; exactly once where the broker offers it).
pub const QOS_LEVELS: [u8; 2] = [1, 2];

/// Longest keep-alive MQTT-T allows, in seconds.
pub const MAX_KEEP_ALIVE_SECS: u32 = 300;

/// Which MQTT protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    /// MQTT v5 only (the specification's choice).
    V5,
    /// MQTT v3.1.1 only (no properties: peers are sniffed).
    V311,
    /// Try v5; fall back to v3.1.1 when the broker refuses v5 in any way
    /// (a CONNACK code, or closing the connection after the v5 CONNECT, as
    /// RabbitMQ and ActiveMQ do), with one warning.
    #[default]
    Auto,
}

impl MqttVersion {
    /// Every version's name, as written (other spellings are read too:
    /// `5.0`, `v5`, `311`, `v3.1.1`, `4`): what `mqtt_version` takes.
    pub const NAMES: [&'static str; 3] =
        [Self::V5.as_str(), Self::V311.as_str(), Self::Auto.as_str()];

    /// Its name: `5`, `3.1.1`, `auto`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V5 => "5",
            Self::V311 => "3.1.1",
            Self::Auto => "auto",
        }
    }
}

impl FromStr for MqttVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "5" | "5.0" | "v5" => Ok(Self::V5),
            "3.1.1" | "311" | "v3.1.1" | "4" => Ok(Self::V311),
            "auto" => Ok(Self::Auto),
            _ => Err(Error::Config(format!(
                "unknown MQTT version '{s}'; expected {}",
                crate::settings::one_of(&Self::NAMES)
            ))),
        }
    }
}

impl serde::Serialize for MqttVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for MqttVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach and talk to the broker. Build with [`ClientConfig::new`] and
/// set the public fields; [`ClientConfig::validate`] runs on connect.
///
/// ```
/// use oc2mqtt::client::ClientConfig;
/// let mut config = ClientConfig::new("mqtts://broker.example:8883");
/// config.username = Some("producer-1".into());
/// config.keep_alive_secs = 600;
/// assert_eq!(
///     config.validate().unwrap_err().to_string(),
///     "configuration: keep_alive_secs is 600, but MQTT-T allows at most 300"
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Broker URLs (`mqtt://host:port`, `mqtts://host:port`, `ws://host:port/path`,
    /// `wss://host:port/path`); several = failover in order.
    pub brokers: Vec<String>,
    /// The MQTT client id. When absent, one is generated (`oc2mqtt-<uuid>`)
    /// and the broker session ends with the connection (nothing is left
    /// queued on the broker); a given id, or one kept in `client_id_file`,
    /// keeps its session for `session_expiry_secs`.
    pub client_id: Option<String>,
    /// A file holding the client id: read if it exists, else written with the
    /// generated one, so the broker can resume the session after a restart.
    pub client_id_file: Option<PathBuf>,
    /// User name for the broker.
    pub username: Option<String>,
    /// Password for the broker (never logged or displayed).
    pub password: Option<String>,
    /// CA certificates (PEM) that the broker's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// Skips verification of the broker's certificate and host name. Testing only.
    pub insecure_skip_verify: bool,
    /// Keep-alive interval, at most 300 s; PINGREQ goes out after 95 % of it
    /// without traffic (MQTT-T 3.4).
    pub keep_alive_secs: u32,
    /// How long the broker keeps the session of a stable client id after a
    /// disconnect (MQTT v5 Session Expiry; on 3.1.1 a stable id means Clean
    /// Session 0). A generated client id always uses 0.
    pub session_expiry_secs: u32,
    /// QoS for publishing: 1 or 2 (subscriptions always ask for 2). A broker
    /// that grants or supports only 1 gets QoS 1, with one warning.
    pub qos: u8,
    /// Protocol version.
    pub mqtt_version: MqttVersion,
    /// Message Expiry Interval put on every publish (MQTT v5), if any.
    pub message_expiry_secs: Option<u32>,
    /// A prefix before `oc2/` in every topic.
    pub topic_prefix: Option<String>,
    /// Also use otupy's response topics (`oc2/rsp/device/<id>`): the same
    /// as `peer: Peer::Otupy`, kept for existing callers.
    pub otupy_compat: bool,
    /// The peers to suit (topics, dialect, `msgType` spelling); see [`Peer`].
    pub peer: Peer,
    /// Where a consumer publishes responses; `None`: as the peer has it
    /// (`oc2/rsp` only for the specification's peers).
    pub response_topics: Option<ResponseTopics>,
    /// How long one connection attempt may take: TCP, TLS and WebSocket
    /// together, then again for the CONNACK.
    pub connect_timeout_secs: u32,
    /// Largest payload accepted; larger ones are refused before parsing.
    pub max_payload: usize,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field(
                "brokers",
                &self
                    .brokers
                    .iter()
                    .map(|b| redact_url(b))
                    .collect::<Vec<_>>(),
            )
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .field("qos", &self.qos)
            .field("mqtt_version", &self.mqtt_version)
            .field("topic_prefix", &self.topic_prefix)
            .field("peer", &self.peer())
            .field("response_topics", &self.response_topics)
            .finish_non_exhaustive()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            brokers: Vec::new(),
            client_id: None,
            client_id_file: None,
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            insecure_skip_verify: false,
            keep_alive_secs: 60,
            session_expiry_secs: 3600,
            qos: 1,
            mqtt_version: MqttVersion::Auto,
            message_expiry_secs: None,
            topic_prefix: None,
            otupy_compat: false,
            peer: Peer::Spec,
            response_topics: None,
            connect_timeout_secs: 10,
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }
}

/// How a broker is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `mqtt://` (also `tcp://`).
    Tcp,
    /// `mqtts://` (also `ssl://`, `tls://`).
    Tls,
    /// `ws://`: MQTT over WebSocket.
    Ws,
    /// `wss://`: MQTT over WebSocket over TLS.
    Wss,
}

impl Scheme {
    pub(crate) fn tls(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }
}

/// A broker URL split into what the transport needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerUrl {
    pub(crate) original: String,
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The HTTP path of a WebSocket URL (`/mqtt` when none is given).
    pub(crate) path: String,
}

impl BrokerUrl {
    pub(crate) fn tls(&self) -> bool {
        self.scheme.tls()
    }
}

/// `url` as it may be shown: a password written in it (`user:secret@host`)
/// becomes `***`, so that no error or log line carries it.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split_once(':').map_or(&rest[..at], |(u, _)| u);
    format!("{scheme}://{user}:***@{}", &rest[at + 1..])
}

impl ClientConfig {
    /// The broker URL for `host` and `port`: `mqtt://host:port`, or
    /// `mqtts://` with `tls`. An IPv6 address is bracketed, as URLs have it
    /// (`mqtt://[::1]:1883`), and read back as such by the parser.
    ///
    /// ```
    /// use oc2mqtt::client::ClientConfig;
    /// assert_eq!(ClientConfig::broker_url("::1", 1883, false), "mqtt://[::1]:1883");
    /// assert_eq!(ClientConfig::broker_url("broker.lan", 8883, true), "mqtts://broker.lan:8883");
    /// ```
    pub fn broker_url(host: &str, port: u16, tls: bool) -> String {
        let scheme = if tls { "mqtts" } else { "mqtt" };
        // A colon is in no host name nor IPv4 address: only an IPv6 address has one.
        if host.contains(':') && !host.starts_with('[') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        }
    }
}

/// The URL schemes a broker URL takes, as written (`tcp`, `ssl` and `tls`
/// are read too): MQTT over TCP, over TLS, over WebSocket, over secure WebSocket.
pub const BROKER_SCHEMES: [&str; 4] = ["mqtt", "mqtts", "ws", "wss"];

pub(crate) fn parse_broker(url: &str) -> Result<BrokerUrl> {
    let shown = redact_url(url);
    let bad = |why: &str| Error::Config(format!("broker URL '{shown}': {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        bad("expected mqtt://host:port, mqtts://host:port, ws://host:port/path or wss://host:port/path")
    })?;
    let scheme = match scheme {
        "mqtt" | "tcp" => Scheme::Tcp,
        "mqtts" | "ssl" | "tls" => Scheme::Tls,
        "ws" => Scheme::Ws,
        "wss" => Scheme::Wss,
        other => {
            return Err(bad(&format!(
                "unsupported scheme '{other}'; expected {}",
                crate::settings::one_of(&BROKER_SCHEMES)
            )));
        }
    };
    let websocket = matches!(scheme, Scheme::Ws | Scheme::Wss);
    let (authority, path) = match rest.find('/') {
        Some(i) if websocket => (&rest[..i], rest[i..].to_owned()),
        Some(i) if rest[i..].trim_end_matches('/').is_empty() => (&rest[..i], String::new()),
        Some(_) => {
            return Err(bad(
                "expected host[:port] after the scheme, with no path (paths are for ws:// and wss://)",
            ));
        }
        None => (rest, String::new()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad(
            "expected host[:port] after the scheme, with no credentials (use username/password)",
        ));
    }
    let default_port = match scheme {
        Scheme::Tcp => 1883,
        Scheme::Tls => 8883,
        Scheme::Ws => 80,
        Scheme::Wss => 443,
    };
    let (host, port) = if let Some(inside) = authority.strip_prefix('[') {
        // An IPv6 literal: `[addr]` or `[addr]:port`.
        let (addr, after) = inside
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address opened with '[' needs its ']'"))?;
        let port = match after {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| bad(&format!("invalid port after ']': '{after}'")))?,
        };
        (addr.to_owned(), port)
    } else if authority.matches(':').count() > 1 {
        // `mqtt://::1` would otherwise read as host `::`, port 1.
        return Err(bad(
            "an IPv6 address needs brackets, as in mqtt://[::1]:1883",
        ));
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse::<u16>()
                    .map_err(|_| bad(&format!("invalid port '{p}'")))?,
            ),
            None => (authority.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let path = if websocket && path.is_empty() {
        "/mqtt".to_owned()
    } else {
        path
    };
    Ok(BrokerUrl {
        original: url.to_owned(),
        scheme,
        host,
        port,
        path,
    })
}

fn check_file(what: &str, path: Option<&Path>) -> Result<()> {
    if let Some(p) = path {
        std::fs::metadata(p)
            .map_err(|e| Error::Io(format!("cannot read {what} {}: {e}", p.display())))?;
    }
    Ok(())
}

impl ClientConfig {
    /// A configuration for one broker with every other setting at its default.
    pub fn new(broker: impl Into<String>) -> Self {
        Self {
            brokers: vec![broker.into()],
            ..Self::default()
        }
    }

    /// Checks every setting; the error names the setting and the reason.
    pub fn validate(&self) -> Result<()> {
        self.validate_naming(str::to_owned)
    }

    /// [`validate`](Self::validate), naming each setting as `name` spells it:
    /// a binding passes its own spelling (`keep_alive_secs` → `keepAliveSecs`).
    pub fn validate_naming(&self, name: impl Fn(&str) -> String) -> Result<()> {
        if self.brokers.is_empty() {
            return Err(Error::Config("no broker URL given".to_owned()));
        }
        for b in &self.brokers {
            parse_broker(b)?;
        }
        if self.keep_alive_secs > MAX_KEEP_ALIVE_SECS {
            return Err(Error::Config(format!(
                "{} is {}, but MQTT-T allows at most {MAX_KEEP_ALIVE_SECS}",
                name("keep_alive_secs"),
                self.keep_alive_secs
            )));
        }
        if !QOS_LEVELS.contains(&self.qos) {
            return Err(Error::Config(format!(
                "{} is {}, but OpenC2 over MQTT uses {}",
                name("qos"),
                self.qos,
                crate::settings::one_of(&QOS_LEVELS)
            )));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(Error::Config(
                "a password was given without a username".to_owned(),
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(Error::Config(format!(
                "{} and {} must be given together",
                name("cert_file"),
                name("key_file")
            )));
        }
        if let Some(id) = &self.client_id {
            if id.is_empty() || id.len() > 65_535 {
                return Err(Error::Config(format!(
                    "{} must be 1 to 65535 bytes",
                    name("client_id")
                )));
            }
        }
        if self.connect_timeout_secs == 0 {
            return Err(Error::Config(format!(
                "{} must be at least 1",
                name("connect_timeout_secs")
            )));
        }
        if self.max_payload == 0 {
            return Err(Error::Config(format!(
                "{} must be at least 1 byte",
                name("max_payload")
            )));
        }
        check_file("CA file", self.ca_file.as_deref())?;
        check_file("certificate file", self.cert_file.as_deref())?;
        check_file("key file", self.key_file.as_deref())?;
        self.topics()?;
        Ok(())
    }

    /// The peers to suit: [`ClientConfig::peer`], or otupy's when `otupy_compat`.
    pub fn peer(&self) -> Peer {
        if self.peer == Peer::Spec && self.otupy_compat {
            Peer::Otupy
        } else {
            self.peer
        }
    }

    /// The topic scheme this configuration implies (prefix, peer, response topics).
    pub fn topics(&self) -> Result<Topics> {
        let t = Topics::from(TopicScheme {
            peer: self.peer(),
            response_topics: self.response_topics,
        });
        match &self.topic_prefix {
            Some(p) => t.with_prefix(p),
            None => Ok(t),
        }
    }

    /// The client id to use: configured, read from `client_id_file`, or
    /// generated once (and written to `client_id_file` when set).
    pub fn resolve_client_id(&self) -> Result<String> {
        if let Some(id) = &self.client_id {
            return Ok(id.clone());
        }
        let generated = || format!("oc2mqtt-{}", uuid::Uuid::new_v4().simple());
        let Some(path) = &self.client_id_file else {
            return Ok(generated());
        };
        match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io(format!(
                "cannot read client id file {}: {e}",
                path.display()
            ))),
            // Absent or empty: generate one and keep it.
            _ => {
                let id = generated();
                std::fs::write(path, format!("{id}\n")).map_err(|e| {
                    Error::Io(format!(
                        "cannot write client id file {}: {e}",
                        path.display()
                    ))
                })?;
                Ok(id)
            }
        }
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.connect_timeout_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_url_made_from_host_and_port_reads_back_as_them() {
        for (host, port, tls) in [
            ("::1", 1883, false),
            ("fe80::1", 8883, true),
            ("[::1]", 1999, false),
            ("127.0.0.1", 1883, false),
            ("broker.example", 8883, true),
        ] {
            let url = ClientConfig::broker_url(host, port, tls);
            let b = parse_broker(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (b.host.as_str(), b.port, b.tls()),
                (
                    host.trim_start_matches('[').trim_end_matches(']'),
                    port,
                    tls
                ),
                "{url}"
            );
        }
        assert_eq!(
            ClientConfig::broker_url("::1", 1883, false),
            "mqtt://[::1]:1883"
        );
    }

    #[test]
    fn broker_urls_are_parsed_or_refused_clearly() {
        let b = parse_broker("mqtts://localhost:8883").expect("valid");
        assert_eq!((b.scheme, b.tls(), b.port), (Scheme::Tls, true, 8883));
        assert_eq!(parse_broker("mqtt://10.0.0.1").expect("valid").port, 1883);
        let v6 = parse_broker("mqtt://[::1]:1999").expect("valid");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 1999));
        let ws = parse_broker("ws://127.0.0.1:15675/ws").expect("valid");
        assert_eq!(
            (ws.scheme, ws.port, ws.path.as_str()),
            (Scheme::Ws, 15675, "/ws")
        );
        let wss = parse_broker("wss://broker.example").expect("valid");
        assert_eq!(
            (wss.port, wss.path.as_str(), wss.tls()),
            (443, "/mqtt", true)
        );
        let e = parse_broker("http://x:1").unwrap_err().to_string();
        assert_eq!(
            e,
            "configuration: broker URL 'http://x:1': unsupported scheme 'http'; expected mqtt, mqtts, ws or wss"
        );
        assert!(parse_broker("mqtt://host:1883/path").is_err());
        let e = parse_broker("mqtt://ctl:s3cret@127.0.0.1:1883")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "configuration: broker URL 'mqtt://ctl:***@127.0.0.1:1883': expected host[:port] after the scheme, with no credentials (use username/password)"
        );
        assert!(!e.contains("s3cret"));
        assert_eq!(redact_url("wss://a:b@h:1/ws"), "wss://a:***@h:1/ws");
        assert_eq!(redact_url("mqtt://h:1"), "mqtt://h:1");
        assert!(parse_broker("mqtt://host:99999").is_err());
        assert!(parse_broker("localhost:1883").is_err());
        // IPv6: brackets, with or without a port; a bare literal is ambiguous.
        let v6 = parse_broker("mqtts://[fe80::1]").expect("valid");
        assert_eq!((v6.host.as_str(), v6.port), ("fe80::1", 8883));
        let e = parse_broker("mqtt://::1").unwrap_err().to_string();
        assert_eq!(
            e,
            "configuration: broker URL 'mqtt://::1': an IPv6 address needs brackets, as in mqtt://[::1]:1883"
        );
        assert!(parse_broker("mqtt://::1:1883").is_err());
        let e = parse_broker("mqtt://[::1:1883").unwrap_err().to_string();
        assert!(
            e.ends_with("an IPv6 address opened with '[' needs its ']'"),
            "{e}"
        );
        let e = parse_broker("mqtt://[::1]x").unwrap_err().to_string();
        assert!(e.ends_with("invalid port after ']': 'x'"), "{e}");
    }

    #[test]
    fn validation_names_the_setting() {
        let mut c = ClientConfig::new("mqtt://127.0.0.1:1883");
        c.qos = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "configuration: qos is 0, but OpenC2 over MQTT uses 1 or 2"
        );
        c.qos = 1;
        c.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("cannot read CA file /nonexistent/ca.pem")
        );
        c.ca_file = None;
        c.password = Some("secret".into());
        assert!(c.validate().is_err());
        assert!(
            !format!("{c:?}").contains("secret"),
            "password must not be in Debug output"
        );
        c.brokers = vec!["mqtt://u:secret@h:1".into()];
        assert!(
            !format!("{c:?}").contains("secret"),
            "nor a password in a URL"
        );
    }

    #[test]
    fn client_id_is_generated_once_and_kept_in_its_file() {
        let dir = std::env::temp_dir().join(format!("oc2mqtt-cid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("client-id");
        let _ = std::fs::remove_file(&file);
        let mut c = ClientConfig::new("mqtt://127.0.0.1:1");
        c.client_id_file = Some(file.clone());
        let first = c.resolve_client_id().expect("generated");
        assert!(first.starts_with("oc2mqtt-"));
        assert_eq!(c.resolve_client_id().expect("read back"), first);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
