//! The serving certificate: rustls (ring provider) configuration from PEM
//! files, and reloading it when the files' content changes.
//!
//! The files are polled for a content hash rather than watched with
//! inotify: a Kubernetes Secret volume swaps a `..data` symlink, so the
//! watched file itself never changes and its events are missed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::metrics::Metrics;

/// A certificate or key that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not the PEM expected.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not belong to the certificate).
    #[error("{cert} with {key}: {source}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// Where the certificate chain and its key live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A server configuration and the content hash it was built from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Ready to serve.
    pub config: Arc<ServerConfig>,
    /// SHA-256 over both files' content.
    pub hash: [u8; 32],
    /// The leaf certificate's notAfter (Unix seconds).
    pub not_after: i64,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.into(),
        source,
    })
}

/// The content hash of a certificate and key (length-prefixed, so moving
/// bytes from one file to the other changes it).
pub fn content_hash(cert: &[u8], key: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update((cert.len() as u64).to_be_bytes())
        .chain_update(cert)
        .chain_update(key)
        .finalize()
        .into()
}

impl TlsFiles {
    /// Reads both files and builds the configuration.
    pub fn load(&self) -> Result<Loaded, TlsError> {
        let cert = read(&self.cert)?;
        let key = read(&self.key)?;
        let hash = content_hash(&cert, &key);
        let config = self.build(&cert, &key)?;
        Ok(Loaded {
            config: Arc::new(config),
            hash,
            not_after: self.not_after(&cert)?,
        })
    }

    /// The notAfter (Unix seconds) of the first certificate of the PEM chain `cert`.
    pub fn not_after(&self, cert: &[u8]) -> Result<i64, TlsError> {
        let leaf = CertificateDer::pem_slice_iter(cert)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| TlsError::Pem {
                path: self.cert.clone(),
                message: "no CERTIFICATE block".into(),
            })?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).map_err(|e| TlsError::Pem {
            path: self.cert.clone(),
            message: format!("the certificate does not parse: {e}"),
        })?;
        Ok(parsed.validity().not_after.timestamp())
    }

    /// A TLS 1.2+ server configuration (ring provider, HTTP/2 and HTTP/1.1)
    /// for the PEM `cert` chain and `key`.
    pub fn build(&self, cert: &[u8], key: &[u8]) -> Result<ServerConfig, TlsError> {
        let pem = |path: &Path, message: String| TlsError::Pem {
            path: path.into(),
            message,
        };
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem(&self.cert, format!("bad PEM certificate: {e}")))?;
        if chain.is_empty() {
            return Err(pem(&self.cert, "no CERTIFICATE block".into()));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| pem(&self.key, format!("no usable private key: {e}")))?;
        let pair = |source| TlsError::Pair {
            cert: self.cert.clone(),
            key: self.key.clone(),
            source,
        };
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(pair)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(pair)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Polls `files` every `interval` and swaps the served configuration when
/// their content changes. A pair that does not load (half-written, key not
/// matching) is logged once and the old one kept; it is retried when the
/// content changes again. Runs until the task is aborted.
pub async fn watch(
    files: TlsFiles,
    rustls: RustlsConfig,
    mut current: [u8; 32],
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    let mut last_bad: Option<[u8; 32]> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the files were just loaded
    loop {
        ticker.tick().await;
        let (cert, key) = match (tokio::fs::read(&files.cert).await, tokio::fs::read(&files.key).await) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => {
                // A rotation in progress can briefly remove a file; keep serving.
                tracing::debug!(error = %e, "cannot read the certificate files; keeping the current ones");
                continue;
            }
        };
        let hash = content_hash(&cert, &key);
        if hash == current || Some(hash) == last_bad {
            continue;
        }
        match files
            .build(&cert, &key)
            .and_then(|config| Ok((config, files.not_after(&cert)?)))
        {
            Ok((config, not_after)) => {
                rustls.reload_from_config(Arc::new(config));
                metrics.tls_certificate(not_after);
                current = hash;
                last_bad = None;
                metrics.tls_reload(true);
                tracing::info!(cert = %files.cert.display(), "serving certificate reloaded");
            }
            Err(e) => {
                last_bad = Some(hash);
                metrics.tls_reload(false);
                tracing::warn!(error = %e, "new serving certificate not usable; keeping the current one");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_after_is_the_leaf_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 7, 9);
        let leaf = params.self_signed(&key).unwrap().pem();
        let files = TlsFiles {
            cert: "tls.crt".into(),
            key: "tls.key".into(),
        };
        // The leaf comes first; a CA after it does not count.
        let (ca, _, _) = crate::server::selfsigned::generate("ca").unwrap();
        let chain = format!("{leaf}{ca}");
        assert_eq!(
            files.not_after(chain.as_bytes()).unwrap(),
            rcgen::date_time_ymd(2031, 7, 9).unix_timestamp()
        );
        let err = files.not_after(b"not pem").unwrap_err().to_string();
        assert!(err.starts_with("tls.crt: "), "{err}");
    }
}
