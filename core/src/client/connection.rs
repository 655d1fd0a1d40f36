//! One MQTT connection on paho-mqtt: CONNECT, SUBSCRIBE and PUBLISH as
//! MQTT-T 3.1-3.4 require, reconnect with resubscription, and errors a
//! person can act on.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use paho_mqtt as mqtt;

use super::config::{BrokerUrl, ClientConfig, MqttVersion, parse_broker};
use super::lock;
use super::stats::Counters;
use crate::codec::{self, Decoded, PublishProperties};
use crate::error::{Error, MessageError, Result};

/// OpenSSL cipher string: no anonymous or NULL ciphers, and security level 2,
/// which on OpenSSL 3 also rules out TLS below 1.2 (paho ignores its own
/// version setting on OpenSSL >= 1.1).
const CIPHERS: &str = "DEFAULT:!aNULL:!eNULL:@SECLEVEL=2";

/// How long a dropped paho client is kept before it is destroyed (see [`PahoClient`]).
const DESTROY_GRACE: Duration = Duration::from_millis(200);

/// What a role does with each inbound message, on paho's callback thread.
type Handler = Box<dyn Fn(&mqtt::Message) + Send + Sync>;

/// Hands inbound messages to the role's [`Handler`] directly on paho's
/// callback thread: no channel and no task switch per message. Messages
/// that arrive before the role installed its handler (a resumed session
/// delivers right after CONNACK) are kept and handed over at installation.
#[derive(Default)]
struct Inlet {
    handler: OnceLock<Handler>,
    early: Mutex<Vec<mqtt::Message>>,
    closed: AtomicBool,
}

impl Inlet {
    fn early(&self) -> std::sync::MutexGuard<'_, Vec<mqtt::Message>> {
        lock(&self.early)
    }

    fn deliver(&self, m: &mqtt::Message) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        if let Some(handle) = self.handler.get() {
            return handle(m);
        }
        let mut early = self.early();
        match self.handler.get() {
            Some(handle) => {
                drop(early);
                handle(m);
            }
            None => early.push(m.clone()),
        }
    }

    fn install(&self, handler: Handler) {
        let mut early = self.early();
        let handle = self.handler.get_or_init(|| handler);
        for m in early.drain(..) {
            handle(&m);
        }
    }
}

/// Publishes made with [`Connection::publish_detached`]: their outcome is
/// checked later (at the next publish, at [`Connection::stats`] and every
/// second), so that no thread is woken for each PUBACK.
#[derive(Default)]
struct Unconfirmed {
    tokens: Mutex<std::collections::VecDeque<(String, mqtt::Token)>>,
}

impl Unconfirmed {
    fn tokens(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(String, mqtt::Token)>> {
        lock(&self.tokens)
    }

    /// Counts the acknowledged publishes and logs the refused ones, in order,
    /// up to the first one still in flight.
    fn reap(&self, counters: &Counters) {
        let mut refused = Vec::new();
        {
            let mut tokens = self.tokens();
            while let Some((_, token)) = tokens.front_mut() {
                match token.try_wait() {
                    None => break,
                    Some(outcome) => {
                        let (topic, _) = tokens.pop_front().expect("front exists");
                        match outcome {
                            Ok(_) => Counters::bump(&counters.published),
                            Err(e) => refused.push(publish_error(counters, &topic, e)),
                        }
                    }
                }
            }
        }
        // Logged after the lock: a logging bridge may need a foreign lock (the GIL).
        for e in refused {
            tracing::warn!(error = %e, "a response was not delivered");
        }
    }

    fn is_empty(&self) -> bool {
        self.tokens().is_empty()
    }
}

/// The error for a publish to `topic` that failed, counted in `publish_errors`.
fn publish_error(counters: &Counters, topic: &str, e: mqtt::Error) -> Error {
    Counters::bump(&counters.publish_errors);
    match e {
        mqtt::Error::ReasonCode(rc, _) => Error::Publish(format!(
            "broker refused the publish to {topic}: {}",
            reason_text(rc)
        )),
        other => Error::Publish(format!("cannot publish to {topic}: {other}")),
    }
}

pub(crate) struct Connection {
    cli: PahoClient,
    v5: bool,
    qos: i32,
    message_expiry: Option<u32>,
    max_payload: usize,
    url: String,
    inlet: Arc<Inlet>,
    /// Publishes nobody waits for, until the broker acknowledged them.
    unconfirmed: Arc<Unconfirmed>,
    /// Set by [`Connection::close`]; publishes then fail instead of waiting forever.
    closed: tokio::sync::watch::Sender<bool>,
    pub(crate) counters: Arc<Counters>,
}

/// Reads the OpenC2-relevant properties of a received message.
fn inbound_properties(props: &mqtt::Properties) -> Option<PublishProperties> {
    if props.is_empty() {
        return None;
    }
    let p = PublishProperties {
        payload_format_indicator: props
            .get_int(mqtt::PropertyCode::PayloadFormatIndicator)
            .and_then(|v| u8::try_from(v).ok()),
        content_type: props.get_string(mqtt::PropertyCode::ContentType),
        user_properties: props.user_iter().collect(),
    };
    let empty = p.payload_format_indicator.is_none()
        && p.content_type.is_none()
        && p.user_properties.is_empty();
    (!empty).then_some(p)
}

fn outbound_properties(
    p: &PublishProperties,
    message_expiry: Option<u32>,
) -> Result<mqtt::Properties> {
    let err = |e: mqtt::Error| Error::Publish(format!("cannot build publish properties: {e}"));
    let mut props = mqtt::Properties::new();
    if let Some(pfi) = p.payload_format_indicator {
        props
            .push_byte(mqtt::PropertyCode::PayloadFormatIndicator, pfi)
            .map_err(err)?;
    }
    if let Some(ct) = &p.content_type {
        props
            .push_string(mqtt::PropertyCode::ContentType, ct)
            .map_err(err)?;
    }
    // Order matters to one Python peer: msgType before encoding, as given.
    for (k, v) in &p.user_properties {
        props
            .push_string_pair(mqtt::PropertyCode::UserProperty, k, v)
            .map_err(err)?;
    }
    if let Some(secs) = message_expiry {
        props
            .push_u32(mqtt::PropertyCode::MessageExpiryInterval, secs)
            .map_err(err)?;
    }
    Ok(props)
}

fn reason_text(rc: mqtt::ReasonCode) -> String {
    rc.to_string().to_lowercase()
}

/// Why the broker refused our CONNECT, if it was about credentials.
///
/// Mosquitto answers a wrong password with "not authorized" (0x87); with a
/// user name configured, the credentials are what the user can fix.
fn auth_failure(e: &mqtt::Error, has_username: bool) -> Option<String> {
    let bad_credentials = matches!(
        e,
        mqtt::Error::ReasonCode(mqtt::ReasonCode::BadUserNameOrPassword, _)
            | mqtt::Error::ConnectReturn(mqtt::ConnectReturnCode::BadUserNameOrPassword)
    );
    let not_authorized = matches!(
        e,
        mqtt::Error::ReasonCode(mqtt::ReasonCode::NotAuthorized, _)
            | mqtt::Error::ConnectReturn(mqtt::ConnectReturnCode::NotAuthorized)
    );
    match (bad_credentials, not_authorized, has_username) {
        (true, _, _) | (_, true, true) => Some("bad user name or password".to_owned()),
        (_, true, false) => {
            Some("not authorized (does the broker require a user name and password?)".to_owned())
        }
        _ => None,
    }
}

fn is_protocol_refusal(e: &mqtt::Error) -> bool {
    matches!(
        e,
        mqtt::Error::ReasonCode(mqtt::ReasonCode::UnsupportedProtocolVersion, _)
            | mqtt::Error::ConnectReturn(mqtt::ConnectReturnCode::UnacceptableProtocolVersion)
    )
}

/// Finds out why a connection failed, since paho only says "TCP/TLS connect
/// failure": a plain TCP connect, then (for mqtts) a TLS handshake with the
/// same settings.
fn diagnose(b: &BrokerUrl, config: &ClientConfig, paho: &mqtt::Error) -> Error {
    let timeout = config.connect_timeout();
    let addrs = match (b.host.as_str(), b.port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return Error::Connect(format!(
                "cannot connect to {}: cannot resolve host: {e}",
                b.original
            ));
        }
    };
    let mut last = None;
    let stream = addrs
        .iter()
        .find_map(|a| match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => Some(s),
            Err(e) => {
                last = Some(e);
                None
            }
        });
    let Some(stream) = stream else {
        let why = last.map_or_else(|| "no address".to_owned(), |e| io_reason(&e));
        return Error::Connect(format!("cannot connect to {}: {why}", b.original));
    };
    if b.tls {
        if let Err(why) = tls_probe(stream, b, config) {
            return Error::Tls(format!("{why} for {}", b.host));
        }
    }
    Error::Connect(format!("cannot connect to {}: {paho}", b.original))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            "connection timed out".to_owned()
        }
        _ => e.to_string(),
    }
}

fn tls_probe(
    stream: TcpStream,
    b: &BrokerUrl,
    config: &ClientConfig,
) -> std::result::Result<(), String> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
    let e = |e: openssl::error::ErrorStack| {
        e.errors()
            .first()
            .and_then(|x| x.reason())
            .unwrap_or("TLS setup failed")
            .to_owned()
    };
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(e)?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(e)?;
    builder.set_cipher_list(CIPHERS).map_err(e)?;
    if let Some(ca) = &config.ca_file {
        builder.set_ca_file(ca).map_err(e)?;
    }
    if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
        builder.set_certificate_chain_file(cert).map_err(e)?;
        builder
            .set_private_key_file(key, SslFiletype::PEM)
            .map_err(e)?;
    }
    if config.insecure_skip_verify {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let connector = builder.build();
    let mut cfg = connector.configure().map_err(e)?;
    if config.insecure_skip_verify {
        cfg.set_verify_hostname(false);
    }
    stream
        .set_read_timeout(Some(config.connect_timeout()))
        .map_err(|x| x.to_string())?;
    match cfg.connect(&b.host, stream) {
        Ok(_) => Ok(()),
        Err(openssl::ssl::HandshakeError::Failure(mid)) => {
            let err = mid.error();
            let verify = mid.ssl().verify_result();
            if verify != openssl::x509::X509VerifyResult::OK {
                return Err(format!(
                    "certificate verify failed ({})",
                    verify.error_string()
                ));
            }
            Err(err
                .ssl_error()
                .and_then(|s| s.errors().first())
                .and_then(|x| x.reason())
                .map_or_else(|| err.to_string(), str::to_owned))
        }
        Err(other) => Err(other.to_string()),
    }
}

fn ssl_options(config: &ClientConfig) -> Result<mqtt::SslOptions> {
    let err = |what: &str, e: mqtt::Error| Error::Config(format!("TLS {what}: {e}"));
    let mut b = mqtt::SslOptionsBuilder::new();
    b.enabled_cipher_suites(CIPHERS);
    if let Some(ca) = &config.ca_file {
        b.trust_store(ca).map_err(|e| err("CA file", e))?;
    }
    if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
        b.key_store(cert).map_err(|e| err("certificate file", e))?;
        b.private_key(key).map_err(|e| err("key file", e))?;
    }
    b.enable_server_cert_auth(!config.insecure_skip_verify);
    b.verify(!config.insecure_skip_verify);
    Ok(b.finalize())
}

struct Attempt {
    create: mqtt::CreateOptions,
    connect: mqtt::ConnectOptions,
}

/// Builds paho's options (which are `!Send`: done before any `.await`).
fn options(
    config: &ClientConfig,
    client_id: &str,
    urls: &[BrokerUrl],
    v5: bool,
) -> Result<Attempt> {
    let create = mqtt::CreateOptionsBuilder::new()
        .server_uri(urls[0].paho_uri.clone())
        .client_id(client_id)
        .mqtt_version(if v5 {
            mqtt::MQTT_VERSION_5
        } else {
            mqtt::MQTT_VERSION_3_1_1
        })
        .persistence(mqtt::PersistenceType::None)
        // Publishes made while the connection is down wait for the reconnect.
        .send_while_disconnected(true)
        .max_buffered_messages(100_000)
        .finalize();
    let mut b = if v5 {
        mqtt::ConnectOptionsBuilder::new_v5()
    } else {
        mqtt::ConnectOptionsBuilder::new_v3()
    };
    if urls.len() > 1 {
        let uris: Vec<String> = urls.iter().map(|u| u.paho_uri.clone()).collect();
        b.server_uris(&uris);
    }
    b.keep_alive_interval(Duration::from_secs(u64::from(config.keep_alive_secs)))
        .connect_timeout(config.connect_timeout())
        .automatic_reconnect(Duration::from_millis(250), Duration::from_secs(30))
        .max_inflight(65_535);
    if v5 {
        // Clean Start 0 so the broker resumes the session (MQTT-T 3.1.1); no Will.
        b.clean_start(false);
        let mut props = mqtt::Properties::new();
        props
            .push_u32(
                mqtt::PropertyCode::SessionExpiryInterval,
                config.session_expiry_secs,
            )
            .map_err(|e| Error::Config(format!("session_expiry_secs: {e}")))?;
        b.properties(props);
    } else {
        b.clean_session(false);
    }
    if let Some(u) = &config.username {
        b.user_name(u.as_str());
    }
    if let Some(p) = &config.password {
        b.password(p.as_str());
    }
    // With a failover list and no SSL options, paho C prints each URI to
    // stdout; SSL options are ignored for plain TCP, so always give them then.
    if urls.len() > 1 || urls.iter().any(|u| u.tls) {
        b.ssl_options(ssl_options(config)?);
    }
    Ok(Attempt {
        create,
        connect: b.finalize(),
    })
}

fn subscribe_options(v5: bool, n: usize) -> Vec<mqtt::SubscribeOptions> {
    if !v5 {
        return Vec::new();
    }
    // MQTT-T 3.2: No Local 1, Retain As Published 1, Retain Handling 0.
    let opts = mqtt::SubscribeOptionsBuilder::new()
        .no_local(true)
        .retain_as_published(true)
        .retain_handling(mqtt::RetainHandling::SendRetainedOnSubscribe)
        .finalize();
    vec![opts; n]
}

fn subscribe_token(
    cli: &mqtt::AsyncClient,
    v5: bool,
    filters: &[String],
    qos: i32,
) -> mqtt::SubscribeManyToken {
    let qos = vec![qos; filters.len()];
    if v5 {
        cli.subscribe_many_with_options(
            filters,
            &qos,
            &subscribe_options(true, filters.len()),
            None,
        )
    } else {
        cli.subscribe_many(filters, &qos)
    }
}

impl Connection {
    /// Connects and subscribes `filters`. Inbound messages are kept until
    /// the role installs its handler with [`Connection::on_message`].
    pub(crate) async fn open(config: &ClientConfig, filters: Vec<String>) -> Result<Self> {
        config.validate()?;
        let urls = config
            .brokers
            .iter()
            .map(|b| parse_broker(b))
            .collect::<Result<Vec<_>>>()?;
        let client_id = config.resolve_client_id()?;
        let first_v5 = config.mqtt_version != MqttVersion::V311;
        let counters = Arc::new(Counters::default());
        let inlet = Arc::new(Inlet::default());
        let mut v5 = first_v5;
        loop {
            let attempt = options(config, &client_id, &urls, v5)?;
            let cli = PahoClient(Some(
                mqtt::AsyncClient::new(attempt.create)
                    .map_err(|e| Error::Config(format!("cannot create the MQTT client: {e}")))?,
            ));
            let (to_inlet, received) = (Arc::clone(&inlet), Arc::clone(&counters));
            cli.set_message_callback(move |_, m| {
                // `None` reports a lost connection; the reconnect is paho's.
                if let Some(m) = m {
                    Counters::bump(&received.received);
                    to_inlet.deliver(&m);
                }
            });
            let connected = cli.connect(attempt.connect).await;
            match connected {
                Ok(rsp) => {
                    let session_present = rsp.connect_response().is_some_and(|c| c.session_present);
                    let url = rsp
                        .connect_response()
                        .map(|c| c.server_uri)
                        .unwrap_or_default();
                    tracing::info!(%url, v5, session_present, client_id, "connected");
                    let conn = Self {
                        cli,
                        v5,
                        qos: i32::from(config.qos),
                        message_expiry: config.message_expiry_secs,
                        max_payload: config.max_payload,
                        closed: tokio::sync::watch::Sender::new(false),
                        url,
                        inlet,
                        unconfirmed: Arc::default(),
                        counters,
                    };
                    conn.reap_every_second();
                    conn.subscribe(&filters).await?;
                    conn.resubscribe_on_reconnect(filters);
                    return Ok(conn);
                }
                Err(e)
                    if v5
                        && config.mqtt_version == MqttVersion::Auto
                        && is_protocol_refusal(&e) =>
                {
                    tracing::info!("broker refused MQTT v5; falling back to v3.1.1");
                    v5 = false;
                }
                Err(e) => {
                    if let Some(why) = auth_failure(&e, config.username.is_some()) {
                        return Err(Error::Auth(format!("broker refused the connection: {why}")));
                    }
                    let b = urls.last().expect("validated: at least one broker").clone();
                    let cfg = config.clone();
                    let paho = e.to_string();
                    let err = tokio::task::spawn_blocking(move || {
                        diagnose(&b, &cfg, &mqtt::Error::GeneralString(paho))
                    })
                    .await
                    .unwrap_or_else(|j| {
                        Error::Connect(format!("connection diagnosis failed: {j}"))
                    });
                    return Err(err);
                }
            }
        }
    }

    async fn subscribe(&self, filters: &[String]) -> Result<()> {
        if filters.is_empty() {
            return Ok(());
        }
        let rsp = subscribe_token(&self.cli, self.v5, filters, self.qos)
            .await
            .map_err(|e| {
                Error::Publish(format!("cannot subscribe to {}: {e}", filters.join(", ")))
            })?;
        if let Some(codes) = rsp.subscribe_many_response() {
            for (filter, code) in filters.iter().zip(codes) {
                if code >= 0x80 {
                    let why = u32::try_from(code)
                        .map(|c| reason_text(mqtt::ReasonCode::from(c)))
                        .unwrap_or_default();
                    return Err(Error::Auth(format!(
                        "broker refused the subscription to {filter}: {why}"
                    )));
                }
            }
        }
        tracing::debug!(?filters, "subscribed");
        Ok(())
    }

    /// Detached publishes are checked every second while some are in flight,
    /// so a refusal is logged even when nothing else is published.
    fn reap_every_second(&self) {
        let (unconfirmed, counters) = (
            Arc::downgrade(&self.unconfirmed),
            Arc::clone(&self.counters),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(unconfirmed) = unconfirmed.upgrade() else {
                    break;
                };
                if !unconfirmed.is_empty() {
                    unconfirmed.reap(&counters);
                }
            }
        });
    }

    /// After an automatic reconnect the broker may have lost the session
    /// (restart without persistence): subscribe again. Re-subscribing to a
    /// resumed session is harmless.
    fn resubscribe_on_reconnect(&self, filters: Vec<String>) {
        // Registered after the first CONNACK, so every call is a reconnect.
        let counters = Arc::clone(&self.counters);
        let (v5, qos) = (self.v5, self.qos);
        self.cli.set_connected_callback(move |cli| {
            counters.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("reconnected; subscribing again");
            // The token completes on paho's thread; the outcome is logged there.
            drop(subscribe_token(cli, v5, &filters, qos));
        });
        self.cli
            .set_connection_lost_callback(|_| tracing::warn!("connection lost; reconnecting"));
    }

    /// Publishes one payload on each topic without waiting for the broker:
    /// returns once paho has the messages (it keeps them across reconnects
    /// and retries them at QoS 1/2). A refusal by the broker is logged and
    /// the message is not counted as published.
    pub(crate) fn publish_detached(
        &self,
        topics: &[String],
        payload: &[u8],
        props: &PublishProperties,
    ) -> Result<()> {
        if *self.closed.borrow() {
            return Err(Error::Closed("the connection was closed".to_owned()));
        }
        self.unconfirmed.reap(&self.counters);
        let props = self.properties(props)?;
        for topic in topics {
            let token = self
                .cli
                .try_publish(self.message(topic, payload, props.as_ref()))
                .map_err(|e| publish_error(&self.counters, topic, e))?;
            self.unconfirmed
                .tokens()
                .push_back((topic.clone(), token.into()));
        }
        Ok(())
    }

    fn properties(&self, props: &PublishProperties) -> Result<Option<mqtt::Properties>> {
        if self.v5 {
            outbound_properties(props, self.message_expiry).map(Some)
        } else {
            Ok(None)
        }
    }

    fn message(
        &self,
        topic: &str,
        payload: &[u8],
        props: Option<&mqtt::Properties>,
    ) -> mqtt::Message {
        let mut b = mqtt::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(self.qos)
            .retained(false);
        if let Some(p) = props {
            b = b.properties(p.clone());
        }
        b.finalize()
    }

    /// Counters so far, with the detached publishes acknowledged by now.
    pub(crate) fn stats(&self) -> super::Stats {
        self.unconfirmed.reap(&self.counters);
        self.counters.snapshot()
    }

    /// Publishes one payload on each topic and waits until the broker
    /// acknowledged every one (PUBACK/PUBCOMP). The publishes go out together.
    pub(crate) async fn publish_many(
        &self,
        topics: &[String],
        payload: &[u8],
        props: &PublishProperties,
    ) -> Result<()> {
        let mut closed = self.closed.subscribe();
        if *closed.borrow() {
            return Err(Error::Closed("the connection was closed".to_owned()));
        }
        let props = self.properties(props)?;
        let tokens: Vec<_> = topics
            .iter()
            .map(|topic| {
                (
                    topic,
                    self.cli
                        .publish(self.message(topic, payload, props.as_ref())),
                )
            })
            .collect();
        let mut tokens = tokens.into_iter();
        while let Some((topic, token)) = tokens.next() {
            // After close() paho never completes the token: stop waiting then.
            let outcome = tokio::select! {
                r = token => r,
                _ = closed.wait_for(|c| *c) => {
                    return Err(Error::Closed(format!("the connection was closed before {topic} was acknowledged")));
                }
            };
            if let Err(e) = outcome {
                // The other topics' outcomes are still counted, by the reaper.
                self.unconfirmed
                    .tokens()
                    .extend(tokens.map(|(t, token)| (t.clone(), token.into())));
                return Err(publish_error(&self.counters, topic, e));
            }
            self.counters.published.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Installs what the role does with each inbound message. It runs on
    /// paho's callback thread, so it must not block: decode, correlate,
    /// and hand over through a channel. Installing twice keeps the first.
    pub(crate) fn on_message(&self, handler: impl Fn(&mqtt::Message) + Send + Sync + 'static) {
        self.inlet.install(Box::new(handler));
    }

    /// Decodes a received message within the configured size limit,
    /// counting it and any failure.
    pub(crate) fn decode(&self, m: &mqtt::Message) -> std::result::Result<Decoded, MessageError> {
        let props = inbound_properties(m.properties());
        codec::decode_with_limit(m.payload(), props.as_ref(), self.max_payload).inspect_err(|_| {
            self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// The broker URI connected to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Disconnects cleanly (waits at most 2 s).
    pub(crate) async fn close(&self) {
        self.closed.send_replace(true);
        self.inlet.closed.store(true, Ordering::Relaxed);
        if self.cli.is_connected() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.cli.disconnect(None)).await;
        }
    }
}

/// paho's client, destroyed on a thread of its own, a moment later.
///
/// Destroying waits for paho's network thread's next 1 s cycle, which the
/// caller (or process exit) should not pay. And it must never happen on
/// paho's callback thread, where it deadlocks on paho's global lock, which
/// that thread holds: a role's last reference can go there (its handler
/// holds a `Weak`), and so can a failed connect's, since paho-mqtt's connect
/// token keeps a clone of the client and drops it there right after waking
/// us. The grace period lets that callback finish first.
struct PahoClient(Option<mqtt::AsyncClient>);

impl std::ops::Deref for PahoClient {
    type Target = mqtt::AsyncClient;

    fn deref(&self) -> &mqtt::AsyncClient {
        self.0.as_ref().expect("the client is only taken on drop")
    }
}

impl Drop for PahoClient {
    fn drop(&mut self) {
        let slot = Arc::new(Mutex::new(self.0.take()));
        let last = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("oc2mqtt-drop".into())
            .spawn(move || {
                std::thread::sleep(DESTROY_GRACE);
                drop(lock(&last).take());
            });
        if spawned.is_err() {
            // No thread to destroy it on: leaking it beats a deadlock.
            std::mem::forget(lock(&slot).take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(inlet: &Inlet) -> Arc<Mutex<Vec<String>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        inlet.install(Box::new(move |m| {
            sink.lock()
                .expect("lock")
                .push(m.payload_str().into_owned());
        }));
        seen
    }

    #[test]
    fn messages_before_the_handler_are_handed_over_in_order() {
        let inlet = Inlet::default();
        inlet.deliver(&mqtt::Message::new("oc2/rsp", "early-1", 1));
        inlet.deliver(&mqtt::Message::new("oc2/rsp", "early-2", 1));
        let seen = seen(&inlet);
        inlet.deliver(&mqtt::Message::new("oc2/rsp", "late", 1));
        assert_eq!(*seen.lock().expect("lock"), ["early-1", "early-2", "late"]);
    }

    #[test]
    fn nothing_is_handed_over_after_close() {
        let inlet = Inlet::default();
        let seen = seen(&inlet);
        inlet.closed.store(true, Ordering::Relaxed);
        inlet.deliver(&mqtt::Message::new("oc2/rsp", "after close", 1));
        assert!(seen.lock().expect("lock").is_empty());
    }
}
