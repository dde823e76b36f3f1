//! TLS for downstream HTTP: the crypto provider every HTTP client of the process uses.

/// Installs rustls' `ring` crypto provider as the process default (with the `tls` feature; a no-op
/// without it, or when a provider is already installed).
///
/// [`RuntimeBuilder::build`](crate::RuntimeBuilder::build) calls it. The HTTP client is built without a default provider to keep
/// builds lean, so an application that builds its own `reqwest` clients before its [`Runtime`](crate::Runtime)
/// calls this first.
///
/// ```
/// orchestrate_runtime::install_tls_provider();
/// // Then build the application's own HTTP clients (reqwest, hyper-rustls, ..).
/// orchestrate_runtime::install_tls_provider(); // a second call changes nothing
/// ```
pub fn install_tls_provider() {
    #[cfg(feature = "tls")]
    {
        // Installing twice is harmless; the first provider wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
