//! Traces (docs/observability.md, "Traces") against a real OTLP/HTTP receiver started by
//! the test (`common::backend`, which keeps the raw protobuf bodies): the export is decoded
//! with the OpenTelemetry proto types, and its spans, parents and attributes checked. A
//! hub's shutdown exports what is left, so the test reads the receiver after it, without
//! waiting for the batch delay.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::admin::find_metric;
use common::backend::{Answer, Backend};
use common::cluster::{cluster_with, scrape};
use common::history::with_history;
use common::proto::{connect_proto, frame};
use common::redis::Redis;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use ringhub::config::{Driver, EventKind, Namespace, Webhook};
use ringhub::protocol::proto::pb::{self, client_frame::Request, hub_frame::Frame};
use ringhub::Config;
use serde_json::{json, Value};

/// The client's trace: trace id 4bf9..., its span 00f0..., sampled.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
/// The server API caller's.
const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

/// A hub exporting to `collector`, with an rpc backend (and publish proxy for `game:*`)
/// and a webhook receiver for `chat:*` publications.
fn traced_config(collector: &Backend, backend: &Backend, receiver: &Backend, ratio: f64) -> Config {
    let mut config = config(Driver::Epoll);
    config.otlp_endpoint = Some(format!("http://{}/v1/traces", collector.addr));
    config.trace_sample_ratio = ratio;
    config.service_name = "ringhub-traces-test".into();
    config.trace_export_delay = Duration::from_millis(20);
    config.rpc_url = Some(backend.url());
    config.publish_proxy_url = Some(backend.url());
    let game = Namespace {
        public: true,
        client_publish: true,
        publish_proxy: true,
        ..Namespace::default()
    };
    config.namespaces.insert("game".into(), game);
    config.webhooks = vec![Webhook {
        url: format!("http://{}/hooks", receiver.addr),
        events: vec![EventKind::Publication],
        secret: None,
    }];
    config.namespaces.get_mut("chat").unwrap().webhook = true;
    config
}

fn backends() -> (Backend, Backend, Backend) {
    let collector = Backend::start(|_| Answer::ok(json!({})));
    let backend = Backend::start(|r| Answer::ok(json!({"data": {"echo": r["data"]}})));
    let receiver = Backend::start(|_| Answer::ok(json!({})));
    (collector, backend, receiver)
}

/// What the test's traffic is: an rpc with the client's traceparent, one with an invalid
/// one, a publish through the proxy with it, a server API publish with the caller's
/// header (which makes a webhook event). Returns when all of it is answered.
fn traffic(hub: &TestHub, receiver: &Backend) {
    let (mut c, _) = connect(hub.addr, "alice");
    let tp = traceparent(CLIENT_TRACE, CLIENT_SPAN);
    let r = c.request(
        json!({"type": "rpc", "method": "game.move", "data": {"x": 1}, "traceparent": tp}),
        1,
    );
    assert_eq!(r["data"], json!({"echo": {"x": 1}}), "{r}");
    for (id, bad) in [
        (2, json!(5)),
        (3, json!("00-garbage")),
        (4, json!({"a": 1})),
    ] {
        let r = c.request(
            json!({"type": "rpc", "method": "lobby.ping", "traceparent": bad}),
            id,
        );
        assert_eq!(
            r["type"], "result",
            "an invalid traceparent is ignored: {r}"
        );
    }
    let r = c.request(
        json!({"type": "publish", "channel": "game:1", "data": {"m": 1}, "traceparent": tp}),
        5,
    );
    assert_eq!(r["type"], "ack", "{r}");

    let caller = traceparent(CALLER_TRACE, CALLER_SPAN);
    let body = json!({"channel": "chat:lobby", "data": {"text": "hi"}}).to_string();
    let r = hub.api().call(
        "POST",
        "/api/publish",
        Some(body.as_bytes()),
        &[("traceparent", &caller)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let delivered = || {
        let text = hub.api().without_key().get("/metrics").body;
        let series = format!(
            "ringhub_webhook_delivered_total{{endpoint=\"http://{}/hooks\"}}",
            receiver.addr
        );
        find_metric(&text, &series) == Some(1.0)
    };
    assert!(eventually(delivered), "the webhook is delivered");
}

/// Every span the collector received, and the resource's service name of each export.
fn exported(collector: &Backend) -> (Vec<Span>, Vec<String>) {
    let mut spans = Vec::new();
    let mut services = Vec::new();
    for raw in collector.raw_requests() {
        assert_eq!(raw.header("content-type"), Some("application/x-protobuf"));
        let export = ExportTraceServiceRequest::decode(&raw.body[..]).expect("OTLP protobuf");
        for rs in export.resource_spans {
            let resource = rs
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            services.extend(resource.get("service.name").cloned());
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }
    (spans, services)
}

/// Attributes as strings (integers in decimal).
fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    let text = |v: &Any| match v {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    };
    kvs.iter()
        .filter_map(|kv| {
            let value = kv.value.as_ref()?.value.as_ref()?;
            Some((kv.key.clone(), text(value)))
        })
        .collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[test]
fn spans_of_the_server_api_backends_and_webhooks_reach_the_collector() {
    let (collector, backend, receiver) = backends();
    let hub = start(traced_config(&collector, &backend, &receiver, 1.0));
    traffic(&hub, &receiver);
    // Beside the spans, the backend's latency histogram counted the five calls.
    let series = format!(
        "ringhub_rpc_duration_seconds_count{{backend=\"{}\"}}",
        backend.url()
    );
    assert_eq!(find_metric(&scrape(&hub), &series), Some(5.0));
    hub.shutdown();
    let (spans, services) = exported(&collector);
    assert!(!services.is_empty() && services.iter().all(|s| s == "ringhub-traces-test"));

    // The server API call: a child of the caller's traceparent header.
    let api = named(&spans, "POST /api/publish");
    assert_eq!(api.len(), 1, "{spans:#?}");
    let api = api[0];
    assert_eq!(api.kind, SpanKind::Server as i32);
    assert_eq!(hex::encode(&api.trace_id), CALLER_TRACE);
    assert_eq!(hex::encode(&api.parent_span_id), CALLER_SPAN);
    let a = attributes(&api.attributes);
    assert_eq!(a["http.request.method"], "POST");
    assert_eq!(a["http.route"], "/api/publish");
    assert_eq!(a["http.response.status_code"], "200");
    assert_eq!(a["ringhub.channel"], "chat:lobby");
    assert!(!a["ringhub.correlation_id"].is_empty());

    // The rpc: a child of the client's traceparent; the backend got the span as its parent.
    let rpcs = named(&spans, "rpc");
    assert_eq!(rpcs.len(), 4, "{rpcs:#?}");
    let rpc = rpcs
        .iter()
        .find(|s| attributes(&s.attributes)["rpc.method"] == "game.move")
        .expect("the game.move call's span");
    assert_eq!(rpc.kind, SpanKind::Client as i32);
    assert_eq!(hex::encode(&rpc.trace_id), CLIENT_TRACE);
    assert_eq!(hex::encode(&rpc.parent_span_id), CLIENT_SPAN);
    let a = attributes(&rpc.attributes);
    assert_eq!(a["ringhub.backend"], backend.url());
    assert_eq!(a["ringhub.rpc.outcome"], "answered");
    assert_eq!(a["ringhub.user"], "alice");
    assert!(!a["ringhub.request_id"].is_empty());
    let sent = backend.raw_requests();
    let call = sent
        .iter()
        .find(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["method"] == "game.move")
        .unwrap();
    let header = call
        .header("traceparent")
        .expect("a traceparent to the backend");
    assert_eq!(
        header,
        format!("00-{CLIENT_TRACE}-{}-01", hex::encode(&rpc.span_id))
    );
    // The calls with an invalid traceparent started traces of their own.
    for other in rpcs.iter().filter(|s| s.span_id != rpc.span_id) {
        assert!(other.parent_span_id.is_empty(), "{other:?}");
        assert_ne!(hex::encode(&other.trace_id), CLIENT_TRACE);
    }

    // The publish proxy's question, a child of the publish frame's traceparent.
    let proxy = named(&spans, "publish proxy");
    assert_eq!(proxy.len(), 1, "{spans:#?}");
    assert_eq!(hex::encode(&proxy[0].parent_span_id), CLIENT_SPAN);
    assert_eq!(
        attributes(&proxy[0].attributes)["ringhub.channel"],
        "game:1"
    );

    // The webhook delivery of the API's publication.
    let hooks = named(&spans, "webhook delivery");
    assert_eq!(hooks.len(), 1, "{spans:#?}");
    let a = attributes(&hooks[0].attributes);
    assert_eq!(a["ringhub.webhook.event"], "publication");
    assert_eq!(a["ringhub.webhook.outcome"], "delivered");
    assert_eq!(a["ringhub.webhook.attempts"], "1");
    assert_eq!(a["ringhub.channel"], "chat:lobby");
    let posted = receiver.raw_requests();
    let header = posted[0]
        .header("traceparent")
        .expect("a traceparent to the receiver");
    assert!(
        header.contains(&hex::encode(&hooks[0].trace_id)),
        "{header}"
    );
}

/// A protobuf client's `ClientFrame.traceparent`: as JSON's field, the rpc's span and the
/// publish proxy's become its children, and an invalid one starts a trace of its own.
#[test]
fn a_proto_frame_traceparent_parents_its_spans() {
    let (collector, backend, receiver) = backends();
    let hub = start(traced_config(&collector, &backend, &receiver, 1.0));
    let (mut p, _) = connect_proto(hub.addr, "pat");
    let tp = traceparent(CLIENT_TRACE, CLIENT_SPAN);
    let traced = |id, traceparent: &str, request| pb::ClientFrame {
        traceparent: traceparent.into(),
        ..frame(Some(id), request)
    };
    let rpc = |method: &str| {
        let data = br#"{"x":1}"#.to_vec();
        Request::Rpc(pb::Rpc {
            method: method.into(),
            data,
        })
    };
    for (id, tp, method) in [(1, &tp[..], "game.move"), (2, "00-garbage", "lobby.ping")] {
        let Frame::Result(r) = p.request_frame(traced(id, tp, rpc(method))) else {
            panic!("a result")
        };
        let answer: Value = serde_json::from_slice(&r.data).unwrap();
        assert_eq!(answer, json!({"echo": {"x": 1}}));
    }
    let publish = Request::Publish(pb::Publish {
        channel: "game:1".into(),
        data: b"[1]".to_vec(),
    });
    let ack = p.request_frame(traced(3, &tp, publish));
    assert!(matches!(ack, Frame::Ack(_)), "{ack:?}");
    hub.shutdown();

    let (spans, _) = exported(&collector);
    let rpcs = named(&spans, "rpc");
    assert_eq!(rpcs.len(), 2, "{rpcs:#?}");
    for rpc in rpcs {
        if attributes(&rpc.attributes)["rpc.method"] == "game.move" {
            assert_eq!(hex::encode(&rpc.trace_id), CLIENT_TRACE);
            assert_eq!(hex::encode(&rpc.parent_span_id), CLIENT_SPAN);
        } else {
            assert!(rpc.parent_span_id.is_empty(), "{rpc:?}");
            assert_ne!(hex::encode(&rpc.trace_id), CLIENT_TRACE);
        }
    }
    let proxy = named(&spans, "publish proxy");
    assert_eq!(proxy.len(), 1, "{spans:#?}");
    assert_eq!(hex::encode(&proxy[0].trace_id), CLIENT_TRACE);
    assert_eq!(hex::encode(&proxy[0].parent_span_id), CLIENT_SPAN);
    let sent = backend.raw_requests();
    let with_client_trace = sent
        .iter()
        .filter_map(|r| r.header("traceparent"))
        .filter(|h| h.contains(CLIENT_TRACE))
        .count();
    assert_eq!(
        with_client_trace, 2,
        "the rpc and the publish proxy's question"
    );
}

#[test]
fn a_sample_ratio_of_zero_exports_no_span() {
    let (collector, backend, receiver) = backends();
    let hub = start(traced_config(&collector, &backend, &receiver, 0.0));
    traffic(&hub, &receiver);
    hub.shutdown();
    let (spans, _) = exported(&collector);
    assert!(spans.is_empty(), "{spans:#?}");
}

#[test]
fn without_an_endpoint_no_traceparent_goes_to_backends() {
    let (_collector, backend, receiver) = backends();
    let mut config = traced_config(&backend, &backend, &receiver, 1.0);
    config.otlp_endpoint = None;
    let hub = start(config);
    traffic(&hub, &receiver);
    hub.shutdown();
    let sent = backend.raw_requests();
    assert!(sent.len() >= 5, "{sent:?}");
    assert!(sent.iter().all(|r| r.header("traceparent").is_none()));
    assert!(receiver.raw_requests()[0].header("traceparent").is_none());
}

#[test]
fn relay_batches_have_spans_and_a_client_publish_parents_its_batch() {
    let Some(redis) = Redis::start() else { return };
    let (collector, backend, receiver) = backends();
    let mut hubs = cluster_with(&redis, 1, |c| {
        *c = Config {
            redis_url: c.redis_url.take(),
            instance_id: c.instance_id.clone(),
            shards: c.shards,
            ..traced_config(&collector, &backend, &receiver, 1.0)
        };
        with_history(c);
    });
    let hub = hubs.pop().unwrap();
    let (mut c, _) = connect(hub.addr, "alice");
    let tp = traceparent(CLIENT_TRACE, CLIENT_SPAN);
    let r = c.request(
        json!({"type": "publish", "channel": "chat:relay", "data": 1, "traceparent": tp}),
        1,
    );
    assert_eq!(r["type"], "ack", "{r}");
    let published = || find_metric(&scrape(&hub), "ringhub_relay_published_total") >= Some(1.0);
    assert!(eventually(published), "{}", scrape(&hub));
    // Sequenced by Redis: the ack carries the offset Redis gave.
    let r = c.request(json!({"type": "publish", "channel": "log:1", "data": 2}), 2);
    assert_eq!(r["offset"], 1, "{r}");
    let r = hub.api().get("/api/history/log:1");
    assert_eq!(r.status, 200, "{}", r.body);
    hub.shutdown();

    let (spans, _) = exported(&collector);
    let relay = named(&spans, "relay publish");
    let traced = relay
        .iter()
        .find(|s| hex::encode(&s.parent_span_id) == CLIENT_SPAN)
        .unwrap_or_else(|| panic!("a relay batch under the client's span: {relay:#?}"));
    assert_eq!(hex::encode(&traced.trace_id), CLIENT_TRACE);
    assert_eq!(traced.kind, SpanKind::Producer as i32);
    let a = attributes(&traced.attributes);
    assert_eq!(a["messaging.system"], "redis");
    assert!(a["ringhub.relay.published"].parse::<u64>().unwrap() >= 1);
    let sequence = named(&spans, "relay sequence");
    assert_eq!(sequence.len(), 1, "{spans:#?}");
    assert_eq!(
        attributes(&sequence[0].attributes)["ringhub.relay.sequenced"],
        "1"
    );
    let history = named(&spans, "relay history");
    assert_eq!(history.len(), 1, "{spans:#?}");
    assert_eq!(
        attributes(&history[0].attributes)["ringhub.channel"],
        "log:1"
    );
}
