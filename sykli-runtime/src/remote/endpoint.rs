//! Remote endpoints as Bazel writes them: `grpc://HOST:PORT` (plaintext) and
//! `grpcs://HOST:PORT` (TLS).

use std::fmt;
use std::net::IpAddr;

/// A parsed `grpc://` or `grpcs://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether the connection uses TLS (`grpcs://`).
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why an endpoint could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid remote endpoint \"{text}\": {reason} (expected grpc://HOST:PORT or grpcs://HOST:PORT)"
)]
pub struct EndpointError {
    /// The endpoint as written.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl Endpoint {
    /// Parses `grpc://HOST:PORT` or `grpcs://HOST:PORT` (`[IPV6]:PORT` for IPv6).
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let bad = |reason: &str| EndpointError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (tls, rest) = if let Some(r) = text.strip_prefix("grpcs://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("grpc://") {
            (false, r)
        } else if text.starts_with("http://") || text.starts_with("https://") {
            return Err(bad("use grpc:// for plaintext or grpcs:// for TLS"));
        } else {
            return Err(bad("it has no grpc:// or grpcs:// scheme"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(bad(
                "it has a path; name an instance with --remote-instance instead",
            ));
        }
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, p) = r
                .split_once("]:")
                .ok_or_else(|| bad("an IPv6 address must be written [ADDR]:PORT"))?;
            (h, p)
        } else {
            rest.rsplit_once(':')
                .ok_or_else(|| bad("it has no port (add :PORT)"))?
        };
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("port \"{port}\" is not a number from 1 to 65535")))?;
        if port == 0 {
            return Err(bad("port 0 cannot be connected to"));
        }
        Ok(Endpoint {
            tls,
            host: host.to_owned(),
            port,
        })
    }

    /// Whether the host is this machine (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The URI tonic connects to (`http://` or `https://`).
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "grpcs" } else { "grpc" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bazel_style_endpoints() {
        let e = Endpoint::parse("grpc://127.0.0.1:8980").unwrap();
        assert!(!e.tls && e.is_loopback() && e.port == 8980);
        assert_eq!(e.uri(), "http://127.0.0.1:8980");
        let e = Endpoint::parse("grpcs://cache.example.com:443").unwrap();
        assert!(e.tls && !e.is_loopback());
        assert_eq!(e.to_string(), "grpcs://cache.example.com:443");
        let e = Endpoint::parse("grpc://[::1]:9").unwrap();
        assert!(e.is_loopback() && e.uri() == "http://[::1]:9");
        assert!(Endpoint::parse("grpc://localhost:1").unwrap().is_loopback());
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        for (text, want) in [
            ("127.0.0.1:80", "no grpc:// or grpcs:// scheme"),
            ("http://h:1", "use grpc://"),
            ("grpc://h", "no port"),
            ("grpc://h:x", "port \"x\""),
            ("grpc://:5", "no host"),
            ("grpc://h:5/inst", "--remote-instance"),
        ] {
            let e = Endpoint::parse(text).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(text), "{text}: {e}");
        }
    }
}
