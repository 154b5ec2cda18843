//! Prometheus metrics, named and documented in one place.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// All of Kreislauf's metrics, registered in one registry per process (or per test server).
pub struct Metrics {
    pub registry: Registry,
    /// Events committed, by source.
    pub events_accepted: IntCounterVec,
    /// Events not stored, by source and reason (`invalid_<field>`, `too_large`, `erased_identifier`, …).
    pub events_rejected: IntCounterVec,
    /// Events recognised as retries by `messageId`, by source.
    pub events_duplicate: IntCounterVec,
    /// Time the writer spends committing one group of batches.
    pub commit_seconds: HistogramVec,
    /// Events waiting for the writer.
    pub queued_events: IntGauge,
    /// HTTP request latency by route and status.
    pub http_seconds: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .expect("static metric definition");
            registry
                .register(Box::new(h.clone()))
                .expect("metric registered once");
            h
        };
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let events_accepted = counter(
            "kreislauf_events_accepted_total",
            "Events committed to the store.",
            &["source"],
        );
        let events_rejected = counter(
            "kreislauf_events_rejected_total",
            "Events not stored, by reason.",
            &["source", "reason"],
        );
        let events_duplicate = counter(
            "kreislauf_events_duplicate_total",
            "Events skipped as retries of a stored messageId.",
            &["source"],
        );
        let commit_seconds = histogram(
            "kreislauf_ingest_commit_seconds",
            "Writer time per committed group.",
            &["backend"],
            latency_buckets.clone(),
        );
        let http_seconds = histogram(
            "kreislauf_http_request_duration_seconds",
            "HTTP request latency.",
            &["route", "status"],
            latency_buckets,
        );
        let queued_events = IntGauge::new(
            "kreislauf_ingest_queued_events",
            "Events waiting for the writer.",
        )
        .expect("static metric definition");
        registry
            .register(Box::new(queued_events.clone()))
            .expect("metric registered once");
        Self {
            registry,
            events_accepted,
            events_rejected,
            events_duplicate,
            commit_seconds,
            queued_events,
            http_seconds,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
