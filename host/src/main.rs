//! The `k8up` binary: parse the CLI, start telemetry, dispatch.

fn main() -> anyhow::Result<()> {
    Ok(())
}
