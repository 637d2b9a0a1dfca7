//! The TLS client configuration: which roots we trust, or (for the PBX on loopback only, when
//! the admin says so) no verification of the certificate's issuer at all.
//!
//! minreq hard-codes its rustls configuration (webpki roots in a static), so it can neither take
//! the extra roots of `exchange.ca_file` nor accept the PBX's self-signed certificate with
//! `starface.insecure_tls`. That is why `http` speaks HTTP/1.1 itself over rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where Linux distributions keep their bundle of trusted roots (as openssl looks for them),
/// after `SSL_CERT_FILE`. The STARFACE appliance (CentOS based) has the second.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the PEM certificates of a file into `store`; returns how many were added.
fn add_pem_file(store: &mut RootCertStore, path: &Path) -> Result<usize, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert =
            cert.map_err(|e| format!("{} is not a PEM certificate file: {e:?}", path.display()))?;
        if store.add(cert).is_ok() {
            added += 1;
        }
    }
    Ok(added)
}

/// The system's trusted roots: the first bundle that exists.
fn system_roots(store: &mut RootCertStore) -> Option<PathBuf> {
    let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let mut candidates = env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
    candidates.find(|path| path.is_file() && add_pem_file(store, path).is_ok_and(|n| n > 0))
}

/// A verifying configuration: system roots plus the roots in `ca_file`.
pub fn verifying_config(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let system = system_roots(&mut roots);
    if let Some(path) = ca_file {
        let n = add_pem_file(&mut roots, path)?;
        if n == 0 {
            return Err(format!(
                "{} holds no usable PEM certificate",
                path.display()
            ));
        }
    } else if system.is_none() {
        return Err(format!(
            "no trusted root certificates found (looked in SSL_CERT_FILE and {}); set exchange.ca_file",
            SYSTEM_BUNDLES.join(", ")
        ));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A configuration that accepts any certificate (but still checks that the server holds the key
/// of the certificate it shows). Only for `starface.insecure_tls`.
pub fn insecure_config() -> Result<ClientConfig, String> {
    let provider = provider();
    let verifier = AnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
