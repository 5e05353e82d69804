//! HTTPS for the board with rustls: the certificate chain and key read from PEM files.
//! Each connection's handshake runs in its own task, within a time limit
//! ([`crate::serve`]); a failed one drops that connection only.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// The TLS settings from a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or
/// SEC1).
///
/// # Errors
///
/// When a file cannot be read or holds no certificate or key, naming the file.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("board.tls_cert: {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("board.tls_cert: {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "board.tls_cert: {}: no certificate; expected a PEM certificate chain",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "board.tls_key: {}: {e}; expected a PEM private key",
            key.display()
        )
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("board.tls_cert, board.tls_key: {e}"))?;
    Ok(Arc::new(config))
}
