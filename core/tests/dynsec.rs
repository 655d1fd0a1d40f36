//! Mosquitto's dynamic-security plugin, as operators run it: users and
//! roles made with `mosquitto_ctrl` against the running broker, producer and
//! consumer with least-privilege roles, every refusal reported with its
//! reason, and a role changed while the clients run.
//!
//! The least-privilege roles oc2mqtt needs (MQTT v5, no group):
//! * a consumer (device `fw-1`, no profile): `subscribeLiteral` on
//!   `oc2/cmd/all`, `oc2/cmd` and `oc2/cmd/device/fw-1` (plus
//!   `oc2/cmd/ap/<p>` per profile); `publishClientSend` on `oc2/rsp/#`.
//! * a producer (`ctl-1`): `publishClientSend` on the command topics it
//!   sends to (`oc2/cmd/#` for all); `subscribeLiteral` on `oc2/rsp` and
//!   `oc2/rsp/ctl-1`.
//!
//! Receiving (`publishClientReceive`) and unsubscribing stay at the
//! defaults of `mosquitto_ctrl dynsec init` (allowed).
#![allow(missing_docs)]

mod common;

use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::Broker;
use oc2mqtt::Error;
use oc2mqtt::client::{
    ClientConfig, ConnectionEvent, ConnectionEvents, Consumer, ConsumerOptions, MqttVersion,
    Producer, SendOptions,
};
use oc2mqtt::message::{Command, Target};

/// Runs `mosquitto_ctrl ... dynsec ARGS` as the broker's admin; it exits 0
/// even when the plugin refuses, so its output is checked too.
fn ctrl(b: &Broker, args: &[&str]) {
    let out = Process::new("mosquitto_ctrl")
        .args(["-h", "127.0.0.1", "-p", &b.port().to_string(), "-u"])
        .arg(
            b.info["admin_user"]
                .as_str()
                .expect("started with --dynsec"),
        )
        .arg("-P")
        .arg(b.info["admin_password"].as_str().expect("admin password"))
        .arg("dynsec")
        .args(args)
        .output()
        .expect("mosquitto_ctrl runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !said.contains("Error"),
        "mosquitto_ctrl dynsec {args:?}: {said}"
    );
}

/// A client `user` (password `<user>-pw`) with a role of its own,
/// `<user>-role`, holding `acls` (acltype, topic).
fn client(b: &Broker, user: &str, acls: &[(&str, &str)]) {
    let role = format!("{user}-role");
    ctrl(b, &["createClient", user, "-p", &format!("{user}-pw")]);
    ctrl(b, &["createRole", &role]);
    for (kind, topic) in acls {
        ctrl(b, &["addRoleACL", &role, kind, topic, "allow"]);
    }
    ctrl(b, &["addClientRole", user, &role]);
}

/// The least-privilege consumer role for device `id` (no profile).
fn consumer_client(b: &Broker, id: &str) {
    let device = format!("oc2/cmd/device/{id}");
    client(
        b,
        id,
        &[
            ("subscribeLiteral", "oc2/cmd/all"),
            ("subscribeLiteral", "oc2/cmd"),
            ("subscribeLiteral", &device),
            ("publishClientSend", "oc2/rsp/#"),
        ],
    );
}

/// The least-privilege producer role for `id`, sending to `devices`.
fn producer_client(b: &Broker, id: &str, devices: &[&str]) {
    let own = format!("oc2/rsp/{id}");
    let sends: Vec<String> = devices
        .iter()
        .map(|d| format!("oc2/cmd/device/{d}"))
        .collect();
    let mut acls = vec![("subscribeLiteral", "oc2/rsp"), ("subscribeLiteral", &own)];
    acls.extend(sends.iter().map(|t| ("publishClientSend", t.as_str())));
    client(b, id, &acls);
}

fn config(b: &Broker, user: &str) -> ClientConfig {
    let mut c = ClientConfig::new(b.url());
    c.username = Some(user.to_owned());
    c.password = Some(format!("{user}-pw"));
    c.connect_timeout_secs = 5;
    c
}

fn deny() -> Command {
    Command::new("deny", Target::new("ipv4_net", "10.9.0.1/32")).expect("deny")
}

fn to(id: &str, secs: u64) -> SendOptions {
    SendOptions {
        to: vec![id.to_owned()],
        timeout: Duration::from_secs(secs),
        ..SendOptions::default()
    }
}

fn start() -> Broker {
    Broker::start(&["--dynsec"])
}

/// The next event that is not `Reconnecting`, within `secs`.
async fn next_event(events: &mut ConnectionEvents, secs: u64) -> ConnectionEvent {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.next()).await {
            Ok(Some(ConnectionEvent::Reconnecting { .. })) => {}
            Ok(Some(e)) => return e,
            Ok(None) => panic!("events ended"),
            Err(_) => panic!("no event within {secs} s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_roles_are_enough_for_an_exchange() {
    let b = start();
    consumer_client(&b, "fw-1");
    producer_client(&b, "ctl-1", &["fw-1"]);
    for version in [MqttVersion::V5, MqttVersion::V311] {
        let mut cc = config(&b, "fw-1");
        cc.mqtt_version = version;
        let c = common::serving(cc, "fw-1").await;
        let mut pc = config(&b, "ctl-1");
        pc.mqtt_version = version;
        let p = Producer::connect(pc, "ctl-1").await.expect("producer");
        common::completes(&p, deny(), to("fw-1", 5)).await;
        p.close().await;
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_without_subscribe_rights_fails_naming_the_topic() {
    let b = start();
    // May take broadcasts, but not its own device topic.
    client(
        &b,
        "fw-2",
        &[
            ("subscribeLiteral", "oc2/cmd/all"),
            ("subscribeLiteral", "oc2/cmd"),
            ("publishClientSend", "oc2/rsp/#"),
        ],
    );
    for (version, reason) in [
        (MqttVersion::V5, "not authorized"),
        (MqttVersion::V311, "failure (0x80)"),
    ] {
        let mut c = config(&b, "fw-2");
        c.mqtt_version = version;
        let e = Consumer::connect(c, ConsumerOptions::new("fw-2"))
            .await
            .expect_err("subscription refused");
        assert!(matches!(e, Error::Auth(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "broker refused the subscription to oc2/cmd/device/fw-2: {reason} (not authorized?)"
            ),
            "{version:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_not_allowed_to_publish_to_a_device_is_told_with_mqtt_5() {
    let b = start();
    consumer_client(&b, "fw-1");
    consumer_client(&b, "fw-9");
    producer_client(&b, "ctl-1", &["fw-1"]);
    let _fw1 = common::serving(config(&b, "fw-1"), "fw-1").await;
    let fw9 = common::serving(config(&b, "fw-9"), "fw-9").await;

    // MQTT 5: PUBACK 0x87, and send fails with it.
    let p = Producer::connect(config(&b, "ctl-1"), "ctl-1")
        .await
        .expect("producer");
    let e = p
        .send(deny(), to("fw-9", 5))
        .await
        .expect_err("publish refused");
    assert!(matches!(e, Error::Publish(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "broker refused the publish to oc2/cmd/device/fw-9: not authorized"
    );
    // Waiting for the responses (one wake-up) still ends at the refusal,
    // not at the timeout.
    let started = Instant::now();
    let e = p
        .send_collect(deny(), to("fw-9", 5))
        .await
        .expect_err("publish refused");
    assert_eq!(
        e.to_string(),
        "broker refused the publish to oc2/cmd/device/fw-9: not authorized"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "at once");
    common::completes(&p, deny(), to("fw-1", 5)).await;
    p.close().await;

    // MQTT 3.1.1 has no reason codes: Mosquitto acknowledges and drops the
    // publish, so the exchange ends at its timeout with fw-9 missing.
    let mut c = config(&b, "ctl-1");
    c.mqtt_version = MqttVersion::V311;
    let p = Producer::connect(c, "ctl-1").await.expect("producer");
    let s = p
        .send(deny(), to("fw-9", 1))
        .await
        .expect("3.1.1: the broker acknowledges the publish")
        .collect()
        .await;
    assert!(!s.complete && s.missing == ["fw-9"], "{s:?}");
    assert_eq!(fw9.stats().received, 0, "fw-9 got nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_while_running_takes_effect_and_is_reported() {
    let b = start();
    consumer_client(&b, "fw-1");
    producer_client(&b, "ctl-1", &["fw-1"]);
    let consumer = common::serving(config(&b, "fw-1"), "fw-1").await;
    let p = Producer::connect(config(&b, "ctl-1"), "ctl-1")
        .await
        .expect("producer");
    common::completes(&p, deny(), to("fw-1", 5)).await;
    let mut ce = consumer.events();
    assert_eq!(next_event(&mut ce, 1).await.kind(), "connected");
    let mut pe = p.events();
    assert_eq!(next_event(&mut pe, 1).await.kind(), "connected");

    // The consumer loses the right to subscribe to its device topic:
    // Mosquitto closes its connection (DISCONNECT 0x98), and every
    // reconnect fails on that subscription until the right comes back.
    ctrl(
        &b,
        &[
            "removeRoleACL",
            "fw-1-role",
            "subscribeLiteral",
            "oc2/cmd/device/fw-1",
        ],
    );
    let kicked = next_event(&mut ce, 5).await;
    assert_eq!(
        kicked.to_string(),
        "offline: the broker closed the connection: administrative action \
         (with Mosquitto's dynamic security: the client's roles or ACLs changed)"
    );
    for _ in 0..2 {
        match next_event(&mut ce, 5).await {
            ConnectionEvent::ReconnectFailed { error, .. } => assert_eq!(
                error.to_string(),
                "broker refused the subscription to oc2/cmd/device/fw-1: \
                 not authorized (not authorized?)"
            ),
            other => panic!("expected reconnect_failed, got {other}"),
        }
    }
    // Meanwhile the producer was not touched (another role).
    assert!(pe.try_next().is_none(), "the producer was disconnected too");
    let s = p
        .send(deny(), to("fw-1", 1))
        .await
        .expect("sent")
        .collect()
        .await;
    assert!(!s.complete, "fw-1 cannot get commands now: {s:?}");

    // The right comes back: the next attempt subscribes, and commands flow.
    ctrl(
        &b,
        &[
            "addRoleACL",
            "fw-1-role",
            "subscribeLiteral",
            "oc2/cmd/device/fw-1",
            "allow",
        ],
    );
    loop {
        match next_event(&mut ce, 10).await {
            ConnectionEvent::Connected { .. } => break,
            ConnectionEvent::ReconnectFailed { .. } => {}
            other => panic!("expected connected, got {other}"),
        }
    }
    common::completes(&p, deny(), to("fw-1", 5)).await;

    // The producer loses the right to send to fw-1: it is disconnected,
    // comes back at once (its subscriptions are still allowed), and the
    // next send fails with the broker's reason.
    ctrl(
        &b,
        &[
            "removeRoleACL",
            "ctl-1-role",
            "publishClientSend",
            "oc2/cmd/device/fw-1",
        ],
    );
    let kicked = next_event(&mut pe, 5).await;
    assert!(
        kicked.to_string().contains("administrative action"),
        "{kicked}"
    );
    assert_eq!(next_event(&mut pe, 5).await.kind(), "connected");
    let e = p
        .send(deny(), to("fw-1", 5))
        .await
        .expect_err("publish refused now");
    assert_eq!(
        e.to_string(),
        "broker refused the publish to oc2/cmd/device/fw-1: not authorized"
    );
    // The consumer, whose role did not change, stayed connected.
    assert!(ce.try_next().is_none(), "the consumer was disconnected too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_needs_rights_on_its_shared_filters() {
    let b = start();
    consumer_client(&b, "fw-pool");
    let member = |version| {
        let mut c = config(&b, "fw-pool");
        c.mqtt_version = version;
        let mut o = ConsumerOptions::new("fw-pool");
        o.group = Some("pool".to_owned());
        Consumer::connect(c, o)
    };
    // Mosquitto checks a shared subscription's ACL on the whole filter.
    let e = member(MqttVersion::V5)
        .await
        .expect_err("no right on $share/...");
    assert_eq!(
        e.to_string(),
        "broker refused the subscription to $share/pool/oc2/cmd/all: not authorized (not authorized?)"
    );
    for topic in ["oc2/cmd/all", "oc2/cmd", "oc2/cmd/device/fw-pool"] {
        let shared = format!("$share/pool/{topic}");
        ctrl(
            &b,
            &[
                "addRoleACL",
                "fw-pool-role",
                "subscribeLiteral",
                &shared,
                "allow",
            ],
        );
    }
    let c = member(MqttVersion::V5)
        .await
        .expect("MQTT 5: no probe needed");
    c.close().await;

    // MQTT 3.1.1 has no CONNACK property to say so: the probe needs its own rights.
    let e = member(MqttVersion::V311)
        .await
        .expect_err("no right to probe");
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "and the check of the broker at {} failed: it refused the subscription to \
             $share/pool/oc2mqtt/probe/",
            b.url()
        )) && text.contains(
            ": failure (0x80) (not authorized? with MQTT 3.1.1 a group member subscribes to \
             $share/<group>/<topic> and publishes to <topic> once, with <topic> under oc2mqtt/probe)"
        ),
        "{text}"
    );
    ctrl(
        &b,
        &[
            "addRoleACL",
            "fw-pool-role",
            "subscribePattern",
            "$share/pool/oc2mqtt/probe/+",
            "allow",
        ],
    );
    let e = member(MqttVersion::V311)
        .await
        .expect_err("no right to publish the probe");
    assert!(
        e.to_string()
            .contains("within 2 s (unless this client may not publish to oc2mqtt/probe/"),
        "{e}"
    );
    ctrl(
        &b,
        &[
            "addRoleACL",
            "fw-pool-role",
            "publishClientSend",
            "oc2mqtt/probe/+",
            "allow",
        ],
    );
    let c = member(MqttVersion::V311)
        .await
        .expect("MQTT 3.1.1 with the probe's rights");
    c.close().await;
}
