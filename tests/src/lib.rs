//! k8up-tests: the sandbox cluster and end-to-end test support.

pub mod api;
pub mod chart;
pub mod cluster;
pub mod controllers;
pub mod demo;
pub mod kubelet;
pub mod node;
pub mod operator_process;
pub mod pki;
pub mod runtime;
pub mod servers;
