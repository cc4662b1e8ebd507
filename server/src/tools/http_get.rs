//! `http_get`: an agent fetches a public web page. Only http and https; every address a name
//! resolves to is checked by the client's own DNS resolver (the connector uses exactly the
//! addresses it returns, so a rebinding answer has no window), IP-literal hosts are checked
//! before sending, and every redirect hop is checked again. Loopback, private, link-local,
//! CGNAT, multicast, reserved, cloud metadata and the IPv6 forms that embed an IPv4 address
//! (mapped, NAT64, 6to4) are refused. Answers are capped in size and time.

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The most of a body an agent gets.
pub const MAX_BODY: usize = 256 * 1024;
const MAX_REDIRECTS: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why an address may not be fetched, if it may not.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() || a == 0 => "this-network",
        _ if ip.is_private() => "private",
        (169, 254, _) => "link-local (cloud metadata lives here)",
        (100, 64..=127, _) => "shared address space (CGNAT)",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4).map(|_| "an IPv4-mapped form of a refused address");
    }
    Some(match s {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address a gateway would
        // reach: judge that one.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x2002, hi, lo, ..]
            if refusal_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))).is_some() =>
        {
            "an IPv6 form embedding a refused IPv4 address"
        }
        // The local-use NAT64 prefix (64:ff9b:1::/48) reaches a private network.
        [0x64, 0xff9b, 1, ..] => "local-use NAT64",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique local (private)",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [0x2001, x, ..] if x < 0x200 => "IETF protocol assignments (Teredo and others)",
        _ => return None,
    })
}

/// The policy: refused addresses, minus any an admin allowed (`allow`).
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub allow: Vec<IpAddr>,
}

impl Policy {
    fn check(&self, ip: IpAddr) -> Result<(), String> {
        match refusal(ip) {
            Some(why) if !self.allow.contains(&ip) => Err(format!("{ip} is {why}")),
            _ => Ok(()),
        }
    }

    /// The scheme and, for an IP-literal host, the address (names go through the resolver).
    fn check_url(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "only http and https may be fetched, not {}:",
                url.scheme()
            ));
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err("the URL has no host".into()),
        }
    }
}

/// Resolves with the system resolver and keeps only addresses the policy allows.
#[derive(Debug)]
struct CheckedResolver(Policy);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.check(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                let why = found
                    .first()
                    .map(|a| policy.check(a.ip()).err().unwrap_or_default())
                    .unwrap_or_else(|| "nothing".into());
                return Err(format!("{host} resolves only to refused addresses ({why})").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

pub struct HttpGet {
    client: reqwest::Client,
    policy: Policy,
}

impl HttpGet {
    pub fn new(policy: Policy) -> Result<Self, String> {
        crate::install_tls_provider();
        let hop_policy = policy.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match hop_policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(why) => attempt.error(format!("redirect refused: {why}")),
                }
            }))
            .user_agent("flotilla-agent/1")
            .build()
            .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
        Ok(Self { client, policy })
    }

    /// This client for `raw`, once its scheme and (for an IP-literal host) address pass: what
    /// an HTTP MCP server is reached with, so names and redirects get the same checks.
    pub fn checked_client(&self, raw: &str) -> Result<reqwest::Client, String> {
        let url = Url::parse(raw).map_err(|e| format!("'{raw}' is not a URL: {e}"))?;
        self.policy.check_url(&url)?;
        Ok(self.client.clone())
    }

    /// Fetches `raw`: the status line and up to [`MAX_BODY`] bytes of the body as text.
    pub async fn get(&self, raw: &str) -> Result<String, String> {
        let url = Url::parse(raw).map_err(|e| format!("'{raw}' is not a URL: {e}"))?;
        self.policy.check_url(&url)?;
        let mut res = self.client.get(url).send().await.map_err(describe)?;
        let status = res.status();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = res.chunk().await.map_err(describe)? {
            let room = MAX_BODY - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let mut text = format!("HTTP {status}\n\n{}", String::from_utf8_lossy(&body));
        if truncated {
            text.push_str(&format!("\n[truncated at {MAX_BODY} bytes]"));
        }
        Ok(text)
    }
}

/// A request error with its causes (where the refusal said why).
fn describe(e: reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_internal_form_is_refused_and_public_ones_pass() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(refusal(ip).is_some(), "{ip} should be refused");
        }
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::5db8:d70e",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refusal(ip), None, "{ip} is public");
        }
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let p = Policy::default();
        for url in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00:ec2::254]/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ftp://example.com/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(p.check_url(&url).is_err(), "{url} should be refused");
        }
        assert!(
            p.check_url(&Url::parse("https://example.com/x").unwrap())
                .is_ok()
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any URL text is refused with a reason or passes the checks; any address is judged
        /// without a panic.
        #[test]
        fn any_url_or_address_is_judged(raw in "\\PC{0,80}", v4 in any::<u32>(), v6 in any::<u128>()) {
            if let Ok(url) = Url::parse(&raw) {
                let _ = Policy::default().check_url(&url);
            }
            let _ = refusal(IpAddr::V4(Ipv4Addr::from(v4)));
            let _ = refusal(IpAddr::V6(Ipv6Addr::from(v6)));
        }
    }
}
