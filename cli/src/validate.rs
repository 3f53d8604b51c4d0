//! `toolgate validate`: parse and strictly validate a policy folder, as the filter would at configure time.

use crate::args::Args;
use crate::folder::Folder;

pub fn run(args: &Args) -> Result<bool, String> {
    if !args.files.is_empty() {
        return Err("validate takes no files; give the folder with --policies DIR".into());
    }
    let folder = Folder::read(&args.policy_dir())?;
    match folder.store() {
        Ok(store) => {
            println!(
                "ok: {} policies ({} files{}), schema {}, {} entity files; policy version {}",
                store.policy_count(),
                folder.policies.len(),
                if folder.replaces() {
                    ""
                } else {
                    " on the embedded defaults"
                },
                folder
                    .schemas
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + "),
                folder.entities.len(),
                store.version
            );
            Ok(true)
        }
        Err(problems) => {
            // The store reports every problem on one line (for Envoy's log); one per line reads better here.
            for problem in problems
                .trim_start_matches("invalid policies: ")
                .split(" | ")
            {
                println!("error: {problem}");
            }
            Ok(false)
        }
    }
}
