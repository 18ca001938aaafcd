//! A Deployment under the real Deployment and ReplicaSet controllers, and
//! the check that they have settled — without a sleep that decides.
//!
//! Settled means: the controller has observed the Deployment's latest
//! generation, exactly one ReplicaSet of it exists and has all its Pods, no
//! template collision was counted, and no more ReplicaSets were created than
//! the case expects (a watch on the namespace's ReplicaSets counts every
//! ADDED). Then it must *stay* settled over [`PROBES`] controller syncs: each
//! probe scales the Deployment up by one through its `scale` subresource (as
//! `kubectl scale` and the HPA do; the webhook's rules do not cover
//! subresources, so the probe itself never changes the template), which makes
//! the Deployment controller sync, update its ReplicaSet — an UPDATE through
//! the webhook — and the ReplicaSet controller create a Pod — a CREATE
//! through the webhook. A probe is complete when `observedGeneration` has
//! caught up and the new Pod exists. A webhook that changes what a
//! controller wrote shows up within those syncs as an extra ReplicaSet or a
//! `collisionCount`: the ReplicaSet storm.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Suite;
use crate::kube_api::{Reply, Watch};
use crate::manifests::{kind, object_path};

/// Controller syncs a settled Deployment must survive unchanged.
pub const PROBES: i64 = 3;
/// The longest a Deployment may take to settle (a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(90);
/// On a storm, how long to keep counting before stopping it (failure path only).
const MEASURE: Duration = Duration::from_secs(10);

/// What the controllers made of a settled Deployment.
#[derive(Clone)]
pub struct Settled {
    /// The Deployment as stored.
    pub deployment: Value,
    /// Its one ReplicaSet.
    pub replica_set: Value,
    /// The ReplicaSet's Pods (not being deleted).
    pub pods: Vec<Value>,
}

/// A Deployment being watched.
pub struct Rollout<'a> {
    s: &'a Suite,
    /// Its namespace (the suite gives each Rollout its own).
    pub ns: String,
    /// Its name.
    pub name: String,
    replica_sets: Watch,
    /// Names of the ReplicaSets created in the namespace since the watch began.
    created: Vec<String>,
    started: Instant,
}

enum Observation {
    Settled(Settled),
    NotYet(String),
    /// A collision counted, or more than one ReplicaSet at once.
    Loop(String),
}

impl<'a> Rollout<'a> {
    /// Starts watching the ReplicaSets of `ns`, then creates `deployment` there.
    pub async fn create(s: &'a Suite, ns: &str, deployment: Value) -> (Rollout<'a>, Reply) {
        let sets = kind("ReplicaSet").list_path(Some(ns));
        let (_, version) = s.api.list(&sets).await;
        let replica_sets = s.api.watch(&sets, &version).await;
        let name = deployment["metadata"]["name"].as_str().expect("a name").to_string();
        let reply = s
            .api
            .create(&kind("Deployment").list_path(Some(ns)), &deployment, false)
            .await
            .ok(&format!("create Deployment {ns}/{name}"));
        let rollout = Rollout {
            s,
            ns: ns.to_string(),
            name,
            replica_sets,
            created: Vec::new(),
            started: Instant::now(),
        };
        (rollout, reply)
    }

    /// The Deployment's path.
    pub fn path(&self) -> String {
        object_path(kind("Deployment"), &self.ns, &self.name)
    }

    /// Waits until the controllers have settled with `expected` ReplicaSets
    /// created in all since the Deployment was, and stay so over [`PROBES`]
    /// syncs (each adds a replica); panics (after measuring it) on more, or
    /// on a timeout.
    pub async fn settle(&mut self, expected: usize) -> Settled {
        let mut settled = self.until_settled(expected, None).await;
        for _ in 0..PROBES {
            let replicas = settled.deployment["spec"]["replicas"].as_i64().expect("replicas") + 1;
            self.s
                .api
                .merge_patch(
                    &format!("{}/scale", self.path()),
                    &json!({"spec": {"replicas": replicas}}),
                )
                .await
                .ok(&format!("scale {}/{} to {replicas}", self.ns, self.name));
            let deployment = self.s.api.get(&self.path()).await.ok("get the Deployment").body;
            let generation = deployment["metadata"]["generation"].as_i64().expect("generation");
            settled = self.until_settled(expected, Some(generation)).await;
        }
        settled
    }

    /// Waits for [`Observation::Settled`], at `generation` or later when given.
    async fn until_settled(&mut self, expected: usize, generation: Option<i64>) -> Settled {
        let deadline = Instant::now() + SETTLE;
        loop {
            if self.created.len() > expected {
                self.storm(expected, "more ReplicaSets created than expected").await;
            }
            let last = match self.observe().await {
                Observation::Loop(why) => self.storm(expected, &why).await,
                Observation::Settled(settled) => {
                    let observed = settled.deployment["status"]["observedGeneration"].as_i64();
                    if observed >= generation && self.created.len() == expected {
                        return settled;
                    }
                    format!(
                        "generation {observed:?} of {generation:?} observed, {} of {expected} ReplicaSets created",
                        self.created.len()
                    )
                }
                Observation::NotYet(why) => why,
            };
            assert!(
                Instant::now() < deadline,
                "Deployment {}/{} did not settle within {} s: {last}; ReplicaSets created: {:?}",
                self.ns,
                self.name,
                SETTLE.as_secs(),
                self.created
            );
            self.pump(Duration::from_millis(250)).await;
        }
    }

    /// Reads the Deployment, its ReplicaSets and their Pods.
    async fn observe(&mut self) -> Observation {
        let api = &self.s.api;
        let deployment = api.get(&self.path()).await.ok("get the Deployment").body;
        let status = &deployment["status"];
        if let Some(collisions) = status["collisionCount"].as_i64().filter(|c| *c > 0) {
            return Observation::Loop(format!(
                "a template collision was counted (collisionCount {collisions})"
            ));
        }
        let replicas = deployment["spec"]["replicas"].as_i64();
        let synced = status["observedGeneration"].as_i64() >= deployment["metadata"]["generation"].as_i64()
            && status["replicas"].as_i64() == replicas
            && status["updatedReplicas"].as_i64() == replicas;
        if !synced {
            return Observation::NotYet(format!("status {status}"));
        }
        let uid = &deployment["metadata"]["uid"];
        let (sets, _) = api.list(&kind("ReplicaSet").list_path(Some(&self.ns))).await;
        let owned: Vec<Value> = sets.into_iter().filter(|rs| owned_by(rs, uid)).collect();
        let replica_set = match <[Value; 1]>::try_from(owned) {
            Ok([replica_set]) => replica_set,
            Err(owned) if owned.is_empty() => return Observation::NotYet("no ReplicaSet yet".into()),
            Err(owned) => {
                let names: Vec<&Value> = owned.iter().map(|o| &o["metadata"]["name"]).collect();
                return Observation::Loop(format!("{} ReplicaSets at once: {names:?}", owned.len()));
            }
        };
        let (pods, _) = api.list(&kind("Pod").list_path(Some(&self.ns))).await;
        let pods: Vec<Value> = pods
            .into_iter()
            .filter(|p| {
                owned_by(p, &replica_set["metadata"]["uid"]) && p["metadata"].get("deletionTimestamp").is_none()
            })
            .collect();
        if Some(pods.len() as i64) != replicas {
            return Observation::NotYet(format!("{} Pods of {replicas:?}", pods.len()));
        }
        Observation::Settled(Settled {
            deployment,
            replica_set,
            pods,
        })
    }

    /// Records the ReplicaSet events that arrive within `wait` (returns at the first).
    async fn pump(&mut self, wait: Duration) {
        if let Some(event) = self.replica_sets.next(wait).await {
            self.record(&event);
            while let Some(event) = self.replica_sets.next(Duration::from_millis(1)).await {
                self.record(&event);
            }
        }
    }

    fn record(&mut self, event: &Value) {
        if event["type"] == "ADDED" {
            let name = event["object"]["metadata"]["name"].as_str().unwrap_or("?");
            self.created.push(name.to_string());
        }
    }

    /// The controllers are looping (or rolled out when they should not have):
    /// count for [`MEASURE`], stop it by deleting the Deployment, and fail
    /// with the numbers.
    async fn storm(&mut self, expected: usize, why: &str) -> ! {
        let seen_at = self.started.elapsed().as_secs_f64();
        let until = Instant::now() + MEASURE;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            self.pump(left).await;
        }
        let deployment = self.s.api.get(&self.path()).await.body;
        let (sets, _) = self.s.api.list(&kind("ReplicaSet").list_path(Some(&self.ns))).await;
        let elapsed = self.started.elapsed().as_secs_f64();
        // The garbage collector then removes its ReplicaSets and Pods.
        self.s.api.delete(&self.path()).await;
        panic!(
            "Deployment {}/{}: {why} ({seen_at:.1} s after it was created). Expected {expected} ReplicaSets \
             created; {} were created within {elapsed:.1} s ({} exist, status.collisionCount {}). The \
             controllers fight the webhook (the ReplicaSet storm); the Deployment was deleted to stop it.",
            self.ns,
            self.name,
            self.created.len(),
            sets.len(),
            deployment["status"]["collisionCount"]
        );
    }
}

/// Whether `object`'s controller owner has `uid`.
pub fn owned_by(object: &Value, uid: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|owners| owners.iter().any(|o| &o["uid"] == uid && o["controller"] == true))
}
