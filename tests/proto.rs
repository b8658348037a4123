//! The binary protocol (`Sec-WebSocket-Protocol: ringhub.v1.proto`) over real sockets,
//! with the prost types generated from proto/: negotiation, requests and replies, `data`
//! between JSON and proto clients both ways, one transcoding per publication and shard,
//! history recovery, and delivery across instances through Redis.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::proto::{connect_proto, open_proto, ProtoClient};
use common::redis::Redis;
use common::*;
use ringhub::config::Driver;
use ringhub::protocol::proto::pb::{self, client_frame::Request, hub_frame::Frame};
use serde_json::json;

/// The head of the hub's answer to an upgrade offering `protocols`.
fn upgrade_head(hub: &TestHub, protocols: Option<&str>) -> String {
    let mut s = TcpStream::connect(hub.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let offer = protocols.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn negotiation(driver: Driver) {
    let hub = start_default(driver);
    let proto = upgrade_head(&hub, Some("x.other, ringhub.v1.proto"));
    assert!(proto.starts_with("HTTP/1.1 101"), "{proto}");
    assert!(
        proto.contains("\r\nSec-WebSocket-Protocol: ringhub.v1.proto\r\n"),
        "{proto}"
    );
    let json = upgrade_head(&hub, Some("ringhub.v1.json"));
    assert!(
        json.contains("\r\nSec-WebSocket-Protocol: ringhub.v1.json\r\n"),
        "{json}"
    );
    for offer in [None, Some("mqtt, wamp")] {
        let head = upgrade_head(&hub, offer);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(!head.contains("Sec-WebSocket-Protocol"), "{head}");
    }
    // An offer of unknown names only: the connection speaks JSON.
    let auth = format!("Bearer {}", token("nu"));
    let mut c = open(hub.addr, "/ws?client=x", &[("authorization", &auth)]).unwrap();
    assert_eq!(c.recv()["type"], "welcome");
}

fn requests_and_replies(driver: Driver) {
    let hub = start_default(driver);
    // First-frame auth in a ClientFrame, its id echoed in the welcome.
    let mut p = open_proto(hub.addr, &[]);
    let auth = pb::Auth { token: token("pa") };
    p.send(Some(5), Request::Auth(auth));
    let w = p.recv();
    assert_eq!(w.id, Some(5));
    assert!(
        matches!(w.frame, Some(Frame::Welcome(ref w)) if w.user == "pa"),
        "{w:?}"
    );
    assert_eq!(
        p.request(1, Request::Ping(pb::Ping {})),
        Frame::Pong(pb::Pong {})
    );
    let s = p.subscribe("chat:p", None);
    assert_eq!(s.channel, "chat:p");
    assert_eq!(
        p.publish(2, "chat:p", br#"{"a": 1.50}"#),
        Frame::Ack(pb::Ack { offset: None })
    );
    let m = p.recv_message();
    assert_eq!(m.data, br#"{"a": 1.50}"#, "data byte for byte");
    assert_eq!(m.from_user.as_deref(), Some("pa"));
    // Refusals are the JSON path's, in proto.
    let Frame::Error(e) = p.publish(3, "chat:p", b"\x01\x02 not JSON") else {
        panic!("an error")
    };
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("bad_request", "data must be a JSON text")
    );
    let Frame::Error(e) = p.publish(4, "nope:x", b"1") else {
        panic!("an error")
    };
    assert_eq!(e.code, "forbidden");
    p.send_bytes(vec![0xff, 0xff, 0xff]);
    let f = p.recv();
    assert!(
        matches!(f.frame, Some(Frame::Error(ref e)) if e.message == "malformed protobuf"),
        "{f:?}"
    );
    p.c.send_text(r#"{"type":"ping","id":6}"#);
    let f = p.recv();
    assert!(
        matches!(f.frame, Some(Frame::Error(ref e)) if e.code == "bad_request"),
        "{f:?}"
    );
    // Presence replies carry `info` as JSON text.
    let Frame::Error(e) = p.request(
        7,
        Request::Presence(pb::PresenceRequest {
            channel: "chat:p".into(),
        }),
    ) else {
        panic!("chat keeps no presence")
    };
    assert_eq!(e.code, "bad_request");
    let Frame::Subscribed(_) = p.request(
        8,
        Request::Subscribe(pb::Subscribe {
            channel: "room:r".into(),
            since: None,
            delta: String::new(),
        }),
    ) else {
        panic!("subscribed")
    };
    let Frame::Presence(pr) = p.request(
        9,
        Request::Presence(pb::PresenceRequest {
            channel: "room:r".into(),
        }),
    ) else {
        panic!("presence")
    };
    assert_eq!(pr.users.len(), 1);
    assert_eq!(pr.users[0].user, "pa");
    assert_eq!(pr.users[0].info, b"{}");
    // Ten malformed frames in a row close with 1008, as bad JSON does.
    for _ in 0..10 {
        p.send_bytes(vec![0xff]);
    }
    assert_eq!(p.c.recv_close().0, 1008);
}

fn data_between_encodings(driver: Driver) {
    let hub = start_default(driver);
    let (mut j, _) = connect(hub.addr, "json-user");
    let (mut p, _) = connect_proto(hub.addr, "proto-user");
    j.subscribe("chat:x");
    p.subscribe("chat:x", None);
    // JSON publisher -> proto subscriber: `data` is the JSON text as written.
    j.send_text(r#"{"type":"publish","channel":"chat:x","data":{ "move" : [1, 2.50] }}"#);
    let m = p.recv_message();
    assert_eq!(m.data, br#"{ "move" : [1, 2.50] }"#);
    assert_eq!(m.from_user.as_deref(), Some("json-user"));
    let echo = j.recv();
    assert_eq!(echo["data"]["move"][1], 2.5);
    // Proto publisher -> JSON subscriber: the bytes are the JSON value, unchanged.
    assert!(matches!(
        p.publish(1, "chat:x", br#"["e2e4", 0.10]"#),
        Frame::Ack(_)
    ));
    let f = j.recv();
    assert_eq!(f["type"], "message");
    assert_eq!(f["data"], json!(["e2e4", 0.1]));
    assert_eq!(f["from"], "proto-user");
    // Direct messages, both ways.
    let send = pb::Send {
        user: "json-user".into(),
        data: br#""hi""#.to_vec(),
    };
    assert!(matches!(p.request(2, Request::Send(send)), Frame::Ack(_)));
    let d = loop {
        let f = j.recv();
        if f["type"] == "direct" {
            break f;
        }
    };
    assert_eq!(d["data"], "hi");
    j.send(json!({"type": "send", "user": "proto-user", "data": {"n": 1}}));
    let d = loop {
        match p.recv().frame {
            Some(Frame::Direct(d)) => break d,
            _ => continue,
        }
    };
    assert_eq!(d.data, br#"{"n":1}"#);
    assert_eq!(d.from_user.as_deref(), Some("json-user"));
}

fn transcodes(hub: &TestHub) -> f64 {
    let m = hub.api().without_key().get("/metrics").body;
    common::admin::find_metric(&m, "ringhub_transcodes_total").unwrap_or(0.0)
}

fn one_transcoding_per_publication(driver: Driver) {
    let mut c = config(driver);
    c.shards = 1;
    let hub = start(c);
    let mut subs: Vec<ProtoClient> = (0..3)
        .map(|i| connect_proto(hub.addr, &format!("ps{i}")).0)
        .collect();
    for s in &mut subs {
        s.subscribe("chat:once", None);
    }
    let (mut j, _) = connect(hub.addr, "jp");
    j.subscribe("chat:once");
    let before = transcodes(&hub);
    let r = j.request(
        json!({"type":"publish","channel":"chat:once","data":[1]}),
        1,
    );
    assert_eq!(r["type"], "ack");
    for s in &mut subs {
        assert_eq!(s.recv_message().data, b"[1]");
    }
    assert_eq!(
        transcodes(&hub) - before,
        1.0,
        "three proto subscribers, one transcoding"
    );
}

fn history_recovery(driver: Driver) {
    let mut c = config(driver);
    common::history::with_history(&mut c);
    let hub = start(c);
    let (mut p, _) = connect_proto(hub.addr, "ph");
    let first = p.subscribe("log:p", None);
    let (offset, epoch) = (first.offset.unwrap(), first.epoch.clone().unwrap());
    assert_eq!(first.recovered, None);
    let unsub = pb::Unsubscribe {
        channel: "log:p".into(),
    };
    assert!(matches!(
        p.request(2, Request::Unsubscribe(unsub)),
        Frame::Unsubscribed(_)
    ));
    let (mut j, _) = connect(hub.addr, "jh");
    for n in 1..=3 {
        let r = j.request(
            json!({"type":"publish","channel":"log:p","data":{"n":n}}),
            n,
        );
        assert_eq!(r["offset"], offset + n);
    }
    let since = pb::Since {
        offset,
        epoch: epoch.clone(),
    };
    let s = p.subscribe("log:p", Some(since));
    assert_eq!(s.recovered, Some(true));
    for n in 1..=3 {
        let m = p.recv_message();
        assert_eq!(m.offset, Some(offset + n));
        assert_eq!(m.data, format!(r#"{{"n":{n}}}"#).into_bytes());
    }
    let h = pb::HistoryRequest {
        channel: "log:p".into(),
        since: Some(pb::Since {
            offset,
            epoch: String::new(),
        }),
        limit: Some(2),
    };
    let Frame::History(h) = p.request(3, Request::History(h)) else {
        panic!("a history answer")
    };
    assert_eq!(h.epoch, epoch);
    let got: Vec<u64> = h.publications.iter().map(|p| p.offset).collect();
    assert_eq!(got, [offset + 1, offset + 2]);
    assert_eq!(h.publications[0].from_user.as_deref(), Some("jh"));
}

both_drivers!(
    negotiation,
    requests_and_replies,
    data_between_encodings,
    one_transcoding_per_publication,
    history_recovery,
);

/// A JSON publisher on one instance, a proto subscriber on another: the publication
/// crosses Redis as its JSON frame and is transcoded on the receiving instance.
#[test]
fn across_instances() {
    let Some(redis) = Redis::start() else { return };
    let hubs = common::cluster::cluster(&redis, 2);
    let (mut p, _) = connect_proto(hubs[1].addr, "far");
    p.subscribe("chat:far", None);
    common::cluster::relay_subscribed(&hubs[1], 1);
    let (mut j, _) = connect(hubs[0].addr, "near");
    j.subscribe("chat:far");
    common::cluster::relay_subscribed(&hubs[0], 1);
    let r = j.request(
        json!({"type":"publish","channel":"chat:far","data":{"k":"v"}}),
        1,
    );
    assert_eq!(r["type"], "ack");
    let m = p.recv_message();
    assert_eq!(m.data, br#"{"k":"v"}"#);
    assert_eq!(m.from_user.as_deref(), Some("near"));
    assert!(matches!(p.publish(2, "chat:far", b"[2]"), Frame::Ack(_)));
    loop {
        let f = j.recv();
        if f["type"] == "message" {
            assert_eq!(f["data"], json!([2]));
            assert_eq!(f["from"], "far");
            break;
        }
    }
}
