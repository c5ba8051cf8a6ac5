//! Bearer-token authentication shared by the REAPI client and `sykli worker`.
//!
//! The token comes from `SYKLI_TOKEN` or a `--token-file FILE` (trailing newline trimmed; an
//! empty token is an error). Every call carries gRPC metadata `authorization: Bearer <token>`
//! ([`ClientAuth`], a tonic client interceptor); a server holding a token refuses any call
//! without the right one with `UNAUTHENTICATED` ([`ServerAuth`], a tonic server interceptor,
//! comparing in constant time).
//!
//! ```
//! use sykli_runtime::remote::auth::{ClientAuth, ServerAuth, Token};
//! use tonic::service::Interceptor;
//!
//! let token = Token::new("s3cret").unwrap();
//! assert_eq!(format!("{token:?}"), "Token(<redacted>)");
//! let mut client = ClientAuth::new(Some(token.clone()));
//! let request = client.call(tonic::Request::new(())).unwrap();
//! let mut server = ServerAuth::new(Some(token));
//! assert!(server.call(request).is_ok());
//! let refused = server.call(tonic::Request::new(())).unwrap_err();
//! assert_eq!(refused.code(), tonic::Code::Unauthenticated);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The environment variable holding the token.
pub const TOKEN_ENV: &str = "SYKLI_TOKEN";

/// The gRPC metadata key carrying the token.
pub const AUTHORIZATION: &str = "authorization";

/// Why a token could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token (from the named source) is empty after trimming the trailing newline.
    #[error("the token from {source_name} is empty")]
    Empty {
        /// Where the token came from (`SYKLI_TOKEN` or the file path).
        source_name: String,
    },
    /// The token contains characters that cannot travel in a gRPC header.
    #[error(
        "the token from {source_name} contains characters not allowed in a gRPC header \
         (only visible ASCII is allowed)"
    )]
    Invalid {
        /// Where the token came from.
        source_name: String,
    },
    /// The token file could not be read.
    #[error("failed to read the token file {}", path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `SYKLI_TOKEN` is set but is not valid UTF-8.
    #[error("{TOKEN_ENV} is not valid UTF-8")]
    NotUnicode,
}

/// A bearer token. Its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    value: Arc<str>,
}

impl Token {
    /// A token from a string: one trailing newline (`\n` or `\r\n`) is trimmed; empty or
    /// non-visible-ASCII values are refused.
    pub fn new(value: &str) -> Result<Self, TokenError> {
        Self::parse(value, "the given value")
    }

    fn parse(raw: &str, source_name: &str) -> Result<Self, TokenError> {
        let value = raw
            .strip_suffix('\n')
            .map(|v| v.strip_suffix('\r').unwrap_or(v))
            .unwrap_or(raw);
        if value.is_empty() {
            return Err(TokenError::Empty {
                source_name: source_name.to_owned(),
            });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Invalid {
                source_name: source_name.to_owned(),
            });
        }
        Ok(Self {
            value: Arc::from(value),
        })
    }

    /// The token read from `path` (one trailing newline trimmed).
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let raw = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&raw, &format!("token file {}", path.display()))
    }

    /// The token from `SYKLI_TOKEN`, or `None` when it is not set.
    pub fn from_env() -> Result<Option<Self>, TokenError> {
        match std::env::var(TOKEN_ENV) {
            Ok(v) => Self::parse(&v, TOKEN_ENV).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(TokenError::NotUnicode),
        }
    }

    /// The token as both sides load it: `--token-file FILE` when given, else `SYKLI_TOKEN`,
    /// else none.
    pub fn load(token_file: Option<&Path>) -> Result<Option<Self>, TokenError> {
        match token_file {
            Some(path) => Self::from_file(path).map(Some),
            None => Self::from_env(),
        }
    }

    /// The secret value (to put on the wire; never log it).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether `presented` equals this token, in time independent of where they differ
    /// (both are hashed and the hashes compared with `blake3::Hash`'s constant-time `eq`).
    pub fn matches(&self, presented: &[u8]) -> bool {
        blake3::hash(self.value.as_bytes()) == blake3::hash(presented)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A tonic client interceptor adding `authorization: Bearer <token>` to every call (nothing
/// when it holds no token).
#[derive(Clone, Debug)]
pub struct ClientAuth {
    header: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl ClientAuth {
    /// An interceptor sending `token` (or nothing when `None`).
    pub fn new(token: Option<Token>) -> Self {
        let header = token.and_then(|t| {
            // Token::parse admits visible ASCII only, so this parse cannot fail; a failure
            // would only drop the header and the server would refuse the call.
            let mut v: MetadataValue<tonic::metadata::Ascii> =
                format!("Bearer {}", t.expose()).parse().ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        Self { header }
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            request.metadata_mut().insert(AUTHORIZATION, h.clone());
        }
        Ok(request)
    }
}

/// A server-side check: with a token, a call without `authorization: Bearer <token>` is
/// refused with `UNAUTHENTICATED`; without one, every call passes. Usable as a tonic
/// interceptor, or through [`ServerAuth::check`] from a handler.
#[derive(Clone, Debug)]
pub struct ServerAuth {
    token: Option<Token>,
}

impl ServerAuth {
    /// A check against `token` (`None`: no authentication).
    pub fn new(token: Option<Token>) -> Self {
        Self { token }
    }

    /// Whether a token is required.
    pub fn is_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Checks the metadata of one call.
    pub fn check(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let Some(value) = metadata.get(AUTHORIZATION) else {
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata: this server requires a token \
                 (SYKLI_TOKEN or --token-file)",
            ));
        };
        let bytes = value.as_bytes();
        let presented = bytes
            .strip_prefix(b"Bearer ")
            .or_else(|| bytes.strip_prefix(b"bearer "));
        match presented {
            Some(p) if token.matches(p) => Ok(()),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
            None => Err(Status::unauthenticated(
                "the `authorization` metadata is not of the form `Bearer <token>`",
            )),
        }
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request.metadata())?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> Token {
        Token::new(s).expect("valid token")
    }

    #[test]
    fn debug_never_shows_the_value() {
        let t = token("hunter2-very-secret");
        let shown = format!("{t:?} {:?}", ClientAuth::new(Some(t.clone())));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn trailing_newline_trimmed_once() {
        assert_eq!(token("abc\n").expose(), "abc");
        assert_eq!(token("abc\r\n").expose(), "abc");
        assert!(matches!(
            Token::new("abc\n\n"),
            Err(TokenError::Invalid { .. })
        ));
    }

    #[test]
    fn empty_token_is_an_error_naming_its_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tok");
        std::fs::write(&path, "\n").expect("write");
        let err = Token::from_file(&path).unwrap_err();
        assert!(matches!(err, TokenError::Empty { .. }));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(matches!(Token::new(""), Err(TokenError::Empty { .. })));
    }

    #[test]
    fn token_with_spaces_or_control_chars_is_refused() {
        assert!(matches!(Token::new("a b"), Err(TokenError::Invalid { .. })));
        assert!(matches!(
            Token::new("a\tb"),
            Err(TokenError::Invalid { .. })
        ));
        assert!(matches!(Token::new("é"), Err(TokenError::Invalid { .. })));
    }

    #[test]
    fn token_file_read_and_missing_file_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tok");
        std::fs::write(&path, "from-file\n").expect("write");
        assert_eq!(
            Token::load(Some(&path))
                .expect("load")
                .map(|t| t.expose().to_owned()),
            Some("from-file".to_owned())
        );
        let missing = dir.path().join("nope");
        let err = Token::from_file(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn client_adds_bearer_header_and_server_accepts_it() {
        let t = token("abc123");
        let req = ClientAuth::new(Some(t.clone()))
            .call(Request::new(()))
            .expect("client interceptor");
        assert_eq!(
            req.metadata()
                .get(AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec()),
            Some(b"Bearer abc123".to_vec())
        );
        assert!(ServerAuth::new(Some(t)).call(req).is_ok());
    }

    #[test]
    fn client_without_token_sends_nothing() {
        let req = ClientAuth::new(None)
            .call(Request::new(()))
            .expect("client interceptor");
        assert!(req.metadata().get(AUTHORIZATION).is_none());
    }

    #[test]
    fn server_refuses_missing_wrong_and_malformed_tokens() {
        let mut server = ServerAuth::new(Some(token("right")));
        let missing = server.call(Request::new(())).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);

        let wrong = ClientAuth::new(Some(token("wrong")))
            .call(Request::new(()))
            .expect("client");
        let err = server.call(wrong).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(!err.message().contains("wrong"), "{}", err.message());

        let prefix = ClientAuth::new(Some(token("righ")))
            .call(Request::new(()))
            .expect("client");
        assert_eq!(
            server.call(prefix).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );

        let mut basic = Request::new(());
        basic
            .metadata_mut()
            .insert(AUTHORIZATION, "Basic right".parse().expect("ascii"));
        assert_eq!(
            server.call(basic).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn server_without_token_lets_everything_through() {
        let mut server = ServerAuth::new(None);
        assert!(!server.is_enabled());
        assert!(server.call(Request::new(())).is_ok());
    }
}
