//! The cloud credential sources against protocol-exact stand-ins on
//! loopback (tests/support/cloud.rs), each protecting a real docker-registry
//! (htpasswd holding the token the stand-in issues) or an ACR front: the
//! right identity reaches the right registry, tokens are cached and
//! refreshed before they expire (exact request counts, a manual clock), a
//! failing source falls through and is reported once per interval, and no
//! source's credential reaches another host. The registry guard stays closed
//! for images naming the credential endpoints.

#[path = "support/cloud.rs"]
mod cloud;
#[path = "support/registry.rs"]
mod registry;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cloud::{AwsSpec, FakeAws, FakeEntra, FakeGoogle, Front, write};
use entrypoint_guard::config::{HostPattern, Region, RegistryConfig, Toggle};
use entrypoint_guard::image::{Entrypoint, ImageFacts};
use entrypoint_guard::registry::keychain::{SourceLabel, failure_metric};
use entrypoint_guard::registry::{Environment, ManualClock, NoCredentials, RegistryResolver};
use registry::{Auth, Registry, World};

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// A resolver whose credential sources read `env` and follow `clock`.
fn cloud_resolver(config: &RegistryConfig, env: &Environment, clock: &ManualClock) -> RegistryResolver {
    RegistryResolver::with_environment(config, Arc::new(NoCredentials), env, Arc::new(clock.clone())).unwrap()
}

fn assert_resolved(w: &World, facts: &ImageFacts, repo_tag: &str) {
    assert!(
        matches!(facts.entrypoint, Entrypoint::Known { .. }),
        "{repo_tag}: {facts:?}"
    );
    assert_eq!(facts.digest.as_deref(), Some(w.images.digest(repo_tag)), "{repo_tag}");
}

fn reason(facts: &ImageFacts) -> String {
    match &facts.entrypoint {
        Entrypoint::Unknown { reason } => reason.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A TLS registry whose htpasswd holds `user:password`.
fn protected(w: &World, name: &str, user: &str, password: &str) -> Registry {
    w.registry(
        name,
        Auth::TlsHtpasswd {
            users: vec![(user.into(), password.into())],
        },
    )
}

/// Registry settings reaching `reg` (loopback, its CA) with every cloud
/// source off; tests turn on what they use.
fn base_config(regs: &[&Registry]) -> RegistryConfig {
    let mut config = RegistryConfig::default();
    for reg in regs {
        config.allow_private.push(reg.addr.clone());
        if let Some(ca) = &reg.ca_file {
            config.ca_files.insert(reg.addr.clone(), ca.clone());
        }
    }
    config.credentials.ecr.enabled = Toggle::Off;
    config.credentials.google.enabled = Toggle::Off;
    config.credentials.azure.enabled = Toggle::Off;
    config
}

fn patterns(hosts: &[&str]) -> Vec<HostPattern> {
    hosts.iter().map(|h| HostPattern::parse(h).unwrap()).collect()
}

fn aws_spec(ecr_password: &str) -> AwsSpec {
    AwsSpec {
        web_identity_token: "eks-projected-sa-token".into(),
        role_arn: "arn:aws:iam::123456789012:role/entrypoint-guard".into(),
        pod_identity_token: "pod-identity-agent-token".into(),
        ecr_password: ecr_password.into(),
        credentials_lifetime: 3600,
        ecr_lifetime: 12 * 3600,
        region: "us-east-1".into(),
    }
}

fn ecr_config(regs: &[&Registry], serves: &Registry) -> RegistryConfig {
    let mut config = base_config(regs);
    config.credentials.ecr.enabled = Toggle::Auto;
    config.credentials.ecr.registries = patterns(&[&serves.addr]);
    config.credentials.ecr.region = Some(Region::parse("us-east-1").unwrap());
    config
}

#[tokio::test]
async fn ecr_through_irsa_caches_the_token_and_refreshes_it_before_expiry() {
    let w = world();
    let reg = protected(w, "ecr-irsa", "AWS", "ecr-password-irsa");
    let aws = FakeAws::start(aws_spec("ecr-password-irsa")).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", "eks-projected-sa-token\n");
    let env = Environment::from_vars([
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/entrypoint-guard"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_STS", aws.url.as_str()),
        ("AWS_ENDPOINT_URL_ECR", aws.url.as_str()),
    ]);
    let clock = ManualClock::new();
    let r = cloud_resolver(&ecr_config(&[&reg], &reg), &env, &clock.clone());
    assert_eq!(
        r.credential_sources(),
        ["ecr"],
        "auto: IRSA's variables show the identity"
    );

    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_eq!((aws.counts.get("sts"), aws.counts.get("ecr")), (1, 1));
    assert_eq!(
        aws.ecr_signers.lock().unwrap().as_slice(),
        ["ASIASTS0000"],
        "signed with the STS credentials"
    );

    // Another image, half an hour later: the token is reused.
    clock.advance(Duration::from_secs(1800));
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/one:1.0", reg.addr)).await,
        "chalk/one:1.0",
    );
    assert_eq!((aws.counts.get("sts"), aws.counts.get("ecr")), (1, 1));

    // 5 minutes before the 12-hour token expires it is fetched again, with
    // fresh STS credentials (theirs expired after an hour).
    clock.advance(Duration::from_secs(12 * 3600 - 1800 - 299));
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/flags:1.0", reg.addr)).await,
        "chalk/flags:1.0",
    );
    assert_eq!((aws.counts.get("sts"), aws.counts.get("ecr")), (2, 2));
    assert_eq!(
        aws.ecr_signers.lock().unwrap().as_slice(),
        ["ASIASTS0000", "ASIASTS0001"]
    );
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/plain/app:1.0", reg.addr)).await,
        "plain/app:1.0",
    );
    assert_eq!((aws.counts.get("sts"), aws.counts.get("ecr")), (2, 2));
}

#[tokio::test]
async fn ecr_through_eks_pod_identity_and_through_imdsv2() {
    let w = world();
    let reg = protected(w, "ecr-pod", "AWS", "ecr-password-pod");
    let aws = FakeAws::start(aws_spec("ecr-password-pod")).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "eks-pod-identity-token", "pod-identity-agent-token");
    let full_uri = format!("{}/v1/credentials", aws.url);
    let env = Environment::from_vars([
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ENDPOINT_URL_ECR", aws.url.as_str()),
    ]);
    let r = cloud_resolver(&ecr_config(&[&reg], &reg), &env, &ManualClock::new());
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/one:1.0", reg.addr)).await,
        "chalk/one:1.0",
    );
    assert_eq!((aws.counts.get("pod-identity"), aws.counts.get("ecr")), (1, 1));
    assert_eq!(aws.ecr_signers.lock().unwrap().as_slice(), ["ASIAPOD0000"]);

    // No variables at all: only the instance metadata service, when the source is turned on.
    let env = Environment::from_vars([
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws.url.as_str()),
        ("AWS_ENDPOINT_URL_ECR", aws.url.as_str()),
    ]);
    let mut config = ecr_config(&[&reg], &reg);
    let off = cloud_resolver(&config, &env, &ManualClock::new());
    assert!(
        off.credential_sources().is_empty(),
        "auto: nothing shows an AWS identity"
    );
    config.credentials.ecr.enabled = Toggle::On;
    let r = cloud_resolver(&config, &env, &ManualClock::new());
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/flags:1.0", reg.addr)).await,
        "chalk/flags:1.0",
    );
    assert_eq!(
        (
            aws.counts.get("imds-token"),
            aws.counts.get("imds-role"),
            aws.counts.get("imds-credentials")
        ),
        (1, 1, 1)
    );
    assert_eq!(aws.counts.get("ecr"), 2);
    assert_eq!(
        aws.ecr_signers.lock().unwrap().last().map(String::as_str),
        Some("ASIAIMDS0001")
    );
}

#[tokio::test]
async fn a_failing_source_falls_through_to_anonymous_and_is_reported_once_per_interval() {
    let w = world();
    let aws = FakeAws::start(aws_spec("unused")).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", "a-token-sts-refuses");
    let env = Environment::from_vars([
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/entrypoint-guard"),
        ("AWS_ENDPOINT_URL_STS", aws.url.as_str()),
        ("AWS_ENDPOINT_URL_ECR", aws.url.as_str()),
    ]);
    // The ECR source serves the plain (anonymous) registry; STS refuses.
    let mut config = ecr_config(&[&w.plain], &w.plain);
    config.insecure.push(w.plain.addr.clone());
    let clock = ManualClock::new();
    let r = cloud_resolver(&config, &env, &clock.clone());
    let failures = || {
        failure_metric()
            .get_or_create(&SourceLabel { source: "ecr".into() })
            .get()
    };
    let before = failures();
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", w.plain.addr)).await,
        "chalk/bare:1.0",
    );
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/one:1.0", w.plain.addr)).await,
        "chalk/one:1.0",
    );
    assert_eq!(aws.counts.get("sts"), 1, "not asked again within the retry interval");
    assert_eq!(aws.counts.get("ecr"), 0);
    assert_eq!(failures() - before, 1, "reported once");
    clock.advance(Duration::from_secs(61));
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/flags:1.0", w.plain.addr)).await,
        "chalk/flags:1.0",
    );
    assert_eq!(
        aws.counts.get("sts"),
        2,
        "asked again after registry.credentials.retryInterval"
    );
    assert_eq!(failures() - before, 2);
}

#[tokio::test]
async fn google_from_the_metadata_server_and_from_a_service_account_key() {
    let w = world();
    let reg = protected(w, "gar", "oauth2accesstoken", "ya29.gke-workload-identity");
    let google = FakeGoogle::start("ya29.gke-workload-identity", None, 3599).await;
    let mut config = base_config(&[&reg]);
    config.credentials.google.enabled = Toggle::Auto;
    config.credentials.google.registries = patterns(&[&reg.addr]);
    let env = Environment::from_vars([("GCE_METADATA_HOST", google.host.as_str())]);
    let clock = ManualClock::new();
    let r = cloud_resolver(&config, &env, &clock.clone());
    assert_eq!(r.credential_sources(), ["google"]);
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/one:1.0", reg.addr)).await,
        "chalk/one:1.0",
    );
    assert_eq!(google.counts.get("metadata"), 1);
    clock.advance(Duration::from_secs(3599 - 299));
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/flags:1.0", reg.addr)).await,
        "chalk/flags:1.0",
    );
    assert_eq!(google.counts.get("metadata"), 2, "refreshed 5 minutes before expiry");

    // A service-account key: a JWT bearer grant the stand-in verifies.
    let dir = tempfile::tempdir().unwrap();
    let (pem, public) = cloud::rsa_key(dir.path());
    let email = "entrypoint-guard@project.iam.gserviceaccount.com";
    let sa_reg = protected(w, "gar-sa", "oauth2accesstoken", "ya29.service-account");
    let google = FakeGoogle::start("ya29.service-account", Some((email.into(), public)), 3599).await;
    let key_file = serde_json::json!({"type": "service_account", "project_id": "project", "private_key_id": "k1",
        "private_key": pem, "client_email": email, "client_id": "1",
        "token_uri": format!("http://{}/token", google.host)});
    let key_path = write(dir.path(), "key.json", &key_file.to_string());
    let mut config = base_config(&[&sa_reg]);
    config.credentials.google.enabled = Toggle::Auto;
    config.credentials.google.registries = patterns(&[&sa_reg.addr]);
    let env = Environment::from_vars([("GOOGLE_APPLICATION_CREDENTIALS", key_path.to_str().unwrap())]);
    let r = cloud_resolver(&config, &env, &ManualClock::new());
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", sa_reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/plain/app:1.0", sa_reg.addr)).await,
        "plain/app:1.0",
    );
    assert_eq!((google.counts.get("oauth"), google.counts.get("metadata")), (1, 0));
}

#[tokio::test]
async fn acr_through_aks_workload_identity_and_managed_identity() {
    let w = world();
    let entra = FakeEntra::start("tenant-1", "client-1", "aks-federated-token", "entra-access-token").await;
    let acr = Front::start(&w.plain.addr, Some("entra-access-token")).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "azure-identity-token", "aks-federated-token");
    let mut config = base_config(&[]);
    config.allow_private.push(acr.addr.clone());
    config.insecure.push(acr.addr.clone());
    config.credentials.azure.enabled = Toggle::Auto;
    config.credentials.azure.registries = patterns(&[&acr.addr]);
    let authority = format!("{}/", entra.url);
    let env = Environment::from_vars([
        ("AZURE_CLIENT_ID", "client-1"),
        ("AZURE_TENANT_ID", "tenant-1"),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
    ]);
    let r = cloud_resolver(&config, &env, &ManualClock::new());
    assert_eq!(r.credential_sources(), ["azure"]);
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", acr.addr)).await,
        "chalk/bare:1.0",
    );
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/one:1.0", acr.addr)).await,
        "chalk/one:1.0",
    );
    assert_eq!((entra.counts.get("entra"), acr.counts.get("exchange")), (1, 1));
    assert!(acr.counts.get("token") >= 1);

    // Without Workload Identity's variables: the managed identity (turned on explicitly).
    let acr2 = Front::start(&w.plain.addr, Some("entra-access-token")).await;
    config.allow_private.push(acr2.addr.clone());
    config.insecure.push(acr2.addr.clone());
    config.credentials.azure.registries = patterns(&[&acr2.addr]);
    config.credentials.azure.enabled = Toggle::On;
    let env = Environment::from_vars([("AZURE_POD_IDENTITY_AUTHORITY_HOST", entra.url.as_str())]);
    let r = cloud_resolver(&config, &env, &ManualClock::new());
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/flags:1.0", acr2.addr)).await,
        "chalk/flags:1.0",
    );
    assert_eq!((entra.counts.get("imds"), acr2.counts.get("exchange")), (1, 1));
}

#[tokio::test]
async fn credentials_of_one_source_never_reach_another_host_and_the_guard_stays_closed() {
    let w = world();
    let reg = protected(w, "ecr-only", "AWS", "ecr-password-isolation");
    let aws = FakeAws::start(aws_spec("ecr-password-isolation")).await;
    let google = FakeGoogle::start("ya29.google-only", None, 3599).await;
    let other = Front::start(&w.plain.addr, None).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", "eks-projected-sa-token");
    let mut config = ecr_config(&[&reg], &reg);
    config.allow_private.push(other.addr.clone());
    config.insecure.push(other.addr.clone());
    config.credentials.google.enabled = Toggle::Auto;
    config.credentials.google.registries = patterns(&["gcr.io"]);
    let env = Environment::from_vars([
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/entrypoint-guard"),
        ("AWS_ENDPOINT_URL_STS", aws.url.as_str()),
        ("AWS_ENDPOINT_URL_ECR", aws.url.as_str()),
        ("GCE_METADATA_HOST", google.host.as_str()),
    ]);
    let r = cloud_resolver(&config, &env, &ManualClock::new());
    assert_eq!(r.credential_sources(), ["ecr", "google"]);
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_resolved(
        w,
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", other.addr)).await,
        "chalk/bare:1.0",
    );
    let seen = other.authorizations.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(String::is_empty),
        "the other registry saw {seen:?}"
    );
    assert_eq!(
        google.counts.get("metadata"),
        0,
        "no image on the Google source's registries"
    );
    assert_eq!(aws.counts.get("ecr"), 1);

    // The credential endpoints are reachable by the sources only: an image
    // naming them is refused by the guard (they are not in allowPrivate).
    for endpoint in [
        google.host.clone(),
        aws.url.trim_start_matches("http://").to_string(),
        "169.254.169.254".into(),
    ] {
        let facts = registry::resolve_image(&r, &format!("{endpoint}/latest/meta-data:1")).await;
        let why = reason(&facts);
        assert!(why.contains("refused"), "{endpoint}: {why}");
    }
    assert_eq!(google.counts.get("metadata"), 0);
    assert_eq!((aws.counts.get("imds-token"), aws.counts.get("sts")), (0, 1));
}

#[test]
fn bad_credential_settings_name_the_field_and_line() {
    use entrypoint_guard::config::Config;
    let cases = [
        (
            "registry:\n  credentials:\n    ecr:\n      region: evil.com/x\n",
            "registry.credentials.ecr.region",
            "invalid AWS region",
        ),
        (
            "registry:\n  credentials:\n    azure:\n      registries: ['[.io']\n",
            "registry.credentials.azure.registries[0]",
            "invalid registry pattern",
        ),
        (
            "registry:\n  credentials:\n    google:\n      enabled: maybe\n",
            "registry.credentials.google.enabled",
            "expected true, false or \"auto\"",
        ),
        (
            "registry:\n  mirrors:\n    docker.io: ['http://m.corp']\n",
            "registry.mirrors.docker.io[0]",
            "invalid mirror",
        ),
    ];
    for (yaml, field, message) in cases {
        let e = Config::from_yaml(yaml, "c.yaml").unwrap_err().to_string();
        assert!(e.starts_with("c.yaml:4:") || e.starts_with("c.yaml:3:"), "{e}");
        assert!(e.contains(field) && e.contains(message), "{e}");
    }
}
