//! Named sets of custom kinds for the projects whose workloads carry pod
//! templates, enabled by name in `customKinds`. Each kind's paths were
//! checked against the project's published CRD or API reference, cited
//! above it.

use super::KindRow;

/// A named set of kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Preset {
    /// The name `customKinds` enables it by.
    pub name: &'static str,
    /// Where its paths were checked.
    pub source: &'static str,
    /// Its kinds.
    pub kinds: &'static [KindRow],
}

/// Every preset, off until named in `customKinds`.
pub(crate) const PRESETS: [Preset; 6] = [
    // Rollout.spec.template is a PodTemplateSpec (a Rollout may instead
    // reference a Deployment with spec.workloadRef: then it holds no template).
    // https://argo-rollouts.readthedocs.io/en/stable/features/specification/
    // CRD: https://github.com/argoproj/argo-rollouts/blob/master/manifests/crds/rollout-crd.yaml
    Preset {
        name: "argo-rollouts",
        source: "https://argo-rollouts.readthedocs.io/en/stable/features/specification/",
        kinds: &[KindRow::new(
            "Rollout",
            "argoproj.io",
            &["v1alpha1"],
            "rollouts",
            &["/spec/template/spec"],
        )],
    },
    // Service and Configuration: spec.template is a RevisionTemplateSpec whose
    // spec (a RevisionSpec) inlines the PodSpec; a Revision's spec is a
    // RevisionSpec itself. A Service owns its Configuration, which owns its
    // Revisions (controller references), so only the Service is patched.
    // https://knative.dev/docs/serving/reference/serving-api/
    // CRDs: https://github.com/knative/serving/tree/main/config/core/300-resources
    Preset {
        name: "knative-serving",
        source: "https://knative.dev/docs/serving/reference/serving-api/",
        kinds: &[
            KindRow::new(
                "Service",
                "serving.knative.dev",
                &["v1"],
                "services",
                &["/spec/template/spec"],
            ),
            KindRow::new(
                "Configuration",
                "serving.knative.dev",
                &["v1"],
                "configurations",
                &["/spec/template/spec"],
            ),
            KindRow::new("Revision", "serving.knative.dev", &["v1"], "revisions", &["/spec"]),
        ],
    },
    // CloneSet, Advanced StatefulSet and Advanced DaemonSet: spec.template is a
    // PodTemplateSpec, as in their apps/v1 counterparts.
    // https://openkruise.io/docs/user-manuals/cloneset
    // https://openkruise.io/docs/user-manuals/advancedstatefulset
    // https://openkruise.io/docs/user-manuals/advanceddaemonset
    Preset {
        name: "openkruise",
        source: "https://openkruise.io/docs/user-manuals/cloneset",
        kinds: &[
            KindRow::new(
                "CloneSet",
                "apps.kruise.io",
                &["v1alpha1"],
                "clonesets",
                &["/spec/template/spec"],
            ),
            KindRow::new(
                "StatefulSet",
                "apps.kruise.io",
                &["v1beta1", "v1alpha1"],
                "statefulsets",
                &["/spec/template/spec"],
            ),
            KindRow::new(
                "DaemonSet",
                "apps.kruise.io",
                &["v1alpha1"],
                "daemonsets",
                &["/spec/template/spec"],
            ),
        ],
    },
    // ScaledJob.spec.jobTargetRef is a batch/v1 JobSpec: its template is a PodTemplateSpec.
    // https://keda.sh/docs/latest/reference/scaledjob-spec/
    Preset {
        name: "keda",
        source: "https://keda.sh/docs/latest/reference/scaledjob-spec/",
        kinds: &[KindRow::new(
            "ScaledJob",
            "keda.sh",
            &["v1alpha1"],
            "scaledjobs",
            &["/spec/jobTargetRef/template/spec"],
        )],
    },
    // A Volcano Job's spec.tasks is a list of tasks, each with a PodTemplateSpec.
    // https://volcano.sh/en/docs/vcjob/
    Preset {
        name: "volcano",
        source: "https://volcano.sh/en/docs/vcjob/",
        kinds: &[KindRow::new(
            "Job",
            "batch.volcano.sh",
            &["v1alpha1"],
            "jobs",
            &["/spec/tasks/*/template/spec"],
        )],
    },
    // The Kubeflow training operator's jobs keep a map of replica type
    // (Chief, PS, Worker, Master, Launcher, ...) to a ReplicaSpec with a
    // PodTemplateSpec: `*` walks the map.
    // https://www.kubeflow.org/docs/components/trainer/legacy-v1/
    // CRDs: https://github.com/kubeflow/training-operator/tree/master/manifests/base/crds
    Preset {
        name: "kubeflow",
        source: "https://www.kubeflow.org/docs/components/trainer/legacy-v1/",
        kinds: &[
            KindRow::new(
                "TFJob",
                "kubeflow.org",
                &["v1"],
                "tfjobs",
                &["/spec/tfReplicaSpecs/*/template/spec"],
            ),
            KindRow::new(
                "PyTorchJob",
                "kubeflow.org",
                &["v1"],
                "pytorchjobs",
                &["/spec/pytorchReplicaSpecs/*/template/spec"],
            ),
            KindRow::new(
                "MPIJob",
                "kubeflow.org",
                &["v1"],
                "mpijobs",
                &["/spec/mpiReplicaSpecs/*/template/spec"],
            ),
            KindRow::new(
                "XGBoostJob",
                "kubeflow.org",
                &["v1"],
                "xgboostjobs",
                &["/spec/xgbReplicaSpecs/*/template/spec"],
            ),
            KindRow::new(
                "PaddleJob",
                "kubeflow.org",
                &["v1"],
                "paddlejobs",
                &["/spec/paddleReplicaSpecs/*/template/spec"],
            ),
        ],
    },
];

/// The preset named `name`.
pub(crate) fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}
