//! Prometheus metrics, served as text on the admin port.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric the webhook exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: Family<Labels, Counter>,
    decision_seconds: Histogram,
    fetches: Family<Labels, Counter>,
    fetch_failures: Family<Labels, Counter>,
    last_fetch_failed: Family<Labels, Gauge>,
    cache_hits: Counter,
    cache_misses: Counter,
    break_glass: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gitops_webhook");
        let reviews = Family::<Labels, Counter>::default();
        registry.register(
            "reviews",
            "Admission reviews by operation, kind, decision and reason (a denial's variant or an allow's reason)",
            reviews.clone(),
        );
        let decision_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "decision_seconds",
            "Time to decide one review",
            decision_seconds.clone(),
        );
        let fetches = Family::<Labels, Counter>::default();
        registry.register("git_fetches", "Git fetches by repository", fetches.clone());
        let fetch_failures = Family::<Labels, Counter>::default();
        registry.register(
            "git_fetch_failures",
            "Failed Git fetches by repository",
            fetch_failures.clone(),
        );
        let last_fetch_failed = Family::<Labels, Gauge>::default();
        registry.register(
            "git_last_fetch_failed",
            "1 when the last fetch of the repository failed",
            last_fetch_failed.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "render_cache_hits",
            "Renders served from the cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "render_cache_misses",
            "Renders computed",
            cache_misses.clone(),
        );
        let break_glass = Counter::default();
        registry.register(
            "break_glass",
            "Denials overridden by break-glass",
            break_glass.clone(),
        );
        Metrics {
            registry,
            reviews,
            decision_seconds,
            fetches,
            fetch_failures,
            last_fetch_failed,
            cache_hits,
            cache_misses,
            break_glass,
        }
    }

    /// Counts one review and its latency: its decision, and why (a denial's variant, an allow's
    /// reason).
    pub fn review(&self, operation: &str, kind: &str, decision: &str, reason: &str, seconds: f64) {
        self.reviews
            .get_or_create(&vec![
                ("operation", operation.to_owned()),
                ("kind", kind.to_owned()),
                ("decision", decision.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
        self.decision_seconds.observe(seconds);
        if decision == "break-glass" {
            self.break_glass.inc();
        }
    }

    /// Counts one fetch of `repo` and whether it failed.
    pub fn fetch(&self, repo: &str, failed: bool) {
        let labels = vec![("repo", repo.to_owned())];
        self.fetches.get_or_create(&labels).inc();
        if failed {
            self.fetch_failures.get_or_create(&labels).inc();
        }
        self.last_fetch_failed
            .get_or_create(&labels)
            .set(i64::from(failed));
    }

    /// Counts a render cache hit or miss.
    pub fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
