//! One kube-runtime `Controller` per action kind, all sharing one [`Context`], started and stopped together.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::driver::{Context, Planner, concurrency, error_policy, reconcile};
use super::kinds::ActionKind;
use super::metrics::Metrics;
use super::settings::OperatorSettings;
use crate::crd::{Archive, Backup, Check, Prune, Restore};

/// The name the operator reports Events under.
pub const REPORTER: &str = "k8up-operator";

/// Who reports the operator's Events: [`REPORTER`], and the pod (`POD_NAME`) as the instance.
pub fn reporter() -> Reporter {
    Reporter {
        controller: REPORTER.to_string(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

/// The running controllers; [`Controllers::shutdown`] stops them gracefully (in-flight reconciles finish).
#[derive(Debug)]
pub struct Controllers {
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    context: Arc<Context>,
}

impl Controllers {
    /// Starts the controllers of all five action kinds and the Schedule controller.
    pub fn start(
        client: Client,
        settings: Arc<OperatorSettings>,
        planner: Arc<dyn Planner>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let recorder = Recorder::new(client.clone(), reporter());
        // One watch cache of every k8up Job for the concurrency decisions (driver::concurrency).
        let (jobs, writer) = reflector::store::<Job>();
        let context = Arc::new(Context::new(
            client.clone(),
            settings,
            planner,
            recorder,
            metrics,
            Some(jobs),
        ));
        let token = CancellationToken::new();
        let job_cache = {
            let token = token.clone();
            let stream = reflector(
                writer,
                watcher(
                    Api::<Job>::all(client),
                    watcher::Config::default().labels("k8upjob=true"),
                ),
            )
            .default_backoff()
            .take_until(async move { token.cancelled().await })
            .for_each(|event| async move {
                if let Err(e) = event {
                    tracing::debug!(error = %e, "k8up job cache");
                }
            });
            tokio::spawn(stream)
        };
        let tasks = vec![
            job_cache,
            tokio::spawn(run_one::<Backup>(context.clone(), token.clone())),
            tokio::spawn(run_one::<Restore>(context.clone(), token.clone())),
            tokio::spawn(run_one::<Archive>(context.clone(), token.clone())),
            tokio::spawn(run_one::<Check>(context.clone(), token.clone())),
            tokio::spawn(run_one::<Prune>(context.clone(), token.clone())),
            tokio::spawn(super::scheduler::run(context.clone(), token.clone())),
        ];
        Controllers {
            token,
            tasks,
            context,
        }
    }

    /// The shared context (metrics, settings).
    pub fn context(&self) -> &Arc<Context> {
        &self.context
    }

    /// Stops every controller and waits for them.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        for task in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "a controller task ended abnormally");
            }
        }
    }
}

impl Drop for Controllers {
    /// Dropped without [`Controllers::shutdown`] (an aborted task, a panic): the controllers still stop.
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The controller configuration: at most `--max-concurrent-reconciles` reconciles at once. Unbounded, a
/// start-up with thousands of objects ran thousands of reconciles at once, each holding its own HTTP/1.1
/// connection (1,700 were seen open) and its buffers, and the allocator kept that peak.
pub fn config(context: &Context) -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(context.settings.reconciles)
}

async fn run_one<K: ActionKind>(context: Arc<Context>, token: CancellationToken) {
    let client = context.client.clone();
    let (store, objects) = super::decoded::watch::<K>(client.clone(), context.recorder.clone());
    Controller::for_stream(objects, store)
        .with_config(config(&context))
        // A Job's status changes (active -> Complete/Failed) are what move an action forward; owning them
        // replaces K8up's polling. Only k8up's Jobs are watched.
        .owns(
            Api::<Job>::all(client.clone()),
            watcher::Config::default().labels("k8upjob=true"),
        )
        // An action waiting for its turn on a repository looks again as soon as a k8up Job finishes.
        .watches(
            Api::<Job>::all(client),
            watcher::Config::default().labels("k8upjob=true"),
            {
                let context = context.clone();
                move |job: Job| {
                    let done = job.metadata.deletion_timestamp.is_some() || concurrency::is_finished(&job);
                    let waiting = if done {
                        context.gate.waiting_of(K::JOB_TYPE)
                    } else {
                        Vec::new()
                    };
                    waiting
                        .into_iter()
                        .map(|(namespace, name)| ObjectRef::<K>::new(&name).within(&namespace))
                }
            },
        )
        .graceful_shutdown_on(async move { token.cancelled().await })
        .run(reconcile::<K>, error_policy::<K>, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(kind = K::JOB_TYPE.kind(), error = %e, "controller event");
            }
        })
        .await;
}
