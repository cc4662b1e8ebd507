//! The accept loop: axum's router over hyper, with what `axum::serve` does not offer — a
//! deadline for a request's headers (a client that never finishes them is dropped), and a cap
//! on the connections one address may hold open. Trusted proxies are exempt from the cap:
//! every client behind them shares their address.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests get to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Limits on connections.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub per_ip: usize,
    pub trusted_proxies: Vec<IpAddr>,
}

/// Open connections per address; a slot is given back when its guard drops.
#[derive(Clone, Default)]
struct OpenConnections(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Slot {
    open: OpenConnections,
    ip: IpAddr,
}

impl OpenConnections {
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The client a request comes from: its TCP peer, unless that is a trusted proxy, whose
/// `X-Forwarded-For` is then read from the right, skipping the trusted hops (what a client put
/// there itself is further left and never reached unless every hop is trusted).
fn client_addr(
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[IpAddr],
) -> SocketAddr {
    if !trusted.contains(&peer.ip()) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .or(hops.first())
        .map_or(peer, |ip| SocketAddr::new(*ip, 0))
}

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish (up to a
/// drain period). Each request carries `ConnectInfo<SocketAddr>` of its client
/// ([`client_addr`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let open = OpenConnections::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let slot = if limits.trusted_proxies.contains(&peer.ip()) {
            None
        } else {
            match open.take(peer.ip(), limits.per_ip) {
                Some(slot) => Some(slot),
                None => {
                    tracing::warn!(%peer, cap = limits.per_ip, "connection refused: too many open from this address");
                    continue;
                }
            }
        };
        let router = router.clone();
        let trusted = limits.trusted_proxies.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let client = client_addr(peer, req.headers(), &trusted);
                req.extensions_mut().insert(ConnectInfo(client));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("shutdown: gave up waiting for open connections"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let stranger: SocketAddr = "203.0.113.7:4000".parse().unwrap();
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 198.51.100.2".parse().unwrap());
        let trusted = [proxy.ip()];
        assert_eq!(
            client_addr(stranger, &h, &trusted),
            stranger,
            "spoofed header ignored"
        );
        assert_eq!(
            client_addr(proxy, &h, &trusted).ip(),
            "198.51.100.2".parse::<IpAddr>().unwrap(),
            "the hop the proxy saw, not what the client claimed"
        );
        assert_eq!(
            client_addr(proxy, &axum::http::HeaderMap::new(), &trusted),
            proxy
        );
    }

    proptest::proptest! {
        /// Whatever a client puts in X-Forwarded-For, the answer is the peer or one of the
        /// addresses listed, and a stranger's header is never believed.
        #[test]
        fn any_forwarded_header_yields_the_peer_or_a_listed_hop(raw in "\\PC{0,80}|[0-9., :a-f]{0,60}") {
            let proxy: SocketAddr = "10.0.0.9:4000".parse().unwrap();
            let stranger: SocketAddr = "203.0.113.7:4000".parse().unwrap();
            let mut h = axum::http::HeaderMap::new();
            if let Ok(v) = axum::http::HeaderValue::from_str(&raw) {
                h.insert("x-forwarded-for", v);
            }
            proptest::prop_assert_eq!(client_addr(stranger, &h, &[proxy.ip()]), stranger);
            let got = client_addr(proxy, &h, &[proxy.ip()]);
            let listed: Vec<IpAddr> = raw.split(',').filter_map(|s| s.trim().parse().ok()).collect();
            proptest::prop_assert!(got == proxy || listed.contains(&got.ip()));
        }
    }

    #[test]
    fn an_address_gets_its_cap_and_its_slots_back() {
        let open = OpenConnections::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = open.take(ip, 2).unwrap();
        let _b = open.take(ip, 2).unwrap();
        assert!(open.take(ip, 2).is_none(), "over the cap");
        assert!(
            open.take([10, 0, 0, 2].into(), 2).is_some(),
            "others unaffected"
        );
        drop(a);
        assert!(open.take(ip, 2).is_some(), "a slot came back");
    }
}
