//! Prometheus metrics, kept in one place and rendered in the text format
//! on the admin listener's `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A family of counters by label values.
#[derive(Default)]
pub struct Counter {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Counter {
    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }
    pub fn add(&self, labels: &[&str], n: u64) {
        if let Ok(mut m) = self.values.lock() {
            *m.entry(labels.iter().map(|s| s.to_string()).collect())
                .or_default() += n;
        }
    }
    fn snapshot(&self) -> Vec<(Vec<String>, u64)> {
        self.values
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket counts, sum and count of one histogram.
type Series = (Vec<u64>, f64, u64);

/// A family of histograms (seconds) by label values.
#[derive(Default)]
pub struct Histogram {
    values: Mutex<BTreeMap<Vec<String>, Series>>,
}

impl Histogram {
    pub fn observe(&self, labels: &[&str], d: Duration) {
        let secs = d.as_secs_f64();
        if let Ok(mut m) = self.values.lock() {
            let e = m
                .entry(labels.iter().map(|s| s.to_string()).collect())
                .or_insert_with(|| (vec![0; BUCKETS.len()], 0.0, 0));
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    e.0[i] += 1;
                }
            }
            e.1 += secs;
            e.2 += 1;
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    pub requests: Counter,
    pub decisions: Counter,
    pub auth_failures: Counter,
    pub upstream_latency: Histogram,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub aborts: Counter,
    pub audit_write: Histogram,
    /// Audit records not written on purpose, by reason (`rate_limited`).
    pub audit_dropped: Counter,
    pub in_flight: AtomicI64,
    /// The reaper (`multipart.reaper`): uploads it aborted, the bytes their
    /// parts held, aborts another replica (or a client) got to first, the
    /// ownership records it removed (all by bucket), and its rounds.
    pub reaper_reaped: Counter,
    /// Orphans (no ownership record, older than `orphans_after`) it
    /// aborted, and candidates a last look found recorded after all.
    pub reaper_orphans_reaped: Counter,
    pub reaper_orphans_spared: Counter,
    pub reaper_bytes_freed: Counter,
    pub reaper_duplicates: Counter,
    pub reaper_records_removed: Counter,
    pub reaper_runs: Counter,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::default)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(names: &[&str], values: &[String]) -> String {
    let parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn counter(out: &mut String, name: &str, help: &str, names: &[&str], c: &Counter) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (values, n) in c.snapshot() {
        let _ = writeln!(out, "{name}{} {n}", labels(names, &values));
    }
}

fn histogram(out: &mut String, name: &str, help: &str, names: &[&str], h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let snap: Vec<_> = h
        .values
        .lock()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (values, (buckets, sum, count)) in snap {
        let base = labels(names, &values);
        let inner = base.trim_start_matches('{').trim_end_matches('}');
        let sep = if inner.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{inner}{sep}le=\"{b}\"}} {}",
                buckets[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{base} {sum}");
        let _ = writeln!(out, "{name}_count{base} {count}");
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        counter(
            &mut out,
            "s3gate_requests_total",
            "Requests by S3 operation and HTTP status.",
            &["operation", "status"],
            &self.requests,
        );
        counter(
            &mut out,
            "s3gate_policy_decisions_total",
            "Policy decisions by effect and deciding statement.",
            &["effect", "statement"],
            &self.decisions,
        );
        counter(
            &mut out,
            "s3gate_auth_failures_total",
            "Failed authentications by S3 error code.",
            &["reason"],
            &self.auth_failures,
        );
        histogram(
            &mut out,
            "s3gate_upstream_latency_seconds",
            "Time to the upstream's response header, by upstream.",
            &["upstream"],
            &self.upstream_latency,
        );
        let _ = writeln!(out, "# HELP s3gate_bytes_in_total Request body bytes sent upstream.\n# TYPE s3gate_bytes_in_total counter\ns3gate_bytes_in_total {}", self.bytes_in.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP s3gate_bytes_out_total Response body bytes sent to clients.\n# TYPE s3gate_bytes_out_total counter\ns3gate_bytes_out_total {}", self.bytes_out.load(Ordering::Relaxed));
        counter(
            &mut out,
            "s3gate_aborts_total",
            "AbortMultipartUpload attempts by outcome.",
            &["outcome"],
            &self.aborts,
        );
        histogram(
            &mut out,
            "s3gate_audit_write_seconds",
            "Time to write (and fsync) an audit record.",
            &[],
            &self.audit_write,
        );
        counter(
            &mut out,
            "s3gate_audit_records_dropped_total",
            "Audit records not written, by reason (rate_limited: auth_failed records beyond the rate limit; write_failed: the log could not be written).",
            &["reason"],
            &self.audit_dropped,
        );
        if !self
            .audit_dropped
            .snapshot()
            .iter()
            .any(|(l, _)| l.first().map(String::as_str) == Some("rate_limited"))
        {
            let _ = writeln!(
                out,
                "s3gate_audit_records_dropped_total{{reason=\"rate_limited\"}} 0"
            );
        }
        self.render_reaper(&mut out);
        let _ = writeln!(out, "# HELP s3gate_policy_reloads_total Policy reloads by result.\n# TYPE s3gate_policy_reloads_total counter");
        let _ = writeln!(
            out,
            "s3gate_policy_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "s3gate_policy_reloads_total{{result=\"failed\"}} {}",
            self.reloads_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP s3gate_in_flight_requests Requests being served now.\n# TYPE s3gate_in_flight_requests gauge\ns3gate_in_flight_requests {}", self.in_flight.load(Ordering::Relaxed));
        out
    }
}

impl Metrics {
    fn render_reaper(&self, out: &mut String) {
        counter(
            out,
            "s3gate_reaper_uploads_reaped_total",
            "Expired multipart uploads the reaper aborted, by bucket.",
            &["bucket"],
            &self.reaper_reaped,
        );
        counter(
            out,
            "s3gate_reaper_orphans_reaped_total",
            "Orphaned multipart uploads (no initiator on record, older than orphans_after) the reaper aborted, by bucket.",
            &["bucket"],
            &self.reaper_orphans_reaped,
        );
        counter(
            out,
            "s3gate_reaper_orphans_spared_total",
            "Orphan candidates the reaper left alone because their ownership record appeared after the listing, by bucket.",
            &["bucket"],
            &self.reaper_orphans_spared,
        );
        counter(
            out,
            "s3gate_reaper_bytes_freed_total",
            "Bytes of the parts of the uploads the reaper aborted, expired or orphaned (from ListParts), by bucket.",
            &["bucket"],
            &self.reaper_bytes_freed,
        );
        counter(
            out,
            "s3gate_reaper_duplicates_total",
            "Reaper aborts answered NoSuchUpload (another replica or a client aborted first), by bucket.",
            &["bucket"],
            &self.reaper_duplicates,
        );
        counter(
            out,
            "s3gate_reaper_ownership_records_removed_total",
            "Ownership records the reaper removed because their upload no longer exists, by bucket.",
            &["bucket"],
            &self.reaper_records_removed,
        );
        counter(
            out,
            "s3gate_reaper_runs_total",
            "Reaper rounds by result (ok, error, standby: another replica holds the lease).",
            &["result"],
            &self.reaper_runs,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.requests.inc(&["PutObject", "200"]);
        m.requests.inc(&["PutObject", "200"]);
        m.upstream_latency
            .observe(&["lab"], Duration::from_millis(3));
        let t = m.render();
        assert!(
            t.contains("s3gate_requests_total{operation=\"PutObject\",status=\"200\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("s3gate_upstream_latency_seconds_bucket{upstream=\"lab\",le=\"0.005\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("s3gate_upstream_latency_seconds_count{upstream=\"lab\"} 1"),
            "{t}"
        );
    }

    #[test]
    fn dropped_audit_records_are_counted() {
        let m = Metrics::default();
        let t = m.render();
        assert!(
            t.contains("s3gate_audit_records_dropped_total{reason=\"rate_limited\"} 0"),
            "{t}"
        );
        m.audit_dropped.add(&["rate_limited"], 3);
        let t = m.render();
        assert!(
            t.contains("s3gate_audit_records_dropped_total{reason=\"rate_limited\"} 3"),
            "{t}"
        );
        assert_eq!(t.matches("s3gate_audit_records_dropped_total{").count(), 1);
    }
}
