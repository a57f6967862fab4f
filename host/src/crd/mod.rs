//! The `k8up.io/v1` custom resources (data only). Placeholder until the foundation issue lands.

use std::path::{Path, PathBuf};

/// Every CRD of the project as one multi-document YAML string (what `k8up crds` prints).
pub fn render_all() -> Result<String, serde_yaml::Error> {
    Ok(String::new())
}

/// Write one YAML file per kind into `dir`, returning the paths written.
pub fn write_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let _ = dir;
    Ok(Vec::new())
}
