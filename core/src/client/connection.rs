//! One MQTT connection: the `mqtt-protocol-core` engine (v5 and v3.1.1,
//! sans-IO) driven by one tokio task over a [`Transport`]. The task reads,
//! keeps the connection alive and reconnects; publishes are sent by their
//! callers through the `Outbox` the task shares with them (`outbox.rs`).
//!
//! The engine holds the MQTT rules (packet ids, QoS flows, PINGREQ timing);
//! this module decides what MQTT-T and real brokers need on top: version
//! negotiation (v5, or 3.1.1 when the broker refuses v5 in any way),
//! sessions that end with the connection unless the client id is stable,
//! SUBSCRIBE options, refusals reported as errors, reconnects with
//! resubscription, and publishes that survive a lost connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mqtt::connection::{Event, TimerKind};
use mqtt::packet::{Packet, Property, Qos, SubEntry, SubOpts, v3_1_1, v5_0};
use mqtt_protocol_core::mqtt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::config::{BrokerUrl, ClientConfig, MqttVersion, parse_broker};
use super::events::{ConnectionEvent, ConnectionEvents, EventHub};
use super::lock;
use super::outbox::{
    After, Done, Engine, Io, Live, Outbox, Outgoing, PacketSpec, acknowledged, write_some,
};
use super::stats::Counters;
use super::transport::{Transport, io_reason};
use crate::codec::{self, Decoded, PublishProperties};
use crate::error::{Error, MessageError, Result};

/// PINGREQ goes out after 95 % of the keep-alive without traffic (MQTT-T 3.4).
const PING_PERMILLE: u64 = 950;
/// A publish that was in flight, oldest first, each time the broker closed
/// the connection this many times, and for at least [`STRIKE_SPAN`], is
/// refused, not sent again: the broker (RabbitMQ, for one) closes the
/// connection on a publish its ACL refuses.
const MAX_STRIKES: u8 = 3;
/// How long the broker must keep closing the connection on the same publish
/// before it is refused: a RabbitMQ cluster does the same for a moment when
/// a node dies (to a publish routed to a queue there, or to a quorum queue
/// electing a new leader), and that publish must go out once it is over.
const STRIKE_SPAN: Duration = Duration::from_secs(3);
/// Longest wait between two reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long `close` lets publishes in flight finish before DISCONNECT.
const CLOSE_DRAIN: Duration = Duration::from_millis(1500);
/// How long the shared-subscription probe waits for its message to come back.
const SHARED_PROBE_WAIT: Duration = Duration::from_secs(2);
/// The payload of that probe: not an OpenC2 message, and on a topic of its own.
const SHARED_PROBE_PAYLOAD: &[u8] = b"oc2mqtt shared subscription probe";

/// A message the broker delivered: the received PUBLISH, read in place.
pub(crate) struct Inbound(InboundPacket);

enum InboundPacket {
    V5(v5_0::Publish),
    V3(v3_1_1::Publish),
}

impl Inbound {
    /// The topic it was published to.
    pub(crate) fn topic(&self) -> &str {
        match &self.0 {
            InboundPacket::V5(p) => p.topic_name(),
            InboundPacket::V3(p) => p.topic_name(),
        }
    }

    /// The payload.
    pub(crate) fn payload(&self) -> &[u8] {
        match &self.0 {
            InboundPacket::V5(p) => p.payload().as_slice(),
            InboundPacket::V3(p) => p.payload().as_slice(),
        }
    }

    /// Whether the broker delivered it as a retained message (a stored
    /// message sent on subscribing, not a live publish).
    pub(crate) fn retained(&self) -> bool {
        match &self.0 {
            InboundPacket::V5(p) => p.retain(),
            InboundPacket::V3(p) => p.retain(),
        }
    }

    /// The OpenC2-relevant properties, if any (v3.1.1 has none).
    pub(crate) fn properties(&self) -> Option<PublishProperties> {
        let InboundPacket::V5(p) = &self.0 else {
            return None;
        };
        let mut out = PublishProperties {
            payload_format_indicator: None,
            content_type: None,
            user_properties: Vec::new(),
        };
        for prop in p.props() {
            match prop {
                Property::PayloadFormatIndicator(v) => {
                    out.payload_format_indicator = Some(v.val());
                }
                Property::ContentType(v) => out.content_type = Some(v.val().to_owned()),
                Property::UserProperty(v) => {
                    out.user_properties
                        .push((v.key().to_owned(), v.val().to_owned()));
                }
                _ => {}
            }
        }
        let empty = out.payload_format_indicator.is_none()
            && out.content_type.is_none()
            && out.user_properties.is_empty();
        (!empty).then_some(out)
    }

    #[cfg(test)]
    fn test(topic: &str, payload: &str) -> Self {
        let p = v3_1_1::Publish::builder()
            .topic_name(topic)
            .expect("topic")
            .qos(Qos::AtMostOnce)
            .payload(payload.as_bytes())
            .build()
            .expect("publish");
        Self(InboundPacket::V3(p))
    }
}

/// What a role does with each inbound message, on the connection's task.
type Handler = Box<dyn Fn(&Inbound) + Send + Sync>;

/// Hands inbound messages to the role's [`Handler`] directly on the
/// connection's task: no channel and no task switch per message. Messages
/// that arrive before the role installed its handler (a resumed session
/// delivers right after CONNACK) are kept and handed over at installation.
#[derive(Default)]
struct Inlet {
    handler: OnceLock<Handler>,
    early: Mutex<Vec<Inbound>>,
    closed: AtomicBool,
}

/// Runs a role's handler; a panic in it is logged and the connection goes on.
fn run_handler(handle: &Handler, m: &Inbound) {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(m)));
    if let Err(payload) = ran {
        tracing::error!(
            topic = m.topic(),
            panic = super::panic_text(payload.as_ref()),
            "a message handler panicked; the message is dropped"
        );
    }
}

impl Inlet {
    fn deliver(&self, m: Inbound) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        if let Some(handle) = self.handler.get() {
            return run_handler(handle, &m);
        }
        let mut early = lock(&self.early);
        match self.handler.get() {
            Some(handle) => {
                drop(early);
                run_handler(handle, &m);
            }
            None => early.push(m),
        }
    }

    fn install(&self, handler: Handler) {
        let mut early = lock(&self.early);
        let handle = self.handler.get_or_init(|| handler);
        for m in early.drain(..) {
            run_handler(handle, &m);
        }
    }
}

/// State the connection's task and its handles share.
struct Shared {
    inlet: Inlet,
    counters: Arc<Counters>,
    /// The MQTT version spoken: 5, 4 (3.1.1), or 0 before the first CONNACK.
    version: AtomicU8,
    url: Mutex<String>,
    /// Connection state changes, for whoever subscribed.
    events: EventHub,
    /// Publishes queued and in flight, and the link while one is served.
    outbox: Mutex<Outbox>,
    /// Tells the connection's task that the outbox has bytes for it to write.
    wake: Notify,
}

enum Op {
    Close(oneshot::Sender<()>),
}

/// How a consumer group's first connection checks that the broker has
/// shared subscriptions (`$share/<group>/...`): a v5 CONNACK says so (or
/// not: without the property they are available, MQTT 5 3.2.2.3.15); with
/// 3.1.1, a message published to `topic` must come back through
/// `$share/<group>/<topic>` within [`SHARED_PROBE_WAIT`].
pub(crate) struct SharedProbe {
    /// The consumer group.
    pub(crate) group: String,
    /// A topic of this connection's alone, outside the OpenC2 topics.
    pub(crate) topic: String,
    /// The error for a broker without them: its URL, and why.
    pub(crate) refusal: fn(&str, &str) -> Error,
}

pub(crate) struct Connection {
    ops: mpsc::UnboundedSender<Op>,
    client_id: String,
    shared: Arc<Shared>,
    max_payload: usize,
    seq: std::sync::atomic::AtomicU64,
    pub(crate) counters: Arc<Counters>,
}

impl Connection {
    /// Connects (negotiating the MQTT version), subscribes `filters`, and
    /// starts the connection's task. Inbound messages are kept until the
    /// role installs its handler with [`Connection::on_message`].
    pub(crate) async fn open(config: &ClientConfig, filters: Vec<String>) -> Result<Self> {
        Self::open_with(config, filters, None).await
    }

    /// [`Connection::open`] for a consumer group: the first connection also
    /// checks that the broker has shared subscriptions (see [`SharedProbe`]).
    pub(crate) async fn open_with(
        config: &ClientConfig,
        filters: Vec<String>,
        probe: Option<SharedProbe>,
    ) -> Result<Self> {
        config.validate()?;
        let urls = config
            .brokers
            .iter()
            .map(|b| parse_broker(b))
            .collect::<Result<Vec<_>>>()?;
        let client_id = config.resolve_client_id()?;
        // A generated id cannot be resumed by anyone: its session ends with
        // the connection, leaving no queue behind on the broker.
        let persistent = config.client_id.is_some() || config.client_id_file.is_some();
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            inlet: Inlet::default(),
            counters: Arc::clone(&counters),
            version: AtomicU8::new(0),
            url: Mutex::new(String::new()),
            events: EventHub::default(),
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
        });
        let (ops, rx) = mpsc::unbounded_channel();
        let mut driver = Driver {
            v5: config.mqtt_version != MqttVersion::V311,
            qos: if config.qos == 2 {
                Qos::ExactlyOnce
            } else {
                Qos::AtLeastOnce
            },
            config: config.clone(),
            urls,
            url_index: 0,
            client_id,
            persistent,
            filters,
            shared: Arc::clone(&shared),
            rx,
            subacks: HashMap::new(),
            closing: None,
            probe,
            probing: None,
            disconnect_reason: None,
        };
        let link = driver.first_link().await?;
        let client_id = driver.client_id.clone();
        tokio::spawn(driver.run(link));
        Ok(Self {
            ops,
            client_id,
            shared,
            max_payload: config.max_payload,
            seq: std::sync::atomic::AtomicU64::new(0),
            counters,
        })
    }

    /// Submits one call's publishes of `payload`, one per topic with whoever
    /// waits for its acknowledgement, together: on an idle link they leave
    /// in one write.
    fn submit(
        &self,
        publishes: impl IntoIterator<Item = (String, Option<Done>)>,
        payload: &Arc<[u8]>,
        props: &Arc<PublishProperties>,
    ) -> Result<()> {
        if self.shared.inlet.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed("the connection was closed".to_owned()));
        }
        let outgoing = publishes.into_iter().map(|(topic, done)| Outgoing {
            topic,
            payload: Arc::clone(payload),
            props: Arc::clone(props),
            done,
            strikes: 0,
            first_strike: None,
            sent: false,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        });
        let mut after = After::default();
        let mut outbox = lock(&self.shared.outbox);
        if outbox.closed {
            return Err(Error::Closed("the connection was closed".to_owned()));
        }
        let wake = outbox.submit(outgoing, &mut after);
        drop(outbox);
        if wake {
            self.shared.wake.notify_one();
        }
        after.run(&self.counters);
        Ok(())
    }

    /// Publishes one payload on each topic without waiting for the broker.
    /// The connection keeps them across reconnects until acknowledged; a
    /// refusal is logged and counted in `publish_errors`.
    pub(crate) fn publish_detached(
        &self,
        topics: &[String],
        payload: &[u8],
        props: &PublishProperties,
    ) -> Result<()> {
        let (payload, props) = (Arc::from(payload), Arc::new(props.clone()));
        let publishes = topics.iter().map(|topic| (topic.clone(), None));
        self.submit(publishes, &payload, &props)
    }

    /// Publishes one payload on each topic without waiting, as
    /// [`Connection::publish_detached`], and calls `acked` once the broker
    /// acknowledged every one (`Ok`), or refused one or the connection
    /// closed first (`Err`). `acked` runs on the connection's task, outside
    /// its lock, so it must not block: it wakes whom it likes (a caller
    /// waiting for more than the acknowledgement is not woken by it), and
    /// holds nothing of the connection.
    pub(crate) fn publish_then(
        &self,
        topics: &[String],
        payload: &[u8],
        props: &PublishProperties,
        acked: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<()> {
        if topics.is_empty() {
            acked(Ok(()));
            return Ok(());
        }
        // Called on the connection's task once per topic: the last
        // acknowledgement, or the first failure, makes the call.
        let waiting = Arc::new(Mutex::new((topics.len(), Some(acked))));
        let (payload, props) = (Arc::from(payload), Arc::new(props.clone()));
        let publishes = topics.iter().map(|topic| {
            let waiting = Arc::clone(&waiting);
            let done = move |outcome: Result<()>| {
                let mut w = lock(&waiting);
                w.0 -= 1;
                if outcome.is_err() || w.0 == 0 {
                    if let Some(acked) = w.1.take() {
                        drop(w);
                        acked(outcome);
                    }
                }
            };
            (topic.clone(), Some(Done::Call(Box::new(done))))
        });
        self.submit(publishes, &payload, &props)
    }

    /// Publishes one payload on each topic and waits until the broker
    /// acknowledged every one (PUBACK/PUBCOMP). The publishes go out together.
    /// Dropping the future abandons the publishes not yet sent.
    pub(crate) async fn publish_many(
        &self,
        topics: &[String],
        payload: &[u8],
        props: &PublishProperties,
    ) -> Result<()> {
        all_acked(self.submit_acked(topics, payload, props)?).await
    }

    /// Submits one publish per topic, each with a receiver for the broker's
    /// acknowledgement.
    fn submit_acked(
        &self,
        topics: &[String],
        payload: &[u8],
        props: &PublishProperties,
    ) -> Result<Vec<oneshot::Receiver<Result<()>>>> {
        let (payload, props) = (Arc::from(payload), Arc::new(props.clone()));
        let (publishes, waits): (Vec<_>, Vec<_>) = topics
            .iter()
            .map(|topic| {
                let (tx, rx) = oneshot::channel();
                ((topic.clone(), Some(Done::Wait(tx))), rx)
            })
            .unzip();
        self.submit(publishes, &payload, &props)?;
        Ok(waits)
    }

    /// Installs what the role does with each inbound message. It runs on
    /// the connection's task, so it must not block: decode, correlate, and
    /// hand over through a channel. Installing twice keeps the first.
    pub(crate) fn on_message(&self, handler: impl Fn(&Inbound) + Send + Sync + 'static) {
        self.shared.inlet.install(Box::new(handler));
    }

    /// Decodes a received message within the configured size limit,
    /// counting it and any failure.
    pub(crate) fn decode(&self, m: &Inbound) -> std::result::Result<Decoded, MessageError> {
        let props = m.properties();
        codec::decode_with_limit(m.payload(), props.as_ref(), self.max_payload).inspect_err(|_| {
            Counters::bump(&self.counters.decode_errors);
        })
    }

    /// The broker URL connected to (the last one, after a failover).
    pub(crate) fn url(&self) -> String {
        lock(&self.shared.url).clone()
    }

    /// The MQTT client id in use (configured, read from its file, or generated).
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The MQTT version spoken with the broker.
    pub(crate) fn mqtt_version(&self) -> MqttVersion {
        version_of(self.shared.version.load(Ordering::Relaxed))
    }

    /// The connection's events from now on, starting with its current state.
    pub(crate) fn events(&self) -> ConnectionEvents {
        self.shared.events.subscribe()
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> super::Stats {
        let mut s = self.counters.snapshot();
        s.mqtt_version = Some(self.mqtt_version());
        s
    }

    /// Lets the publishes in flight finish (at most 1.5 s), then
    /// disconnects cleanly; waits at most 2 s in all.
    pub(crate) async fn close(&self) {
        self.shared.inlet.closed.store(true, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.ops.send(Op::Close(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        }
    }
}

fn version_of(v: u8) -> MqttVersion {
    match v {
        5 => MqttVersion::V5,
        4 => MqttVersion::V311,
        _ => MqttVersion::Auto,
    }
}

/// A CONNACK, whichever MQTT version it came in.
enum Connack {
    Accepted {
        session_present: bool,
        server_keep_alive: Option<u16>,
        max_qos: Option<u8>,
        /// Shared Subscription Available (MQTT v5), when the broker said.
        shared_subscriptions: Option<bool>,
    },
    VersionRefused(String),
    BadCredentials,
    NotAuthorized,
    Refused(String),
}

impl Connack {
    fn read(p: &Packet) -> Option<Self> {
        match p {
            Packet::V5_0Connack(c) => {
                use mqtt::result_code::ConnectReasonCode as R;
                Some(match c.reason_code() {
                    R::Success => Self::Accepted {
                        session_present: c.session_present(),
                        server_keep_alive: c.props().iter().find_map(|p| match p {
                            Property::ServerKeepAlive(k) => Some(k.val()),
                            _ => None,
                        }),
                        max_qos: c.props().iter().find_map(|p| match p {
                            Property::MaximumQos(q) => Some(q.val()),
                            _ => None,
                        }),
                        shared_subscriptions: c.props().iter().find_map(|p| match p {
                            Property::SharedSubscriptionAvailable(s) => Some(s.val() != 0),
                            _ => None,
                        }),
                    },
                    R::UnsupportedProtocolVersion => {
                        Self::VersionRefused("CONNACK: unsupported protocol version".to_owned())
                    }
                    R::BadUserNameOrPassword => Self::BadCredentials,
                    R::NotAuthorized => Self::NotAuthorized,
                    other => Self::Refused(reason_words(&format!("{other:?}"))),
                })
            }
            Packet::V3_1_1Connack(c) => {
                use mqtt::result_code::ConnectReturnCode as R;
                Some(match c.return_code() {
                    R::Accepted => Self::Accepted {
                        session_present: c.session_present(),
                        server_keep_alive: None,
                        max_qos: None,
                        shared_subscriptions: None,
                    },
                    R::UnacceptableProtocolVersion => {
                        Self::VersionRefused("CONNACK: unacceptable protocol version".to_owned())
                    }
                    R::BadUserNameOrPassword => Self::BadCredentials,
                    R::NotAuthorized => Self::NotAuthorized,
                    other => Self::Refused(reason_words(&format!("{other:?}"))),
                })
            }
            _ => None,
        }
    }
}

/// Why a handshake did not give a connection.
enum Handshake {
    /// The broker closed the connection after CONNECT without a CONNACK,
    /// or answered "unsupported protocol version": what a 3.1.1-only broker
    /// does with a v5 CONNECT.
    VersionRefused(String),
    /// Anything else, already worded for the user.
    Failed(Error),
}

/// One live connection to a broker.
struct Link {
    transport: Transport,
    engine: Engine,
    rbuf: Vec<u8>,
    io: Io,
    url: String,
    /// CONNACK's Maximum QoS (MQTT v5), when the broker announced one.
    max_qos: Option<u8>,
    /// CONNACK's Session Present: the broker resumed the session.
    session_present: bool,
    /// CONNACK's Shared Subscription Available (MQTT v5), when announced.
    shared_subscriptions: Option<bool>,
    /// Events that arrived with the CONNACK, applied once the driver has the link.
    backlog: Vec<Event>,
}

/// What ended a link.
enum End {
    /// The user closed the connection (or dropped every handle).
    Closed,
    /// The broker or the network did; reconnect.
    Lost(String),
}

struct Driver {
    config: ClientConfig,
    urls: Vec<BrokerUrl>,
    url_index: usize,
    client_id: String,
    persistent: bool,
    v5: bool,
    /// The QoS we publish at: the configured one, or 1 when the broker
    /// granted less than 2.
    qos: Qos,
    filters: Vec<String>,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Op>,
    /// SUBACKs awaited: packet id → (filter, granted QoS or refusal).
    subacks: HashMap<u16, (String, Option<std::result::Result<u8, String>>)>,
    /// Set once the user asked to close: whom to tell, and the drain deadline.
    closing: Option<(oneshot::Sender<()>, Instant)>,
    /// For a consumer group: the check of the first connection.
    probe: Option<SharedProbe>,
    /// The probe's topic and whether its message came back; kept after
    /// the check so that the probe never reaches the role's handler.
    probing: Option<(String, bool)>,
    /// The reason of a DISCONNECT from the broker (MQTT v5), for the
    /// `Offline` event that follows.
    disconnect_reason: Option<String>,
}

impl Driver {
    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Tells subscribers the link is up and subscribed.
    fn connected(&self, link: &Link) {
        self.shared.events.emit(ConnectionEvent::Connected {
            broker: link.url.clone(),
            mqtt_version: if self.v5 {
                MqttVersion::V5
            } else {
                MqttVersion::V311
            },
            session_resumed: link.session_present,
        });
    }

    /// The first connection: every URL in order, the version negotiated,
    /// the subscriptions made (a refusal is an error).
    async fn first_link(&mut self) -> Result<Link> {
        let mut last = None;
        for i in 0..self.urls.len() {
            match self.connect_url(i).await {
                Ok(mut link) => {
                    self.url_index = i;
                    self.subscribe(&mut link, true).await?;
                    self.connected(&link);
                    return Ok(link);
                }
                Err(e) => {
                    if self.urls.len() > 1 {
                        tracing::warn!(url = %self.urls[i].original, error = %e, "broker unavailable; trying the next one");
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.expect("validated: at least one broker"))
    }

    /// Connects to URL `i` with the configured version policy.
    async fn connect_url(&mut self, i: usize) -> Result<Link> {
        let url = self.urls[i].clone();
        let refused = |why: String| {
            Error::Connect(format!(
                "cannot connect to {}: the broker does not speak MQTT v5 ({why}); \
                 RabbitMQ and ActiveMQ speak MQTT 3.1.1 only: use MQTT version 3.1.1 or auto (--mqtt-version 3.1.1)",
                url.original
            ))
        };
        match self.handshake(&url, self.v5).await {
            Ok(link) => Ok(link),
            Err(Handshake::Failed(e)) => Err(e),
            Err(Handshake::VersionRefused(why)) if !self.v5 => Err(Error::Connect(format!(
                "cannot connect to {}: {why} (not an MQTT broker, or it refused this client id?)",
                url.original
            ))),
            Err(Handshake::VersionRefused(why)) => {
                if self.config.mqtt_version != MqttVersion::Auto {
                    return Err(refused(why));
                }
                match self.handshake(&url, false).await {
                    Ok(link) => {
                        tracing::warn!(
                            url = %url.original,
                            "the broker does not speak MQTT v5 ({why}); connected with MQTT 3.1.1, \
                             an interoperability mode of MQTT-T: no properties, so dialect and encoding are sniffed"
                        );
                        self.v5 = false;
                        Ok(link)
                    }
                    Err(Handshake::Failed(e)) => Err(e),
                    Err(Handshake::VersionRefused(why)) => Err(Error::Connect(format!(
                        "cannot connect to {}: {why}, with MQTT v5 and with 3.1.1 (not an MQTT broker?)",
                        url.original
                    ))),
                }
            }
        }
    }

    fn connect_packet(&self, v5: bool) -> Result<Packet> {
        let bad = |e: mqtt::result_code::MqttError| Error::Config(format!("CONNECT: {e:?}"));
        let keep_alive = u16::try_from(self.config.keep_alive_secs).unwrap_or(u16::MAX);
        if v5 {
            // MQTT-T 3.1: Clean Start 0, no Will. Session Expiry 0 ends the
            // session with the connection when the id is not stable.
            let expiry = if self.persistent {
                self.config.session_expiry_secs
            } else {
                0
            };
            let mut b = v5_0::Connect::builder()
                .client_id(self.client_id.as_str())
                .map_err(bad)?
                .keep_alive(keep_alive)
                .clean_start(false)
                .props(vec![Property::SessionExpiryInterval(
                    mqtt::packet::SessionExpiryInterval::new(expiry).map_err(bad)?,
                )]);
            if let Some(u) = &self.config.username {
                b = b.user_name(u.as_str()).map_err(bad)?;
            }
            if let Some(p) = &self.config.password {
                b = b.password(p.as_str()).map_err(bad)?;
            }
            Ok(b.build().map_err(bad)?.into())
        } else {
            let mut b = v3_1_1::Connect::builder()
                .client_id(self.client_id.as_str())
                .map_err(bad)?
                .keep_alive(keep_alive)
                .clean_session(!self.persistent);
            if let Some(u) = &self.config.username {
                b = b.user_name(u.as_str()).map_err(bad)?;
            }
            if let Some(p) = &self.config.password {
                b = b.password(p.as_str()).map_err(bad)?;
            }
            Ok(b.build().map_err(bad)?.into())
        }
    }

    /// TCP/TLS/WebSocket, CONNECT, and the CONNACK, within the connect timeout.
    async fn handshake(&self, url: &BrokerUrl, v5: bool) -> std::result::Result<Link, Handshake> {
        let connect = self.connect_packet(v5).map_err(Handshake::Failed)?;
        let transport = Transport::connect(url, &self.config)
            .await
            .map_err(Handshake::Failed)?;
        let mut engine = mqtt::Connection::<mqtt::role::Client>::new(if v5 {
            mqtt::Version::V5_0
        } else {
            mqtt::Version::V3_1_1
        });
        engine.set_auto_pub_response(true);
        engine.set_auto_ping_response(true);
        let mut link = Link {
            transport,
            engine,
            rbuf: Vec::with_capacity(16 * 1024),
            io: Io::with_capacity(16 * 1024),
            url: url.original.clone(),
            max_qos: None,
            session_present: false,
            shared_subscriptions: None,
            backlog: Vec::new(),
        };
        let events = link.engine.send(connect);
        link.apply_io_all(events);
        let secs = self.config.connect_timeout_secs;
        let deadline = Instant::now() + self.config.connect_timeout();
        let fail = |why: String| {
            Handshake::Failed(Error::Connect(format!(
                "cannot connect to {}: {why}",
                url.original
            )))
        };
        link.flush().await.map_err(|e| fail(io_reason(&e)))?;
        loop {
            let n = match tokio::time::timeout_at(deadline, link.transport.read(&mut link.rbuf))
                .await
            {
                Err(_) => {
                    return Err(fail(format!(
                        "no CONNACK within {secs} s (is it an MQTT broker? connect_timeout_secs)"
                    )));
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Ok(Err(e)) => return Err(fail(io_reason(&e))),
                Ok(Ok(n)) => n,
            };
            if link.rbuf.starts_with(b"HTTP/") {
                return Err(fail(
                    "not an MQTT broker (it answered with HTTP)".to_owned(),
                ));
            }
            if n == 0 {
                return Err(Handshake::VersionRefused(format!(
                    "it closed the connection after an MQTT {} CONNECT without answering",
                    if v5 { "v5" } else { "3.1.1" }
                )));
            }
            let events = link.recv_all();
            let mut events = events.into_iter();
            while let Some(ev) = events.next() {
                match ev {
                    Event::NotifyPacketReceived(p) => {
                        let Some(connack) = Connack::read(&p) else {
                            continue;
                        };
                        // What came in the same read after the CONNACK (a
                        // resumed session's queued messages, their PUBACKs)
                        // is the connection's from here on: kept, not lost.
                        link.backlog.extend(events);
                        return match connack {
                            Connack::Accepted {
                                session_present,
                                server_keep_alive,
                                max_qos,
                                shared_subscriptions,
                            } => {
                                link.max_qos = max_qos;
                                link.shared_subscriptions = shared_subscriptions;
                                link.session_present = session_present;
                                let version = if v5 { 5 } else { 4 };
                                self.established(link, version, session_present, server_keep_alive)
                            }
                            Connack::VersionRefused(why) => Err(Handshake::VersionRefused(why)),
                            Connack::BadCredentials => Err(self.auth_refused(true)),
                            Connack::NotAuthorized => Err(self.auth_refused(false)),
                            Connack::Refused(why) => {
                                Err(fail(format!("the broker refused the connection: {why}")))
                            }
                        };
                    }
                    Event::NotifyError(e) => {
                        return Err(fail(format!(
                            "not an MQTT broker, or a broken answer to CONNECT ({e:?})"
                        )));
                    }
                    Event::RequestClose => {
                        return Err(fail(
                            "the broker's answer to CONNECT is not a CONNACK (not an MQTT broker?)"
                                .to_owned(),
                        ));
                    }
                    other => link.apply_io(other),
                }
            }
        }
    }

    fn auth_refused(&self, bad_credentials: bool) -> Handshake {
        // Mosquitto answers a wrong password with "not authorized": with a
        // user name configured, the credentials are what the user can fix.
        let why = if bad_credentials || self.config.username.is_some() {
            "bad user name or password"
        } else {
            "not authorized (does the broker require a user name and password?)"
        };
        Handshake::Failed(Error::Auth(format!("broker refused the connection: {why}")))
    }

    fn established(
        &self,
        mut link: Link,
        version: u8,
        session_present: bool,
        server_keep_alive: Option<u16>,
    ) -> std::result::Result<Link, Handshake> {
        self.shared.version.store(version, Ordering::Relaxed);
        *lock(&self.shared.url) = link.url.clone();
        let ka = u64::from(server_keep_alive.map_or(self.config.keep_alive_secs, u32::from));
        let interval = (ka > 0).then(|| ka * PING_PERMILLE);
        let events = link.engine.set_pingreq_send_interval(interval);
        link.apply_io_all(events);
        tracing::info!(
            url = %link.url,
            mqtt_version = if version == 5 { "5" } else { "3.1.1" },
            session_present,
            client_id = %self.client_id,
            "connected"
        );
        Ok(link)
    }

    /// Subscribes every filter, one SUBSCRIBE each, all sent at once, and
    /// waits for their SUBACKs. A refusal is an error naming the filter: on
    /// the first connection `connect` fails with it; after a reconnect
    /// (rights withdrawn meanwhile: Mosquitto's dynamic security closes the
    /// connections of a client whose roles change) the attempt counts as
    /// failed (`ReconnectFailed` with it) and is tried again with backoff,
    /// rather than going on without the subscription.
    async fn subscribe(&mut self, link: &mut Link, first: bool) -> Result<()> {
        let backlog = std::mem::take(&mut link.backlog);
        if let Err(why) = self.apply(link, backlog) {
            return Err(Error::Connect(format!("{}: {why}", link.url)));
        }
        if link.max_qos.is_some_and(|q| q < 2) && self.qos == Qos::ExactlyOnce {
            tracing::warn!(
                "the broker supports QoS 1 at most (CONNACK); publishing at QoS 1 instead of 2"
            );
            self.qos = Qos::AtLeastOnce;
        }
        if first && self.probe.is_some() {
            self.check_shared(link).await?;
        }
        if self.filters.is_empty() {
            return Ok(());
        }
        self.subacks.clear();
        let mut order = Vec::new();
        for filter in self.filters.clone() {
            let pid = link
                .engine
                .acquire_packet_id()
                .map_err(|e| Error::Publish(format!("no packet id for SUBSCRIBE: {e:?}")))?;
            let bad = |e: mqtt::result_code::MqttError| Error::Topic(format!("{filter}: {e:?}"));
            // MQTT-T 3.2: Maximum QoS 2 whatever we publish at, No Local,
            // Retain As Published, Retain Handling 0.
            let opts = SubOpts::new()
                .set_qos(Qos::ExactlyOnce)
                .set_nl(self.v5)
                .set_rap(self.v5);
            let entry = SubEntry::new(filter.as_str(), opts).map_err(bad)?;
            let packet: Packet = if self.v5 {
                v5_0::Subscribe::builder()
                    .packet_id(pid)
                    .entries(vec![entry])
                    .build()
                    .map_err(bad)?
                    .into()
            } else {
                v3_1_1::Subscribe::builder()
                    .packet_id(pid)
                    .entries(vec![entry])
                    .build()
                    .map_err(bad)?
                    .into()
            };
            let events = link.engine.send(packet);
            self.subacks.insert(pid, (filter.clone(), None));
            order.push(pid);
            let _ = self.apply(link, events);
        }
        let deadline = Instant::now() + self.config.connect_timeout();
        let closed = |filters: &[String]| {
            Error::Auth(format!(
                "the broker closed the connection when subscribing to {} (not authorized?)",
                filters.join(", ")
            ))
        };
        link.flush().await.map_err(|_| closed(&self.filters))?;
        while self.subacks.values().any(|(_, r)| r.is_none()) {
            let pending = || {
                order
                    .iter()
                    .filter_map(|p| self.subacks.get(p))
                    .filter(|(_, r)| r.is_none())
                    .map(|(f, _)| f.clone())
                    .collect::<Vec<_>>()
            };
            let n = match tokio::time::timeout_at(deadline, link.transport.read(&mut link.rbuf))
                .await
            {
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "no SUBACK within {} s for {}",
                        self.config.connect_timeout_secs,
                        pending().join(", ")
                    )));
                }
                Ok(Ok(n)) => n,
                Ok(Err(_)) => 0,
            };
            if n == 0 {
                // The broker answers in order: the first filter without a
                // SUBACK is the one it would not take.
                let p = pending();
                return Err(closed(&p[..1.min(p.len())]));
            }
            let events = link.recv_all();
            if let Err(why) = self.apply(link, events) {
                return Err(Error::Connect(format!("{}: {why}", link.url)));
            }
            link.flush().await.map_err(|_| closed(&self.filters))?;
        }
        let mut granted_below_2 = false;
        for pid in &order {
            let Some((filter, Some(result))) = self.subacks.remove(pid) else {
                continue;
            };
            match result {
                Ok(q) => granted_below_2 |= q < 2,
                Err(why) => {
                    if !first {
                        tracing::error!(
                            filter,
                            why,
                            "the broker refused a subscription after reconnecting"
                        );
                    }
                    return Err(Error::Auth(format!(
                        "broker refused the subscription to {filter}: {why} (not authorized?)"
                    )));
                }
            }
        }
        if granted_below_2 && self.qos == Qos::ExactlyOnce {
            tracing::warn!("the broker grants QoS 1 at most; publishing at QoS 1 instead of 2");
            self.qos = Qos::AtLeastOnce;
        }
        tracing::debug!(filters = ?self.filters, "subscribed");
        Ok(())
    }

    /// Checks, on a consumer group's first connection, that the broker has
    /// shared subscriptions (see [`SharedProbe`]); the error says why not.
    async fn check_shared(&mut self, link: &mut Link) -> Result<()> {
        let Some(probe) = &self.probe else {
            return Ok(());
        };
        let refusal = probe.refusal;
        if link.shared_subscriptions == Some(false) {
            return Err(refusal(
                &link.url,
                "its CONNACK says so (Shared Subscription Available: 0)",
            ));
        }
        if self.v5 {
            // MQTT 5 3.2.2.3.15: absent, the property means they are available.
            return Ok(());
        }
        let filter = format!("$share/{}/{}", probe.group, probe.topic);
        let topic = probe.topic.clone();
        let started = Instant::now();
        self.probing = Some((topic.clone(), false));
        let outcome = self.run_probe(link, &filter, &topic).await;
        // Nothing left behind, even in a session that outlives the connection.
        self.unsubscribe(link, &filter).await;
        match outcome {
            Ok(true) => {
                tracing::debug!(
                    filter,
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "the broker has shared subscriptions (MQTT 3.1.1 probe)"
                );
                Ok(())
            }
            Ok(false) => Err(refusal(
                &link.url,
                &format!(
                    "a message published to {topic} did not come back through the subscription \
                     {filter} within {} s (unless this client may not publish to {topic})",
                    SHARED_PROBE_WAIT.as_secs()
                ),
            )),
            Err(why) => Err(refusal(&link.url, &why)),
        }
    }

    /// Subscribes `$share/<group>/<topic>` and publishes one message to
    /// `topic` (MQTT 3.1.1, QoS 1); `Ok(true)` once it came back.
    async fn run_probe(
        &mut self,
        link: &mut Link,
        filter: &str,
        topic: &str,
    ) -> std::result::Result<bool, String> {
        let bad = |e: mqtt::result_code::MqttError| format!("cannot probe with {filter}: {e:?}");
        let sub_id = link.engine.acquire_packet_id().map_err(bad)?;
        let entry = SubEntry::new(filter, SubOpts::new().set_qos(Qos::AtLeastOnce)).map_err(bad)?;
        let subscribe: Packet = v3_1_1::Subscribe::builder()
            .packet_id(sub_id)
            .entries(vec![entry])
            .build()
            .map_err(bad)?
            .into();
        self.subacks.insert(sub_id, (filter.to_owned(), None));
        let events = link.engine.send(subscribe);
        self.apply(link, events)?;
        let pub_id = link.engine.acquire_packet_id().map_err(bad)?;
        let publish: Packet = v3_1_1::Publish::builder()
            .topic_name(topic)
            .map_err(bad)?
            .qos(Qos::AtLeastOnce)
            .retain(false)
            .packet_id(pub_id)
            .payload(SHARED_PROBE_PAYLOAD)
            .build()
            .map_err(bad)?
            .into();
        let events = link.engine.send(publish);
        self.apply(link, events)?;
        let closed = || {
            format!("it closed the connection on the subscription to {filter} (not authorized?)")
        };
        link.flush().await.map_err(|_| closed())?;
        let deadline = Instant::now() + SHARED_PROBE_WAIT;
        let outcome = loop {
            if let Some((_, Some(Err(why)))) = self.subacks.get(&sub_id) {
                break Err(format!(
                    "it refused the subscription to {filter}: {why} (not authorized? with MQTT \
                     3.1.1 a group member subscribes to $share/<group>/<topic> and publishes to \
                     <topic> once, with <topic> under {})",
                    topic.rsplit_once('/').map_or(topic, |(dir, _)| dir)
                ));
            }
            if self.probing.as_ref().is_some_and(|(_, seen)| *seen) {
                break Ok(true);
            }
            let n = match tokio::time::timeout_at(deadline, link.transport.read(&mut link.rbuf))
                .await
            {
                Err(_) => break Ok(false),
                Ok(Ok(n)) => n,
                Ok(Err(_)) => 0,
            };
            if n == 0 {
                break Err(closed());
            }
            let events = link.recv_all();
            self.apply(link, events)?;
            link.flush().await.map_err(|_| closed())?;
        };
        self.subacks.remove(&sub_id);
        outcome
    }

    /// Sends UNSUBSCRIBE for `filter` (MQTT 3.1.1) without waiting for UNSUBACK.
    async fn unsubscribe(&mut self, link: &mut Link, filter: &str) {
        let Ok(pid) = link.engine.acquire_packet_id() else {
            return;
        };
        let Ok(packet) = v3_1_1::Unsubscribe::builder()
            .packet_id(pid)
            .entries(vec![filter])
            .and_then(|b| b.build())
        else {
            return;
        };
        let events = link.engine.send(packet.into());
        let _ = self.apply(link, events);
        let _ = tokio::time::timeout(Duration::from_millis(500), link.flush()).await;
    }

    /// Applies the engine's events (before the link is served): writes,
    /// timers, received packets. `Err` when the engine asked to close the
    /// connection.
    fn apply(&mut self, link: &mut Link, events: Vec<Event>) -> std::result::Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let (mut inbound, mut after) = (Vec::new(), After::default());
        let applied = {
            let mut outbox = lock(&shared.outbox);
            let url = link.url.clone();
            let taken = (&mut inbound, &mut after);
            self.absorb(&mut outbox.inflight, &mut link.io, events, taken, &url)
        };
        after.run(&shared.counters);
        for m in inbound {
            shared.inlet.deliver(m);
        }
        applied
    }

    /// Applies the engine's events with the outbox locked: writes and
    /// timers go to `io`; received messages (to deliver), the publishes
    /// acknowledged (to end) and warnings (to log) to `taken`, for once the
    /// lock is released (a handler may publish, a logger take a foreign lock).
    fn absorb(
        &mut self,
        inflight: &mut HashMap<u16, Outgoing>,
        io: &mut Io,
        events: Vec<Event>,
        taken: (&mut Vec<Inbound>, &mut After),
        url: &str,
    ) -> std::result::Result<(), String> {
        let (inbound, after) = taken;
        let mut close = None;
        for ev in events {
            match ev {
                Event::NotifyPacketReceived(p) => self.on_packet(inflight, p, inbound, after),
                Event::NotifyError(e) => {
                    let why = format!("MQTT protocol error: {e:?}");
                    let url = url.to_owned();
                    after.log(move || tracing::warn!(error = ?e, url, "MQTT protocol error"));
                    close.get_or_insert(why);
                }
                Event::RequestClose => {
                    let why = match &self.disconnect_reason {
                        Some(_) => self.closed_reason(),
                        None => "the connection was closed by the protocol engine".to_owned(),
                    };
                    close.get_or_insert(why);
                }
                other => io.apply(other),
            }
        }
        close.map_or(Ok(()), Err)
    }

    fn on_packet(
        &mut self,
        inflight: &mut HashMap<u16, Outgoing>,
        p: Packet,
        inbound: &mut Vec<Inbound>,
        after: &mut After,
    ) {
        let counters = &self.shared.counters;
        match p {
            Packet::V5_0Publish(m) => {
                Counters::bump(&counters.received);
                inbound.push(Inbound(InboundPacket::V5(m)));
            }
            Packet::V3_1_1Publish(m) => {
                if let Some((topic, seen)) = &mut self.probing {
                    if m.topic_name() == topic.as_str() {
                        *seen = true;
                        return;
                    }
                }
                Counters::bump(&counters.received);
                inbound.push(Inbound(InboundPacket::V3(m)));
            }
            Packet::V5_0Puback(a) => {
                let refused = a
                    .reason_code()
                    .filter(|r| r.is_failure())
                    .map(|r| format!("{r:?}"));
                acknowledged(inflight, after, a.packet_id(), refused);
            }
            Packet::V3_1_1Puback(a) => acknowledged(inflight, after, a.packet_id(), None),
            Packet::V5_0Pubrec(r) => {
                if let Some(rc) = r.reason_code().filter(|r| r.is_failure()) {
                    acknowledged(inflight, after, r.packet_id(), Some(format!("{rc:?}")));
                }
            }
            Packet::V5_0Pubcomp(c) => acknowledged(inflight, after, c.packet_id(), None),
            Packet::V3_1_1Pubcomp(c) => acknowledged(inflight, after, c.packet_id(), None),
            Packet::V5_0Suback(s) => {
                let codes = s.reason_codes();
                if let Some((_, slot)) = self.subacks.get_mut(&s.packet_id()) {
                    *slot = Some(match codes.first() {
                        Some(rc) if rc.is_failure() => Err(reason_words(&format!("{rc:?}"))),
                        Some(rc) => Ok(*rc as u8),
                        None => Err("empty SUBACK".to_owned()),
                    });
                }
            }
            Packet::V3_1_1Suback(s) => {
                let codes = s.return_codes();
                if let Some((_, slot)) = self.subacks.get_mut(&s.packet_id()) {
                    *slot = Some(match codes.first() {
                        Some(rc) if rc.is_failure() => Err("failure (0x80)".to_owned()),
                        Some(rc) => Ok(*rc as u8),
                        None => Err("empty SUBACK".to_owned()),
                    });
                }
            }
            Packet::V5_0Disconnect(d) => {
                let reason = d.reason_code();
                after.log(move || tracing::warn!(reason = ?reason, "the broker sent DISCONNECT"));
                self.disconnect_reason = d.reason_code().map(|rc| {
                    let words = reason_words(&format!("{rc:?}"));
                    if words == "administrative action" {
                        format!("{words} (with Mosquitto's dynamic security: the client's roles or ACLs changed)")
                    } else {
                        words
                    }
                });
            }
            _ => {}
        }
    }

    fn take_op(&mut self, op: Op) {
        match op {
            Op::Close(tx) => {
                self.closing = Some((tx, Instant::now() + CLOSE_DRAIN));
            }
        }
    }

    fn drained(&self) -> bool {
        lock(&self.shared.outbox).drained()
    }

    /// The connection's task: serve links until closed, reconnecting.
    async fn run(mut self, first: Link) {
        let mut link = Some(first);
        loop {
            let current = match link.take() {
                Some(l) => l,
                None => match self.reconnect().await {
                    Some(l) => l,
                    None => break,
                },
            };
            match self.serve(current).await {
                End::Closed => break,
                End::Lost(why) => {
                    tracing::warn!(why, "connection lost; reconnecting");
                    self.shared
                        .events
                        .emit(ConnectionEvent::Offline { reason: why });
                    self.requeue_inflight();
                }
            }
        }
        self.shared.inlet.closed.store(true, Ordering::Relaxed);
        // From here on `submit` refuses: publishes that raced with the close
        // fail now, not never.
        let outstanding: Vec<_> = {
            let mut outbox = lock(&self.shared.outbox);
            outbox.closed = true;
            outbox.live = None;
            let mut inflight: Vec<_> = outbox.inflight.drain().map(|(_, o)| o).collect();
            inflight.sort_by_key(|o| o.seq);
            let queued = std::mem::take(&mut outbox.queue);
            // Free what the task holds before saying it is closed: a caller
            // may exit the process right after `close` returns.
            outbox.inflight = HashMap::new();
            inflight.into_iter().chain(queued).collect()
        };
        for o in outstanding {
            let why = if o.sent {
                format!(
                    "the connection was closed before the publish to {} was acknowledged",
                    o.topic
                )
            } else {
                format!(
                    "the connection was closed before the publish to {} was sent",
                    o.topic
                )
            };
            o.finish(self.counters(), Err(Error::Closed(why)));
        }
        self.rx.close();
        self.subacks = HashMap::new();
        self.shared.events.emit(ConnectionEvent::Closed);
        if let Some((tx, _)) = self.closing.take() {
            let _ = tx.send(());
        }
    }

    /// Puts the publishes in flight back at the head of the queue, in their
    /// order. The oldest gets a strike: a broker handles publishes in order,
    /// so if it closed the connection because of one, it was that one.
    fn requeue_inflight(&mut self) {
        let mut after = After::default();
        let mut guard = lock(&self.shared.outbox);
        let outbox = &mut *guard;
        let mut lost: Vec<_> = outbox.inflight.drain().map(|(_, o)| o).collect();
        lost.sort_by_key(|o| o.seq);
        if let Some(oldest) = lost.first_mut() {
            oldest.strikes = oldest.strikes.saturating_add(1);
            oldest.first_strike.get_or_insert_with(Instant::now);
        }
        if lost.first().is_some_and(|o| {
            o.strikes >= MAX_STRIKES && o.first_strike.is_some_and(|t| t.elapsed() >= STRIKE_SPAN)
        }) {
            let oldest = lost.remove(0);
            let why = format!(
                "the broker closed the connection each time it received the publish to {} ({} times; not authorized?)",
                oldest.topic, oldest.strikes
            );
            // What else waits for that topic (a command sent again after
            // each reconnect, for one) would meet the same: refused alike.
            let topic = oldest.topic.clone();
            after.finish(oldest, Err(Error::Publish(why.clone())));
            let (in_flight, kept): (Vec<_>, Vec<_>) =
                lost.into_iter().partition(|o| o.topic == topic);
            lost = kept;
            let (queued, kept): (std::collections::VecDeque<_>, std::collections::VecDeque<_>) =
                std::mem::take(&mut outbox.queue)
                    .into_iter()
                    .partition(|o| o.topic == topic);
            outbox.queue = kept;
            for o in in_flight.into_iter().chain(queued) {
                after.finish(o, Err(Error::Publish(why.clone())));
            }
        }
        for o in lost.into_iter().rev() {
            outbox.queue.push_front(o);
        }
        drop(guard);
        after.run(self.counters());
    }

    /// Reconnects with backoff, through every URL in turn, keeping
    /// publishes queued meanwhile. `None` when closed while trying.
    async fn reconnect(&mut self) -> Option<Link> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0u32;
        // The broker closed the connection on the same publish before: not
        // straight back to it (100 ms, doubling with each strike, up to 1.6 s).
        let strikes = lock(&self.shared.outbox)
            .queue
            .front()
            .map_or(0, |o| o.strikes);
        if strikes >= 2 {
            let pause = Duration::from_millis(100 << (strikes - 2).min(4));
            if !self.wait_until(Instant::now() + pause).await {
                return None;
            }
        }
        loop {
            for k in 0..self.urls.len() {
                let i = (self.url_index + k) % self.urls.len();
                let url = self.urls[i].clone();
                attempt = attempt.saturating_add(1);
                self.shared.events.emit(ConnectionEvent::Reconnecting {
                    broker: url.original.clone(),
                    attempt,
                });
                let failure = match self.handshake(&url, self.v5).await {
                    Ok(mut link) => {
                        self.url_index = i;
                        match self.subscribe(&mut link, false).await {
                            Ok(()) => {
                                Counters::bump(&self.shared.counters.reconnects);
                                tracing::info!(url = %url.original, "reconnected");
                                self.connected(&link);
                                return Some(link);
                            }
                            Err(e) => {
                                tracing::warn!(url = %url.original, error = %e, "resubscribing failed");
                                e
                            }
                        }
                    }
                    Err(Handshake::Failed(e)) => {
                        tracing::warn!(url = %url.original, error = %e, "reconnect failed");
                        e
                    }
                    Err(Handshake::VersionRefused(why)) => {
                        tracing::warn!(url = %url.original, why, "reconnect failed");
                        Error::Connect(format!("cannot connect to {}: {why}", url.original))
                    }
                };
                self.shared.events.emit(ConnectionEvent::ReconnectFailed {
                    broker: url.original.clone(),
                    attempt,
                    error: Arc::new(failure),
                });
            }
            let wake = Instant::now() + delay;
            delay = (delay * 2).min(MAX_BACKOFF);
            if !self.wait_until(wake).await {
                return None;
            }
            lock(&self.shared.outbox).queue.retain(|o| !o.abandoned());
        }
    }

    /// Waits offline until `wake` (publishes are queued by their callers
    /// meanwhile); false when closed while waiting.
    async fn wait_until(&mut self, wake: Instant) -> bool {
        loop {
            if self.closing.is_some() {
                return false;
            }
            tokio::select! {
                op = self.rx.recv() => match op {
                    Some(op) => self.take_op(op),
                    None => return false,
                },
                () = tokio::time::sleep_until(wake) => return true,
            }
        }
    }

    /// Why the broker closed the connection: with the reason of its
    /// DISCONNECT (MQTT v5), if it sent one.
    fn closed_reason(&mut self) -> String {
        match self.disconnect_reason.take() {
            Some(why) => format!("the broker closed the connection: {why}"),
            None => "the broker closed the connection".to_owned(),
        }
    }

    /// Runs one link until it ends. Its engine goes to the outbox, where
    /// callers send their publishes themselves (see `outbox.rs`).
    async fn serve(&mut self, link: Link) -> End {
        self.disconnect_reason = None;
        let Link {
            transport,
            engine,
            mut rbuf,
            io,
            url,
            ..
        } = link;
        let mut pipe = Pipe::new(transport);
        let spec = PacketSpec {
            v5: self.v5,
            qos: self.qos,
            message_expiry_secs: self.config.message_expiry_secs,
        };
        lock(&self.shared.outbox).live = Some(Live {
            engine,
            io,
            direct: pipe.direct(),
            spec,
        });
        let end = self.serve_live(&mut pipe, &mut rbuf, &url).await;
        // Callers queue again from here on; the socket is this task's alone.
        drop(lock(&self.shared.outbox).live.take());
        if matches!(end, End::Closed) {
            let _ = tokio::time::timeout(Duration::from_millis(500), pipe.shutdown()).await;
        }
        end
    }

    async fn serve_live(&mut self, pipe: &mut Pipe, rbuf: &mut Vec<u8>, url: &str) -> End {
        let shared = Arc::clone(&self.shared);
        // One PINGREQ timer for the link, moved when `ping_at` moves: a
        // timer made anew on each turn of the loop (several per exchange)
        // takes the runtime's timer lock twice, where moving it later is an
        // atomic store.
        let ping = tokio::time::sleep_until(Instant::now());
        tokio::pin!(ping);
        let mut ping_armed: Option<Instant> = None;
        loop {
            let mut after = After::default();
            let (ping_at, pingresp_by) = {
                let mut outbox = lock(&shared.outbox);
                outbox.send_queued(&mut after);
                let io = &outbox.live.as_ref().expect("served").io;
                (io.ping_at, io.pingresp_by)
            };
            after.run(&shared.counters);
            if let Err(e) = self.flush(pipe).await {
                return End::Lost(io_reason(&e));
            }
            if let Some((_, by)) = &self.closing {
                if self.drained() || Instant::now() >= *by {
                    self.disconnect(pipe, url).await;
                    return End::Closed;
                }
            }
            let drain_by = self.closing.as_ref().map(|(_, by)| *by);
            if ping_at != ping_armed {
                if let Some(at) = ping_at {
                    ping.as_mut().reset(at);
                }
                ping_armed = ping_at;
            }
            tokio::select! {
                op = self.rx.recv(), if self.closing.is_none() => match op {
                    Some(op) => self.take_op(op),
                    None => {
                        // Every handle is gone: leave as if closed.
                        self.disconnect(pipe, url).await;
                        return End::Closed;
                    }
                },
                () = shared.wake.notified() => {}
                n = pipe.read(rbuf) => match n {
                    Ok(0) => return End::Lost(self.closed_reason()),
                    Err(e) => return End::Lost(io_reason(&e)),
                    Ok(_) => {
                        let received = self.on_live(|live| recv_all(&mut live.engine, rbuf), url);
                        if let Err(why) = received {
                            let _ = self.flush(pipe).await;
                            return End::Lost(why);
                        }
                    }
                },
                () = &mut ping, if ping_armed.is_some() => {
                    // Armed again on the next turn, for whatever `ping_at` is then.
                    ping_armed = None;
                    let fired = self.on_live(|live| {
                        // A publish sent meanwhile moved the PINGREQ later.
                        if live.io.ping_at.is_some_and(|t| t <= Instant::now()) {
                            live.io.ping_at = None;
                            live.engine.notify_timer_fired(TimerKind::PingreqSend)
                        } else {
                            Vec::new()
                        }
                    }, url);
                    if let Err(why) = fired {
                        return End::Lost(why);
                    }
                }
                () = sleep_until_opt(pingresp_by) => {
                    let mut late = false;
                    let _ = self.on_live(|live| {
                        if live.io.pingresp_by.is_some_and(|t| t <= Instant::now()) {
                            late = true;
                            live.io.pingresp_by = None;
                            live.engine.notify_timer_fired(TimerKind::PingrespRecv)
                        } else {
                            Vec::new()
                        }
                    }, url);
                    if late {
                        return End::Lost("no PINGRESP from the broker".to_owned());
                    }
                }
                () = sleep_until_opt(drain_by) => {}
            }
        }
    }

    /// Runs `step` on the served link's engine with the outbox locked,
    /// applies the events it returns, then hands received messages to the
    /// role (unlocked). Their PUBACKs wait in the outbox until the next
    /// flush, so that a publish the handler makes at once goes out with them.
    fn on_live(
        &mut self,
        step: impl FnOnce(&mut Live) -> Vec<Event>,
        url: &str,
    ) -> std::result::Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let (mut inbound, mut after) = (Vec::new(), After::default());
        let applied = {
            let mut outbox = lock(&shared.outbox);
            let outbox = &mut *outbox;
            let live = outbox.live.as_mut().expect("served");
            let events = step(live);
            let taken = (&mut inbound, &mut after);
            self.absorb(&mut outbox.inflight, &mut live.io, events, taken, url)
        };
        after.run(&shared.counters);
        for m in inbound {
            shared.inlet.deliver(m);
        }
        applied
    }

    /// Writes what waits in the outbox, until it is empty.
    async fn flush(&self, pipe: &mut Pipe) -> std::io::Result<()> {
        match pipe {
            Pipe::Direct(_, socket) => loop {
                {
                    let mut outbox = lock(&self.shared.outbox);
                    let Some(live) = outbox.live.as_mut() else {
                        return Ok(());
                    };
                    if write_some(socket, &mut live.io.wbuf)? {
                        return Ok(());
                    }
                }
                socket.writable().await?;
            },
            Pipe::Task(transport, spare) => loop {
                let mut out = {
                    let mut outbox = lock(&self.shared.outbox);
                    let Some(live) = outbox.live.as_mut() else {
                        return Ok(());
                    };
                    if live.io.wbuf.is_empty() {
                        return Ok(());
                    }
                    std::mem::replace(&mut live.io.wbuf, std::mem::take(spare))
                };
                transport.write_all(&out).await?;
                out.clear();
                *spare = out;
            },
        }
    }

    async fn disconnect(&mut self, pipe: &mut Pipe, url: &str) {
        let packet: Packet = if self.v5 {
            match v5_0::Disconnect::builder().build() {
                Ok(d) => d.into(),
                Err(_) => return,
            }
        } else {
            v3_1_1::Disconnect::new().into()
        };
        let _ = self.on_live(|live| live.engine.send(packet), url);
        let _ = tokio::time::timeout(Duration::from_millis(500), self.flush(pipe)).await;
    }
}

/// The served link's byte pipe: a plain TCP socket shared with the callers
/// that write to it (see `outbox.rs`), or a TLS or WebSocket transport
/// only this task writes to (with a spare buffer, swapped with the
/// outbox's while writing).
enum Pipe {
    Direct(OwnedReadHalf, Arc<OwnedWriteHalf>),
    Task(Transport, Vec<u8>),
}

impl Pipe {
    fn new(transport: Transport) -> Self {
        match transport.into_tcp() {
            Ok(tcp) => {
                let (read, write) = tcp.into_split();
                Self::Direct(read, Arc::new(write))
            }
            Err(transport) => Self::Task(transport, Vec::with_capacity(16 * 1024)),
        }
    }

    fn direct(&self) -> Option<Arc<OwnedWriteHalf>> {
        match self {
            Self::Direct(_, socket) => Some(Arc::clone(socket)),
            Self::Task(..) => None,
        }
    }

    /// Reads what is available into `buf` (appending); `Ok(0)` at end of stream.
    async fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Self::Direct(read, _) => {
                buf.reserve(16 * 1024);
                tokio::io::AsyncReadExt::read_buf(read, buf).await
            }
            Self::Task(transport, _) => transport.read(buf).await,
        }
    }

    /// Closes the write side (after a DISCONNECT), ignoring errors.
    async fn shutdown(self) {
        match self {
            Self::Direct(_, socket) => {
                // The outbox let go of its handle when the link ended.
                if let Ok(mut write) = Arc::try_unwrap(socket) {
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut write).await;
                }
            }
            Self::Task(mut transport, _) => transport.shutdown().await,
        }
    }
}

impl Link {
    /// Feeds everything read so far to the engine.
    fn recv_all(&mut self) -> Vec<Event> {
        recv_all(&mut self.engine, &mut self.rbuf)
    }

    /// Applies events that need no driver state (sends and timers): what
    /// the engine asks for before the connection is up.
    fn apply_io_all(&mut self, events: Vec<Event>) {
        for ev in events {
            self.io.apply(ev);
        }
    }

    fn apply_io(&mut self, ev: Event) {
        self.io.apply(ev);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.io.wbuf.is_empty() {
            return Ok(());
        }
        let r = self.transport.write_all(&self.io.wbuf).await;
        self.io.wbuf.clear();
        r
    }
}

/// Feeds everything read into `rbuf` to the engine, and empties it.
fn recv_all(engine: &mut Engine, rbuf: &mut Vec<u8>) -> Vec<Event> {
    let mut events = Vec::new();
    let mut cursor = mqtt::common::Cursor::new(rbuf.as_slice());
    while (cursor.position() as usize) < rbuf.len() {
        let before = cursor.position();
        events.extend(engine.recv(&mut cursor));
        if cursor.position() == before {
            break;
        }
    }
    rbuf.clear();
    events
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `NotAuthorized` → `not authorized`.
pub(super) fn reason_words(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Waits for every acknowledgement of [`Connection::submit_acked`]'s
/// publishes; the first failure is the outcome.
async fn all_acked(waits: Vec<oneshot::Receiver<Result<()>>>) -> Result<()> {
    for w in waits {
        w.await.map_err(|_| {
            Error::Closed(
                "the connection was closed before the broker acknowledged the publish".to_owned(),
            )
        })??;
    }
    Ok(())
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
                .push(String::from_utf8_lossy(m.payload()).into_owned());
        }));
        seen
    }

    #[test]
    fn messages_before_the_handler_are_handed_over_in_order() {
        let inlet = Inlet::default();
        inlet.deliver(Inbound::test("oc2/rsp", "early-1"));
        inlet.deliver(Inbound::test("oc2/rsp", "early-2"));
        let seen = seen(&inlet);
        inlet.deliver(Inbound::test("oc2/rsp", "late"));
        assert_eq!(*seen.lock().expect("lock"), ["early-1", "early-2", "late"]);
    }

    #[test]
    fn nothing_is_handed_over_after_close() {
        let inlet = Inlet::default();
        let seen = seen(&inlet);
        inlet.closed.store(true, Ordering::Relaxed);
        inlet.deliver(Inbound::test("oc2/rsp", "after close"));
        assert!(seen.lock().expect("lock").is_empty());
    }

    #[test]
    fn a_panicking_handler_does_not_stop_delivery() {
        let inlet = Inlet::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        inlet.install(Box::new(move |m| {
            assert!(m.payload() != b"boom", "handler bug");
            sink.lock().expect("lock").push(m.payload().to_vec());
        }));
        inlet.deliver(Inbound::test("oc2/rsp", "boom"));
        inlet.deliver(Inbound::test("oc2/rsp", "after"));
        assert_eq!(*seen.lock().expect("lock"), [b"after".to_vec()]);
    }

    fn connack_shared(props: Vec<Property>) -> Option<bool> {
        let c = v5_0::Connack::builder()
            .session_present(false)
            .reason_code(mqtt::result_code::ConnectReasonCode::Success)
            .props(props)
            .build()
            .expect("connack");
        match Connack::read(&c.into()) {
            Some(Connack::Accepted {
                shared_subscriptions,
                ..
            }) => shared_subscriptions,
            _ => panic!("not accepted"),
        }
    }

    #[test]
    fn connack_tells_whether_shared_subscriptions_are_available() {
        let said = |v| {
            vec![Property::SharedSubscriptionAvailable(
                mqtt::packet::SharedSubscriptionAvailable::new(v).expect("property"),
            )]
        };
        assert_eq!(connack_shared(said(0)), Some(false));
        assert_eq!(connack_shared(said(1)), Some(true));
        assert_eq!(connack_shared(Vec::new()), None);
    }

    #[test]
    fn reason_codes_read_as_words() {
        assert_eq!(reason_words("NotAuthorized"), "not authorized");
        assert_eq!(reason_words("TopicNameInvalid"), "topic name invalid");
    }
}
