//! The publishing side of one connection, shared by its task and its
//! callers under one lock: publishes queued and in flight and, while a link
//! is up, the MQTT engine and the bytes waiting to be written.
//!
//! Why shared: on loopback a sequential exchange is bound by thread
//! wake-ups, not by our code. A publish handed to the connection's task
//! wakes that task's thread, which then writes; a caller that finds the
//! writer idle on a plain TCP link writes its PUBLISH itself (one
//! `try_write` under the lock, as libmosquitto's `mosquitto_publish` does).
//! The task is woken only for what a caller cannot finish: a socket that
//! would block, a TLS or WebSocket link (their writes are async), or a
//! broker that is away (the publish waits in the queue).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use mqtt::connection::{Event, TimerKind};
use mqtt::packet::{GenericPacketTrait, Packet, Property, Qos, v3_1_1, v5_0};
use mqtt_protocol_core::mqtt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::stats::Counters;
use crate::codec::PublishProperties;
use crate::error::{Error, Result};

pub(super) type Engine = mqtt::Connection<mqtt::role::Client>;

/// Publishes kept while the broker is away; more are refused, not buffered.
pub(super) const MAX_QUEUED: usize = 100_000;

/// Who is told the outcome of a publish.
pub(super) enum Done {
    /// A caller awaiting it.
    Wait(oneshot::Sender<Result<()>>),
    /// A call, made on the connection's task without its lock: it must not
    /// block. It wakes nobody unless it wants to (a caller that waits for
    /// more than the acknowledgement is woken once, by the last event).
    Call(Box<dyn FnOnce(Result<()>) + Send>),
}

/// A publish on its way: queued, or sent and not yet acknowledged.
pub(super) struct Outgoing {
    pub(super) topic: String,
    pub(super) payload: Arc<[u8]>,
    pub(super) props: Arc<PublishProperties>,
    /// Who waits for the broker's acknowledgement, if anyone.
    pub(super) done: Option<Done>,
    /// Times the connection was lost while this was the oldest publish in flight.
    pub(super) strikes: u8,
    /// When that happened first.
    pub(super) first_strike: Option<Instant>,
    /// Whether it ever went out (a publish nobody waits for any more is
    /// dropped only if it never did).
    pub(super) sent: bool,
    /// Order of submission, to send again in the same order.
    pub(super) seq: u64,
}

impl Outgoing {
    /// Ends a publish: acknowledged, refused by the broker, or (an
    /// `Error::Closed`) dropped by the client itself.
    pub(super) fn finish(self, counters: &Counters, outcome: Result<()>) {
        let local = matches!(outcome, Err(Error::Closed(_)));
        self.finish_as(counters, outcome, local);
    }

    /// [`Outgoing::finish`], saying whether a failure is the client's own
    /// doing (counted in `discarded`) or the broker's (`publish_errors`).
    pub(super) fn finish_as(self, counters: &Counters, outcome: Result<()>, local: bool) {
        match &outcome {
            Ok(()) => Counters::bump(&counters.published),
            Err(e) => {
                Counters::bump(if local {
                    &counters.discarded
                } else {
                    &counters.publish_errors
                });
                if self.done.is_none() {
                    tracing::warn!(error = %e, "a publish was not delivered");
                }
            }
        }
        match self.done {
            Some(Done::Wait(tx)) => drop(tx.send(outcome)),
            Some(Done::Call(call)) => call(outcome),
            None => {}
        }
    }

    pub(super) fn abandoned(&self) -> bool {
        !self.sent && matches!(&self.done, Some(Done::Wait(tx)) if tx.is_closed())
    }
}

/// What a step taken under the outbox's lock leaves for after it: ending
/// publishes (telling whoever waits, logging a failure) and logging. A
/// logger may take a foreign lock (a binding's, the GIL) that a caller
/// waiting for the outbox holds, so nothing is logged under it.
#[derive(Default)]
pub(super) struct After {
    finished: Vec<(Outgoing, Result<()>, bool)>,
    logs: Vec<Box<dyn FnOnce() + Send>>,
}

impl After {
    /// [`Outgoing::finish`], once the lock is released.
    pub(super) fn finish(&mut self, o: Outgoing, outcome: Result<()>) {
        let local = matches!(outcome, Err(Error::Closed(_)));
        self.finished.push((o, outcome, local));
    }

    /// [`Outgoing::finish_as`], once the lock is released.
    pub(super) fn finish_as(&mut self, o: Outgoing, outcome: Result<()>, local: bool) {
        self.finished.push((o, outcome, local));
    }

    /// Logs, once the lock is released.
    pub(super) fn log(&mut self, log: impl FnOnce() + Send + 'static) {
        self.logs.push(Box::new(log));
    }

    /// Does what was left; call it without the outbox's lock.
    pub(super) fn run(self, counters: &Counters) {
        for (o, outcome, local) in self.finished {
            o.finish_as(counters, outcome, local);
        }
        for log in self.logs {
            log();
        }
    }
}

/// Bytes the engine asked to send, not yet written, and its PINGREQ timers.
#[derive(Default)]
pub(super) struct Io {
    pub(super) wbuf: Vec<u8>,
    pub(super) ping_at: Option<Instant>,
    pub(super) pingresp_by: Option<Instant>,
}

impl Io {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            wbuf: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Applies an engine event that needs no driver state (a send or a timer).
    pub(super) fn apply(&mut self, ev: Event) {
        match ev {
            Event::RequestSendPacket { packet, .. } => {
                for slice in packet.to_buffers() {
                    self.wbuf.extend_from_slice(&slice);
                }
            }
            Event::RequestTimerReset { kind, duration_ms } => {
                let at = Instant::now() + Duration::from_millis(duration_ms);
                match kind {
                    TimerKind::PingreqSend => self.ping_at = Some(at),
                    TimerKind::PingrespRecv => self.pingresp_by = Some(at),
                    TimerKind::PingreqRecv => {}
                }
            }
            Event::RequestTimerCancel(kind) => match kind {
                TimerKind::PingreqSend => self.ping_at = None,
                TimerKind::PingrespRecv => self.pingresp_by = None,
                TimerKind::PingreqRecv => {}
            },
            _ => {}
        }
    }
}

/// How this link's publishes are built.
#[derive(Clone, Copy)]
pub(super) struct PacketSpec {
    pub(super) v5: bool,
    pub(super) qos: Qos,
    pub(super) message_expiry_secs: Option<u32>,
}

impl PacketSpec {
    pub(super) fn publish(&self, o: &Outgoing, pid: u16) -> Result<Packet> {
        let bad = |e: mqtt::result_code::MqttError| {
            Error::Publish(format!("cannot publish to {}: {e:?}", o.topic))
        };
        if self.v5 {
            let p = &o.props;
            let mut props = Vec::with_capacity(3 + p.user_properties.len());
            if let Some(pfi) = p.payload_format_indicator {
                let f = if pfi == 1 {
                    mqtt::packet::PayloadFormat::String
                } else {
                    mqtt::packet::PayloadFormat::Binary
                };
                props.push(Property::PayloadFormatIndicator(
                    mqtt::packet::PayloadFormatIndicator::new(f).map_err(bad)?,
                ));
            }
            if let Some(ct) = &p.content_type {
                props.push(Property::ContentType(
                    mqtt::packet::ContentType::new(ct.as_str()).map_err(bad)?,
                ));
            }
            // Order matters to one Python peer: msgType before encoding, as given.
            for (k, v) in &p.user_properties {
                props.push(Property::UserProperty(
                    mqtt::packet::UserProperty::new(k.as_str(), v.as_str()).map_err(bad)?,
                ));
            }
            if let Some(secs) = self.message_expiry_secs {
                props.push(Property::MessageExpiryInterval(
                    mqtt::packet::MessageExpiryInterval::new(secs).map_err(bad)?,
                ));
            }
            Ok(v5_0::Publish::builder()
                .topic_name(o.topic.as_str())
                .map_err(bad)?
                .qos(self.qos)
                .retain(false)
                .packet_id(pid)
                .payload(Arc::clone(&o.payload))
                .props(props)
                .build()
                .map_err(bad)?
                .into())
        } else {
            Ok(v3_1_1::Publish::builder()
                .topic_name(o.topic.as_str())
                .map_err(bad)?
                .qos(self.qos)
                .retain(false)
                .packet_id(pid)
                .payload(Arc::clone(&o.payload))
                .build()
                .map_err(bad)?
                .into())
        }
    }
}

/// The link being served: its engine and what waits to be written.
pub(super) struct Live {
    pub(super) engine: Engine,
    pub(super) io: Io,
    /// A plain TCP socket, which any thread may write to without waiting
    /// (`None` for TLS and WebSocket: only the task writes those).
    pub(super) direct: Option<Arc<OwnedWriteHalf>>,
    pub(super) spec: PacketSpec,
}

/// Publishes queued and in flight, and the link, if one is served.
#[derive(Default)]
pub(super) struct Outbox {
    /// Publishes waiting for a link or a packet id, in order.
    pub(super) queue: VecDeque<Outgoing>,
    /// Publishes sent and not yet acknowledged, by packet id.
    pub(super) inflight: HashMap<u16, Outgoing>,
    pub(super) live: Option<Live>,
    /// The connection's task ended: nothing is taken any more.
    pub(super) closed: bool,
}

impl Outbox {
    /// Takes a caller's publishes (one call's: its topics), sends them at
    /// once when a link is up and writes them, in one write, when the socket
    /// is idle; `true` when the connection's task must be woken to write
    /// what is left.
    pub(super) fn submit(
        &mut self,
        publishes: impl IntoIterator<Item = Outgoing>,
        after: &mut After,
    ) -> bool {
        let mut taken = false;
        for o in publishes {
            if self.queue.len() >= MAX_QUEUED {
                let e = Error::Publish(format!(
                    "cannot publish to {}: {MAX_QUEUED} publishes already wait for the broker",
                    o.topic
                ));
                after.finish_as(o, Err(e), true);
                continue;
            }
            self.queue.push_back(o);
            taken = true;
        }
        if !taken {
            return false;
        }
        // Offline, the task sends the queue once it has a link again.
        let Some(live) = &self.live else {
            return false;
        };
        // Bytes already waiting (the task is writing, or about to write a
        // PUBACK it just made) go first. And with publishes in flight the
        // connection is busy: more are likely on their way, and the task
        // encodes and writes them together (one send for a burst; pipelined,
        // a write per publish, or encoding under this lock while the task
        // reads, cost more than the wake-up).
        if !live.io.wbuf.is_empty() || !self.inflight.is_empty() {
            return true;
        }
        self.send_queued(after);
        let Some(live) = &mut self.live else {
            return false;
        };
        if let Some(socket) = &live.direct {
            // An error is the task's to meet (it reconnects): the bytes stay.
            let _ = write_some(socket, &mut live.io.wbuf);
        }
        !live.io.wbuf.is_empty()
    }

    /// Sends queued publishes while packet ids are free and the broker's
    /// Receive Maximum (MQTT v5 CONNACK) allows more in flight.
    pub(super) fn send_queued(&mut self, after: &mut After) {
        let Some(live) = &mut self.live else {
            return;
        };
        while let Some(o) = self.queue.pop_front() {
            if o.abandoned() {
                continue;
            }
            if live.engine.get_receive_maximum_vacancy_for_send() == Some(0) {
                self.queue.push_front(o);
                return;
            }
            let Ok(pid) = live.engine.acquire_packet_id() else {
                self.queue.push_front(o);
                return;
            };
            let packet = match live.spec.publish(&o, pid) {
                Ok(p) => p,
                Err(e) => {
                    let _ = live.engine.release_packet_id(pid);
                    after.finish(o, Err(e));
                    continue;
                }
            };
            let events = live.engine.send(packet);
            let mut o = o;
            o.sent = true;
            self.inflight.insert(pid, o);
            for ev in events {
                match ev {
                    Event::NotifyError(e) => after.log(move || {
                        tracing::warn!(error = ?e, "publish refused by the protocol engine");
                    }),
                    other => live.io.apply(other),
                }
            }
        }
    }

    pub(super) fn drained(&self) -> bool {
        self.queue.is_empty() && self.inflight.is_empty()
    }
}

/// Writes what `wbuf` holds without waiting and removes what went out;
/// `Ok(true)` once it is empty, `Ok(false)` when the socket would block.
pub(super) fn write_some(socket: &OwnedWriteHalf, wbuf: &mut Vec<u8>) -> std::io::Result<bool> {
    while !wbuf.is_empty() {
        match socket.try_write(wbuf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => drop(wbuf.drain(..n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Ends the publish `pid` with the broker's acknowledgement (or refusal).
pub(super) fn acknowledged(
    inflight: &mut HashMap<u16, Outgoing>,
    after: &mut After,
    pid: u16,
    refused: Option<String>,
) {
    let Some(o) = inflight.remove(&pid) else {
        return;
    };
    let outcome = match refused {
        None => Ok(()),
        Some(rc) => Err(Error::Publish(format!(
            "broker refused the publish to {}: {}",
            o.topic,
            super::connection::reason_words(&rc)
        ))),
    };
    after.finish(o, outcome);
}
