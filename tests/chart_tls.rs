//! The chart's three TLS modes: the CA the API server is told to trust must
//! be the one that signed the certificate the server presents.

#[path = "support/chart.rs"]
mod chart;

use std::sync::Arc;

use chart::{FULLNAME, NAMESPACE, Rendered, b64, render, render_at, render_error};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};

const SECRET: &str = "r-entrypoint-guard-tls";

fn ca_bundles(r: &Rendered) -> Vec<Option<String>> {
    r.webhooks()
        .iter()
        .map(|w| w["clientConfig"]["caBundle"].as_str().map(str::to_string))
        .collect()
}

fn inject_annotation(r: &Rendered) -> Option<&Value> {
    r.get("MutatingWebhookConfiguration", FULLNAME)["metadata"]["annotations"].get("cert-manager.io/inject-ca-from")
}

fn tls_volume_secret(r: &Rendered) -> &Value {
    let volumes = r.pod_spec()["volumes"].as_array().expect("volumes");
    &volumes.iter().find(|v| v["name"] == "tls").expect("tls volume")["secret"]["secretName"]
}

/// A real TLS handshake (ring provider) between a server presenting
/// `cert`/`key` and a client trusting only `ca`, for the Service name the API
/// server dials. Returns the handshake error, if any.
fn handshake(ca: &[u8], cert: &[u8], key: &[u8], server_name: &str) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .expect("tls.crt is PEM");
    let key = PrivateKeyDer::from_pem_slice(key).expect("tls.key is a PEM private key");
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca) {
        roots.add(ca.expect("ca.crt is PEM"))?;
    }
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).expect("server name");
    let mut client = rustls::ClientConnection::new(Arc::new(client_config), name)?;
    let mut server = rustls::ServerConnection::new(Arc::new(server_config))?;
    // Shuttle records both ways in memory until both sides are done.
    for _ in 0..20 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).expect("in-memory write");
        }
        let mut read = &buf[..];
        while !read.is_empty() {
            server.read_tls(&mut read).expect("in-memory read");
            server.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).expect("in-memory write");
        }
        let mut read = &buf[..];
        while !read.is_empty() {
            client.read_tls(&mut read).expect("in-memory read");
            client.process_new_packets()?;
        }
    }
    panic!("handshake did not finish")
}

#[test]
fn generated_certificate_is_trusted_by_the_webhook_ca_bundle() {
    let r = render(&[]);
    let secret = r.get("Secret", SECRET);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let data = &secret["data"];
    let ca = data["ca.crt"].as_str().expect("ca.crt");
    assert_eq!(
        ca_bundles(&r),
        [Some(ca.to_string()), Some(ca.to_string())],
        "both webhooks trust the CA"
    );
    assert!(inject_annotation(&r).is_none());
    assert_eq!(tls_volume_secret(&r), SECRET);
    assert!(r.all("Certificate").is_empty() && r.all("Issuer").is_empty());

    let (ca, cert, key) = (
        b64(ca),
        b64(data["tls.crt"].as_str().unwrap()),
        b64(data["tls.key"].as_str().unwrap()),
    );
    for name in [
        "r-entrypoint-guard.eg.svc",
        "r-entrypoint-guard.eg.svc.cluster.local",
        "r-entrypoint-guard.eg",
    ] {
        handshake(&ca, &cert, &key, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = handshake(&ca, &cert, &key, "other.eg.svc").expect_err("a name not in the certificate");
    assert!(wrong.to_string().contains("certificate"), "{wrong}");
    // And a CA from another render does not vouch for this certificate.
    let other = b64(render(&[]).get("Secret", SECRET)["data"]["ca.crt"].as_str().unwrap());
    assert_ne!(other, ca, "without a cluster, every render makes a new CA");
    assert!(handshake(&other, &cert, &key, "r-entrypoint-guard.eg.svc").is_err());
}

/// The chart with its `lookup` of the serving Secret replaced by `found` (a
/// template expression), as `helm upgrade` would see an existing Secret.
fn render_with_lookup(found: &str) -> Rendered {
    let copy = chart::chart_copy();
    let chart = copy.path().join("entrypoint-guard");
    let helper = chart.join("templates/_tls.tpl");
    let text = std::fs::read_to_string(&helper).expect("read _tls.tpl");
    let lookup =
        r#"{{- $found := lookup "v1" "Secret" .Release.Namespace (include "entrypoint-guard.tlsSecretName" .) -}}"#;
    assert_eq!(text.matches("lookup ").count(), 1, "one lookup, the one simulated here");
    assert!(
        text.contains(lookup),
        "the Secret lookup changed shape: update this test"
    );
    std::fs::write(&helper, text.replace(lookup, &format!("{{{{- $found := {found} -}}}}"))).expect("write");
    render_at(&chart, &[])
}

#[test]
fn upgrade_reuses_the_secret_that_lookup_finds() {
    let existing = render(&[]);
    let data = &existing.get("Secret", SECRET)["data"];
    let (ca, crt, key) = (
        data["ca.crt"].as_str().unwrap(),
        data["tls.crt"].as_str().unwrap(),
        data["tls.key"].as_str().unwrap(),
    );
    let found = format!(r#"dict "data" (dict "ca.crt" "{ca}" "tls.crt" "{crt}" "tls.key" "{key}")"#);
    let upgraded = render_with_lookup(&found);
    assert_eq!(
        upgraded.get("Secret", SECRET)["data"],
        *data,
        "the CA and certificate are kept"
    );
    assert_eq!(ca_bundles(&upgraded), [Some(ca.to_string()), Some(ca.to_string())]);

    // A Secret missing a key is not half-reused: everything is made anew, consistently.
    let partial = render_with_lookup(&format!(r#"dict "data" (dict "ca.crt" "{ca}" "tls.crt" "{crt}")"#));
    let fresh = &partial.get("Secret", SECRET)["data"];
    assert_ne!(fresh["ca.crt"], json!(ca));
    assert_eq!(ca_bundles(&partial)[0].as_deref(), fresh["ca.crt"].as_str());
    // What a first install sees (lookup finds nothing) also generates.
    let empty = render_with_lookup("dict");
    assert_ne!(empty.get("Secret", SECRET)["data"]["ca.crt"], json!(ca));
}

#[test]
fn cert_manager_mode_builds_the_ca_chain_and_injects_it() {
    let r = render(&["--set", "tls.mode=certManager"]);
    assert!(r.all("Secret").is_empty(), "cert-manager writes the Secret");
    assert_eq!(inject_annotation(&r), Some(&json!(format!("{NAMESPACE}/{SECRET}"))));
    assert_eq!(ca_bundles(&r), [None, None], "cainjector fills caBundle");

    let selfsigned = r.get("Issuer", "r-entrypoint-guard-selfsigned");
    assert_eq!(selfsigned["spec"], json!({"selfSigned": {}}));
    let ca_cert = r.get("Certificate", "r-entrypoint-guard-ca");
    assert_eq!(ca_cert["spec"]["isCA"], true);
    assert_eq!(ca_cert["spec"]["issuerRef"]["name"], "r-entrypoint-guard-selfsigned");
    let ca_issuer = r.get("Issuer", "r-entrypoint-guard-ca");
    assert_eq!(ca_issuer["spec"]["ca"]["secretName"], ca_cert["spec"]["secretName"]);
    let serving = r.get("Certificate", SECRET);
    assert_eq!(serving["spec"]["issuerRef"]["name"], "r-entrypoint-guard-ca");
    assert_eq!(serving["spec"]["secretName"], SECRET);
    assert_eq!(tls_volume_secret(&r), SECRET);
    let names = serving["spec"]["dnsNames"].as_array().unwrap();
    for name in ["r-entrypoint-guard.eg.svc", "r-entrypoint-guard.eg.svc.cluster.local"] {
        assert!(names.contains(&json!(name)), "{names:?}");
    }
    for d in r.all("Certificate").into_iter().chain(r.all("Issuer")) {
        assert_eq!(d["metadata"]["namespace"], NAMESPACE);
    }
}

#[test]
fn existing_secret_mode_uses_the_given_secret_and_ca() {
    let r = render(&[
        "--set",
        "tls.mode=secret",
        "--set",
        "tls.secret.name=webhook-tls",
        "--set",
        "tls.secret.caBundle=Q0EgUEVN",
    ]);
    assert!(r.all("Secret").is_empty() && r.all("Certificate").is_empty());
    assert_eq!(ca_bundles(&r), [Some("Q0EgUEVN".into()), Some("Q0EgUEVN".into())]);
    assert!(inject_annotation(&r).is_none());
    assert_eq!(tls_volume_secret(&r), "webhook-tls");

    let e = render_error(&["--set", "tls.mode=secret", "--set", "tls.secret.name=webhook-tls"]);
    assert!(chart::mentions_field(&e, "tls.secret.caBundle"), "{e}");
    let e = render_error(&["--set", "tls.mode=secret", "--set", "tls.secret.caBundle=Q0E="]);
    assert!(chart::mentions_field(&e, "tls.secret.name"), "{e}");
}
