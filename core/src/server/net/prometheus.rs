//! A metrics snapshot in Prometheus's text exposition format 0.0.4, laid out as ZooKeeper's
//! Prometheus provider (simpleclient 0.9) writes it: help equal to the name, every value a
//! Java double, counters without a `_total` suffix, summaries with quantiles, count and sum.

use std::fmt::Write as _;

use crate::server::metrics::{Detail, MetricValue, MetricsSnapshot};

/// The Content-Type Prometheus expects for this format.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition of every metric in `snapshot`.
pub(crate) fn render(snapshot: &MetricsSnapshot) -> String {
    let mut text = String::new();
    for metric in &snapshot.metrics {
        let name = metric.name;
        let kind = match metric.value {
            MetricValue::Gauge(_) => "gauge",
            MetricValue::Counter(_) => "counter",
            MetricValue::Summary(_) => "summary",
        };
        let _ = write!(text, "# HELP {name} {name}\n# TYPE {name} {kind}\n");
        match &metric.value {
            MetricValue::Gauge(number) => {
                let _ = writeln!(text, "{name} {}", double(number.as_f64()));
            }
            MetricValue::Counter(count) => {
                let _ = writeln!(text, "{name} {}", double(*count as f64));
            }
            MetricValue::Summary(summary) => {
                // ZooKeeper's BASIC summaries report the median, ADVANCED ones the 90th and
                // 99th percentiles too (mntr's p95 and p999 are not among them).
                let quantiles: &[f64] = match summary.detail {
                    Detail::Basic => &[0.5],
                    Detail::Advanced => &[0.5, 0.9, 0.99],
                };
                for wanted in quantiles {
                    let value = summary
                        .quantiles
                        .iter()
                        .find(|(quantile, _)| quantile == wanted)
                        .and_then(|(_, value)| *value);
                    let _ = writeln!(
                        text,
                        "{name}{{quantile=\"{wanted}\",}} {}",
                        value.map_or_else(|| "NaN".to_string(), double)
                    );
                }
                let _ = writeln!(text, "{name}_count {}", double(summary.count as f64));
                let _ = writeln!(text, "{name}_sum {}", double(summary.sum as f64));
            }
        }
    }
    text
}

/// A value as Java's `Double.toString` prints it: "5.0", "1.3077", "1.2345678E7".
fn double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-3..1e7).contains(&magnitude) {
        let scientific = format!("{value:e}");
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        return format!("{mantissa}E{exponent}");
    }
    format!("{value:?}")
}

#[cfg(test)]
mod tests {
    //! Guards against an exposition laid out differently from ZooKeeper's.

    use super::*;
    use crate::server::metrics::{Metric, Number, SummaryValue};

    #[test]
    fn doubles_print_as_java_prints_them() {
        assert_eq!(double(0.0), "0.0");
        assert_eq!(double(5.0), "5.0");
        assert_eq!(double(1.3077), "1.3077");
        assert_eq!(double(12_345_678.0), "1.2345678E7");
        assert_eq!(double(10_000_000.0), "1.0E7");
        assert_eq!(double(f64::NAN), "NaN");
    }

    #[test]
    fn gauges_counters_and_summaries_are_laid_out_as_simpleclient_does() {
        let snapshot = MetricsSnapshot {
            role: None,
            metrics: vec![
                Metric {
                    name: "znode_count",
                    value: MetricValue::Gauge(Number::Whole(5)),
                },
                Metric {
                    name: "connection_rejected",
                    value: MetricValue::Counter(2),
                },
                Metric {
                    name: "fsynctime",
                    value: MetricValue::Summary(SummaryValue {
                        detail: Detail::Basic,
                        count: 3,
                        sum: 4,
                        min: 0,
                        max: 3,
                        avg: 1.3333,
                        quantiles: vec![(0.5, Some(1.0))],
                    }),
                },
                Metric {
                    name: "readlatency",
                    value: MetricValue::Summary(SummaryValue {
                        detail: Detail::Advanced,
                        count: 0,
                        sum: 0,
                        min: 0,
                        max: 0,
                        avg: 0.0,
                        quantiles: vec![(0.5, None), (0.9, None), (0.99, None)],
                    }),
                },
            ],
        };
        assert_eq!(
            render(&snapshot),
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n\
             # HELP connection_rejected connection_rejected\n# TYPE connection_rejected counter\n\
             connection_rejected 2.0\n\
             # HELP fsynctime fsynctime\n# TYPE fsynctime summary\n\
             fsynctime{quantile=\"0.5\",} 1.0\nfsynctime_count 3.0\nfsynctime_sum 4.0\n\
             # HELP readlatency readlatency\n# TYPE readlatency summary\n\
             readlatency{quantile=\"0.5\",} NaN\nreadlatency{quantile=\"0.9\",} NaN\n\
             readlatency{quantile=\"0.99\",} NaN\nreadlatency_count 0.0\nreadlatency_sum 0.0\n"
        );
    }
}
