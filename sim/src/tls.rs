//! The optional TLS listener: a private CA and a server certificate for `localhost` and
//! `127.0.0.1`; the CA is written to a PEM file the caller trusts (simple-salesforce, for one,
//! only speaks https).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate and the acceptor serving it.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The certificate, PEM.
    pub cert_pem: String,
    pub(crate) acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsMaterial")
    }
}

/// Generates a private CA and a server certificate it signs (for `localhost` and `127.0.0.1`),
/// and writes the CA certificate (PEM) to `cert_path`: that is the file clients trust.
///
/// Two certificates rather than one self-signed leaf: OpenSSL-based clients will not use a leaf
/// as its own trust anchor, and rustls will not accept a CA certificate as a server certificate.
pub fn self_signed(cert_path: &Path) -> std::io::Result<TlsMaterial> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    fn io(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
        std::io::Error::other(e)
    }
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "crm-sim local CA");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(io)?).map_err(io)?;

    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(io)?;
    leaf_params.distinguished_name.push(DnType::CommonName, "crm-sim");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(io)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(io)?;

    let cert_pem = ca.pem();
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::fs::write(cert_path, &cert_pem)?;
    Ok(TlsMaterial { cert_pem, acceptor: TlsAcceptor::from(Arc::new(config)) })
}
