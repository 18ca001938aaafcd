//! `serve --self-signed DIR`: a throwaway CA and a serving certificate for
//! `localhost`/`127.0.0.1`/`::1`, for trying the webhook on one machine.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The files written by [`write()`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfSigned {
    /// The CA certificate clients should trust (`ca.crt`).
    pub ca: PathBuf,
    /// The serving certificate (`tls.crt`).
    pub cert: PathBuf,
    /// The serving key (`tls.key`).
    pub key: PathBuf,
}

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    /// Key or certificate generation failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Serving names of the development certificate.
pub const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Generates a fresh CA and a serving certificate it signs (ECDSA P-256), as PEM:
/// `(ca_cert, serving_cert, serving_key)`.
pub fn generate(common_name: &str) -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{common_name} development CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(NAMES.map(String::from).to_vec())?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CommonName, common_name);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir`, creating it.
pub fn write(dir: &Path) -> Result<SelfSigned, SelfSignedError> {
    let (ca, cert, key) = generate("entrypoint-guard")?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SelfSignedError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let files = SelfSigned {
        ca: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    std::fs::write(&files.ca, ca).map_err(io(&files.ca))?;
    std::fs::write(&files.cert, cert).map_err(io(&files.cert))?;
    write_private(&files.key, key.as_bytes()).map_err(io(&files.key))?;
    Ok(files)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}
