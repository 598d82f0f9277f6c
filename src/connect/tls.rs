//! TLS for `connect` to `https://` servers (remote MCP servers are https almost always): rustls
//! with the Mozilla roots compiled in (no dependency on the machine's trust store layout), plus
//! an operator's CA file and an optional client certificate from `[[servers]]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// The TLS settings of one `[[servers]]` entry (all optional).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// PEM bundle of extra CAs (a private CA, a corporate proxy's).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and its private key, for servers that require mTLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let list: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if list.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(list)
}

/// The client configuration for these settings; errors name the file and what is wrong.
pub fn client_config(files: &TlsFiles) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &files.ca_file {
        for cert in certs(ca, "tls_ca_file")? {
            roots
                .add(cert)
                .map_err(|e| format!("tls_ca_file {}: {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    match (&files.client_cert, &files.client_key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "tls_client_cert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("tls_client_key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("tls_client_cert: {e}"))
        }
        _ => Err("tls_client_cert and tls_client_key go together: set both or neither".into()),
    }
}
