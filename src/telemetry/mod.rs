//! Traces (docs/observability.md, "Traces"): OpenTelemetry spans of the control thread's
//! work — server API calls, calls to backends, the relay's batches, webhook deliveries —
//! exported over OTLP/HTTP (protobuf) by the SDK's batch processor, on a thread of its own.
//!
//! Without `otlp_endpoint` there is no [`Traces`] (`Shared::traces` is `None`): no span is
//! built and nothing is allocated for tracing. The per-message hot path (a shard's frames,
//! fan-out) is never traced; a shard only reads a client's `traceparent` ([`TraceParent`],
//! without allocating) and carries it, 25 bytes, to the call or batch it starts.

mod export;
mod traceparent;

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};

pub use opentelemetry::trace::SpanKind as Kind;
pub use opentelemetry::KeyValue;
pub use traceparent::TraceParent;

use crate::config::Config;

/// Links a batch's span keeps to the traced items beyond the first.
pub const MAX_LINKS: usize = 32;
/// How long one export may take before it is given up (its spans are lost).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tracer and its exporter; present only with `otlp_endpoint`.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: opentelemetry_sdk::trace::SdkTracer,
}

impl Traces {
    /// None without `otlp_endpoint` (or, logged, when the exporter cannot be set up: the hub
    /// then runs untraced rather than not at all).
    pub fn new(config: &Config, instance: &str) -> Option<Traces> {
        let endpoint = config.otlp_endpoint.as_deref()?;
        match Traces::build(config, endpoint, instance) {
            Ok(traces) => {
                tracing::info!(
                    endpoint,
                    ratio = config.trace_sample_ratio,
                    "traces: exporting over OTLP/HTTP"
                );
                Some(traces)
            }
            Err(e) => {
                tracing::error!(endpoint, error = %e, "traces: cannot set up the exporter; no traces");
                None
            }
        }
    }

    fn build(config: &Config, endpoint: &str, instance: &str) -> Result<Traces, String> {
        let poster = export::Poster::new(EXPORT_TIMEOUT).map_err(|e| e.to_string())?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(poster)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let batch = BatchConfigBuilder::default()
            .with_scheduled_delay(config.trace_export_delay)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        // 0 is off, even under a client's sampled traceparent; otherwise a caller's
        // decision stands and traces started here are kept at the ratio.
        let sampler = match config.trace_sample_ratio {
            r if r <= 0.0 => Sampler::AlwaysOff,
            r => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r))),
        };
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.instance.id", instance.to_owned()))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("ringhub");
        Ok(Traces { provider, tracer })
    }

    /// Starts a span, the child of `parent` when there is one (a client's or caller's
    /// `traceparent`), else the root of a new trace. It ends when dropped.
    pub fn start(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: Kind,
        parent: Option<TraceParent>,
        attributes: Vec<KeyValue>,
    ) -> Span {
        self.start_at(name, kind, parent, attributes, SystemTime::now())
    }

    /// A span for a batch of work: the child of the first traced item's parent, linked to
    /// the others' (at most [`MAX_LINKS`]).
    pub fn start_batch(
        &self,
        name: &'static str,
        parents: &[TraceParent],
        attributes: Vec<KeyValue>,
    ) -> Span {
        let links = parents
            .iter()
            .skip(1)
            .take(MAX_LINKS)
            .map(|p| Link::with_context(remote(p)))
            .collect();
        let context = match parents.first() {
            Some(p) => Context::new().with_remote_span_context(remote(p)),
            None => Context::new(),
        };
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(Kind::Producer)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&self.tracer, &context);
        Span(span)
    }

    /// [`Traces::start`], for a span that began at `at` (one made once its work is done).
    pub fn start_at(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: Kind,
        parent: Option<TraceParent>,
        attributes: Vec<KeyValue>,
        at: SystemTime,
    ) -> Span {
        let context = match parent {
            Some(p) => Context::new().with_remote_span_context(remote(&p)),
            None => Context::new(),
        };
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .with_start_time(at)
            .start_with_context(&self.tracer, &context);
        Span(span)
    }

    /// Exports what is still waiting and stops the exporter (the hub's shutdown).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "traces: shutdown");
        }
    }
}

fn remote(p: &TraceParent) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(p.trace_id),
        SpanId::from_bytes(p.span_id),
        TraceFlags::new(p.flags),
        true,
        TraceState::default(),
    )
}

/// A span under way; ends (and is queued for export) when dropped.
pub struct Span(opentelemetry_sdk::trace::Span);

impl Span {
    pub fn set(&mut self, attribute: KeyValue) {
        self.0.set_attribute(attribute);
    }

    /// Marks the span failed, with why.
    pub fn fail(&mut self, message: impl Into<Cow<'static, str>>) {
        self.0.set_status(Status::error(message));
    }

    /// This span as the parent of what it calls (the `traceparent` header sent).
    pub fn traceparent(&self) -> TraceParent {
        let cx = self.0.span_context();
        TraceParent {
            trace_id: cx.trace_id().to_bytes(),
            span_id: cx.span_id().to_bytes(),
            flags: cx.trace_flags().to_u8(),
        }
    }
}
