//! DNS TXT lookups for the domain proof of customer organizations, through
//! the resolver `LICENSING_DNS_RESOLVER=host:port` names (UDP and TCP), or
//! the system's when it is unset. Answers are not cached: a record just
//! published is seen by the next verify.

use crate::error::Error;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::Duration;

pub struct TxtResolver {
    resolver: TokioResolver,
}

impl TxtResolver {
    /// A resolver asking `server` (UDP, then TCP), or the system's resolver.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, Error> {
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| Error::internal(format!("the system resolver: {e}")))?,
        };
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        let resolver = builder
            .build()
            .map_err(|e| Error::internal(format!("DNS resolver: {e}")))?;
        Ok(Self { resolver })
    }

    /// The TXT strings at `name` (each record's strings joined, as RFC 7208
    /// reads them). None at all (NXDOMAIN, no TXT) is an empty list; a
    /// resolver that cannot answer is 503.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, Error> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => Some(
                        t.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => {
                tracing::warn!(error = %e, name = %name, "DNS lookup failed");
                Err(Error::Unavailable(
                    "the DNS lookup failed; try again in a minute".into(),
                ))
            }
        }
    }
}
