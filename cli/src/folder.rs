//! Policy folders: the `.cedar`, `.cedarschema` and entity files of a configuration, read from disk.
//!
//! A folder with its own model (a `.cedarschema` besides `arguments.cedarschema`) is
//! complete: it replaces the embedded defaults (`"mode": "replace"`). One without, like
//! `examples/demo/`, extends them (`"mode": "extend"`), as `scripts/lib/ecds.py` publishes it.

use std::fs;
use std::path::{Path, PathBuf};

use toolgate::config::Config;
use toolgate::policy::{PolicyFiles, PolicyStore, Source, FEATURE_POLICIES};

/// The schema fragment that types tool arguments (`toolgate schema-from-mcp`), not a model.
pub const ARGUMENTS_SCHEMA: &str = "arguments.cedarschema";

/// The files of one policy folder, read once.
pub struct Folder {
    pub policies: Vec<(String, String)>,
    pub schemas: Vec<(String, String)>,
    pub entities: Vec<(String, String)>,
}

impl Folder {
    /// Reads `*.cedar`, `*.cedarschema`, `entities.json` and `*.entities.json` in `dir` (not below it).
    pub fn read(dir: &Path) -> Result<Self, String> {
        let mut folder = Self {
            policies: Vec::new(),
            schemas: Vec::new(),
            entities: Vec::new(),
        };
        let listing = fs::read_dir(dir).map_err(|e| {
            format!(
                "{}: {e} (give the policy folder with --policies DIR)",
                dir.display()
            )
        })?;
        let mut paths: Vec<PathBuf> = listing
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let list = if name.ends_with(".cedar") {
                &mut folder.policies
            } else if name.ends_with(".cedarschema") {
                &mut folder.schemas
            } else if name == "entities.json" || name.ends_with(".entities.json") {
                &mut folder.entities
            } else {
                continue;
            };
            list.push((path.display().to_string(), read(&path)?));
        }
        if folder.policies.is_empty() && folder.schemas.is_empty() && folder.entities.is_empty() {
            return Err(format!(
                "{}: no .cedar, .cedarschema or entities.json file; give the policy folder with --policies DIR",
                dir.display()
            ));
        }
        Ok(folder)
    }

    /// True when the folder has its own model, so it replaces the embedded defaults.
    pub fn replaces(&self) -> bool {
        self.schemas
            .iter()
            .any(|(path, _)| Path::new(path).file_name() != Some(ARGUMENTS_SCHEMA.as_ref()))
    }

    /// Builds the policy store exactly as the filter does, naming these files in every
    /// error. A folder that extends the defaults gets every feature's embedded rules.
    pub fn store(&self) -> Result<PolicyStore, String> {
        let files = PolicyFiles {
            policies: sources(&self.policies),
            schema: sources(&self.schemas),
            entities: sources(&self.entities),
        };
        if self.replaces() {
            PolicyStore::from_files(&files)
        } else {
            PolicyStore::extending(&files, FEATURE_POLICIES)
        }
    }
}

fn sources(files: &[(String, String)]) -> Vec<Source<'_>> {
    files
        .iter()
        .map(|(name, text)| Source { name, text })
        .collect()
}

pub fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A plugin configuration (as given to the filter) from a file, or the defaults.
/// Its `policies` section is ignored: the CLI's policies come from the folder.
pub fn config(path: Option<&Path>, inline: Option<&serde_json::Value>) -> Result<Config, String> {
    let (name, text) = match (path, inline) {
        (Some(path), _) => (path.display().to_string(), read(path)?),
        (None, Some(value)) => ("the test file's \"config\"".to_owned(), value.to_string()),
        (None, None) => return Ok(Config::default()),
    };
    let mut config = Config::from_json(text.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
    config.policies = Default::default();
    Ok(config)
}
