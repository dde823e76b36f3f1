//! Verification keys, each pinned to one algorithm: from the configuration's static keys and
//! from a JWK Set.

use super::{Algorithm, StaticKey};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};

/// A key, the `kid` tokens name it by, and the one algorithm it verifies.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) kid: Option<String>,
    pub(super) alg: jsonwebtoken::Algorithm,
    pub(super) key: DecodingKey,
}

/// Key material is not printed.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl Key {
    /// A configured key: a PEM public key, or an HS256 secret.
    pub(super) fn from_static(key: &StaticKey) -> Result<Self, String> {
        let pem = key.material.as_bytes();
        let parsed = match key.alg {
            Algorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::Es256 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDsa => DecodingKey::from_ed_pem(pem),
            Algorithm::Hs256 => DecodingKey::from_secret(pem),
        };
        let name = key.kid.as_deref().map_or_else(|| "without `kid`".to_owned(), |kid| format!("`{kid}`"));
        let parsed = parsed.map_err(|e| format!("the {} key {name} does not parse: {e}", key.alg.as_str()))?;
        Ok(Self { kid: key.kid.clone(), alg: pinned(key.alg), key: parsed })
    }

    /// A key of a JWK Set, when it is a public signing key of an accepted algorithm with a
    /// `kid` (symmetric keys in a published set are ignored: a published secret is no secret).
    pub(super) fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let kid = jwk.common.key_id.clone()?;
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let inferred = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::Rs256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::Es256,
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDsa,
            _ => return None,
        };
        let alg = match jwk.common.key_algorithm {
            None => inferred,
            Some(KeyAlgorithm::RS256) if inferred == Algorithm::Rs256 => inferred,
            Some(KeyAlgorithm::ES256) if inferred == Algorithm::Es256 => inferred,
            Some(KeyAlgorithm::EdDSA) if inferred == Algorithm::EdDsa => inferred,
            Some(_) => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self { kid: Some(kid), alg: pinned(alg), key })
    }
}

fn pinned(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
    }
}
