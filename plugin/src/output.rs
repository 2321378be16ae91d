//! Output formats for data on stdout: YAML documents for people, JSON for scripts.

use std::io::Write;

use serde_json::Value;

/// How objects are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Multi-document YAML, `---` between objects.
    Yaml,
    /// One JSON `v1/List` holding the objects, as `kubectl get -o json` prints several.
    Json,
}

/// Writes `objects` to `out` in `format`.
pub fn write_objects(
    out: &mut dyn Write,
    objects: &[&Value],
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Yaml => {
            for (i, object) in objects.iter().enumerate() {
                if i > 0 {
                    out.write_all(b"---\n")?;
                }
                out.write_all(gitops_shared::yaml::to_string(object).as_bytes())?;
            }
        }
        Format::Json => {
            let list = serde_json::json!({
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {},
                "items": objects,
            });
            serde_json::to_writer_pretty(&mut *out, &list).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}
