//! A role whose last reference goes while its connection's task handles one
//! of its messages: the role is then dropped on that very task, which must
//! end the connection cleanly, neither hanging nor panicking, and leave every
//! other client of the process working.
//!
//! Its own test binary: it installs a process-wide tracing subscriber that
//! drops the producer from inside the producer's own message handling.
#![allow(missing_docs)]

mod common;

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use common::{Broker, RawClient};
use oc2mqtt::client::{ClientConfig, Producer};
use oc2mqtt::codec::{self, Dialect, Encoding};
use oc2mqtt::message::{Command, Message, Response, Target};

/// The producer under test; the subscriber drops it when the producer logs
/// an unsolicited response, on its connection's task.
static PRODUCER: Mutex<Option<Producer>> = Mutex::new(None);

/// Drops [`PRODUCER`] on the event "unsolicited response".
struct DropOnUnsolicited;

struct IsUnsolicited(bool);

impl tracing::field::Visit for IsUnsolicited {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && format!("{value:?}") == "unsolicited response" {
            self.0 = true;
        }
    }
}

impl tracing::Subscriber for DropOnUnsolicited {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut seen = IsUnsolicited(false);
        event.record(&mut seen);
        if seen.0 {
            let last = PRODUCER.lock().expect("lock").take();
            drop(last);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_dropped_during_its_own_message_handling_does_not_hang() {
    tracing::subscriber::set_global_default(DropOnUnsolicited).expect("first subscriber");
    let broker = Broker::start(&[]);
    let producer = Producer::connect(ClientConfig::new(broker.url()), "p1")
        .await
        .expect("producer connects");
    *PRODUCER.lock().expect("lock") = Some(producer);

    // A response to no exchange: the producer logs it as unsolicited while
    // its handler still holds the (now last) reference.
    let command =
        Message::request(Command::new("query", Target::features(["versions"])).expect("query"))
            .from("p1");
    let stray = Message::response_to(&command, Response::new(200)).from("fw-1");
    let (payload, props) = codec::encode(&stray, Encoding::Json, Dialect::Spec).expect("encode");
    let raw = RawClient::connect(&broker.url(), true, &[]).await;
    // Bounded: if the drop hung the process's runtime, this would never
    // return, and the test must fail instead.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        raw.publish("oc2/rsp/p1", &payload, Some(&props)),
    )
    .await;
    std::mem::forget(raw);
    for _ in 0..100 {
        if PRODUCER.lock().expect("lock").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        PRODUCER.lock().expect("lock").is_none(),
        "the producer saw the stray response"
    );

    // Everyone else still works: a new client connects.
    let (done, finished) = mpsc::channel();
    let url = broker.url();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let again = rt.block_on(Producer::connect(ClientConfig::new(url), "p2"));
        let _ = done.send(again.is_ok());
    });
    assert_eq!(
        finished.recv_timeout(Duration::from_secs(15)),
        Ok(true),
        "a new producer connects after the last reference went on a connection's task"
    );
}
