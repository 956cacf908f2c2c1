//! Shell completion scripts and man pages, generated from the clap definitions.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::Cli;
use crate::error::{Error, Exit, Result};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write keyward.1 and keyward-<subcommand>.1 into (created if needed)
    pub dir: PathBuf,
}

pub fn completions(a: CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "keyward", &mut buf);
    crate::io::write_output(None, &buf)
}

pub fn man(a: ManArgs) -> Result<()> {
    std::fs::create_dir_all(&a.dir).map_err(|e| Error::io("creating", &a.dir, e))?;
    let mut cmd = Cli::command();
    cmd.build();
    write_pages(&a.dir, &cmd, "keyward")?;
    Ok(())
}

/// Write the page of `cmd` as `<name>.1`, then one page per visible subcommand.
fn write_pages(dir: &Path, cmd: &clap::Command, name: &str) -> Result<()> {
    let page = cmd.clone().name(name.to_owned());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut buf)
        .map_err(|e| Error::new(Exit::Io, format!("rendering the man page of {name}: {e}")))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).map_err(|e| Error::io("writing", &path, e))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(dir, sub, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}
