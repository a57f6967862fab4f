//! Placement: which node a PVC's backup must run on, and which tolerations it needs.
//!
//! Classic mode pins every mounted PVC to its pod's node and unmounted RWO PVCs to their PV's
//! node; relaxed mode pins only mounted RWO PVCs and leaves the rest to the scheduler. The
//! `k8up.io/hostname` annotation wins in both modes (REFERENCE 3.2).

use k8up_plugin_sdk::{Metadata, Pvc, PvcExt, Settings, Toleration};

/// Where one PVC's backup runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The node to pin to, or `None` to let the scheduler decide.
    pub node: Option<String>,
    /// Tolerations copied from the pod that mounts the PVC.
    pub tolerations: Vec<Toleration>,
}

/// Computes the placement of one PVC.
pub fn place(pvc: &Pvc, settings: &Settings) -> Placement {
    let mount = pvc.mounted_by.as_ref().filter(|pod| !pod.node.is_empty());
    let tolerations = pvc
        .mounted_by
        .as_ref()
        .map(|pod| pod.tolerations.clone())
        .unwrap_or_default();
    let node = if settings.relaxed_scheduling {
        // A mounted RWX claim can be mounted anywhere, and an unmounted one is placed by the
        // scheduler (which honours the PV's node affinity itself).
        mount.filter(|_| pvc.is_rwo()).map(|pod| pod.node.clone())
    } else {
        match mount {
            Some(pod) => Some(pod.node.clone()),
            None if pvc.has_access_mode("ReadWriteOnce") => pvc.pv_node.clone(),
            None => None,
        }
    };
    let forced = pvc
        .annotation(&settings.hostname_annotation)
        .filter(|host| !host.is_empty());
    Placement {
        node: forced.map(str::to_string).or(node),
        tolerations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8up_plugin_sdk::testing::{default_settings, pvc, toleration};

    const RWX: &[&str] = &["ReadWriteMany"];

    #[test]
    fn placement_follows_the_scheduling_mode() {
        let taint = toleration("dedicated", "db", "NoSchedule");
        // (pvc, classic node, relaxed node)
        let cases: Vec<(Pvc, Option<&str>, Option<&str>)> = vec![
            (
                pvc("rwo-mounted").mounted_by("db-0", "n1", vec![]),
                Some("n1"),
                Some("n1"),
            ),
            (
                pvc("rwx-mounted")
                    .with_access_modes(RWX)
                    .mounted_by("web-0", "n2", vec![]),
                Some("n2"),
                None,
            ),
            (pvc("rwo-pv").with_pv_node("n3"), Some("n3"), None),
            (pvc("rwo-free"), None, None),
            (
                pvc("rwx-free").with_access_modes(RWX).with_pv_node("n4"),
                None,
                None,
            ),
            (
                pvc("forced")
                    .mounted_by("db-1", "n1", vec![])
                    .with_annotation("k8up.io/hostname", "n9"),
                Some("n9"),
                Some("n9"),
            ),
            (
                pvc("forced-rwx")
                    .with_access_modes(RWX)
                    .with_annotation("k8up.io/hostname", "n8"),
                Some("n8"),
                Some("n8"),
            ),
            (
                pvc("forced-empty")
                    .with_pv_node("n3")
                    .with_annotation("k8up.io/hostname", ""),
                Some("n3"),
                None,
            ),
        ];
        for relaxed in [false, true] {
            let mut settings = default_settings();
            settings.relaxed_scheduling = relaxed;
            for (claim, classic, relaxed_node) in &cases {
                let expected = if relaxed { relaxed_node } else { classic };
                assert_eq!(
                    place(claim, &settings).node.as_deref(),
                    *expected,
                    "{} relaxed={relaxed}",
                    claim.name
                );
            }
        }
        // Tolerations of the mounting pod are copied in both modes, even when not pinned.
        let claim = pvc("tainted")
            .with_access_modes(RWX)
            .mounted_by("web-0", "n2", vec![taint.clone()]);
        let mut settings = default_settings();
        settings.relaxed_scheduling = true;
        assert_eq!(
            place(&claim, &settings),
            Placement {
                node: None,
                tolerations: vec![taint.clone()]
            }
        );
        settings.relaxed_scheduling = false;
        assert_eq!(
            place(&claim, &settings),
            Placement {
                node: Some("n2".into()),
                tolerations: vec![taint]
            }
        );
    }

    #[test]
    fn a_custom_hostname_annotation_name_is_honoured() {
        let mut settings = default_settings();
        settings.hostname_annotation = "example.com/node".into();
        let claim = pvc("x")
            .with_annotation("example.com/node", "n7")
            .with_annotation("k8up.io/hostname", "n1");
        assert_eq!(place(&claim, &settings).node.as_deref(), Some("n7"));
    }
}
