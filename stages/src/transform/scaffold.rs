//! `postwire plugin new`: writes a plugin project that builds as it is and passes
//! `postwire plugin test` — the source (from `plugins/templates/<lang>`), the WIT package
//! (`wit/plugin.wit`, the host's own), a sample event (`event.json`) and a README with the
//! build and test commands.

use std::path::{Path, PathBuf};

/// The languages `plugin new` writes projects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "rust" => Some(Lang::Rust),
            "python" | "py" => Some(Lang::Python),
            "js" | "javascript" => Some(Lang::Js),
            "c" => Some(Lang::C),
            _ => None,
        }
    }
}

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("plugin names start with a-z and use a-z, 0-9, - and _ (at most 64): {0:?}")]
    Name(String),
    #[error("{0} exists and is not empty")]
    Exists(PathBuf),
    #[error("writing {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

const WIT: &str = include_str!("../../../guest-sdk/wit/plugin.wit");
const EVENT: &str = include_str!("../../../plugins/event.json");

/// `(path in the project, template)` per language.
fn templates(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            (
                "Cargo.toml",
                include_str!("../../../plugins/templates/rust/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../plugins/templates/rust/src/lib.rs"),
            ),
            (
                "build.rs",
                include_str!("../../../plugins/templates/rust/build.rs"),
            ),
            (
                "README.md",
                include_str!("../../../plugins/templates/rust/README.md"),
            ),
        ],
        Lang::Python => &[
            (
                "app.py",
                include_str!("../../../plugins/templates/python/app.py"),
            ),
            (
                "README.md",
                include_str!("../../../plugins/templates/python/README.md"),
            ),
        ],
        Lang::C => &[
            (
                "transform.c",
                include_str!("../../../plugins/templates/c/transform.c"),
            ),
            (
                "README.md",
                include_str!("../../../plugins/templates/c/README.md"),
            ),
        ],
        Lang::Js => &[
            (
                "plugin.js",
                include_str!("../../../plugins/templates/js/plugin.js"),
            ),
            (
                "README.md",
                include_str!("../../../plugins/templates/js/README.md"),
            ),
        ],
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Writes the project of plugin `name` in `lang` into `dir` (created; refused when it holds
/// anything). Returns the files written, relative to `dir`.
pub fn scaffold(dir: &Path, name: &str, lang: Lang) -> Result<Vec<PathBuf>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::Name(name.into()));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
    };
    let mut files: Vec<(&str, String)> = templates(lang)
        .iter()
        .map(|(path, t)| (*path, fill(t)))
        .collect();
    files.push(("wit/plugin.wit", WIT.to_string()));
    files.push(("event.json", EVENT.to_string()));
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ScaffoldError::Io(parent.into(), e))?;
        }
        std::fs::write(&path, text).map_err(|e| ScaffoldError::Io(path.clone(), e))?;
        written.push(PathBuf::from(rel));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_a_full_folder_is_refused() {
        let dir = std::env::temp_dir().join(format!("postwire-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(
            scaffold(&dir, "Bad Name", Lang::Rust),
            Err(ScaffoldError::Name(_))
        ));
        let files = scaffold(&dir, "my-plugin", Lang::Rust).unwrap();
        assert!(files.contains(&PathBuf::from("wit/plugin.wit")));
        // Starts with memory enough not to grow per call (docs/plugins.md, "Performance").
        let build = std::fs::read_to_string(dir.join("build.rs")).unwrap();
        assert!(build.contains("--initial-memory=4194304"), "{build}");
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-plugin\""), "{cargo}");
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.contains("release/my_plugin.wasm"), "{readme}");
        assert!(matches!(
            scaffold(&dir, "other", Lang::Js),
            Err(ScaffoldError::Exists(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
