//! The control plane's throwaway PKI, made with rcgen: one CA signs the API
//! server's and the webhook's serving certificates and the admin client
//! certificate; plus the service-account token key pair.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The throwaway PKI: one CA signs every certificate.
pub struct Pki {
    /// The CA certificate (PEM file).
    pub ca: PathBuf,
    /// The API server's serving certificate and key (127.0.0.1, localhost).
    pub apiserver: (PathBuf, PathBuf),
    /// The admin client certificate and key (`O=system:masters`: RBAC is bypassed).
    pub admin: (PathBuf, PathBuf),
    /// The webhook's serving certificate and key (127.0.0.1, localhost).
    pub webhook: (PathBuf, PathBuf),
    /// The service-account token signing key and its public key. ECDSA P-256:
    /// the API server and the token controller accept it (rcgen, on ring,
    /// cannot generate RSA keys, and no openssl runs on the test path).
    pub service_account: (PathBuf, PathBuf),
}

impl Pki {
    /// Generates every key and certificate into `dir`.
    pub fn generate(dir: &Path) -> Result<Pki, String> {
        let err = |e: rcgen::Error| format!("PKI: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name = name(&[(DnType::CommonName, "entrypoint-guard test CA")]);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca, ca_key);
        let write = |file: &str, text: &str| -> Result<PathBuf, String> {
            let path = dir.join(file);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        };
        let leaf = |base: &str, names: &[&str], dn: DistinguishedName, usage| -> Result<(PathBuf, PathBuf), String> {
            let key = KeyPair::generate().map_err(err)?;
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).map_err(err)?;
            params.distinguished_name = dn;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).map_err(err)?;
            Ok((
                write(&format!("{base}.crt"), &cert.pem())?,
                write(&format!("{base}.key"), &key.serialize_pem())?,
            ))
        };
        let serving = ["127.0.0.1", "localhost"];
        let sa = KeyPair::generate().map_err(err)?;
        Ok(Pki {
            ca: write("ca.crt", &ca_cert.pem())?,
            apiserver: leaf(
                "apiserver",
                &serving,
                name(&[(DnType::CommonName, "kube-apiserver")]),
                ExtendedKeyUsagePurpose::ServerAuth,
            )?,
            admin: leaf(
                "admin",
                &[],
                name(&[
                    (DnType::OrganizationName, "system:masters"),
                    (DnType::CommonName, "admin"),
                ]),
                ExtendedKeyUsagePurpose::ClientAuth,
            )?,
            webhook: leaf(
                "webhook",
                &serving,
                name(&[(DnType::CommonName, "entrypoint-guard")]),
                ExtendedKeyUsagePurpose::ServerAuth,
            )?,
            service_account: (
                write("sa.key", &sa.serialize_pem())?,
                write("sa.pub", &sa.public_key_pem())?,
            ),
        })
    }

    /// The CA certificate, base64 of its PEM (a `caBundle`).
    pub fn ca_bundle(&self) -> String {
        b64(&std::fs::read(&self.ca).expect("read the CA"))
    }
}

fn name(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (kind, value) in parts {
        dn.push(kind.clone(), *value);
    }
    dn
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
