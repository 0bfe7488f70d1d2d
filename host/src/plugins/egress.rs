//! The egress policy: which destinations a plugin's `http.send` may reach.
//!
//! Deny by default. A request passes when its scheme is `https` (or `http` where the operator
//! allowed it), its host matches one of the plugin's allowed-host patterns (from `describe()`,
//! narrowed or widened by the operator), and every address it resolves to is public, unless the
//! operator allowed private networks. The address check happens after DNS resolution, inside the
//! HTTP client's resolver, so a name cannot be re-pointed at an internal address between the check
//! and the connect (DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use url::Url;

/// An allowed-host pattern: `api.example.com`, `*.example.com` (any depth of subdomain), each
/// optionally with `:port`. Without a port, the scheme's default port is the only one allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// Matches any name ending in `.<suffix>` (not the bare suffix itself).
    Subdomains(String),
}

impl HostPattern {
    /// Parses a pattern; rejects schemes, paths, empty labels and wildcards anywhere but the front.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim().to_ascii_lowercase();
        if pattern.contains("://") || pattern.contains('/') {
            return Err(format!("`{pattern}`: a host pattern has no scheme or path (write `api.example.com`)"));
        }
        let (host, port) = match pattern.rsplit_once(':') {
            // An IPv6 literal would need brackets; we do not support IPv6 literals in patterns.
            Some((host, port)) => {
                let port = port.parse::<u16>().map_err(|_| format!("`{pattern}`: invalid port"))?;
                (host.to_owned(), Some(port))
            }
            None => (pattern.clone(), None),
        };
        let (matcher, name) = match host.strip_prefix("*.") {
            Some(suffix) => (HostMatch::Subdomains(suffix.to_owned()), suffix.to_owned()),
            None => (HostMatch::Exact(host.clone()), host.clone()),
        };
        let valid_label =
            |l: &str| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if name.is_empty() || !name.split('.').all(valid_label) {
            return Err(format!("`{pattern}`: not a host name (wildcards only as a leading `*.`)"));
        }
        Ok(Self { host: matcher, port })
    }

    fn matches(&self, host: &str, port: u16, default_port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => port == default_port,
        };
        let host_ok = match &self.host {
            HostMatch::Exact(h) => h == host,
            HostMatch::Subdomains(suffix) => {
                host.len() > suffix.len() + 1 && host.ends_with(suffix.as_str()) && {
                    let dot = host.len() - suffix.len() - 1;
                    host.as_bytes()[dot] == b'.'
                }
            }
        };
        port_ok && host_ok
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            HostMatch::Exact(h) => write!(f, "{h}")?,
            HostMatch::Subdomains(s) => write!(f, "*.{s}")?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// The effective egress policy of one plugin.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    hosts: Vec<HostPattern>,
    /// Any host passes the host check (outbound webhooks go wherever a workspace points them; the
    /// address and scheme checks still apply).
    any_host: bool,
    allow_private: bool,
    allow_http: bool,
}

impl EgressPolicy {
    /// A policy allowing `hosts`, with private addresses and plain HTTP as the operator decided.
    pub fn new(hosts: Vec<HostPattern>, allow_private: bool, allow_http: bool) -> Self {
        Self { hosts, any_host: false, allow_private, allow_http }
    }

    /// A policy for destinations chosen at run time: any host name, public addresses only unless
    /// `allow_private`, https only unless `allow_http`.
    pub fn any_host(allow_private: bool, allow_http: bool) -> Self {
        Self { hosts: Vec::new(), any_host: true, allow_private, allow_http }
    }

    /// A policy that allows nothing (used while validating a plugin: `describe()` must not call out).
    pub fn deny_all() -> Self {
        Self::new(Vec::new(), false, false)
    }

    /// The allowed-host patterns, for display.
    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    /// Whether private, loopback and link-local addresses may be reached.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Checks a URL before anything is resolved or sent; returns the reason for a denial.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        let default_port = match url.scheme() {
            "https" => 443,
            "http" if self.allow_http => 80,
            "http" => return Err("plain http is not allowed; use https".to_owned()),
            other => return Err(format!("scheme `{other}` is not allowed")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL are not allowed".to_owned());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("the URL has no host".to_owned()),
        };
        let port = url.port().unwrap_or(default_port);
        if !self.any_host && !self.hosts.iter().any(|p| p.matches(&host, port, default_port)) {
            return Err(format!("host `{host}:{port}` is not in the plugin's allowed hosts"));
        }
        // IP literals never reach the resolver, so check them here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            self.check_ip(ip)?;
        }
        Ok(())
    }

    /// Checks one resolved address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if !self.allow_private && is_non_public(ip) {
            return Err(format!("address {ip} is private, loopback or link-local, which the operator has not allowed"));
        }
        Ok(())
    }
}

/// Whether an address is anything but a public unicast address: loopback, private (RFC 1918,
/// unique local), link-local (including cloud metadata at 169.254.169.254), CGNAT, unspecified,
/// broadcast, multicast, documentation and benchmarking ranges.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_non_public_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (seg0 == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 can reach private v4
        }
    }
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..=127).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// The error the resolver returns when every address of a name is refused; recognised in the
/// error chain to report a denial rather than a connection failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResolveDenied(pub String);

/// A DNS resolver for reqwest that drops addresses the policy refuses, after resolution.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: Arc<EgressPolicy>,
}

impl PolicyResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check_ip(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refused = Some(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refused.unwrap_or_else(|| format!("`{host}` did not resolve"));
                let err: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(ResolveDenied(format!("`{host}` resolves to {reason}")));
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> EgressPolicy {
        let hosts = hosts.iter().map(|h| HostPattern::parse(h).unwrap()).collect();
        EgressPolicy::new(hosts, false, false)
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn an_exact_host_on_the_default_port_is_allowed() {
        assert_eq!(policy(&["api.hubapi.com"]).check_url(&url("https://api.hubapi.com/crm/v3")), Ok(()));
    }

    #[test]
    fn another_host_is_denied() {
        let err = policy(&["api.hubapi.com"]).check_url(&url("https://evil.example/")).unwrap_err();
        assert!(err.contains("not in the plugin's allowed hosts"), "{err}");
    }

    #[test]
    fn a_wildcard_matches_subdomains_of_any_depth_but_not_the_bare_domain_or_lookalikes() {
        let p = policy(&["*.salesforce.com"]);
        assert!(p.check_url(&url("https://acme.my.salesforce.com/x")).is_ok());
        assert!(p.check_url(&url("https://salesforce.com/")).is_err());
        assert!(p.check_url(&url("https://evilsalesforce.com/")).is_err());
    }

    #[test]
    fn a_non_default_port_needs_an_explicit_pattern() {
        assert!(policy(&["api.hubapi.com"]).check_url(&url("https://api.hubapi.com:8443/")).is_err());
        assert!(policy(&["api.hubapi.com:8443"]).check_url(&url("https://api.hubapi.com:8443/")).is_ok());
    }

    #[test]
    fn plain_http_is_denied_unless_the_operator_allows_it() {
        let hosts = vec![HostPattern::parse("api.hubapi.com:80").unwrap()];
        assert!(EgressPolicy::new(hosts.clone(), false, false).check_url(&url("http://api.hubapi.com/")).is_err());
        assert!(EgressPolicy::new(hosts, false, true).check_url(&url("http://api.hubapi.com/")).is_ok());
    }

    #[test]
    fn loopback_and_metadata_literals_are_denied_even_when_declared() {
        let p = policy(&["127.0.0.1", "169.254.169.254"]);
        assert!(p.check_url(&url("https://127.0.0.1/")).unwrap_err().contains("private"));
        assert!(p.check_url(&url("https://169.254.169.254/latest/meta-data")).is_err());
    }

    #[test]
    fn private_literals_pass_when_the_operator_allows_private_networks() {
        let hosts = vec![HostPattern::parse("127.0.0.1").unwrap()];
        assert!(EgressPolicy::new(hosts, true, false).check_url(&url("https://127.0.0.1/")).is_ok());
    }

    #[test]
    fn credentials_in_urls_are_denied() {
        assert!(policy(&["api.hubapi.com"]).check_url(&url("https://u:p@api.hubapi.com/")).is_err());
    }

    #[test]
    fn non_public_ranges_are_recognised() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip} should be non-public");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["https://x.com", "x.com/path", "a.*.com", "", "x.com:99999"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
