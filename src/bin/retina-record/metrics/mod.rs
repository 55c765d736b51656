//! `--metrics ADDR`: the recordings' counters in the OpenMetrics text format (the Prometheus
//! exposition format's successor), encoded by prometheus-client (`registry`), served at
//! `GET /metrics` (`http`).

mod http;
mod registry;

pub(crate) use http::serve;
