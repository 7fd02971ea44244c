//! The HTTP ports operators scrape and query: Prometheus's `/metrics` (zoo.cfg's
//! `metricsProvider.*`) and the AdminServer's `/commands` (`admin.*`), served by hyper on the
//! client port's runtime, GET only, with limits on connections, request bytes and time, and
//! refusals logged at most once a second per port.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::NetShared;

/// ZooKeeper's Prometheus provider class; naming it in `metricsProvider.className` turns on
/// `/metrics`.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// ZooKeeper's default provider: metrics in mntr only.
const DEFAULT_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// Which HTTP ports run and how they are bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where `/metrics` listens (metricsProvider.httpHost:httpPort, 0.0.0.0:7000), when the
    /// Prometheus provider is named.
    pub metrics_address: Option<SocketAddr>,
    /// Where the AdminServer listens (admin.serverAddress:serverPort, 0.0.0.0:8080) when
    /// admin.enableServer=true. Off by default here (ZooKeeper's is on): a server should not
    /// open a second port nobody asked for.
    pub admin_address: Option<SocketAddr>,
    /// The AdminServer's command prefix (admin.commandURL, "/commands").
    pub admin_command_url: String,
    /// Most HTTP connections open at once, per port; more are closed unanswered.
    pub connections_max: usize,
    /// Largest request head (request line and headers) in bytes; a larger one is answered
    /// 431 and closed. hyper's smallest buffer is 8,192 bytes.
    pub request_head_bytes_max: usize,
    /// How long a connection may take from accept to its answer, in milliseconds
    /// (admin.idleTimeout, for both ports).
    pub request_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            metrics_address: None,
            admin_address: None,
            admin_command_url: "/commands".into(),
            connections_max: 64,
            request_head_bytes_max: 8192,
            request_timeout_ms: 10_000,
        }
    }
}

/// zoo.cfg's `metricsProvider.*` and `admin.*` keys as they come, settled by `HttpCfg::finish`.
#[derive(Clone, Debug, Default)]
pub struct HttpCfg {
    metrics_provider: Option<String>,
    metrics_host: Option<IpAddr>,
    metrics_port: Option<u16>,
    admin_enabled: bool,
    admin_host: Option<IpAddr>,
    admin_port: Option<u16>,
    admin_command_url: Option<String>,
    idle_timeout_ms: Option<u64>,
}

impl HttpCfg {
    /// Takes one zoo.cfg key. Ok(false): not an HTTP key. Err: the value breaks the key's rule.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let address = |value: &str| {
            value
                .parse::<IpAddr>()
                .map_err(|_| format!("{value:?} is not an IP address"))
        };
        let port = |value: &str| {
            value
                .parse::<u16>()
                .map_err(|_| format!("{value:?} is not a port number"))
        };
        match key {
            "metricsProvider.className" => self.metrics_provider = Some(value.to_string()),
            "metricsProvider.httpHost" => self.metrics_host = Some(address(value)?),
            "metricsProvider.httpPort" => self.metrics_port = Some(port(value)?),
            // JVM figures: there is no JVM here.
            "metricsProvider.exportJvmInfo" => {}
            "admin.enableServer" => {
                self.admin_enabled = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("{value:?} is neither true nor false")),
                }
            }
            "admin.serverAddress" => self.admin_host = Some(address(value)?),
            "admin.serverPort" => self.admin_port = Some(port(value)?),
            "admin.commandURL" => {
                if !value.starts_with('/') {
                    return Err(format!("{value:?} does not start with /"));
                }
                self.admin_command_url = Some(value.trim_end_matches('/').to_string())
            }
            // Jetty's idle timeout (30 s there): here the bound on every HTTP request's time.
            "admin.idleTimeout" => {
                let timeout_ms: u64 = value
                    .parse()
                    .map_err(|_| format!("{value:?} is not a number of milliseconds"))?;
                if timeout_ms == 0 {
                    return Err("0 ms leaves no time to answer".into());
                }
                self.idle_timeout_ms = Some(timeout_ms)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The ports to open. Fails on a metrics provider class this server does not have.
    pub fn finish(self, into: &mut HttpConfig) -> Result<(), (String, String)> {
        let any = IpAddr::from([0, 0, 0, 0]);
        match self.metrics_provider.as_deref() {
            None | Some(DEFAULT_PROVIDER) => {}
            Some(PROMETHEUS_PROVIDER) => {
                into.metrics_address = Some(SocketAddr::new(
                    self.metrics_host.unwrap_or(any),
                    self.metrics_port.unwrap_or(7000),
                ))
            }
            Some(other) => {
                return Err((
                    "metricsProvider.className".into(),
                    format!(
                        "{other} is not a provider this server has (use {PROMETHEUS_PROVIDER})"
                    ),
                ))
            }
        }
        if self.admin_enabled {
            into.admin_address = Some(SocketAddr::new(
                self.admin_host.unwrap_or(any),
                self.admin_port.unwrap_or(8080),
            ));
        }
        if let Some(url) = self.admin_command_url {
            into.admin_command_url = url;
        }
        if let Some(timeout_ms) = self.idle_timeout_ms {
            into.request_timeout_ms = timeout_ms;
        }
        Ok(())
    }
}

/// What a port serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Site {
    /// `/metrics`.
    Metrics,
    /// The AdminServer's `/commands`.
    Admin,
}

/// Binds `address` for `site` on the current runtime (errors name the port's purpose).
pub(super) async fn bind(address: SocketAddr, site: Site) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|error| {
        std::io::Error::new(error.kind(), format!("{site:?} port {address}: {error}"))
    })
}

/// Serves `site` on `listener` until `stopped`.
pub(super) async fn serve(
    listener: TcpListener,
    site: Site,
    shared: Arc<NetShared>,
    mut stopped: watch::Receiver<bool>,
) {
    let config = shared.config.http.clone();
    let slots = Arc::new(Semaphore::new(config.connections_max));
    let refusals = Arc::new(Refusals::new(site));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.wait_for(|stopped| *stopped) => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "{site:?} port: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let limit = config.connections_max;
            refusals.log(
                peer,
                format_args!("refused, {limit} connections is the limit"),
            );
            continue;
        };
        let shared = shared.clone();
        let config = config.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(config.request_timeout_ms))
                .max_buf_size(config.request_head_bytes_max)
                .keep_alive(false)
                .serve_connection(
                    TokioIo::new(stream),
                    hyper::service::service_fn(|request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(answer(site, &shared, &request)) }
                    }),
                );
            let limit = Duration::from_millis(config.request_timeout_ms);
            match tokio::time::timeout(limit, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => refusals.log(peer, format_args!("bad request refused: {error}")),
                Err(_) => refusals.log(
                    peer,
                    format_args!("request not finished in {limit:?}, closed"),
                ),
            }
        });
    }
}

/// A port's refusals, logged at most once a second so that a flood of bad connections cannot
/// flood the log; each line says how many refusals went unlogged before it.
struct Refusals {
    site: Site,
    started: Instant,
    /// Milliseconds since `started` before which nothing more is logged.
    quiet_until_ms: AtomicU64,
    unlogged: AtomicU64,
}

/// The least time between two logged refusals of one port.
const REFUSAL_LOG_INTERVAL_MS: u64 = 1000;

impl Refusals {
    fn new(site: Site) -> Refusals {
        Refusals {
            site,
            started: Instant::now(),
            quiet_until_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    fn log(&self, peer: SocketAddr, what: std::fmt::Arguments<'_>) {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let quiet_until_ms = self.quiet_until_ms.load(Ordering::Relaxed);
        let claimed = now_ms >= quiet_until_ms
            && self
                .quiet_until_ms
                .compare_exchange(
                    quiet_until_ms,
                    now_ms + REFUSAL_LOG_INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if !claimed {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(%peer, unlogged, "{:?} port: {what}", self.site);
    }
}

/// The answer to one request.
fn answer(site: Site, shared: &NetShared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served\n".into(),
        );
    }
    let path = request.uri().path();
    match site {
        Site::Metrics if path == "/metrics" => {
            let body = super::prometheus::render(&shared.engine.metrics_snapshot());
            with_type(text(StatusCode::OK, body), super::prometheus::CONTENT_TYPE)
        }
        Site::Admin => {
            let url = shared.config.http.admin_command_url.as_str();
            match path.strip_prefix(url) {
                Some("" | "/") => with_type(
                    text(StatusCode::OK, super::admin::links(url)),
                    "text/html; charset=utf-8",
                ),
                Some(name) if name.starts_with('/') => {
                    let answer = super::admin::run(&name[1..], shared);
                    let body = serde_json::to_string_pretty(&answer).unwrap_or_default();
                    with_type(text(StatusCode::OK, body), "application/json")
                }
                _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
            }
        }
        Site::Metrics => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn with_type(
    mut response: Response<Full<Bytes>>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// A plain-text response.
fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    //! Guards against zoo.cfg's HTTP keys read differently from ZooKeeper's defaults.

    use super::*;

    #[test]
    fn the_prometheus_provider_opens_metrics_on_zookeepers_default_port() {
        let mut cfg = HttpCfg::default();
        assert_eq!(
            cfg.set("metricsProvider.className", PROMETHEUS_PROVIDER),
            Ok(true)
        );
        assert_eq!(cfg.set("tickTime", "2000"), Ok(false));
        let mut http = HttpConfig::default();
        cfg.finish(&mut http).unwrap();
        assert_eq!(http.metrics_address, Some("0.0.0.0:7000".parse().unwrap()));
        assert_eq!(http.admin_address, None);
    }

    #[test]
    fn host_port_and_admin_keys_are_taken() {
        let mut cfg = HttpCfg::default();
        for (key, value) in [
            ("metricsProvider.className", PROMETHEUS_PROVIDER),
            ("metricsProvider.httpHost", "127.0.0.1"),
            ("metricsProvider.httpPort", "7071"),
            ("admin.enableServer", "true"),
            ("admin.serverAddress", "127.0.0.1"),
            ("admin.serverPort", "8081"),
            ("admin.commandURL", "/cmds/"),
            ("admin.idleTimeout", "1500"),
        ] {
            assert_eq!(cfg.set(key, value), Ok(true), "{key}");
        }
        let mut http = HttpConfig::default();
        cfg.finish(&mut http).unwrap();
        assert_eq!(
            http.metrics_address,
            Some("127.0.0.1:7071".parse().unwrap())
        );
        assert_eq!(http.admin_address, Some("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(http.admin_command_url, "/cmds");
        assert_eq!(http.request_timeout_ms, 1500);
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_second() {
        let refusals = Refusals::new(Site::Metrics);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        refusals.log(peer, format_args!("first"));
        refusals.log(peer, format_args!("second"));
        refusals.log(peer, format_args!("third"));
        assert_eq!(refusals.unlogged.load(Ordering::Relaxed), 2);
        // A second later the next one is logged, with the count of those that were not.
        refusals.quiet_until_ms.store(0, Ordering::Relaxed);
        refusals.log(peer, format_args!("fourth"));
        assert_eq!(refusals.unlogged.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn bad_values_and_unknown_providers_are_refused() {
        let mut cfg = HttpCfg::default();
        assert!(cfg.set("metricsProvider.httpPort", "70000").is_err());
        assert!(cfg.set("admin.enableServer", "maybe").is_err());
        assert!(cfg.set("admin.commandURL", "commands").is_err());
        assert!(cfg.set("admin.idleTimeout", "0").is_err());
        cfg.set("metricsProvider.className", "com.example.Nope")
            .unwrap();
        let error = cfg.finish(&mut HttpConfig::default()).unwrap_err();
        assert_eq!(error.0, "metricsProvider.className");
        let mut cfg = HttpCfg::default();
        cfg.set(
            "metricsProvider.className",
            "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
        )
        .unwrap();
        let mut http = HttpConfig::default();
        cfg.finish(&mut http).unwrap();
        assert_eq!(http.metrics_address, None);
    }
}
