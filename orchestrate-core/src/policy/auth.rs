//! Authentication: which endpoints require a verified bearer token (`auth = jwt` on an `#[api]`
//! module or an `#[endpoint]`, `auth = none` to opt one out), how tokens are verified (the
//! `[auth]` section of the configuration file), and the token the operations endpoints require
//! (`[ops]`).
//!
//! ```toml
//! [auth]
//! issuer = "https://auth.example.com"      # `iss` must be this (or one of a list)
//! audience = "checkout"                     # `aud` must contain this (or one of a list)
//! leeway = "30s"                            # allowed clock skew for `exp` and `nbf`
//! jwks_url = "https://auth.example.com/.well-known/jwks.json"
//! jwks_refresh = "5m"                       # fetched at start-up, then this often
//! jwks_refetch = "30s"                      # an unknown `kid` fetches again at most this often
//!
//! [[auth.keys]]                             # static keys, beside or instead of the JWKS
//! kid = "2026-01"                           # optional: without one the key serves tokens without `kid`
//! alg = "RS256"                             # RS256, ES256, EdDSA or HS256
//! pem = "-----BEGIN PUBLIC KEY-----\n.."    # a public key; `secret = ".."` for HS256
//!
//! [ops]
//! token = "a long random string"            # `/metrics`, `/health`, `/_orchestrate`: `Authorization: Bearer ..`
//! ```
//!
//! ```
//! use orchestrate_core::policy::{Auth, Entry, Reader, Syntax, Value, auth};
//! let mut reader = Reader::new(Syntax::Dsl);
//! assert_eq!(auth::read_mode(&mut reader, &Value::Word("jwt".into(), 0)), Some(Auth::Jwt));
//! assert_eq!(auth::read_mode(&mut reader, &Value::Word("jtw".into(), 1)), None);
//! assert_eq!(reader.problems()[0].message, "`auth` is `jwt` or `none`; did you mean `jwt`?");
//! ```

use super::value::{Example, Reader, Value};
use std::time::Duration;

/// Whether an endpoint requires a verified bearer token.
///
/// ```
/// use orchestrate_core::policy::Auth;
/// assert_eq!(Auth::default(), Auth::None);
/// assert_eq!(Auth::Jwt.as_str(), "jwt");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "lowercase"))]
pub enum Auth {
    /// Open: no token is read.
    #[default]
    None,
    /// A JWT in `Authorization: Bearer ..`, verified before anything else is read.
    Jwt,
}

impl Auth {
    /// The word written in the DSL.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Jwt => "jwt",
        }
    }
}

/// The words `auth = ..` takes.
pub const MODES: &[&str] = &["jwt", "none"];

/// Reads `auth = jwt` / `auth = none`.
pub fn read_mode<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<Auth> {
    let word = match value {
        Value::Word(word, _) | Value::Str(word, _) => word.as_str(),
        other => {
            let message = format!("`auth` is `jwt` or `none`; found {}", other.type_name());
            reader.fail(other.at(), "auth", message);
            return None;
        }
    };
    match word {
        "jwt" => Some(Auth::Jwt),
        "none" => Some(Auth::None),
        other => {
            let near = crate::suggest::did_you_mean(other, MODES.iter().copied());
            reader.fail(value.at(), "auth", format!("`auth` is `jwt` or `none`{near}"));
            None
        }
    }
}

/// A signature algorithm a key is pinned to: a token must name exactly this `alg`.
///
/// ```
/// use orchestrate_core::policy::auth::Algorithm;
/// assert_eq!(Algorithm::parse("ES256"), Some(Algorithm::Es256));
/// assert_eq!(Algorithm::parse("none"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
    /// HMAC with SHA-256 (a shared secret).
    Hs256,
}

impl Algorithm {
    /// The `alg` names accepted.
    pub const NAMES: &[&str] = &["RS256", "ES256", "EdDSA", "HS256"];

    /// The algorithm of a JOSE `alg` name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "ES256" => Self::Es256,
            "EdDSA" => Self::EdDsa,
            "HS256" => Self::Hs256,
            _ => return None,
        })
    }

    /// The JOSE `alg` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
        }
    }
}

/// A key written in the configuration (or given to the runtime builder).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StaticKey {
    /// The `kid` tokens name it by; `None` for tokens without a `kid`.
    pub kid: Option<String>,
    /// The only algorithm the key verifies.
    pub alg: Algorithm,
    /// A PEM public key (RS256, ES256, EdDSA) or the shared secret (HS256).
    pub material: String,
}

impl StaticKey {
    /// A public key in PEM (`-----BEGIN PUBLIC KEY-----`) for `alg`.
    ///
    /// ```
    /// use orchestrate_core::policy::auth::{Algorithm, StaticKey};
    /// let key = StaticKey::pem(Algorithm::Rs256, "-----BEGIN PUBLIC KEY-----\n..").with_kid("k1");
    /// assert_eq!(key.kid.as_deref(), Some("k1"));
    /// ```
    pub fn pem(alg: Algorithm, pem: impl Into<String>) -> Self {
        Self { kid: None, alg, material: pem.into() }
    }

    /// An HS256 shared secret.
    ///
    /// ```
    /// use orchestrate_core::policy::auth::{Algorithm, StaticKey};
    /// assert_eq!(StaticKey::secret("s3cret").alg, Algorithm::Hs256);
    /// ```
    pub fn secret(secret: impl Into<String>) -> Self {
        Self { kid: None, alg: Algorithm::Hs256, material: secret.into() }
    }

    /// The same key, named `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }
}

/// Secrets are not printed.
impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// Default `leeway`: clocks of issuers and instances disagree by a few seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Largest `leeway`: beyond it an expired token stays good for too long.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default `jwks_refresh`.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
/// Default `jwks_refetch`: the least time between two fetches caused by unknown `kid`s.
pub const DEFAULT_JWKS_REFETCH: Duration = Duration::from_secs(30);

/// How bearer tokens are verified.
///
/// ```
/// use orchestrate_core::policy::auth::{AuthSettings, StaticKey};
/// let settings = AuthSettings::default()
///     .with_issuer("https://auth.example.com")
///     .with_audience("checkout")
///     .with_key(StaticKey::secret("dev-secret"));
/// assert_eq!(settings.issuer, ["https://auth.example.com"]);
/// assert!(settings.has_keys());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthSettings {
    /// Accepted `iss` values; empty: `iss` is not checked.
    pub issuer: Vec<String>,
    /// Accepted `aud` values (the token's `aud` must contain one); empty: `aud` is not checked.
    pub audience: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Where the issuer publishes its keys (a JWK Set).
    pub jwks_url: Option<String>,
    /// How often the JWK Set is fetched again.
    pub jwks_refresh: Duration,
    /// The least time between two fetches caused by a token with an unknown `kid`.
    pub jwks_refetch: Duration,
    /// Keys known without fetching.
    pub keys: Vec<StaticKey>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: Vec::new(),
            audience: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            jwks_url: None,
            jwks_refresh: DEFAULT_JWKS_REFRESH,
            jwks_refetch: DEFAULT_JWKS_REFETCH,
            keys: Vec::new(),
        }
    }
}

impl AuthSettings {
    /// Adds an accepted issuer.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer.push(issuer.into());
        self
    }

    /// Adds an accepted audience.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// Adds a static key.
    pub fn with_key(mut self, key: StaticKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Sets the JWK Set URL.
    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Sets how often the JWK Set is fetched, and the least time between fetches caused by
    /// unknown `kid`s.
    pub fn with_jwks_timing(mut self, refresh: Duration, refetch: Duration) -> Self {
        self.jwks_refresh = refresh;
        self.jwks_refetch = refetch;
        self
    }

    /// Sets the clock skew allowed on `exp` and `nbf`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Whether any key can be had: static keys or a JWK Set URL.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty() || self.jwks_url.is_some()
    }
}

/// The name of the authentication section of the configuration file.
pub const SECTION: &str = "auth";
/// The keys of `[auth]`.
pub const KEYS: &[&str] = &["issuer", "audience", "leeway", "jwks_url", "jwks_refresh", "jwks_refetch", "keys"];
/// The keys of one `[[auth.keys]]` entry.
pub const KEY_KEYS: &[&str] = &["kid", "alg", "pem", "secret"];

const EXAMPLE: Example = Example {
    dsl: "[auth]\nissuer = \"https://auth.example.com\"\njwks_url = \"https://auth.example.com/jwks.json\"",
    toml: "[auth]\nissuer = \"https://auth.example.com\"\njwks_url = \"https://auth.example.com/jwks.json\"",
};
const KEY_EXAMPLE: Example = Example {
    dsl: "{ kid = \"k1\", alg = \"RS256\", pem = \"-----BEGIN PUBLIC KEY-----..\" }",
    toml: "{ kid = \"k1\", alg = \"RS256\", pem = \"-----BEGIN PUBLIC KEY-----..\" }",
};

/// Reads an `[auth]` table, merged into `declared` (what the runtime builder set): lists and
/// scalars replace, `keys` are added.
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, auth};
/// let key = Value::Table(vec![Entry::new("alg", 1, Value::Str("none".into(), 2))], 0);
/// let table = Value::Table(vec![Entry::new("keys", 3, Value::List(vec![key], 4))], 5);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert!(auth::read(&mut reader, &table, None).is_none());
/// assert_eq!(
///     reader.problems()[0].message,
///     "`alg` is one of RS256, ES256, EdDSA, HS256 (a key verifies exactly one algorithm; `none` is never accepted)"
/// );
/// ```
pub fn read<P: Clone>(
    reader: &mut Reader<P>,
    value: &Value<P>,
    declared: Option<&AuthSettings>,
) -> Option<AuthSettings> {
    let entries = reader.table(value, SECTION, &EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(SECTION, entries, KEYS);
    let mut settings = declared.cloned().unwrap_or_default();
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "issuer" | "audience" => {
                let key = if entry.key == "issuer" { "auth.issuer" } else { "auth.audience" };
                let list = match v {
                    Value::List(items, _) => {
                        items.iter().filter_map(|item| reader.string(item, key, "\"..\"").map(str::to_owned)).collect()
                    }
                    other => reader.string(other, key, "\"..\"").map(|s| vec![s.to_owned()]).unwrap_or_default(),
                };
                if entry.key == "issuer" {
                    settings.issuer = list;
                } else {
                    settings.audience = list;
                }
            }
            "leeway" => {
                if let Some(d) = reader.duration(v, "auth.leeway") {
                    if d > MAX_LEEWAY {
                        reader.fail(v.at(), "auth.leeway", "`leeway` is at most \"5m\": it keeps expired tokens good");
                    } else {
                        settings.leeway = d;
                    }
                }
            }
            "jwks_url" => {
                if let Some(url) = reader.string(v, "auth.jwks_url", "\"https://auth.example.com/jwks.json\"") {
                    if url.starts_with("https://") || url.starts_with("http://") {
                        settings.jwks_url = Some(url.to_owned());
                    } else {
                        reader.fail(
                            v.at(),
                            "auth.jwks_url",
                            format!("`{url}` must start with `https://` (or `http://`)"),
                        );
                    }
                }
            }
            "jwks_refresh" | "jwks_refetch" => {
                let key = if entry.key == "jwks_refresh" { "auth.jwks_refresh" } else { "auth.jwks_refetch" };
                if let Some(d) = reader.duration(v, key) {
                    if d < Duration::from_secs(1) {
                        reader.fail(v.at(), key, format!("`{}` must be at least \"1s\"", entry.key));
                    } else if entry.key == "jwks_refresh" {
                        settings.jwks_refresh = d;
                    } else {
                        settings.jwks_refetch = d;
                    }
                }
            }
            "keys" => {
                let Some(items) = reader.list(v, "auth.keys", &KEY_EXAMPLE) else { continue };
                for item in items {
                    if let Some(key) = read_key(reader, item) {
                        settings.keys.push(key);
                    }
                }
            }
            _ => {}
        }
    }
    (reader.seen() == before).then_some(settings)
}

fn read_key<P: Clone>(reader: &mut Reader<P>, value: &Value<P>) -> Option<StaticKey> {
    let entries = reader.table(value, "auth.keys", &KEY_EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys("auth.keys", entries, KEY_KEYS);
    reader.require(value.at(), "auth.keys", &keys, &["alg"], &KEY_EXAMPLE);
    let (mut kid, mut alg, mut pem, mut secret) = (None, None, None, None);
    for entry in &keys.entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "kid" => kid = reader.string(v, "auth.keys.kid", "\"k1\"").map(str::to_owned),
            "alg" => {
                let name = reader.string(v, "auth.keys.alg", "\"RS256\"")?;
                match Algorithm::parse(name) {
                    Some(a) => alg = Some(a),
                    None => reader.fail(
                        v.at(),
                        "auth.keys.alg",
                        format!(
                            "`alg` is one of {} (a key verifies exactly one algorithm; `none` is never accepted)",
                            Algorithm::NAMES.join(", ")
                        ),
                    ),
                }
            }
            "pem" => pem = reader.string(v, "auth.keys.pem", "\"-----BEGIN PUBLIC KEY-----..\"").map(str::to_owned),
            "secret" => secret = reader.string(v, "auth.keys.secret", "\"..\"").map(str::to_owned),
            _ => {}
        }
    }
    let alg = alg?;
    let material = match (alg, pem, secret) {
        (Algorithm::Hs256, None, Some(secret)) if secret.len() >= 32 => secret,
        (Algorithm::Hs256, None, Some(_)) => {
            reader.fail(value.at(), "auth.keys.secret", "an HS256 `secret` needs at least 32 bytes");
            return None;
        }
        (Algorithm::Hs256, _, _) => {
            reader.fail(value.at(), "auth.keys", "an HS256 key is a `secret = \"..\"`, not a `pem`");
            return None;
        }
        (_, Some(pem), None) => pem,
        (other, _, _) => {
            let message =
                format!("an {} key is a public key: `pem = \"-----BEGIN PUBLIC KEY-----..\"`", other.as_str());
            reader.fail(value.at(), "auth.keys", message);
            return None;
        }
    };
    (reader.seen() == before).then_some(StaticKey { kid, alg, material })
}

/// The name of the operations section of the configuration file.
pub const OPS_SECTION: &str = "ops";
/// The keys of `[ops]`.
pub const OPS_KEYS: &[&str] = &["token"];
/// Shortest `[ops] token`, in bytes: it is the only thing between the internet and `/_orchestrate`.
pub const MIN_OPS_TOKEN: usize = 16;

const OPS_EXAMPLE: Example =
    Example { dsl: "[ops]\ntoken = \"a long random string\"", toml: "[ops]\ntoken = \"a long random string\"" };

/// Reads an `[ops]` table: the bearer token the operations endpoints require (`None` when the
/// table does not set one, keeping `declared`).
///
/// ```
/// use orchestrate_core::policy::{Entry, Reader, Syntax, Value, auth};
/// let table = Value::Table(vec![Entry::new("token", 1, Value::Str("short".into(), 2))], 0);
/// let mut reader = Reader::new(Syntax::Toml);
/// assert!(auth::read_ops(&mut reader, &table, None).is_none());
/// assert_eq!(reader.problems()[0].message, "`token` needs at least 16 characters: it guards the operations endpoints");
/// ```
pub fn read_ops<P: Clone>(reader: &mut Reader<P>, value: &Value<P>, declared: Option<&str>) -> Option<Option<String>> {
    let entries = reader.table(value, OPS_SECTION, &OPS_EXAMPLE)?;
    let before = reader.seen();
    let keys = reader.keys(OPS_SECTION, entries, OPS_KEYS);
    let mut token = declared.map(str::to_owned);
    for entry in &keys.entries {
        if let Some(t) = reader.string(&entry.value, "ops.token", "\"a long random string\"") {
            if t.len() < MIN_OPS_TOKEN {
                let message =
                    format!("`token` needs at least {MIN_OPS_TOKEN} characters: it guards the operations endpoints");
                reader.fail(entry.value.at(), "ops.token", message);
            } else {
                token = Some(t.to_owned());
            }
        }
    }
    (reader.seen() == before).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Entry, Syntax};

    type V = Value<u32>;

    #[test]
    fn an_auth_table_reads_every_key() {
        let key = V::Table(
            vec![
                Entry::new("kid", 1, V::Str("k1".into(), 2)),
                Entry::new("alg", 3, V::Str("HS256".into(), 4)),
                Entry::new("secret", 5, V::Str("0123456789abcdef0123456789abcdef".into(), 6)),
            ],
            7,
        );
        let table = V::Table(
            vec![
                Entry::new("issuer", 8, V::Str("https://auth".into(), 9)),
                Entry::new("audience", 10, V::List(vec![V::Str("a".into(), 11), V::Str("b".into(), 12)], 13)),
                Entry::new("leeway", 14, V::Str("5s".into(), 15)),
                Entry::new("keys", 16, V::List(vec![key], 17)),
            ],
            0,
        );
        let mut reader = Reader::new(Syntax::Toml);
        let settings = read(&mut reader, &table, None).unwrap();
        assert_eq!(settings.issuer, ["https://auth"]);
        assert_eq!(settings.audience, ["a", "b"]);
        assert_eq!(settings.leeway, Duration::from_secs(5));
        assert_eq!(settings.keys[0].kid.as_deref(), Some("k1"));
        assert_eq!(settings.keys[0].alg, Algorithm::Hs256);
    }

    #[test]
    fn a_key_must_fit_its_algorithm() {
        let key = |entries: Vec<Entry<u32>>| {
            let table = V::Table(vec![Entry::new("keys", 1, V::List(vec![V::Table(entries, 2)], 3))], 0);
            let mut reader = Reader::new(Syntax::Toml);
            assert!(read(&mut reader, &table, None).is_none());
            reader.into_problems().remove(0).message
        };
        let rs_secret =
            key(vec![Entry::new("alg", 4, V::Str("RS256".into(), 5)), Entry::new("secret", 6, V::Str("x".into(), 7))]);
        assert_eq!(rs_secret, "an RS256 key is a public key: `pem = \"-----BEGIN PUBLIC KEY-----..\"`");
        let short = key(vec![
            Entry::new("alg", 4, V::Str("HS256".into(), 5)),
            Entry::new("secret", 6, V::Str("short".into(), 7)),
        ]);
        assert_eq!(short, "an HS256 `secret` needs at least 32 bytes");
        let no_alg = key(vec![Entry::new("pem", 4, V::Str("..".into(), 5))]);
        assert!(no_alg.starts_with("`keys` needs `alg`"), "{no_alg}");
    }

    #[test]
    fn the_mode_is_a_word() {
        let mut reader = Reader::new(Syntax::Dsl);
        assert_eq!(read_mode(&mut reader, &V::Word("none".into(), 0)), Some(Auth::None));
        assert_eq!(read_mode(&mut reader, &V::Number(1, 1)), None);
        assert_eq!(read_mode(&mut reader, &V::Word("oauth".into(), 2)), None);
        let messages: Vec<&str> = reader.problems().iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages, ["`auth` is `jwt` or `none`; found a number", "`auth` is `jwt` or `none`"]);
    }
}
