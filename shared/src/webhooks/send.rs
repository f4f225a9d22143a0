//! The delivery HTTP client: 10 s per attempt, no redirects, and a
//! resolver that hands the connector only addresses the URL policy
//! permits, so a name that later resolves inside the network is refused at
//! connection time, not just when the URL was accepted.

use crate::domain::webhook::{check_url, UrlPolicy, DELIVERY_TIMEOUT, RESPONSE_EXCERPT};
use crate::error::Error;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// What one POST came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub excerpt: Option<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

struct PolicyResolver(UrlPolicy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(screen(&host, found, policy)?.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses `host` resolved to, if the policy permits every one of
/// them. Any forbidden address refuses the name: a rebinding name with one
/// public and one private address is not a receiver.
fn screen(
    host: &str,
    found: Vec<SocketAddr>,
    policy: UrlPolicy,
) -> Result<Vec<SocketAddr>, String> {
    if found.is_empty() || !found.iter().all(|a| policy.permits(a.ip())) {
        return Err(format!("{host} resolves to a non-public address"));
    }
    Ok(found)
}

pub struct Sender {
    client: reqwest::Client,
    policy: UrlPolicy,
}

impl Sender {
    pub fn new(policy: UrlPolicy) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver(policy)))
            .user_agent("licensing-webhooks/1")
            .no_proxy()
            .build()
            .map_err(Error::internal)?;
        Ok(Self { client, policy })
    }

    /// POST `body` with its signature. Never fails: every way it can go
    /// wrong is an [`Outcome`] to log.
    pub async fn post(&self, url: &str, body: &str, signature: &str) -> Outcome {
        let started = Instant::now();
        let elapsed = |s: Instant| s.elapsed().as_millis().min(u64::MAX as u128) as u64;
        // IP-literal hosts never reach the resolver: check them here, and
        // anything else about the URL that may have changed.
        if let Err(e) = check_url(url, self.policy) {
            return Outcome {
                error: Some(e.to_string()),
                ..Outcome::default()
            };
        }
        let res = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("x-licensing-signature", signature)
            .body(body.to_string())
            .send()
            .await;
        match res {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                let excerpt: String = text.chars().take(RESPONSE_EXCERPT).collect();
                Outcome {
                    status: Some(status),
                    duration_ms: elapsed(started),
                    error: None,
                    excerpt: (!excerpt.is_empty()).then_some(excerpt),
                }
            }
            Err(e) => Outcome {
                status: None,
                duration_ms: elapsed(started),
                error: Some(describe(&e)),
                excerpt: None,
            },
        }
    }
}

/// A short reason without internals.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    if e.is_timeout() {
        return "timed out after 10 s".into();
    }
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if msg.contains("non-public address") {
            return msg;
        }
        source = s.source();
    }
    if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::tests::INSIDE_V6;

    fn at(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 443)
    }

    #[test]
    fn a_name_resolving_to_any_inside_ipv6_address_is_not_connected_to() {
        let public = at("2606:4700::1111");
        for p in [UrlPolicy::PublicHttps, UrlPolicy::AllowLoopbackHttp] {
            assert_eq!(
                screen("hooks.example.com", vec![public], p),
                Ok(vec![public])
            );
            for inside in INSIDE_V6 {
                let r = screen("hooks.example.com", vec![public, at(inside)], p);
                assert_eq!(
                    r,
                    Err("hooks.example.com resolves to a non-public address".into()),
                    "{inside} under {p:?}"
                );
            }
            assert!(screen("hooks.example.com", vec![], p).is_err());
        }
        let local = at("127.0.0.1");
        assert_eq!(
            screen("localhost", vec![local], UrlPolicy::AllowLoopbackHttp),
            Ok(vec![local])
        );
        assert!(screen("localhost", vec![local], UrlPolicy::PublicHttps).is_err());
    }
}
