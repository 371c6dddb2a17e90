//! TLS termination with rustls: certificate and key from PEM files, HTTP/2
//! and HTTP/1.1 offered by ALPN.
//!
//! Built once at start; a bad file stops the binary with the config key in
//! the message rather than failing on the first client.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;

use serde::{Deserialize, Serialize};

use crate::config::types::ConfigError;

/// TLS termination with rustls; HTTP/2 and HTTP/1.1 offered by ALPN.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_path: Option<std::path::PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: Option<std::path::PathBuf>,
}

impl TlsConfig {
    /// Both paths, or neither.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.cert_path.is_some() != self.key_path.is_some() {
            return Err(ConfigError::invalid(
                "tls",
                "cert_path and key_path must be set together",
            ));
        }
        Ok(())
    }
}

/// The acceptor for `config`, or `None` when TLS is off.
pub fn acceptor(config: &TlsConfig) -> Result<Option<TlsAcceptor>, ConfigError> {
    let (Some(cert_path), Some(key_path)) = (&config.cert_path, &config.key_path) else {
        return Ok(None);
    };
    let certs = load_certs(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| invalid("tls.key_path", key_path, &e.to_string()))?;
    let mut server = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", cert_path, &e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("tls.key_path", key_path, &e.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| invalid("tls.cert_path", path, &e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("tls.cert_path", path, "no certificate in the file"));
    }
    Ok(certs)
}

fn invalid(key: &str, path: &Path, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: format!("{}: {message}", path.display()),
    }
}
