//! A real Kubernetes control plane on loopback: etcd, kube-apiserver and
//! kube-controller-manager (v1.32) from the directory named by `EG_K8S_BIN`
//! (`bash ../shared/k8s/install.sh DIR` fills it), a throwaway PKI made by
//! rcgen, and a cluster-admin kube client. The envtest pattern: the
//! binaries come from outside the repository.
//!
//! Include with `#[path = "support/control_plane.rs"] mod control_plane;`.
#![allow(dead_code)] // the suite uses a subset in each phase

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "pki.rs"]
mod pki;
#[path = "process.rs"]
mod process;
pub use pki::Pki;
use pki::b64;
pub use process::Process;

/// The environment variable naming the directory with `etcd`,
/// `kube-apiserver` and `kube-controller-manager`.
pub const BIN_ENV: &str = "EG_K8S_BIN";

/// The binaries' directory, or `None` when [`BIN_ENV`] is unset (the suite
/// then says it did not run). A set but wrong directory fails loudly.
pub fn binaries() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(BIN_ENV)?);
    for binary in ["etcd", "kube-apiserver", "kube-controller-manager"] {
        let path = dir.join(binary);
        assert!(
            path.is_file(),
            "{BIN_ENV}={} has no {binary}: run `bash ../shared/k8s/install.sh {}`",
            dir.display(),
            dir.display()
        );
    }
    Some(dir)
}

/// A free loopback port (bound, then released for the process to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Polls `check` every 100 ms until it gives a value or `deadline` passes.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() > until {
            return Err(format!("{what}: not within {} s", deadline.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A kubeconfig for `server` with the admin certificate embedded.
fn kubeconfig_yaml(server: &str, pki: &Pki) -> Result<String, String> {
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| b64(&b))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    Ok(format!(
        "apiVersion: v1
kind: Config
clusters:
- name: eg
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: eg
  context: {{cluster: eg, user: admin}}
current-context: eg
",
        ca = read(&pki.ca)?,
        cert = read(&pki.admin.0)?,
        key = read(&pki.admin.1)?,
    ))
}

/// What the audit log records: metadata of every write to the kinds the
/// webhook sees, which carries the webhook's audit annotations.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch]
    resources:
      - group: \"\"
        resources: [pods, podtemplates, replicationcontrollers]
      - group: apps
      - group: batch
  - level: None
";

/// A running control plane; everything stops when it is dropped.
pub struct ControlPlane {
    /// The working directory (certificates, etcd data, logs).
    pub dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    /// The PKI.
    pub pki: Pki,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The admin kubeconfig (for kubectl and `entrypoint-guard audit`).
    pub kubeconfig: PathBuf,
    /// The API server's audit log (JSON lines).
    pub audit_log: PathBuf,
    /// A cluster-admin client.
    pub client: kube::Client,
    /// etcd, kube-apiserver, kube-controller-manager: stopped in reverse.
    processes: Vec<Process>,
}

impl ControlPlane {
    /// Starts etcd, the API server (ready on `/readyz`) and the controller
    /// manager (its service-account controller has made `default/default`).
    /// On failure the working directory is kept and named in the error.
    pub async fn start(bin: &Path) -> Result<ControlPlane, String> {
        let tmp = tempfile::Builder::new()
            .prefix("eg-control-plane-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let dir = tmp.path().to_path_buf();
        let mut processes = Vec::new();
        match Self::boot(bin, &dir, &mut processes).await {
            Ok((pki, server, kubeconfig, audit_log, client)) => Ok(ControlPlane {
                dir,
                tmp: Some(tmp),
                pki,
                server,
                kubeconfig,
                audit_log,
                client,
                processes,
            }),
            Err(e) => {
                stop_all(&mut processes);
                let kept = tmp.keep();
                Err(format!(
                    "the control plane did not start: {e}\nlogs kept in {}",
                    kept.display()
                ))
            }
        }
    }

    async fn boot(
        bin: &Path,
        dir: &Path,
        processes: &mut Vec<Process>,
    ) -> Result<(Pki, String, PathBuf, PathBuf, kube::Client), String> {
        let pki = Pki::generate(dir)?;
        let path = |p: &Path| p.to_string_lossy().into_owned();

        let (client_port, peer_port) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        processes.push(Process::spawn(
            "etcd",
            &bin.join("etcd"),
            &[
                "--name=eg".into(),
                format!("--data-dir={}", path(&dir.join("etcd-data"))),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=eg={peer_url}"),
            ],
            &dir.join("etcd.log"),
            &[],
        )?);
        let etcd_addr: SocketAddr = ([127, 0, 0, 1], client_port).into();
        wait_for("etcd accepts connections", Duration::from_secs(30), || {
            let ok = TcpStream::connect_timeout(&etcd_addr, Duration::from_millis(200)).is_ok();
            let exited = processes[0].exited();
            async move {
                match exited {
                    Some(why) => Err(why),
                    None => Ok(ok.then_some(())),
                }
            }
        })
        .await?;

        let audit_policy = dir.join("audit-policy.yaml");
        std::fs::write(&audit_policy, AUDIT_POLICY).map_err(|e| format!("audit policy: {e}"))?;
        let audit_log = dir.join("audit.log");
        let api_port = free_port();
        let server = format!("https://127.0.0.1:{api_port}");
        processes.push(Process::spawn(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--etcd-servers={client_url}"),
                format!("--tls-cert-file={}", path(&pki.apiserver.0)),
                format!("--tls-private-key-file={}", path(&pki.apiserver.1)),
                format!("--client-ca-file={}", path(&pki.ca)),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", path(&pki.service_account.1)),
                format!("--service-account-signing-key-file={}", path(&pki.service_account.0)),
                "--service-cluster-ip-range=10.96.0.0/24".into(),
                "--authorization-mode=RBAC".into(),
                "--anonymous-auth=false".into(),
                "--endpoint-reconciler-type=none".into(),
                "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook".into(),
                format!("--audit-policy-file={}", path(&audit_policy)),
                format!("--audit-log-path={}", path(&audit_log)),
            ],
            &dir.join("kube-apiserver.log"),
            &[],
        )?);
        let kubeconfig = dir.join("admin.kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&server, &pki)?).map_err(|e| format!("kubeconfig: {e}"))?;
        let client = client(&kubeconfig).await?;
        wait_for("kube-apiserver /readyz", Duration::from_secs(60), || {
            let client = client.clone();
            let exited = processes[1].exited();
            async move {
                if let Some(why) = exited {
                    return Err(why);
                }
                Ok((get_status(&client, "/readyz").await == Some(200)).then_some(()))
            }
        })
        .await?;

        let kcm_port = free_port();
        processes.push(Process::spawn(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", path(&kubeconfig)),
                "--leader-elect=false".into(),
                "--controllers=deployment,replicaset,job,cronjob,serviceaccount,serviceaccount-token,garbagecollector"
                    .into(),
                format!("--service-account-private-key-file={}", path(&pki.service_account.0)),
                format!("--root-ca-file={}", path(&pki.ca)),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={kcm_port}"),
            ],
            &dir.join("kube-controller-manager.log"),
            &[],
        )?);
        wait_for(
            "kube-controller-manager's service-account controller (default/default)",
            Duration::from_secs(60),
            || {
                let client = client.clone();
                let exited = processes[2].exited();
                async move {
                    if let Some(why) = exited {
                        return Err(why);
                    }
                    let path = "/api/v1/namespaces/default/serviceaccounts/default";
                    Ok((get_status(&client, path).await == Some(200)).then_some(()))
                }
            },
        )
        .await?;
        Ok((pki, server, kubeconfig, audit_log, client))
    }

    /// Stops every process. With `keep_logs` the working directory stays
    /// (its path is returned), else it is removed.
    pub fn stop(&mut self, keep_logs: bool) -> Option<PathBuf> {
        stop_all(&mut self.processes);
        let tmp = self.tmp.take()?;
        if keep_logs { Some(tmp.keep()) } else { None }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        stop_all(&mut self.processes);
    }
}

fn stop_all(processes: &mut Vec<Process>) {
    while let Some(mut process) = processes.pop() {
        // Throwaway state: no graceful shutdown needed, and the API server's takes seconds.
        process.kill();
    }
}

/// A kube client from a kubeconfig file (ring provider).
pub async fn client(kubeconfig: &Path) -> Result<kube::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| format!("kubeconfig: {e}"))?;
    let config = kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| format!("kubeconfig: {e}"))?;
    kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))
}

/// The HTTP status of `GET path`, or `None` when the request failed.
async fn get_status(client: &kube::Client, path: &str) -> Option<u16> {
    let request = axum::http::Request::get(path).body(kube::client::Body::empty()).ok()?;
    client.send(request).await.ok().map(|r| r.status().as_u16())
}
