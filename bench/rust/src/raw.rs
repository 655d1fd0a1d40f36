//! The raw transport oc2mqtt is built on, measured on its own:
//! `mqtt-protocol-core` driven by one tokio task per client over TCP, with
//! oc2mqtt's wire pattern (the command on the device topic, the response on
//! `oc2/rsp` and `oc2/rsp/<producer>`, MQTT v5, QoS 1, the same properties)
//! and nothing else: no codec, no correlation, no dedup. The difference to
//! `seq`/`pipe` is what oc2mqtt itself costs per exchange.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mqtt::connection::Event;
use mqtt::packet::{GenericPacketTrait, Packet, Property, Qos, SubEntry, SubOpts, v5_0};
use mqtt_protocol_core::mqtt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Cpu, DENY, OK, PIPELINE, Res, micros, percentile, runtime, sorted};

/// One raw client: a socket and the protocol engine.
struct Raw {
    stream: TcpStream,
    engine: mqtt::Connection<mqtt::role::Client>,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
}

fn props(p: &oc2mqtt::codec::PublishProperties) -> Res<Vec<Property>> {
    let mut out = vec![
        Property::PayloadFormatIndicator(mqtt::packet::PayloadFormatIndicator::new(
            mqtt::packet::PayloadFormat::String,
        )?),
        Property::ContentType(mqtt::packet::ContentType::new(
            p.content_type.as_deref().unwrap_or("application/openc2"),
        )?),
    ];
    for (k, v) in &p.user_properties {
        out.push(Property::UserProperty(mqtt::packet::UserProperty::new(
            k.as_str(),
            v.as_str(),
        )?));
    }
    Ok(out)
}

/// The bench payload encoded as oc2mqtt sends it, with its properties.
fn payload(json: &str) -> Res<(Arc<[u8]>, Vec<Property>)> {
    let msg = oc2mqtt::Message::from_json_value(serde_json::from_str(json)?)?;
    let (bytes, p) = oc2mqtt::codec::encode(
        &msg,
        oc2mqtt::codec::Encoding::Json,
        oc2mqtt::codec::Dialect::Spec,
    )?;
    Ok((Arc::from(bytes), props(&p)?))
}

impl Raw {
    async fn connect(port: u16, id: &str, subs: &[String]) -> Res<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let mut engine = mqtt::Connection::<mqtt::role::Client>::new(mqtt::Version::V5_0);
        engine.set_auto_pub_response(true);
        let mut raw = Self {
            stream,
            engine,
            rbuf: Vec::with_capacity(16 * 1024),
            wbuf: Vec::with_capacity(16 * 1024),
        };
        let connect = v5_0::Connect::builder()
            .client_id(id)?
            .clean_start(true)
            .keep_alive(60)
            .build()?;
        let ev = raw.engine.send(connect.into());
        raw.collect(ev);
        raw.flush().await?;
        raw.until(|p| matches!(p, Packet::V5_0Connack(_))).await?;
        for s in subs {
            let pid = raw.engine.acquire_packet_id()?;
            let opts = SubOpts::new()
                .set_qos(Qos::AtLeastOnce)
                .set_nl(true)
                .set_rap(true);
            let sub = v5_0::Subscribe::builder()
                .packet_id(pid)
                .entries(vec![SubEntry::new(s.as_str(), opts)?])
                .build()?;
            let ev = raw.engine.send(sub.into());
            raw.collect(ev);
            raw.flush().await?;
            raw.until(|p| matches!(p, Packet::V5_0Suback(_))).await?;
        }
        Ok(raw)
    }

    /// Queues the engine's writes; returns the packets received.
    fn collect(&mut self, events: Vec<Event>) -> Vec<Packet> {
        let mut got = Vec::new();
        for e in events {
            match e {
                Event::RequestSendPacket { packet, .. } => {
                    for s in packet.to_buffers() {
                        self.wbuf.extend_from_slice(&s);
                    }
                }
                Event::NotifyPacketReceived(p) => got.push(p),
                _ => {}
            }
        }
        got
    }

    async fn flush(&mut self) -> Res<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads once (what is there) and returns the packets received.
    async fn read(&mut self) -> Res<Vec<Packet>> {
        self.rbuf.clear();
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            return Err("closed".into());
        }
        let data = std::mem::take(&mut self.rbuf);
        let mut cur = mqtt::common::Cursor::new(data.as_slice());
        let mut events = Vec::new();
        while (cur.position() as usize) < data.len() {
            let before = cur.position();
            events.extend(self.engine.recv(&mut cur));
            if cur.position() == before {
                break;
            }
        }
        self.rbuf = data;
        Ok(self.collect(events))
    }

    async fn until(&mut self, want: impl Fn(&Packet) -> bool) -> Res<()> {
        loop {
            let got = self.read().await?;
            self.flush().await?;
            if got.iter().any(&want) {
                return Ok(());
            }
        }
    }

    fn publish(&mut self, topic: &str, body: &Arc<[u8]>, props: &[Property]) -> Res<()> {
        let pid = self.engine.acquire_packet_id()?;
        let p = v5_0::Publish::builder()
            .topic_name(topic)?
            .qos(Qos::AtLeastOnce)
            .packet_id(pid)
            .payload(Arc::clone(body))
            .props(props.to_vec())
            .build()?;
        let ev = self.engine.send(p.into());
        self.collect(ev);
        Ok(())
    }
}

/// The consumer: answers every command on both response topics until `stop`.
async fn responder(port: u16, producer: String, stop: Arc<AtomicBool>) -> Res<()> {
    let (rsp, rsp_props) = payload(OK)?;
    let mut c = Raw::connect(
        port,
        "bench-raw-consumer",
        &["oc2/cmd/device/bench-raw-consumer".to_owned()],
    )
    .await?;
    let topics = ["oc2/rsp".to_owned(), format!("oc2/rsp/{producer}")];
    while !stop.load(Ordering::Relaxed) {
        let got = tokio::time::timeout(Duration::from_millis(200), c.read()).await;
        let Ok(got) = got else { continue };
        for p in got? {
            if matches!(p, Packet::V5_0Publish(_)) {
                for t in &topics {
                    c.publish(t, &rsp, &rsp_props)?;
                }
            }
        }
        c.flush().await?;
    }
    Ok(())
}

/// Sequential (`inflight` 1) or pipelined round trips for `seconds`.
pub(crate) fn raw(port: u16, seconds: f64, inflight: usize) -> Res<Value> {
    runtime().block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let resp = tokio::spawn(responder(port, "bench-raw-producer".to_owned(), Arc::clone(&stop)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (cmd, cmd_props) = payload(DENY)?;
        let mut p = Raw::connect(
            port,
            "bench-raw-producer",
            &["oc2/rsp".to_owned(), "oc2/rsp/bench-raw-producer".to_owned()],
        )
        .await?;
        let topic = "oc2/cmd/device/bench-raw-consumer";
        // Round trips end at the copy on the producer's own topic.
        let mine = |p: &Packet| {
            matches!(p, Packet::V5_0Publish(m) if m.topic_name() == "oc2/rsp/bench-raw-producer")
        };
        let done = AtomicU64::new(0);
        let mut lat = Vec::new();
        let mut sent_at = std::collections::VecDeque::new();
        let warm_until = Instant::now() + Duration::from_secs_f64((seconds / 3.0).max(0.5));
        let mut measuring: Option<(Instant, Cpu)> = None;
        for _ in 0..inflight {
            p.publish(topic, &cmd, &cmd_props)?;
            sent_at.push_back(Instant::now());
        }
        p.flush().await?;
        loop {
            let now = Instant::now();
            if measuring.is_none() && now >= warm_until {
                lat.clear();
                done.store(0, Ordering::Relaxed);
                measuring = Some((now, Cpu::with_child(None)));
            }
            if let Some((t0, _)) = &measuring {
                if now.duration_since(*t0).as_secs_f64() >= seconds {
                    break;
                }
            }
            let got = p.read().await?;
            for _ in got.iter().filter(|pk| mine(pk)) {
                if let Some(t) = sent_at.pop_front() {
                    lat.push(micros(t.elapsed()));
                }
                done.fetch_add(1, Ordering::Relaxed);
                p.publish(topic, &cmd, &cmd_props)?;
                sent_at.push_back(Instant::now());
            }
            p.flush().await?;
        }
        let (t0, cpu) = measuring.expect("measured");
        let elapsed = t0.elapsed().as_secs_f64();
        let n = done.load(Ordering::Relaxed) as usize;
        let (cpu_client, cpu_broker, switches) = cpu.per(n);
        stop.store(true, Ordering::Relaxed);
        let _ = resp.await;
        let lat = sorted(lat);
        let rate = n as f64 / elapsed;
        Ok(if inflight == 1 {
            json!({"rt_per_s": rate, "p50_us": percentile(&lat, 0.5), "p99_us": percentile(&lat, 0.99),
                   "n": n, "cpu_us_per_rt_client": cpu_client, "switches_per_rt_client": switches,
                   "cpu_us_per_rt_broker": cpu_broker})
        } else {
            json!({"exchanges_per_s": rate, "n": n, "cpu_us_per_rt_client": cpu_client,
                   "switches_per_rt_client": switches, "cpu_us_per_rt_broker": cpu_broker})
        })
    })
}

/// [`raw`] with 64 in flight.
pub(crate) fn raw_pipe(port: u16, seconds: f64) -> Res<Value> {
    raw(port, seconds, PIPELINE)
}
