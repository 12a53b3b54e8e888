//! `postwire plugin new`: writes a plugin project (`postwire_stages::transform::scaffold`).

use std::path::PathBuf;

use postwire_stages::transform::scaffold::{Lang, scaffold};

use crate::tools::Failure;

#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's name (a-z, 0-9, - and _).
    pub name: String,
    /// rust, python, js or c.
    #[arg(long)]
    pub lang: String,
    /// Where to write the project (default: ./NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn new(args: NewArgs) -> Result<(), Failure> {
    let lang = Lang::parse(&args.lang).ok_or_else(|| {
        Failure::Usage(format!(
            "--lang {:?}: give rust, python, js or c",
            args.lang
        ))
    })?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let files = scaffold(&dir, &args.name, lang).map_err(|e| Failure::Usage(e.to_string()))?;
    println!("wrote {}:", dir.display());
    for f in files {
        println!("  {}", f.display());
    }
    println!(
        "build and test it as {} says",
        dir.join("README.md").display()
    );
    Ok(())
}
