//! Which registries and addresses the resolver may connect to.
//!
//! The webhook connects to hosts named by whoever creates a Pod, so a Pod
//! naming `169.254.169.254/x:1` must not make it fetch the cloud metadata
//! service. Host names are checked *after* DNS resolution (a public name can
//! point at a private address), and the guarded proxy connects only to the
//! addresses checked here, so a second DNS answer cannot slip past.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::RegistryConfig;

/// Why a registry or address may not be contacted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The registry is not matched by `registry.allow`.
    #[error("registry {0} is not in registry.allow")]
    NotAllowed(String),
    /// The registry is matched by `registry.deny`.
    #[error("registry {0} is in registry.deny")]
    Denied(String),
    /// Every address the host resolves to is refused.
    #[error(
        "{authority} resolves to {address}, a {kind} address; refused (list {authority} in registry.allowPrivate to allow it)"
    )]
    RefusedAddress {
        /// `host:port` as asked for.
        authority: String,
        /// The first refused address.
        address: IpAddr,
        /// Loopback, link-local, ...
        kind: &'static str,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {authority}: {reason}")]
    Dns {
        /// `host:port` as asked for.
        authority: String,
        /// The resolver's error.
        reason: String,
    },
}

/// The connection policy derived from the `registry` configuration.
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    allow: Option<GlobSet>,
    deny: GlobSet,
    allow_private: HashSet<String>,
    insecure: HashSet<String>,
}

impl AccessPolicy {
    /// Builds the policy; the globs were validated when the configuration was read.
    pub fn from_config(config: &RegistryConfig) -> Result<Self, globset::Error> {
        let set = |patterns: &[crate::config::Pattern]| -> Result<GlobSet, globset::Error> {
            let mut b = GlobSetBuilder::new();
            for p in patterns {
                b.add(Glob::new(&p.0)?);
            }
            b.build()
        };
        Ok(AccessPolicy {
            allow: if config.allow.is_empty() {
                None
            } else {
                Some(set(&config.allow)?)
            },
            deny: set(&config.deny)?,
            allow_private: config.allow_private.iter().map(|s| s.to_ascii_lowercase()).collect(),
            insecure: config.insecure.iter().map(|s| s.to_ascii_lowercase()).collect(),
        })
    }

    /// Checks `registry` (`host[:port]` as in the image reference) against the allow and deny lists.
    pub fn check_registry(&self, registry: &str) -> Result<(), GuardError> {
        if self.deny.is_match(registry) {
            return Err(GuardError::Denied(registry.to_string()));
        }
        match &self.allow {
            Some(allow) if !allow.is_match(registry) => Err(GuardError::NotAllowed(registry.to_string())),
            _ => Ok(()),
        }
    }

    /// Whether `registry` is reached over plain HTTP (listed in `registry.insecure`).
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.contains(&registry.to_ascii_lowercase())
    }

    /// Whether `host:port` (or bare `host`) is listed in `registry.allowPrivate`.
    fn private_allowed(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.allow_private.contains(&format!("{host}:{port}")) || self.allow_private.contains(&host)
    }

    /// Resolves `host` and returns the addresses that may be connected to.
    ///
    /// Refused addresses are dropped; if none is left, the error names the
    /// first refused one. `host` may be a bracketed IPv6 literal.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let authority = authority(host, port);
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| GuardError::Dns {
                    authority: authority.clone(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(GuardError::Dns {
                authority,
                reason: "no addresses".into(),
            });
        }
        if self.private_allowed(bare, port) {
            return Ok(addrs);
        }
        let mut first_refused = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match refused_kind(a.ip()) {
                Some(kind) => {
                    first_refused.get_or_insert((a.ip(), kind));
                    false
                }
                None => true,
            })
            .collect();
        match (allowed.is_empty(), first_refused) {
            (true, Some((address, kind))) => Err(GuardError::RefusedAddress {
                authority,
                address,
                kind,
            }),
            _ => Ok(allowed),
        }
    }
}

/// `host:port`, bracketing a bare IPv6 literal.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits a registry name (`host`, `host:port`, `[v6]:port`) into host and
/// port, with `default_port` when none is written.
pub(crate) fn split_host_port(registry: &str, default_port: u16) -> (String, u16) {
    // `[::1]` alone has colons but no port after the bracket.
    if let Some((host, port)) = registry.rsplit_once(':')
        && !host.is_empty()
        && (!host.contains(':') || host.ends_with(']'))
        && let Ok(port) = port.parse()
    {
        return (host.to_string(), port);
    }
    (registry.to_string(), default_port)
}

/// The kind of address refused by default, or `None` when it may be contacted.
///
/// Private (RFC 1918) addresses are allowed: in-cluster registries live there.
pub(crate) fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return Some("loopback");
            } else if v6.is_unspecified() {
                return Some("unspecified");
            }
            // The IPv4-mapped form (::ffff:a.b.c.d) reaches the IPv4 address;
            // the deprecated IPv4-compatible one (::a.b.c.d) names it too, so
            // both are judged as that address.
            if let Some(v4) = v6.to_ipv4() {
                return refused_v4(v4);
            }
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6 == AWS_METADATA_V6 {
                Some("cloud metadata")
            } else {
                None
            }
        }
    }
}

/// The AWS instance metadata service's IPv6 address (IPv4: 169.254.169.254).
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.octets()[0] == 0 {
        // 0.0.0.0/8: Linux connects 0.0.0.0 to the local host.
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;

    #[test]
    fn classifies_addresses() {
        let refused = [
            "127.0.0.1",
            "127.8.9.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::169.254.169.254",
            "fd00:ec2::254",
        ];
        for a in refused {
            assert!(refused_kind(a.parse().unwrap()).is_some(), "{a} should be refused");
        }
        for a in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert_eq!(refused_kind(a.parse().unwrap()), None, "{a} should be allowed");
        }
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:5000", 443), ("127.0.0.1".into(), 5000));
        assert_eq!(split_host_port("ghcr.io", 443), ("ghcr.io".into(), 443));
        assert_eq!(split_host_port("[::1]:5000", 443), ("[::1]".into(), 5000));
        assert_eq!(split_host_port("[::1]", 80), ("[::1]".into(), 80));
    }

    #[tokio::test]
    async fn refuses_loopback_unless_listed() {
        let mut config = RegistryConfig::default();
        let policy = AccessPolicy::from_config(&config).unwrap();
        let err = policy.resolve("127.0.0.1", 5000).await.unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = policy.resolve("localhost", 5000).await.unwrap_err();
        assert!(matches!(err, GuardError::RefusedAddress { .. }), "{err}");
        config.allow_private = vec!["127.0.0.1:5000".into()];
        let policy = AccessPolicy::from_config(&config).unwrap();
        assert_eq!(policy.resolve("127.0.0.1", 5000).await.unwrap().len(), 1);
        assert!(policy.resolve("127.0.0.1", 5001).await.is_err());
    }

    #[test]
    fn allow_and_deny_lists() {
        let config = RegistryConfig {
            allow: vec![Pattern("*.example.com".into()), Pattern("ghcr.io".into())],
            deny: vec![Pattern("bad.example.com".into())],
            ..Default::default()
        };
        let policy = AccessPolicy::from_config(&config).unwrap();
        assert!(policy.check_registry("ghcr.io").is_ok());
        assert!(policy.check_registry("r.example.com").is_ok());
        assert_eq!(
            policy.check_registry("bad.example.com"),
            Err(GuardError::Denied("bad.example.com".into()))
        );
        assert!(matches!(
            policy.check_registry("docker.io"),
            Err(GuardError::NotAllowed(_))
        ));
    }
}
