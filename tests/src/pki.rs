//! A throwaway PKI for TLS tests: a CA, a server certificate for `127.0.0.1`/`localhost` and a client
//! certificate, written as PEM files (what cert-manager's self-signed issuer gives K8up's e2e tests).

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

use crate::servers::TlsFiles;

/// Why the PKI could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to generate a certificate")]
    Generate(#[from] rcgen::Error),
    #[error("failed to write {0}")]
    Write(String, #[source] std::io::Error),
}

/// Writes `ca.crt`, `server.crt`, `server.key`, `tls.crt` and `tls.key` (the client's) into `dir`.
pub fn write_pki(dir: &Path) -> Result<TlsFiles, PkiError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, "k8up-test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_string()])?;
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    server
        .distinguished_name
        .push(DnType::CommonName, "k8up-test-server");
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(DnType::CommonName, "k8up-test-client");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer)?;

    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).map_err(|e| PkiError::Write(path.display().to_string(), e))?;
        Ok::<_, PkiError>(path)
    };
    Ok(TlsFiles {
        ca: write("ca.crt", ca_cert.pem())?,
        server_cert: write("server.crt", server_cert.pem())?,
        server_key: write("server.key", server_key.serialize_pem())?,
        client_cert: write("tls.crt", client_cert.pem())?,
        client_key: write("tls.key", client_key.serialize_pem())?,
    })
}
